// Package opstest helps tests read the metrics a package registers: values
// of single series from a Gatherer, a live scrape of a /metrics endpoint,
// the chorus_ families of a scrape by category, and promtool, which CI
// installs (Debian package prometheus). It is imported by tests only.
//
// Concurrency: the functions hold no state and may run in parallel tests.
package opstest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families gathers g, failing the test on an error.
func Families(t testing.TB, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// Value returns the value of the series of family name whose labels include
// the given name, value pairs: a counter's or gauge's value, a histogram's
// sample count. It fails the test when no series matches.
func Value(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, ok := Lookup(t, g, name, labels...)
	if !ok {
		t.Fatalf("no series %s%v in %v", name, labels, names(Families(t, g)))
	}
	return v
}

// Lookup is Value that reports a missing series instead of failing.
func Lookup(t testing.TB, g prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("labels of %s: odd number of name, value arguments", name)
	}
	mf, ok := Families(t, g)[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if matches(m, labels) {
			return value(m), true
		}
	}
	return 0, false
}

func matches(m *dto.Metric, labels []string) bool {
	have := map[string]string{}
	for _, lp := range m.GetLabel() {
		have[lp.GetName()] = lp.GetValue()
	}
	for i := 0; i < len(labels); i += 2 {
		if have[labels[i]] != labels[i+1] {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Summary != nil:
		return float64(m.GetSummary().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

func names(fams map[string]*dto.MetricFamily) []string {
	var out []string
	for n := range fams {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Scrape fetches url (a /metrics endpoint) and returns the body in the
// Prometheus text format.
func Scrape(t testing.TB, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s: %s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape %s: Content-Type %q", url, ct)
	}
	return body
}

// Parse parses a scrape in the text format.
func Parse(t testing.TB, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return fams
}

// ByCategory sorts the chorus_ families of a scrape by category, the
// second part of their name (chorus_<category>_...).
func ByCategory(fams map[string]*dto.MetricFamily) map[string][]string {
	out := map[string][]string{}
	for name := range fams {
		rest, ok := strings.CutPrefix(name, "chorus_")
		if !ok {
			continue
		}
		cat, _, _ := strings.Cut(rest, "_")
		out[cat] = append(out[cat], name)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// Promtool returns the path of promtool. When it is missing the test is
// skipped, except on CI (CI=true), where it fails: CI installs it.
func Promtool(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool is required on CI (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool not installed (apt-get install prometheus): %v", err)
	}
	return path
}

// RunPromtool runs promtool with args and stdin, failing the test with its
// output unless it exits 0. It returns the combined output.
func RunPromtool(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(Promtool(t), args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// CheckMetrics runs promtool check metrics on a scrape: it fails the test
// on any problem promtool reports (lint included), printing them.
func CheckMetrics(t testing.TB, body []byte) {
	t.Helper()
	out := RunPromtool(t, body, "check", "metrics")
	if strings.TrimSpace(out) != "" {
		t.Fatalf("promtool check metrics reported:\n%s", out)
	}
}

// Summary formats families by category for a log line.
func Summary(byCat map[string][]string) string {
	var sb strings.Builder
	cats := make([]string, 0, len(byCat))
	for c := range byCat {
		cats = append(cats, c)
	}
	slices.Sort(cats)
	for _, c := range cats {
		fmt.Fprintf(&sb, "%s=%d ", c, len(byCat[c]))
	}
	return strings.TrimSpace(sb.String())
}
