package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus"
	"chorus/ops"
)

// hook records OnCritical calls.
type hook struct {
	mu    sync.Mutex
	calls []ops.CriticalFailure
}

func (h *hook) fire(f ops.CriticalFailure) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, f)
}

func (h *hook) got() []ops.CriticalFailure {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ops.CriticalFailure(nil), h.calls...)
}

func newDrainingHealth(t *testing.T, threshold int, checks ...ops.Check) (*ops.Health, *hook) {
	t.Helper()
	hk := &hook{}
	cfg := ops.DefaultHealthConfig()
	cfg.FailureThreshold = threshold
	cfg.OnCritical = hk.fire
	h, err := ops.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if err := h.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	return h, hk
}

func TestHealthConfigValidate(t *testing.T) {
	cfg := ops.DefaultHealthConfig()
	if err := cfg.Validate(); err != nil || cfg.FailureThreshold != ops.DefaultFailureThreshold {
		t.Fatalf("defaults: %v, threshold %d", err, cfg.FailureThreshold)
	}
	cfg.FailureThreshold = 0
	if _, err := ops.New(cfg); err == nil || !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), "failure threshold") {
		t.Fatalf("New with threshold 0 = %v, want an error naming the field", err)
	}
	h := ops.NewHealth(nil, nil)
	if err := h.Register(ops.Check{Name: "c", Func: ok, FailureThreshold: -1}); err == nil || !strings.Contains(err.Error(), "failure threshold") {
		t.Fatalf("Register with threshold -1 = %v", err)
	}
}

// TestCriticalFailureDrainsAfterThreshold: one or two failures make the
// worker unhealthy and not ready, but only the third in a row drains it,
// exactly once, naming the check; a blip in between resets the count.
func TestCriticalFailureDrainsAfterThreshold(t *testing.T) {
	temporal := &probe{err: errors.New("connection refused")}
	h, hk := newDrainingHealth(t, 3,
		ops.Check{Name: "temporal", Critical: true, Func: temporal.check},
		ops.Check{Name: "docker", Func: ok})
	mux := http.NewServeMux()
	h.Routes(mux)

	h.RunChecks(context.Background())
	h.RunChecks(context.Background())
	if n := len(hk.got()); n != 0 {
		t.Fatalf("drained after 2 failures: %v", hk.got())
	}
	if r := h.Snapshot(); r.Status != ops.StatusUnhealthy || r.Draining || r.Checks[1].ConsecutiveFailures != 2 {
		t.Fatalf("after 2 failures: %+v", r)
	}
	if code, _ := get(t, mux, http.MethodGet, "/health/ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("/health/ready = %d while a critical check fails", code)
	}
	// A healthy run resets the count.
	temporal.set(nil)
	h.RunChecks(context.Background())
	temporal.set(errors.New("connection refused"))
	h.RunChecks(context.Background())
	h.RunChecks(context.Background())
	if n := len(hk.got()); n != 0 {
		t.Fatalf("drained although the failures were not consecutive: %v", hk.got())
	}
	h.RunChecks(context.Background())
	h.RunChecks(context.Background())
	calls := hk.got()
	if len(calls) != 1 {
		t.Fatalf("OnCritical called %d times, want once", len(calls))
	}
	f := calls[0]
	if f.Check != "temporal" || f.Failures != 3 || f.Message != "connection refused" {
		t.Fatalf("failure = %+v", f)
	}
	if !strings.Contains(f.Error(), `"temporal"`) || !strings.Contains(f.Error(), "connection refused") {
		t.Fatalf("exit message %q does not name the check and its error", f.Error())
	}
	r := h.Snapshot()
	if !r.Draining || r.DrainReason != f.Error() {
		t.Fatalf("report = %+v, want draining with the failure", r)
	}
	code, body := get(t, mux, http.MethodGet, "/health/ready")
	var ready struct{ Status, Reason string }
	if err := json.Unmarshal(body, &ready); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable || ready.Status != "draining" || !strings.Contains(ready.Reason, "temporal") {
		t.Fatalf("/health/ready = %d %s", code, body)
	}
	// Draining sticks even when the check recovers: the worker is on its
	// way out.
	temporal.set(nil)
	h.RunChecks(context.Background())
	if !h.Snapshot().Draining || h.Ready() {
		t.Fatal("recovery undid the drain")
	}
	// Liveness is not readiness.
	if code, _ := get(t, mux, http.MethodGet, "/health/live"); code != http.StatusOK {
		t.Fatalf("/health/live = %d while draining", code)
	}
}

func TestNonCriticalFailureNeverDrains(t *testing.T) {
	docker := &probe{err: errors.New("daemon unreachable")}
	h, hk := newDrainingHealth(t, 1,
		ops.Check{Name: "temporal", Critical: true, Func: ok},
		ops.Check{Name: "docker", Func: docker.check})
	for range 5 {
		h.RunChecks(context.Background())
	}
	r := h.Snapshot()
	if len(hk.got()) != 0 || r.Draining || !h.Ready() {
		t.Fatalf("a non-critical failure drained: %+v", r)
	}
	if r.Status != ops.StatusDegraded || r.Reason != "docker: daemon unreachable" {
		t.Fatalf("status %q reason %q, want degraded naming docker", r.Status, r.Reason)
	}
}

func TestPerCheckThreshold(t *testing.T) {
	license := &probe{err: errors.New("expired")}
	h, hk := newDrainingHealth(t, 5, ops.Check{Name: "license", Critical: true, FailureThreshold: 1, Func: license.check})
	h.RunChecks(context.Background())
	if calls := hk.got(); len(calls) != 1 || calls[0].Check != "license" || calls[0].Failures != 1 {
		t.Fatalf("calls = %+v, want one drain after the first failure", calls)
	}
}

func TestDrainOnRequest(t *testing.T) {
	h, hk := newDrainingHealth(t, 3, ops.Check{Name: "temporal", Critical: true, Func: ok})
	h.RunChecks(context.Background())
	if !h.Ready() {
		t.Fatal("not ready with every check passing")
	}
	h.Drain("stop requested")
	h.Drain("second reason is ignored")
	if d, why := h.Draining(); !d || why != "stop requested" || h.Ready() {
		t.Fatalf("Draining = %v %q", d, why)
	}
	if len(hk.got()) != 0 {
		t.Fatal("Drain called OnCritical")
	}
}

func TestSkippedCheckIsHealthy(t *testing.T) {
	h := ops.NewHealth(nil, nil)
	if err := h.Register(ops.Check{Name: "dht", Func: func(context.Context) error { return ops.Skip("no dht peers yet") }}); err != nil {
		t.Fatal(err)
	}
	h.RunChecks(context.Background())
	r := h.Snapshot()
	if c := r.Checks[0]; !c.Healthy || c.Status != ops.StatusHealthy || c.Message != "skipped: no dht peers yet" || r.Status != ops.StatusHealthy {
		t.Fatalf("report %+v", r)
	}
}

func TestCheckStatusFields(t *testing.T) {
	h := ops.NewHealth(nil, nil)
	p := &probe{err: errors.New("down")}
	if err := h.Register(ops.Check{Name: "c", Interval: 3 * time.Second, Timeout: time.Second, Func: p.check}); err != nil {
		t.Fatal(err)
	}
	if c := h.Snapshot().Checks[0]; c.Status != ops.StatusStarting || c.IntervalMS != 3000 || c.TimeoutMS != 1000 {
		t.Fatalf("before the first run: %+v", c)
	}
	h.RunChecks(context.Background())
	if c := h.Snapshot().Checks[0]; c.Status != ops.StatusUnhealthy || c.ConsecutiveFailures != 1 {
		t.Fatalf("after a failure: %+v", c)
	}
	if r := h.Snapshot(); r.Reason != "c: down" {
		t.Fatalf("reason %q", r.Reason)
	}
}

func TestStartingReasonListsUnrunChecks(t *testing.T) {
	h := ops.NewHealth(nil, nil)
	for _, n := range []string{"b", "a"} {
		if err := h.Register(ops.Check{Name: n, Func: ok}); err != nil {
			t.Fatal(err)
		}
	}
	if r := h.Snapshot(); r.Status != ops.StatusStarting || r.Reason != "a: not run yet; b: not run yet" {
		t.Fatalf("%+v", r)
	}
}

// TestLivenessDetectsAWedgedScheduler: with the clock far past every
// check's schedule while Run is active, /health/live reports the stalled
// checks; right after the runs it is alive.
func TestLivenessDetectsAWedgedScheduler(t *testing.T) {
	clock := &fakeClock{now: epoch}
	h := ops.NewHealth(nil, clock.Now)
	ran := make(chan struct{}, 16)
	if err := h.Register(ops.Check{Name: "temporal", Interval: time.Hour, Timeout: time.Second, Func: func(context.Context) error {
		ran <- struct{}{}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	if alive, _ := h.Live(); !alive {
		t.Fatal("not alive before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-ran
	waitFor(t, "the first run to be recorded", func() bool { return h.Snapshot().Checks[0].Runs == 1 })
	if code, _ := get(t, mux, http.MethodGet, "/health/live"); code != http.StatusOK {
		t.Fatalf("/health/live = %d right after a run", code)
	}

	clock.mu.Lock()
	clock.now = clock.now.Add(3 * time.Hour) // the hourly check should have run twice by now
	clock.mu.Unlock()
	code, body := get(t, mux, http.MethodGet, "/health/live")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"wedged"`) || !strings.Contains(string(body), "temporal") {
		t.Fatalf("/health/live = %d %s, want 503 naming the stalled check", code, body)
	}
}
