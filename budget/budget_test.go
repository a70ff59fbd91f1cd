package budget_test

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus/budget"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTaskStopsBeforeTheCall(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	cases := []struct {
		name   string
		limits budget.Limits
		spend  func(*budget.Task)
		want   string
	}{
		{"steps", budget.Limits{Steps: 2}, func(b *budget.Task) { b.Charge(1); b.Charge(1) }, "task steps: 2 of 2"},
		{"tokens", budget.Limits{Tokens: 100}, func(b *budget.Task) { b.Charge(60); b.Charge(40) }, "task tokens: 100 of 100"},
		{"wall", budget.Limits{Wall: time.Minute}, func(*budget.Task) { c.t = c.t.Add(time.Minute) }, "task wall time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := budget.NewTask(tc.limits, c.now)
			if _, err := b.Check(); err != nil {
				t.Fatalf("fresh budget refused: %v", err)
			}
			tc.spend(b)
			_, err := b.Check()
			if !errors.Is(err, budget.ErrExhausted) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want exhausted %q", err, tc.want)
			}
		})
	}
}

func TestTaskCapsTheNextCall(t *testing.T) {
	b := budget.NewTask(budget.Limits{Tokens: 100}, nil)
	b.Charge(70)
	if n, err := b.Check(); err != nil || n != 30 {
		t.Fatalf("Check = %d, %v; want 30 tokens left", n, err)
	}
	if n, err := budget.NewTask(budget.Limits{}, nil).Check(); err != nil || n != 0 {
		t.Fatalf("unlimited: %d, %v", n, err)
	}
}

func TestDailyPersistsAndRollsOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "budget", "daily.json")
	c := &clock{t: time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC)}
	d, err := budget.OpenDaily(path, budget.DailyLimits{Tokens: 1000, Calls: 2}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := d.Check(); err != nil {
			t.Fatal(err)
		}
		if err := d.Charge(100); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Check(); !errors.Is(err, budget.ErrExhausted) || !strings.Contains(err.Error(), "daily calls: 2 of 2") {
		t.Fatalf("third call: %v", err)
	}
	// A restart keeps the day's spending.
	d2, err := budget.OpenDaily(path, budget.DailyLimits{Tokens: 1000, Calls: 2}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	if tok, calls := d2.Used(); tok != 200 || calls != 2 {
		t.Fatalf("after reopen: %d tokens, %d calls", tok, calls)
	}
	if _, err := d2.Check(); !errors.Is(err, budget.ErrExhausted) {
		t.Fatalf("after reopen: %v", err)
	}
	// Midnight UTC starts a new day.
	c.t = c.t.Add(2 * time.Hour)
	if left, err := d2.Check(); err != nil || left != 1000 {
		t.Fatalf("next day: %d, %v", left, err)
	}
}

func TestDailyTokens(t *testing.T) {
	d, err := budget.OpenDaily(filepath.Join(t.TempDir(), "d.json"), budget.DailyLimits{Tokens: 150}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = d.Charge(50) }()
	}
	wg.Wait()
	if _, err := d.Check(); !errors.Is(err, budget.ErrExhausted) || !strings.Contains(err.Error(), "daily tokens: 150 of 150") {
		t.Fatalf("Check = %v", err)
	}
}

func TestCorruptLedgerIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.json")
	if err := writeFile(path, "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := budget.OpenDaily(path, budget.DailyLimits{}, nil); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("OpenDaily = %v", err)
	}
}
