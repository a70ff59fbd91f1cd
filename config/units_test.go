package config_test

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"chorus/config"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    config.Size
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: config.MiB},
		{in: "100B", want: 100},
		{in: "4KiB", want: 4096},
		{in: "512MiB", want: 512 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "1.5GiB", want: 3 << 29},
		{in: " 512 MiB ", want: 512 << 20},
		{in: "512mib", want: 512 << 20},
		{in: "", wantErr: "must start with a number"},
		{in: "MiB", wantErr: "must start with a number"},
		{in: "-1MiB", wantErr: "must not be negative"},
		{in: "512MB", wantErr: `unknown unit "MB"`},
		{in: "1G", wantErr: `unknown unit "G"`},
		{in: "1e9", wantErr: `unknown unit "e9"`},
		{in: "1.2.3KiB", wantErr: "is not a number"},
		{in: "0.3KiB", wantErr: "not a whole number of bytes"},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: "9000000000GiB", wantErr: "too large"},
		{in: "9000000000.5GiB", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := config.ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSize(%q) = %d, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   config.Size
		want string
	}{
		{0, "0B"}, {1, "1B"}, {1536, "1536B"}, {4 * config.KiB, "4KiB"}, {config.MiB, "1MiB"},
		{512 * config.MiB, "512MiB"}, {3 * config.GiB, "3GiB"}, {config.GiB + 1, "1073741825B"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		back, err := config.ParseSize(tt.in.String())
		if err != nil || back != tt.in {
			t.Errorf("ParseSize(%q) = %d, %v; want %d back", tt.in.String(), back, err, tt.in)
		}
	}
}

func TestUnitsRoundTripThroughYAML(t *testing.T) {
	type doc struct {
		Timeout config.Duration `yaml:"timeout"`
		Memory  config.Size     `yaml:"memory"`
	}
	in := doc{Timeout: config.Duration(90 * time.Second), Memory: 768 * config.MiB}
	out, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "timeout: 1m30s\nmemory: 768MiB\n" {
		t.Fatalf("yaml.Marshal = %q", out)
	}
	var back doc
	if err := yaml.Unmarshal(out, &back); err != nil || back != in {
		t.Fatalf("yaml.Unmarshal = %+v, %v; want %+v", back, err, in)
	}
}
