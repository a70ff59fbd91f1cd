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

	"github.com/prometheus/client_golang/prometheus"

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
	// DefaultFailureThreshold is how many consecutive failed runs of a
	// critical check drain the worker: with the Temporal check's 10 s
	// interval that is 30 s of a lost dependency, long enough that one
	// slow round trip or a server restart does not kill a worker, short
	// enough that a dead dependency stops it well before its tasks'
	// heartbeat timeouts pile up.
	DefaultFailureThreshold = 3
)

// Overall statuses reported in Report.Status.
const (
	StatusHealthy   = "healthy"
	StatusDegraded  = "degraded"
	StatusUnhealthy = "unhealthy"
	StatusStarting  = "starting"
)

// ErrSkipped is wrapped by the error of Skip. A run that returns it counts
// as healthy; its message says why nothing was probed.
var ErrSkipped = errors.New("skipped")

// Skip returns the error a check returns when there is nothing to probe
// yet (a DHT without peers): the check counts as healthy and its message
// reads "skipped: <reason>".
func Skip(reason string) error { return fmt.Errorf("%w: %s", ErrSkipped, reason) }

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
	// FailureThreshold is how many consecutive failed runs of a critical
	// check start the drain; zero means HealthConfig.FailureThreshold.
	// Ignored for non-critical checks.
	FailureThreshold int
	// Func does the probing.
	Func CheckFunc
}

// Report is the overall health as served on /health.
type Report struct {
	// Status is healthy, degraded, unhealthy or starting.
	Status string `json:"status"`
	// Reason names the checks behind a status other than healthy, each
	// with its message: "docker: daemon unreachable; dht: ...".
	Reason string `json:"reason,omitempty"`
	// Draining is set once a critical check has failed FailureThreshold
	// runs in a row (or Drain was called): the worker stops taking work.
	Draining bool `json:"draining"`
	// DrainReason says why the worker drains.
	DrainReason string `json:"drain_reason,omitempty"`
	// Checks are sorted by name.
	Checks []CheckStatus `json:"checks"`
	// Time is when the report was taken.
	Time time.Time `json:"time"`
}

// CheckStatus is the latest result of one check.
type CheckStatus struct {
	Name     string `json:"name"`
	Critical bool   `json:"critical"`
	// Status is healthy or unhealthy (the latest run), or starting before
	// the first run.
	Status string `json:"status"`
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
	// ConsecutiveFailures counts the failed runs since the last healthy
	// one.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// IntervalMS and TimeoutMS are the check's schedule.
	IntervalMS int64 `json:"interval_ms"`
	TimeoutMS  int64 `json:"timeout_ms"`
}

// CriticalFailure is what OnCritical receives: the critical check that
// failed FailureThreshold runs in a row. As an error it is the worker's
// exit reason.
type CriticalFailure struct {
	Check    string
	Message  string
	Failures int
}

func (f CriticalFailure) Error() string {
	return fmt.Sprintf("critical health check %q failed %d runs in a row: %s", f.Check, f.Failures, f.Message)
}

// HealthConfig configures a Health. Start from DefaultHealthConfig.
type HealthConfig struct {
	// Logger receives check failures and recoveries; nil discards them.
	Logger *slog.Logger
	// Clock stamps results and measures latency; nil means time.Now.
	Clock func() time.Time
	// FailureThreshold is the default number of consecutive failed runs
	// of a critical check that starts the drain (Check.FailureThreshold
	// overrides it per check). One failure already makes /health
	// unhealthy and /health/ready 503; only a run of them drains.
	FailureThreshold int
	// OnCritical, when set, is called once, from the check's goroutine,
	// when the drain starts; it must not block. The worker stops polling
	// and exits with the failure.
	OnCritical func(CriticalFailure)
	// Metrics receives the chorus_health_* metrics; nil means none.
	Metrics prometheus.Registerer
}

// DefaultHealthConfig returns the defaults: DefaultFailureThreshold, no
// logger, time.Now, no hook, no metrics.
func DefaultHealthConfig() HealthConfig {
	return HealthConfig{FailureThreshold: DefaultFailureThreshold}
}

// Validate checks FailureThreshold.
func (c HealthConfig) Validate() error {
	if c.FailureThreshold < 1 {
		return fmt.Errorf("%w: health: failure threshold: must be at least 1, got %d", chorus.ErrInvalid, c.FailureThreshold)
	}
	return nil
}

const notRunYet = "not run yet"

// timeoutGrace is how long a timed-out check may take to return its own
// error before the run is recorded as a bare timeout.
const timeoutGrace = 100 * time.Millisecond

// Health runs checks and reports their results. Build it with NewHealth.
type Health struct {
	logger     *slog.Logger
	clock      func() time.Time
	threshold  int
	onCritical func(CriticalFailure)
	metrics    *healthMetrics // nil without HealthConfig.Metrics

	mu      sync.Mutex
	checks  map[string]*entry
	running bool
	// runSince is when the active Run started.
	runSince time.Time
	// drain is the drain reason; empty while not draining.
	drain string
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
	cfg := DefaultHealthConfig()
	cfg.Logger, cfg.Clock = logger, clock
	h, _ := New(cfg) // cannot fail: the defaults validate and no registry is involved
	return h
}

// New returns an empty Health configured by cfg. It fails when cfg does not
// validate or its metrics cannot be registered.
func New(cfg HealthConfig) (*Health, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Health{logger: cfg.Logger, clock: cfg.Clock, threshold: cfg.FailureThreshold, onCritical: cfg.OnCritical,
		checks: make(map[string]*entry)}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.clock == nil {
		h.clock = time.Now
	}
	if cfg.Metrics != nil {
		m, err := newHealthMetrics(cfg.Metrics, h)
		if err != nil {
			return nil, err
		}
		h.metrics = m
	}
	return h, nil
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
	case c.FailureThreshold < 0:
		return fmt.Errorf("register check %q: %w: failure threshold: must not be negative, got %d", c.Name, chorus.ErrInvalid, c.FailureThreshold)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = h.threshold
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
		check: c,
		status: CheckStatus{Name: c.Name, Critical: c.Critical, Status: StatusStarting, Message: notRunYet,
			IntervalMS: c.Interval.Milliseconds(), TimeoutMS: c.Timeout.Milliseconds()},
	}
	h.metrics.registered(c.Name)
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
	h.runSince = h.clock()
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
	drain := h.drain
	h.mu.Unlock()
	slices.SortFunc(checks, func(a, b CheckStatus) int { return strings.Compare(a.Name, b.Name) })
	status := overall(checks)
	return Report{Status: status, Reason: reason(status, checks), Draining: drain != "", DrainReason: drain, Checks: checks, Time: h.clock()}
}

// reason names the checks behind a status: the failing ones (critical
// first) for unhealthy and degraded, the ones not run yet for starting.
func reason(status string, checks []CheckStatus) string {
	var parts []string
	switch status {
	case StatusUnhealthy, StatusDegraded:
		for _, critical := range []bool{true, false} {
			for _, c := range checks {
				if c.Runs > 0 && !c.Healthy && c.Critical == critical {
					parts = append(parts, c.Name+": "+c.Message)
				}
			}
		}
	case StatusStarting:
		for _, c := range checks {
			if c.Runs == 0 {
				parts = append(parts, c.Name+": "+notRunYet)
			}
		}
	}
	return strings.Join(parts, "; ")
}

// Drain marks the worker as draining, for reason, unless it already is:
// /health/ready answers 503 from now on. A critical check failing
// FailureThreshold runs in a row calls it; so may the worker when it is
// told to stop.
func (h *Health) Drain(reason string) {
	h.mu.Lock()
	first := h.drain == ""
	if first {
		h.drain = reason
	}
	h.mu.Unlock()
	if first {
		h.metrics.drained()
	}
}

// Draining reports whether the worker drains, and why.
func (h *Health) Draining() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.drain != "", h.drain
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
	healthy := err == nil || errors.Is(err, ErrSkipped)
	latency := end.Sub(start)
	h.mu.Lock()
	first, wasHealthy := e.status.Runs == 0, e.status.Healthy
	e.status.Runs++
	e.status.Healthy = healthy
	if healthy {
		e.status.Status = StatusHealthy
		e.status.ConsecutiveFailures = 0
	} else {
		e.status.Status = StatusUnhealthy
		e.status.ConsecutiveFailures++
	}
	e.status.Message = msg
	e.status.LatencyMS = float64(latency) / float64(time.Millisecond)
	e.status.LastRun = end
	failures := e.status.ConsecutiveFailures
	var fire *CriticalFailure
	if !healthy && e.check.Critical && failures >= e.check.FailureThreshold && h.drain == "" {
		fire = &CriticalFailure{Check: e.check.Name, Message: msg, Failures: failures}
		h.drain = fire.Error()
	}
	h.mu.Unlock()
	h.metrics.observe(e.check.Name, healthy, latency, first || healthy != wasHealthy)

	switch {
	case !healthy && (first || wasHealthy):
		h.logger.Warn("health check failed", "check", e.check.Name, "critical", e.check.Critical, "error", msg)
	case healthy && !first && !wasHealthy:
		h.logger.Info("health check recovered", "check", e.check.Name, "critical", e.check.Critical)
	}
	if fire != nil {
		h.metrics.drained()
		h.logger.Error("critical health check failing; draining", "check", fire.Check, "failures", fire.Failures, "error", fire.Message)
		if h.onCritical != nil {
			h.onCritical(*fire)
		}
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
	mux.HandleFunc("GET /health/live", h.serveLive)
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

// liveness is the body of /health/live.
type liveness struct {
	// Status is "alive" or "wedged".
	Status string `json:"status"`
	// Stale names the checks whose schedule has stalled.
	Stale []string `json:"stale,omitempty"`
}

// Live reports whether the process is alive in the Kubernetes sense: it
// serves HTTP and its check scheduler is not wedged. Failing dependencies
// never make it false (that is readiness). While Run is active, a check
// whose latest run (or, before its first, Run's start) is older than twice
// its interval plus its timeout has stalled; the names of such checks are
// returned. A check that hangs is not a stall: its runs are recorded as
// timed out.
func (h *Health) Live() (alive bool, stale []string) {
	now := h.clock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		return true, nil
	}
	for _, e := range h.checks {
		ref := h.runSince
		if e.status.LastRun.After(ref) {
			ref = e.status.LastRun
		}
		if now.Sub(ref) > 2*e.check.Interval+e.check.Timeout+timeoutGrace {
			stale = append(stale, e.check.Name)
		}
	}
	slices.Sort(stale)
	return len(stale) == 0, stale
}

func (h *Health) serveLive(w http.ResponseWriter, _ *http.Request) {
	if alive, stale := h.Live(); !alive {
		writeJSON(w, http.StatusServiceUnavailable, liveness{Status: "wedged", Stale: stale})
		return
	}
	writeJSON(w, http.StatusOK, liveness{Status: "alive"})
}

// readiness is the body of /health/ready.
type readiness struct {
	// Status is "ready", "not_ready" or "draining".
	Status string `json:"status"`
	// Reason is the drain reason while draining.
	Reason string `json:"reason,omitempty"`
	// Failing names the critical checks that have not run or failed.
	Failing []failingCheck `json:"failing,omitempty"`
}

type failingCheck struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// Ready reports readiness: every critical check has run and passed its
// latest run, and the worker is not draining.
func (h *Health) Ready() bool {
	r := h.Snapshot()
	return !r.Draining && len(failingCritical(r.Checks)) == 0
}

func failingCritical(checks []CheckStatus) []failingCheck {
	var failing []failingCheck
	for _, c := range checks {
		if c.Critical && (c.Runs == 0 || !c.Healthy) {
			failing = append(failing, failingCheck{Name: c.Name, Message: c.Message})
		}
	}
	return failing
}

func (h *Health) serveReady(w http.ResponseWriter, _ *http.Request) {
	r := h.Snapshot()
	failing := failingCritical(r.Checks)
	switch {
	case r.Draining:
		writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "draining", Reason: r.DrainReason, Failing: failing})
	case len(failing) > 0:
		writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not_ready", Failing: failing})
	default:
		writeJSON(w, http.StatusOK, readiness{Status: "ready"})
	}
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
