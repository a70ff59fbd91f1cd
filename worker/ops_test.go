package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/devserver"
	"chorus/ops"
	"chorus/ops/opstest"
	"chorus/provider/board"
)

// minChorusMetrics is how many chorus_ metric families a worker serves at
// least: the SPEC's 80.
const minChorusMetrics = 80

// ownCategories are the SPEC's 12 categories, with the fewest families
// each must have.
var ownCategories = map[string]int{
	ops.CategoryP2P: 10, ops.CategoryDHT: 6, ops.CategoryPubSub: 12, ops.CategoryTasks: 12, ops.CategorySandbox: 12,
	ops.CategoryAI: 8, ops.CategoryHealth: 8, ops.CategorySHHH: 4, ops.CategorySystem: 10,
	ops.CategoryElection: 8, ops.CategoryLicensing: 6, ops.CategoryBackbeat: 8,
}

// syncBuffer is a bytes.Buffer safe for the writer (run) and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// running is a worker run() in this process.
type running struct {
	opsURL string
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
	cancel context.CancelFunc
}

var readyLine = regexp.MustCompile(`ops (http://\S+),`)

// startWorker calls run with args (plus a free ops port) and waits for its
// ready line. A worker that fails to start because Docker is missing skips
// the test, except on CI.
func startWorker(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1), cancel: cancel}
	args = append(args, "--ops-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--log-format", "json", "--mdns=false")
	go func() { w.done <- run(ctx, args, noenv, w.stdout, w.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(time.Minute):
			t.Error("worker did not stop within a minute")
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", w.stderr.String())
		}
	})
	deadline := time.After(3 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := readyLine.FindStringSubmatch(w.stdout.String()); m != nil {
			w.opsURL = m[1]
			return w
		}
		select {
		case err := <-w.done:
			if err != nil && strings.Contains(err.Error(), "docker") && os.Getenv("CI") != "true" {
				t.Skipf("docker unavailable: %v", err)
			}
			t.Fatalf("worker exited before it was ready: %v\n%s", err, w.stderr.String())
		case <-deadline:
			t.Fatalf("worker not ready after 3 minutes:\n%s", w.stderr.String())
		case <-tick.C:
		}
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}

// TestDevWorkerServesMetricsAndHealth runs a whole worker --dev (embedded
// Temporal server, board, gossip node, Docker sandbox, one configured
// model), scrapes its /metrics over HTTP like Prometheus would, has
// promtool check the scrape and counts the chorus_ families by category.
func TestDevWorkerServesMetricsAndHealth(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	// A model the worker never calls (no task runs), so its series exist.
	if err := os.WriteFile(cfg, []byte("agent:\n  models:\n    - {name: llama3, provider: ollama, endpoint: http://127.0.0.1:1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, "--dev", "--data-dir", filepath.Join(dir, "data"), "--temporal-port", fmt.Sprint(freePort(t)), "--ui-port", "-1",
		"--agent-id", "metrics-test", "--config", cfg)

	// Health: every check runs once at start; wait for the first round.
	var checks []ops.CheckStatus
	deadline := time.After(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if code := getJSON(t, w.opsURL+"/health/checks", &checks); code != http.StatusOK {
			t.Fatalf("/health/checks = %d", code)
		}
		if !slices.ContainsFunc(checks, func(c ops.CheckStatus) bool { return c.Runs == 0 }) {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("checks still not run after a minute: %+v", checks)
		case <-tick.C:
		}
	}
	names := map[string]ops.CheckStatus{}
	for _, c := range checks {
		names[c.Name] = c
	}
	for _, want := range []struct {
		name     string
		critical bool
	}{{"temporal", true}, {"worker", true}, {"docker", false}, {"provider", false}, {"pubsub", false}, {"dht", false}} {
		c, ok := names[want.name]
		if !ok || c.Critical != want.critical || c.Runs == 0 || c.LastRun.IsZero() || c.Status == ops.StatusStarting {
			t.Errorf("check %s = %+v (present %v), want critical=%v and run", want.name, c, ok, want.critical)
		}
	}
	for _, name := range []string{"temporal", "worker", "docker", "provider", "pubsub"} {
		if c := names[name]; !c.Healthy {
			t.Errorf("check %s unhealthy: %s", name, c.Message)
		}
	}
	// A lone node has nobody to put a DHT record on.
	if c := names["dht"]; !c.Healthy || !strings.HasPrefix(c.Message, "skipped:") {
		t.Errorf("dht check of a lone node = %+v, want skipped", c)
	}
	var ready struct{ Status string }
	if code := getJSON(t, w.opsURL+"/health/ready", &ready); code != http.StatusOK || ready.Status != "ready" {
		t.Errorf("/health/ready = %d %q", code, ready.Status)
	}
	var live struct{ Status string }
	if code := getJSON(t, w.opsURL+"/health/live", &live); code != http.StatusOK || live.Status != "alive" {
		t.Errorf("/health/live = %d %q", code, live.Status)
	}
	// Healthy once the lone node has elected itself (until then the
	// election check degrades it: no admin, no intake).
	var rep ops.Report
	for deadline := time.Now().Add(30 * time.Second); ; {
		rep = ops.Report{}
		code := getJSON(t, w.opsURL+"/health", &rep)
		if code == http.StatusOK && rep.Status == ops.StatusHealthy && !rep.Draining {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health = %d %+v", code, rep)
		}
		<-time.After(100 * time.Millisecond)
	}

	// Metrics: a live scrape, checked by promtool.
	body := opstest.Scrape(t, w.opsURL+"/metrics")
	if _, err := exec.LookPath("promtool"); err == nil || os.Getenv("CI") == "true" {
		opstest.CheckMetrics(t, body)
	} else {
		t.Log("promtool not installed: the scrape is not linted here (CI installs it)")
	}
	fams := opstest.Parse(t, body)
	byCat := opstest.ByCategory(fams)
	total := 0
	for cat, list := range byCat {
		if !slices.Contains(ops.Categories(), cat) {
			t.Errorf("metrics of unknown category %q: %v", cat, list)
		}
		total += len(list)
	}
	t.Logf("%d chorus_ metric families: %s", total, opstest.Summary(byCat))
	if total < minChorusMetrics {
		t.Errorf("%d chorus_ metric families, want at least %d", total, minChorusMetrics)
	}
	for cat, least := range ownCategories {
		if n := len(byCat[cat]); n < least {
			t.Errorf("category %s has %d metric families, want at least %d: %v", cat, n, least, byCat[cat])
		}
	}
	// The Temporal SDK reports on the same registry.
	for _, name := range []string{"temporal_request_total", "temporal_request_latency_seconds", "temporal_num_pollers", "temporal_worker_task_slots_available"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("scrape lacks the SDK's %s", name)
		}
	}
	// What the rest of the worker did by now shows up too.
	for _, name := range []string{"chorus_sandbox_daemon_pings_total", "chorus_pubsub_probes_total", "chorus_shhh_scans_total"} {
		var sum float64
		for _, m := range fams[name].GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		if sum == 0 {
			t.Errorf("%s is 0 after start-up", name)
		}
	}

	w.cancel()
	if err := <-w.done; err != nil {
		t.Fatalf("run after cancel = %v, want nil", err)
	}
	w.done <- nil // for the cleanup
}

// TestDrainWiring: the worker's Health drains after --drain-failures
// failed runs of a critical check, and waitOrDrain turns that into the
// exit error naming the check, with /health/ready answering 503 draining.
func TestDrainWiring(t *testing.T) {
	h, drained, err := newHealth(options{drainFailures: 2}, slogDiscard(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Register(ops.Check{Name: "temporal", Critical: true, Func: func(context.Context) error { return errors.New("connection refused") }}); err != nil {
		t.Fatal(err)
	}
	h.RunChecks(context.Background())
	select {
	case f := <-drained:
		t.Fatalf("drained after one failure: %v", f)
	default:
	}
	h.RunChecks(context.Background())
	err = waitOrDrain(context.Background(), h, drained, slogDiscard(), time.Second)
	if err == nil || !strings.Contains(err.Error(), `"temporal"`) || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "drained") {
		t.Fatalf("waitOrDrain = %v", err)
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var ready struct{ Status string }
	if code := getJSON(t, srv.URL+"/health/ready", &ready); code != http.StatusServiceUnavailable || ready.Status != "draining" {
		t.Fatalf("/health/ready = %d %q", code, ready.Status)
	}
	if _, _, err := newHealth(options{drainFailures: 0}, slogDiscard(), prometheus.NewRegistry()); err == nil || !strings.Contains(err.Error(), "--drain-failures") {
		t.Fatalf("newHealth with 0 failures = %v", err)
	}

	// A stop request (ctx done) is a clean exit that still turns readiness off.
	h2, drained2, err := newHealth(options{drainFailures: 3}, slogDiscard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := waitOrDrain(ctx, h2, drained2, slogDiscard(), time.Second); err != nil || h2.Ready() {
		t.Fatalf("stop: %v, ready %v", err, h2.Ready())
	}
}

// TestProviderCheckOverHTTP: a worker joining with --board checks the
// board over HTTP; the provider check fails when the board goes away.
func TestProviderCheckOverHTTP(t *testing.T) {
	b, err := board.Open(filepath.Join(t.TempDir(), "board.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := httptest.NewServer(b.Handler())
	h := ops.NewHealth(nil, nil)
	if err := registerProviderCheck(h, board.NewClient(srv.URL, srv.Client())); err != nil {
		t.Fatal(err)
	}
	h.RunChecks(context.Background())
	if c := h.Snapshot().Checks[0]; !c.Healthy || c.Critical {
		t.Fatalf("provider check = %+v", c)
	}
	srv.Close()
	h.RunChecks(context.Background())
	if r := h.Snapshot(); r.Status != ops.StatusDegraded || !strings.Contains(r.Reason, "provider") {
		t.Fatalf("after the board went away: %+v", r)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestWorkerDrainsWhenTemporalIsGone joins a worker to a Temporal server
// (run here) and a board (over HTTP), then stops the server: the critical
// temporal check fails (--drain-failures 1), readiness turns to draining,
// the Temporal workers stop and run returns an error naming the check,
// which main turns into exit status 1.
func TestWorkerDrainsWhenTemporalIsGone(t *testing.T) {
	dcfg := devserver.DefaultConfig()
	dcfg.DataDir = t.TempDir()
	dcfg.FrontendPort = freePort(t)
	dcfg.UIPort = devserver.UIDisabled
	dcfg.Logger = slogDiscard()
	srv, err := devserver.Start(context.Background(), dcfg)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Stop()
		}
	})
	b, err := board.Open(filepath.Join(t.TempDir(), "board.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	boardSrv := httptest.NewServer(b.Handler())
	defer boardSrv.Close()

	// A joining worker needs a license: issued by a dev worker's authority.
	lic := startDevLicense(t)
	w := startWorker(t, "--temporal", srv.FrontendAddr(), "--board", boardSrv.URL, "--data-dir", t.TempDir(),
		"--agent-id", "drain-test", "--drain-failures", "1", "--drain-timeout", "2s", "--dht", "off",
		"--license-server", lic.url+licensePath, "--license", lic.issue(t, 1, "dev"))
	var ready struct{ Status string }
	if code := getJSON(t, w.opsURL+"/health/ready", &ready); code != http.StatusOK {
		t.Fatalf("/health/ready before the server stops = %d %q", code, ready.Status)
	}

	stopped = true
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// The temporal check runs every 10 s; its next run fails and drains.
	var exit error
	select {
	case exit = <-w.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("worker still running 90 s after Temporal stopped:\n%s", w.stderr.String())
	}
	w.done <- exit // for the cleanup
	if exit == nil || !strings.Contains(exit.Error(), `critical health check "temporal"`) || !strings.Contains(exit.Error(), "drained") {
		t.Fatalf("run = %v, want the drain naming the temporal check", exit)
	}
	logs := w.stderr.String()
	if !strings.Contains(logs, `"msg":"draining: a critical health check keeps failing`) {
		t.Errorf("no drain log line:\n%s", logs)
	}
}
