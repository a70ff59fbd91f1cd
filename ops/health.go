package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"chorus"
)

// Check defaults (SPEC section 8).
const (
	// DefaultInterval is how often a check runs: often enough that a lost
	// dependency shows within a minute, rarely enough that probes cost
	// nothing.
	DefaultInterval = 30 * time.Second
	// DefaultTimeout bounds one run: long enough for a slow network round
	// trip, short enough that a hung dependency is reported well before the
	// next run is due.
	DefaultTimeout = 10 * time.Second
)

// Overall statuses reported in Report.Status.
const (
	StatusHealthy   = "healthy"
	StatusDegraded  = "degraded"
	StatusUnhealthy = "unhealthy"
	StatusStarting  = "starting"
)

// maxMessageBytes bounds CheckStatus.Message so one chatty dependency cannot
// bloat every health response.
const maxMessageBytes = 512

// CheckFunc probes one dependency. It returns nil when the dependency is
// usable and must give up when ctx is done.
type CheckFunc func(ctx context.Context) error

// Check is one named probe.
type Check struct {
	// Name identifies the check in reports; it must be unique.
	Name string
	// Critical checks decide readiness and turn the overall status
	// unhealthy when they fail; others only degrade it.
	Critical bool
	// Interval between runs; zero means DefaultInterval.
	Interval time.Duration
	// Timeout bounds one run; zero means DefaultTimeout.
	Timeout time.Duration
	// Func does the probing.
	Func CheckFunc
}

// Report is the overall health as served on /health.
type Report struct {
	// Status is healthy, degraded, unhealthy or starting.
	Status string `json:"status"`
	// Checks are sorted by name.
	Checks []CheckStatus `json:"checks"`
	// Time is when the report was taken.
	Time time.Time `json:"time"`
}

// CheckStatus is the latest result of one check.
type CheckStatus struct {
	Name     string `json:"name"`
	Critical bool   `json:"critical"`
	// Healthy is the outcome of the latest run; false before the first.
	Healthy bool `json:"healthy"`
	// Message is "ok", the error of the latest run, or "not run yet".
	Message string `json:"message"`
	// LatencyMS is how long the latest run took.
	LatencyMS float64 `json:"latency_ms"`
	// LastRun is when the latest run finished; zero before the first.
	LastRun time.Time `json:"last_run"`
	// Runs counts completed runs.
	Runs int `json:"runs"`
}

const notRunYet = "not run yet"

// timeoutGrace is how long a timed-out check may take to return its own
// error before the run is recorded as a bare timeout.
const timeoutGrace = 100 * time.Millisecond

// Health runs checks and reports their results. Build it with NewHealth.
type Health struct {
	logger *slog.Logger
	clock  func() time.Time

	mu      sync.Mutex
	checks  map[string]*entry
	running bool
}

// entry is one registered check and its latest result; guarded by Health.mu
// except check, which never changes after Register.
type entry struct {
	check  Check
	status CheckStatus
	// inflight is set while check.Func runs; abandoned when that run
	// outlived its timeout and was recorded as failed.
	inflight, abandoned bool
}

// NewHealth returns an empty Health. A nil logger discards logs; a nil clock
// means time.Now. The clock stamps results and measures latency.
func NewHealth(logger *slog.Logger, clock func() time.Time) *Health {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if clock == nil {
		clock = time.Now
	}
	return &Health{logger: logger, clock: clock, checks: make(map[string]*entry)}
}

// Register adds a check, filling in default interval and timeout. It fails
// on an empty or duplicate name, a nil Func, a negative interval or timeout,
// or while Run is active.
func (h *Health) Register(c Check) error {
	switch {
	case strings.TrimSpace(c.Name) == "":
		return fmt.Errorf("register check: %w: name: must not be empty", chorus.ErrInvalid)
	case c.Func == nil:
		return fmt.Errorf("register check %q: %w: func: must not be nil", c.Name, chorus.ErrInvalid)
	case c.Interval < 0:
		return fmt.Errorf("register check %q: %w: interval: must not be negative, got %s", c.Name, chorus.ErrInvalid, c.Interval)
	case c.Timeout < 0:
		return fmt.Errorf("register check %q: %w: timeout: must not be negative, got %s", c.Name, chorus.ErrInvalid, c.Timeout)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		return fmt.Errorf("register check %q: checks are already running", c.Name)
	}
	if _, dup := h.checks[c.Name]; dup {
		return fmt.Errorf("register check %q: %w: name: already registered", c.Name, chorus.ErrInvalid)
	}
	h.checks[c.Name] = &entry{
		check:  c,
		status: CheckStatus{Name: c.Name, Critical: c.Critical, Message: notRunYet},
	}
	return nil
}

// Run runs every check at once, then each on its interval, until ctx is
// done. It returns nil when ctx ends, and an error if it is already running.
func (h *Health) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errors.New("run health checks: already running")
	}
	h.running = true
	entries := h.entriesLocked()
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.running = false
		h.mu.Unlock()
	}()

	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Go(func() { h.loop(ctx, e) })
	}
	wg.Wait()
	return nil
}

// RunChecks runs every check now, concurrently, and returns when all are
// recorded.
func (h *Health) RunChecks(ctx context.Context) {
	h.mu.Lock()
	entries := h.entriesLocked()
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Go(func() { h.runOne(ctx, e) })
	}
	wg.Wait()
}

// Snapshot returns the current report.
func (h *Health) Snapshot() Report {
	h.mu.Lock()
	checks := make([]CheckStatus, 0, len(h.checks))
	for _, e := range h.checks {
		checks = append(checks, e.status)
	}
	h.mu.Unlock()
	slices.SortFunc(checks, func(a, b CheckStatus) int { return strings.Compare(a.Name, b.Name) })
	return Report{Status: overall(checks), Checks: checks, Time: h.clock()}
}

// overall folds check results into one status; see the package doc.
func overall(checks []CheckStatus) string {
	starting, degraded := false, false
	for _, c := range checks {
		switch {
		case c.Runs == 0:
			starting = true
		case !c.Healthy && c.Critical:
			return StatusUnhealthy
		case !c.Healthy:
			degraded = true
		}
	}
	switch {
	case starting:
		return StatusStarting
	case degraded:
		return StatusDegraded
	}
	return StatusHealthy
}

func (h *Health) entriesLocked() []*entry {
	entries := make([]*entry, 0, len(h.checks))
	for _, e := range h.checks {
		entries = append(entries, e)
	}
	return entries
}

func (h *Health) loop(ctx context.Context, e *entry) {
	t := time.NewTicker(e.check.Interval)
	defer t.Stop()
	for {
		h.runOne(ctx, e)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runOne runs e once and records the result, unless ctx ended meanwhile.
func (h *Health) runOne(ctx context.Context, e *entry) {
	if ctx.Err() != nil {
		return
	}
	h.mu.Lock()
	busy, stuck := e.inflight, e.abandoned
	e.inflight = true // already true when busy
	h.mu.Unlock()
	if busy && !stuck {
		return // a run started elsewhere (Run and RunChecks overlap) will record
	}

	start := h.clock()
	var err error
	if stuck {
		err = fmt.Errorf("previous run still in progress (timeout %s)", e.check.Timeout)
	} else {
		err = h.call(ctx, e)
	}
	end := h.clock()
	if ctx.Err() != nil {
		return
	}
	h.record(e, start, end, err)
}

// call runs e.check.Func in its own goroutine so a check that ignores its
// ctx still cannot hold the caller past the timeout. The goroutine clears
// e.inflight when the function finally returns.
func (h *Health) call(ctx context.Context, e *entry) error {
	cctx, cancel := context.WithTimeout(ctx, e.check.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("check panicked: %v", r)
			}
			h.mu.Lock()
			e.inflight, e.abandoned = false, false
			h.mu.Unlock()
		}()
		done <- e.check.Func(cctx)
	}()

	var err error
	select {
	case err = <-done:
	case <-cctx.Done():
		// A check that honours its ctx returns promptly; give it a moment
		// so its own error (often the more useful one) is kept.
		grace := time.NewTimer(timeoutGrace)
		defer grace.Stop()
		select {
		case err = <-done:
		case <-grace.C:
			err = cctx.Err()
			h.mu.Lock()
			e.abandoned = e.inflight // unless it returned just now
			h.mu.Unlock()
		}
	}
	if err == nil || ctx.Err() != nil || !errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s", e.check.Timeout)
	}
	return fmt.Errorf("timed out after %s: %w", e.check.Timeout, err)
}

func (h *Health) record(e *entry, start, end time.Time, err error) {
	msg := "ok"
	if err != nil {
		msg = truncate(err.Error(), maxMessageBytes)
	}
	h.mu.Lock()
	first, wasHealthy := e.status.Runs == 0, e.status.Healthy
	e.status.Runs++
	e.status.Healthy = err == nil
	e.status.Message = msg
	e.status.LatencyMS = float64(end.Sub(start)) / float64(time.Millisecond)
	e.status.LastRun = end
	h.mu.Unlock()

	switch {
	case err != nil && (first || wasHealthy):
		h.logger.Warn("health check failed", "check", e.check.Name, "critical", e.check.Critical, "error", msg)
	case err == nil && !first && !wasHealthy:
		h.logger.Info("health check recovered", "check", e.check.Name, "critical", e.check.Critical)
	}
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "..."
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Routes registers the health endpoints on mux.
func (h *Health) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /health", h.serveHealth)
	mux.HandleFunc("GET /health/live", serveLive)
	mux.HandleFunc("GET /health/ready", h.serveReady)
	mux.HandleFunc("GET /health/checks", h.serveChecks)
}

func (h *Health) serveHealth(w http.ResponseWriter, _ *http.Request) {
	r := h.Snapshot()
	code := http.StatusOK
	if r.Status == StatusUnhealthy || r.Status == StatusStarting {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

func serveLive(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// readiness is the body of /health/ready.
type readiness struct {
	// Status is "ready" or "not_ready".
	Status string `json:"status"`
	// Failing names the critical checks that have not run or failed.
	Failing []failingCheck `json:"failing,omitempty"`
}

type failingCheck struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

func (h *Health) serveReady(w http.ResponseWriter, _ *http.Request) {
	var failing []failingCheck
	for _, c := range h.Snapshot().Checks {
		if c.Critical && (c.Runs == 0 || !c.Healthy) {
			failing = append(failing, failingCheck{Name: c.Name, Message: c.Message})
		}
	}
	if len(failing) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not_ready", Failing: failing})
		return
	}
	writeJSON(w, http.StatusOK, readiness{Status: "ready"})
}

func (h *Health) serveChecks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.Snapshot().Checks)
}

// writeJSON writes v with code. An encoding failure can only be a broken
// connection here, which there is no one left to tell about.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
