package secret_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chorus"
	"chorus/secret"
)

func TestSecretNeverPrints(t *testing.T) {
	const key = "sk-test-0123456789abcdef"
	s := secret.New(key)
	type holder struct {
		Public  secret.Secret
		private secret.Secret
	}
	h := holder{s, s}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "secret", s, "holder", h)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("key", "secret", s, "holder", h)
	outputs := []string{
		s.String(), s.GoString(), logs.String(),
		fmt.Sprintf("%v %+v %#v %s %q %x %d", s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", h, h, h),
		fmt.Sprintf("%v %+v %#v", &h, &h, &h),
	}
	for _, out := range outputs {
		if strings.Contains(out, key) {
			t.Errorf("key printed: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprint(s), secret.Redacted) {
		t.Errorf("fmt.Sprint(secret) = %q, want %s", fmt.Sprint(s), secret.Redacted)
	}
	if s.Reveal() != key || !s.IsSet() {
		t.Error("Reveal lost the key")
	}
	if secret.New("").IsSet() || (secret.Secret{}).String() != "" {
		t.Error("empty secret reads as set")
	}
	if got := s.Scrub("bad key " + key + "!"); got != "bad key "+secret.Redacted+"!" {
		t.Errorf("Scrub = %q", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("key", "sk-file-key\n")
	empty := write("empty", " \n")
	newline := write("twolines", "sk-a\nsk-b\n")
	big := write("big", strings.Repeat("x", 16<<10+1))
	env := map[string]string{"KEY": " sk-env-key ", "EMPTY": "", "BAD": "sk\x01"}
	getenv := func(k string) string { return env[k] }

	tests := []struct {
		name, env, file string
		want            string
		field           string // named in the error; "" means no error
	}{
		{"none", "", "", "", ""},
		{"env", "KEY", "", "sk-env-key", ""},
		{"file", "", good, "sk-file-key", ""},
		{"both", "KEY", good, "", "api_key_file"},
		{"bad env name", "1KEY", "", "", "api_key_env"},
		{"unset env", "MISSING", "", "", "api_key_env"},
		{"empty env", "EMPTY", "", "", "api_key_env"},
		{"control character", "BAD", "", "", "api_key_env"},
		{"missing file", "", filepath.Join(dir, "nope"), "", "api_key_file"},
		{"empty file", "", empty, "", "api_key_file"},
		{"two lines", "", newline, "", "api_key_file"},
		{"big file", "", big, "", "api_key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := secret.Load("api_key_env", tt.env, "api_key_file", tt.file, getenv)
			if tt.field == "" {
				if err != nil || s.Reveal() != tt.want {
					t.Fatalf("Load = %q, %v; want %q", s.Reveal(), err, tt.want)
				}
				return
			}
			if !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Load error = %v; want an invalid error naming %s", err, tt.field)
			}
			for _, v := range []string{"sk-a", "sk-b", "sk\x01", "xxxx"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error shows key material %q: %v", v, err)
				}
			}
		})
	}
}

func TestScrubBytes(t *testing.T) {
	s := secret.New("tok-123")
	if got := string(s.ScrubBytes([]byte("x tok-123 y"))); got != "x "+secret.Redacted+" y" {
		t.Errorf("ScrubBytes = %q", got)
	}
	in := []byte("clean")
	if out := s.ScrubBytes(in); &out[0] != &in[0] {
		t.Error("ScrubBytes copied text without the secret")
	}
}
