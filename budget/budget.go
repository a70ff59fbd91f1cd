package budget

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrExhausted is wrapped by every budget refusal; the message names the
// limit ("task tokens", "task steps", "task wall time", "daily tokens",
// "daily calls").
var ErrExhausted = errors.New("budget_exhausted")

// Limits for one task. Zero means no limit.
type Limits struct {
	Tokens int
	Steps  int
	Wall   time.Duration
}

// DefaultLimits bound one task's AI rung: enough for a handful of
// command/feedback rounds with a mid-sized model, small enough that a
// looping model costs little.
var DefaultLimits = Limits{Tokens: 60_000, Steps: 8, Wall: 10 * time.Minute}

// Task tracks one execution's spending against its limits.
type Task struct {
	limits Limits
	start  time.Time
	now    func() time.Time
	tokens int
	steps  int
}

// NewTask starts tracking at now(); now is time.Now when nil.
func NewTask(l Limits, now func() time.Time) *Task {
	if now == nil {
		now = time.Now
	}
	return &Task{limits: l, start: now(), now: now}
}

// Check is called before a model call. It returns the most tokens the call
// may use (0 = no limit) or an error wrapping ErrExhausted.
func (t *Task) Check() (maxTokens int, err error) {
	switch {
	case t.limits.Steps > 0 && t.steps >= t.limits.Steps:
		return 0, fmt.Errorf("%w: task steps: %d of %d used", ErrExhausted, t.steps, t.limits.Steps)
	case t.limits.Wall > 0 && t.now().Sub(t.start) >= t.limits.Wall:
		return 0, fmt.Errorf("%w: task wall time: %s of %s used", ErrExhausted, t.now().Sub(t.start).Round(time.Millisecond), t.limits.Wall)
	case t.limits.Tokens > 0 && t.tokens >= t.limits.Tokens:
		return 0, fmt.Errorf("%w: task tokens: %d of %d used", ErrExhausted, t.tokens, t.limits.Tokens)
	}
	if t.limits.Tokens > 0 {
		return t.limits.Tokens - t.tokens, nil
	}
	return 0, nil
}

// Charge records a finished call.
func (t *Task) Charge(tokens int) {
	t.steps++
	t.tokens += tokens
}

// Used reports tokens and steps so far.
func (t *Task) Used() (tokens, steps int) { return t.tokens, t.steps }

// DailyLimits for one agent. Zero means no limit.
type DailyLimits struct {
	Tokens int
	Calls  int
}

// ledger is the file format.
type ledger struct {
	Day    string `json:"day"`
	Tokens int    `json:"tokens"`
	Calls  int    `json:"calls"`
}

// Daily is an agent's per-day ledger.
type Daily struct {
	path   string
	limits DailyLimits
	now    func() time.Time

	mu sync.Mutex
	l  ledger
}

// OpenDaily loads (or starts) the ledger at path.
func OpenDaily(path string, limits DailyLimits, now func() time.Time) (*Daily, error) {
	if now == nil {
		now = time.Now
	}
	d := &Daily{path: path, limits: limits, now: now}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read budget ledger: %w", err)
	default:
		if err := json.Unmarshal(b, &d.l); err != nil {
			return nil, fmt.Errorf("budget ledger %s is corrupt: %w", path, err)
		}
	}
	return d, nil
}

func (d *Daily) today() string { return d.now().UTC().Format(time.DateOnly) }

// rollover starts a new day's ledger; d.mu is held.
func (d *Daily) rollover() {
	if day := d.today(); d.l.Day != day {
		d.l = ledger{Day: day}
	}
}

// Check is called before a model call: it fails when today's calls or
// tokens are used up, and otherwise returns the tokens left today (0 = no
// limit).
func (d *Daily) Check() (tokensLeft int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rollover()
	switch {
	case d.limits.Calls > 0 && d.l.Calls >= d.limits.Calls:
		return 0, fmt.Errorf("%w: daily calls: %d of %d used on %s", ErrExhausted, d.l.Calls, d.limits.Calls, d.l.Day)
	case d.limits.Tokens > 0 && d.l.Tokens >= d.limits.Tokens:
		return 0, fmt.Errorf("%w: daily tokens: %d of %d used on %s", ErrExhausted, d.l.Tokens, d.limits.Tokens, d.l.Day)
	}
	if d.limits.Tokens > 0 {
		return d.limits.Tokens - d.l.Tokens, nil
	}
	return 0, nil
}

// Charge records a call and persists the ledger.
func (d *Daily) Charge(tokens int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rollover()
	d.l.Calls++
	d.l.Tokens += tokens
	return d.save()
}

// Used reports today's tokens and calls.
func (d *Daily) Used() (tokens, calls int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rollover()
	return d.l.Tokens, d.l.Calls
}

// save writes the ledger atomically; d.mu is held.
func (d *Daily) save() error {
	b, err := json.Marshal(d.l)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
		return fmt.Errorf("save budget ledger: %w", err)
	}
	tmp := d.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save budget ledger: %w", err)
	}
	if err := os.Rename(tmp, d.path); err != nil {
		return fmt.Errorf("save budget ledger: %w", err)
	}
	return nil
}
