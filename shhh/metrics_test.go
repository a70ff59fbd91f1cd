package shhh_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/ops/opstest"
	"chorus/shhh"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := shhh.DefaultConfig()
	cfg.Metrics = reg
	cfg.Rules = []shhh.Rule{{Name: "internal_token", Pattern: `itk_(?P<secret>[a-z0-9]{24})`, Severity: shhh.SeverityLow}}
	r, err := shhh.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	token := "ghp_" + strings.Repeat("a1B2", 9)
	text := "push with " + token + " and itk_" + strings.Repeat("x", 24)
	r.Redact(text)
	r.Redact("nothing to see")
	r.RedactValue(map[string]any{"password": "correct horse battery"})

	for _, w := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"chorus_shhh_scans_total", []string{"kind", "text"}, 2},
		{"chorus_shhh_scans_total", []string{"kind", "value"}, 1},
		{"chorus_shhh_scans_with_findings_total", []string{"kind", "text"}, 1},
		{"chorus_shhh_scans_with_findings_total", []string{"kind", "value"}, 1},
		{"chorus_shhh_redactions_total", []string{"rule", "github_token", "severity", "high"}, 1},
		{"chorus_shhh_redactions_total", []string{"rule", "internal_token", "severity", "low"}, 1},
		{"chorus_shhh_redactions_total", []string{"rule", "password_assignment", "severity", "high"}, 1},
		{"chorus_shhh_redactions_total", []string{"rule", "jwt"}, 0},
		{"chorus_shhh_scan_duration_seconds", []string{"kind", "text"}, 2},
		{"chorus_shhh_scan_size_bytes", nil, 3},
		{"chorus_shhh_rules", []string{"severity", "low"}, 1},
	} {
		if got := opstest.Value(t, reg, w.name, w.labels...); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	// The byte count is the Redactor's own statistic.
	if got, want := opstest.Value(t, reg, "chorus_shhh_scanned_bytes_total"), float64(r.Stats().ScannedBytes); got != want || got < float64(len(text)) {
		t.Errorf("scanned bytes %v, stats %v", got, want)
	}
	if got := opstest.Value(t, reg, "chorus_shhh_rules", "severity", "critical"); got < 1 {
		t.Errorf("critical rules %v, want the built-in PEM and AWS secret rules", got)
	}
}
