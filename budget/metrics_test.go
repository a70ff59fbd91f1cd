package budget_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/budget"
	"chorus/ops/opstest"
)

// TestDailyMetricsReadTheLedger: the gauges follow the ledger, including
// the day rolling over.
func TestDailyMetricsReadTheLedger(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC)}
	d, err := budget.OpenDaily(filepath.Join(t.TempDir(), "d.json"), budget.DailyLimits{Tokens: 1000, Calls: 0}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := budget.RegisterMetrics(reg, d); err != nil {
		t.Fatal(err)
	}
	if err := d.Charge(120); err != nil {
		t.Fatal(err)
	}
	if err := d.Charge(30); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		name string
		want float64
	}{{"chorus_ai_daily_tokens_used", 150}, {"chorus_ai_daily_calls_used", 2}, {"chorus_ai_daily_tokens_limit", 1000}, {"chorus_ai_daily_calls_limit", 0}} {
		if got := opstest.Value(t, reg, w.name); got != w.want {
			t.Errorf("%s = %v, want %v", w.name, got, w.want)
		}
	}
	c.t = c.t.Add(2 * time.Hour) // the next day
	if got := opstest.Value(t, reg, "chorus_ai_daily_tokens_used"); got != 0 {
		t.Errorf("tokens used on a new day = %v, want 0", got)
	}
}
