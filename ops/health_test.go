package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus"
	"chorus/ops"
)

// fakeClock advances by step on every reading, so each check run measures a
// latency of exactly step.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

var epoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// probe is a check whose outcome the test sets.
type probe struct {
	mu  sync.Mutex
	err error
}

func (p *probe) set(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func (p *probe) check(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func ok(context.Context) error { return nil }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func get(t *testing.T, h http.Handler, method, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	if method == http.MethodGet && rec.Code != http.StatusMethodNotAllowed {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type = %q, want application/json", path, ct)
		}
	}
	return rec.Code, rec.Body.Bytes()
}

func TestRegisterRejects(t *testing.T) {
	tests := []struct {
		name  string
		check ops.Check
		want  string
	}{
		{"empty name", ops.Check{Name: " ", Func: ok}, "name: must not be empty"},
		{"nil func", ops.Check{Name: "docker"}, "func: must not be nil"},
		{"negative interval", ops.Check{Name: "docker", Func: ok, Interval: -time.Second}, "interval: must not be negative"},
		{"negative timeout", ops.Check{Name: "docker", Func: ok, Timeout: -time.Second}, "timeout: must not be negative"},
		{"duplicate", ops.Check{Name: "temporal", Func: ok}, `"temporal": invalid: name: already registered`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ops.NewHealth(nil, nil)
			if err := h.Register(ops.Check{Name: "temporal", Func: ok}); err != nil {
				t.Fatalf("first register: %v", err)
			}
			err := h.Register(tt.check)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, chorus.ErrInvalid) {
				t.Fatalf("Register = %v, want error containing %q wrapping ErrInvalid", err, tt.want)
			}
		})
	}
}

func TestDefaultTimeoutBoundsRun(t *testing.T) {
	h := ops.NewHealth(nil, nil)
	var left time.Duration
	err := h.Register(ops.Check{Name: "c", Func: func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		left = time.Until(d)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.RunChecks(context.Background())
	if left <= ops.DefaultTimeout-time.Second || left > ops.DefaultTimeout {
		t.Fatalf("check ran with %s left, want about %s", left, ops.DefaultTimeout)
	}
	if got := h.Snapshot().Checks[0]; !got.Healthy || got.Runs != 1 {
		t.Fatalf("check status = %+v, want one healthy run", got)
	}
}

func TestStatusAndEndpoints(t *testing.T) {
	failure := errors.New("connection refused")
	type spec struct {
		name     string
		critical bool
		err      error
		notRun   bool // registered after the checks ran
	}
	tests := []struct {
		name        string
		checks      []spec
		status      string
		healthCode  int
		readyCode   int
		readyFailed []string
	}{
		{"no checks", nil, ops.StatusHealthy, 200, 200, nil},
		{"all pass", []spec{{name: "temporal", critical: true}, {name: "docker"}}, ops.StatusHealthy, 200, 200, nil},
		{"non-critical fails", []spec{{name: "temporal", critical: true}, {name: "docker", err: failure}}, ops.StatusDegraded, 200, 200, nil},
		{"critical fails", []spec{{name: "temporal", critical: true, err: failure}, {name: "docker"}}, ops.StatusUnhealthy, 503, 503, []string{"temporal: connection refused"}},
		{"both fail", []spec{{name: "temporal", critical: true, err: failure}, {name: "docker", err: failure}}, ops.StatusUnhealthy, 503, 503, []string{"temporal: connection refused"}},
		{"critical not run", []spec{{name: "license", critical: true, notRun: true}, {name: "docker"}}, ops.StatusStarting, 503, 503, []string{"license: not run yet"}},
		{"non-critical not run", []spec{{name: "temporal", critical: true}, {name: "dht", notRun: true}}, ops.StatusStarting, 503, 200, nil},
		{"two critical fail", []spec{{name: "temporal", critical: true, err: failure}, {name: "license", critical: true, notRun: true}}, ops.StatusUnhealthy, 503, 503, []string{"license: not run yet", "temporal: connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ops.NewHealth(nil, nil)
			register := func(s spec) {
				p := &probe{err: s.err}
				if err := h.Register(ops.Check{Name: s.name, Critical: s.critical, Func: p.check}); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range tt.checks {
				if !s.notRun {
					register(s)
				}
			}
			h.RunChecks(context.Background())
			for _, s := range tt.checks {
				if s.notRun {
					register(s)
				}
			}
			mux := http.NewServeMux()
			h.Routes(mux)

			code, body := get(t, mux, http.MethodGet, "/health")
			var rep ops.Report
			if err := json.Unmarshal(body, &rep); err != nil {
				t.Fatalf("/health body %s: %v", body, err)
			}
			if code != tt.healthCode || rep.Status != tt.status {
				t.Errorf("/health = %d %q, want %d %q", code, rep.Status, tt.healthCode, tt.status)
			}
			if len(rep.Checks) != len(tt.checks) {
				t.Errorf("/health lists %d checks, want %d", len(rep.Checks), len(tt.checks))
			}

			code, body = get(t, mux, http.MethodGet, "/health/ready")
			var ready struct {
				Status  string `json:"status"`
				Failing []struct{ Name, Message string }
			}
			if err := json.Unmarshal(body, &ready); err != nil {
				t.Fatalf("/health/ready body %s: %v", body, err)
			}
			var failed []string
			for _, f := range ready.Failing {
				failed = append(failed, f.Name+": "+f.Message)
			}
			if code != tt.readyCode || !slices.Equal(failed, tt.readyFailed) {
				t.Errorf("/health/ready = %d %v, want %d %v", code, failed, tt.readyCode, tt.readyFailed)
			}
			wantReady := "ready"
			if tt.readyCode != 200 {
				wantReady = "not_ready"
			}
			if ready.Status != wantReady {
				t.Errorf("/health/ready status = %q, want %q", ready.Status, wantReady)
			}

			code, body = get(t, mux, http.MethodGet, "/health/live")
			if code != 200 || strings.TrimSpace(string(body)) != `{"status":"alive"}` {
				t.Errorf("/health/live = %d %s", code, body)
			}
		})
	}
}

func TestChecksEndpointReportsEachCheck(t *testing.T) {
	clock := &fakeClock{now: epoch, step: 5 * time.Millisecond}
	h := ops.NewHealth(nil, clock.Now)
	docker := &probe{err: errors.New("docker daemon not reachable")}
	for _, c := range []ops.Check{
		{Name: "temporal", Critical: true, Func: ok},
		{Name: "docker", Func: docker.check},
	} {
		if err := h.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	h.RunChecks(context.Background())
	docker.set(nil)
	h.RunChecks(context.Background())
	docker.set(errors.New("docker daemon not reachable"))
	h.RunChecks(context.Background())

	mux := http.NewServeMux()
	h.Routes(mux)
	code, body := get(t, mux, http.MethodGet, "/health/checks")
	if code != http.StatusOK {
		t.Fatalf("/health/checks = %d", code)
	}
	var got []ops.CheckStatus
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if len(got) != 2 || got[0].Name != "docker" || got[1].Name != "temporal" {
		t.Fatalf("checks not sorted by name: %s", body)
	}
	d, tc := got[0], got[1]
	if d.Healthy || d.Critical || d.Message != "docker daemon not reachable" || d.Runs != 3 {
		t.Errorf("docker = %+v", d)
	}
	if !tc.Healthy || !tc.Critical || tc.Message != "ok" || tc.Runs != 3 {
		t.Errorf("temporal = %+v", tc)
	}
	for _, c := range got {
		if c.LatencyMS <= 0 || c.LastRun.Before(epoch) || c.LastRun.After(clock.Now()) {
			t.Errorf("%s latency %v ms, last run %v: not taken from the clock", c.Name, c.LatencyMS, c.LastRun)
		}
	}

	if code, _ := get(t, mux, http.MethodPost, "/health"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /health = %d, want 405", code)
	}
}

func TestLatencyAndLastRunFromClock(t *testing.T) {
	clock := &fakeClock{now: epoch}
	h := ops.NewHealth(nil, clock.Now)
	err := h.Register(ops.Check{Name: "dht", Func: func(context.Context) error {
		clock.mu.Lock()
		clock.now = clock.now.Add(7 * time.Millisecond)
		clock.mu.Unlock()
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.RunChecks(context.Background())
	rep := h.Snapshot()
	c := rep.Checks[0]
	if c.LatencyMS != 7 || !c.LastRun.Equal(epoch.Add(7*time.Millisecond)) || !rep.Time.Equal(c.LastRun) {
		t.Fatalf("latency %v ms, last run %v, report time %v; want 7 ms and %v", c.LatencyMS, c.LastRun, rep.Time, epoch.Add(7*time.Millisecond))
	}
}

func TestSlowAndBrokenChecks(t *testing.T) {
	const timeout = 20 * time.Millisecond
	tests := []struct {
		name string
		fn   ops.CheckFunc
		want string
	}{
		{"honours ctx", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, "timed out after 20ms"},
		{"wraps ctx error", func(ctx context.Context) error {
			<-ctx.Done()
			return errors.Join(errors.New("dial"), ctx.Err())
		}, "timed out after 20ms"},
		{"fails late with own error", func(ctx context.Context) error {
			<-ctx.Done()
			return errors.New("dial tcp: i/o timeout")
		}, "timed out after 20ms: dial tcp: i/o timeout"}, // the check's own error is kept
		{"panics", func(context.Context) error { panic("boom") }, "check panicked: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ops.NewHealth(nil, nil)
			if err := h.Register(ops.Check{Name: "c", Critical: true, Timeout: timeout, Func: tt.fn}); err != nil {
				t.Fatal(err)
			}
			h.RunChecks(context.Background())
			got := h.Snapshot()
			if c := got.Checks[0]; c.Healthy || !strings.HasPrefix(c.Message, tt.want) || got.Status != ops.StatusUnhealthy {
				t.Fatalf("status %q, check %+v; want unhealthy with message %q", got.Status, c, tt.want)
			}
		})
	}
}

func TestCheckIgnoringCtxDoesNotPileUp(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	started := 0
	h := ops.NewHealth(nil, nil)
	err := h.Register(ops.Check{Name: "stuck", Timeout: 10 * time.Millisecond, Func: func(context.Context) error {
		mu.Lock()
		started++
		mu.Unlock()
		<-release
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}

	h.RunChecks(context.Background())
	if c := h.Snapshot().Checks[0]; c.Healthy || c.Message != "timed out after 10ms" {
		t.Fatalf("first run: %+v", c)
	}
	h.RunChecks(context.Background())
	if c := h.Snapshot().Checks[0]; c.Healthy || !strings.Contains(c.Message, "previous run still in progress") {
		t.Fatalf("second run: %+v", c)
	}
	mu.Lock()
	n := started
	mu.Unlock()
	if n != 1 {
		t.Fatalf("check function started %d times while stuck, want 1", n)
	}

	close(release)
	waitFor(t, "the stuck check to recover", func() bool {
		h.RunChecks(context.Background())
		return h.Snapshot().Checks[0].Healthy
	})
}

func TestOverlappingRunsRecordOnce(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := ops.NewHealth(nil, nil)
	err := h.Register(ops.Check{Name: "dht", Func: func(context.Context) error {
		close(entered)
		<-release
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { h.RunChecks(context.Background()); close(done) }()
	<-entered
	h.RunChecks(context.Background()) // overlaps the first run: must neither wait nor fail it
	if c := h.Snapshot().Checks[0]; c.Runs != 0 {
		t.Fatalf("overlapping run was recorded: %+v", c)
	}
	close(release)
	<-done
	if c := h.Snapshot().Checks[0]; c.Runs != 1 || !c.Healthy {
		t.Fatalf("after the first run finished: %+v, want one healthy run", c)
	}
}

func TestRunSchedulesUntilCancelled(t *testing.T) {
	h := ops.NewHealth(nil, nil)
	for _, name := range []string{"fast", "slow"} {
		if err := h.Register(ops.Check{Name: name, Interval: 5 * time.Millisecond, Func: ok}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()

	waitFor(t, "three runs of every check", func() bool {
		for _, c := range h.Snapshot().Checks {
			if c.Runs < 3 {
				return false
			}
		}
		return true
	})
	if err := h.Register(ops.Check{Name: "late", Func: ok}); err == nil {
		t.Error("Register while running succeeded")
	}
	if err := h.Run(ctx); err == nil {
		t.Error("second concurrent Run succeeded")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	before := h.Snapshot()
	after := h.Snapshot()
	for i := range before.Checks {
		if before.Checks[i].Runs != after.Checks[i].Runs {
			t.Fatalf("check %s still running after Run returned", before.Checks[i].Name)
		}
	}
	if err := h.Register(ops.Check{Name: "late", Func: ok}); err != nil {
		t.Errorf("Register after Run returned: %v", err)
	}
}

func TestShutdownDoesNotRecordFailures(t *testing.T) {
	h := ops.NewHealth(nil, nil)
	entered := make(chan struct{})
	err := h.Register(ops.Check{Name: "temporal", Critical: true, Func: func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	<-entered
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := h.Snapshot().Checks[0]; c.Runs != 0 || c.Message != "not run yet" {
		t.Fatalf("run cut short by shutdown was recorded: %+v", c)
	}
}

func TestLongMessageTruncated(t *testing.T) {
	h := ops.NewHealth(nil, nil)
	long := strings.Repeat("é", 1000)
	if err := h.Register(ops.Check{Name: "c", Func: func(context.Context) error { return errors.New(long) }}); err != nil {
		t.Fatal(err)
	}
	h.RunChecks(context.Background())
	msg := h.Snapshot().Checks[0].Message
	if len(msg) > 512 || !strings.HasSuffix(msg, "...") || !strings.HasPrefix(long, strings.TrimSuffix(msg, "...")) {
		t.Fatalf("message of %d bytes not truncated cleanly: %q...", len(msg), msg[:20])
	}
}

func TestLogsOnlyTransitions(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	h := ops.NewHealth(logger, nil)
	p := &probe{err: errors.New("down")}
	if err := h.Register(ops.Check{Name: "docker", Func: p.check}); err != nil {
		t.Fatal(err)
	}
	h.RunChecks(context.Background())
	h.RunChecks(context.Background())
	p.set(nil)
	h.RunChecks(context.Background())
	h.RunChecks(context.Background())

	var msgs []string
	for line := range strings.Lines(buf.String()) {
		var rec struct{ Msg, Check string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msgs = append(msgs, rec.Msg+" "+rec.Check)
	}
	want := []string{"health check failed docker", "health check recovered docker"}
	if !slices.Equal(msgs, want) {
		t.Fatalf("logged %q, want %q", msgs, want)
	}
}
