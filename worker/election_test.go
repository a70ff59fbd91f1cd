package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"chorus"
	"chorus/devserver"
	"chorus/election"
	"chorus/gossip"
	"chorus/intake"
	"chorus/ops"
	"chorus/provider/board"
)

// testWorker is the election part of one worker: its mesh, elector, ops
// mux and (for the first) the board it serves.
type testWorker struct {
	mesh  *mesh
	el    *elector
	fence *election.Fence
	mux   *http.ServeMux
	ops   *httptest.Server
	stop  func()
}

func startTestWorker(t *testing.T, ctx context.Context, tc client.Client, expertise int, bootstrap string, lister func(*election.Fence) func(uint64) intake.Lister, serve http.Handler) *testWorker {
	t.Helper()
	dir := t.TempDir()
	o := options{mdns: false, dhtMode: "off", p2pListen: "/ip4/127.0.0.1/tcp/0", availabilityInterval: time.Second, bootstrap: bootstrap}
	log := slog.New(slog.DiscardHandler)
	running := &countingRunner{}
	m, err := startMesh(ctx, o, dir, nil, running, "", func(b []byte) []byte { return b }, nopAuditor{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := election.FastConfig()
	cfg.Stability = time.Second
	w := &testWorker{mesh: m, fence: &election.Fence{}, mux: http.NewServeMux()}
	src := scoreSource{agent: true, expertise: expertise, maxTasks: 1, running: running}
	w.el, err = newElector(cfg, m, dir, src, w.fence, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	health := ops.NewHealth(log, nil)
	if err := w.el.register(health, w.mux); err != nil {
		t.Fatal(err)
	}
	if serve != nil {
		w.mux.Handle("/api/", w.fence.Guard(serve))
	}
	w.ops = httptest.NewServer(w.mux)
	w.el.temporal, w.el.lister, w.el.interval = tc, lister(w.fence), 100*time.Millisecond
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.el.Run(rctx) }()
	stopped := false
	w.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("elector Run: %v", err)
		}
		w.ops.Close()
		m.Close()
	}
	t.Cleanup(w.stop)
	return w
}

type nopAuditor struct{}

func (nopAuditor) Record(context.Context, string, any) error { return nil }

func (w *testWorker) status() election.Status { return w.el.driver.Status() }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		<-time.After(20 * time.Millisecond) // polling a condition, with a deadline
	}
}

func memoTerm(t *testing.T, ctx context.Context, c client.Client, key string) (uint64, bool) {
	t.Helper()
	desc, err := c.DescribeWorkflowExecution(ctx, key, "")
	if err != nil {
		return 0, false
	}
	f, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[intake.MemoAdminTerm]
	if !ok {
		t.Fatalf("workflow %s has no %s memo", key, intake.MemoAdminTerm)
	}
	n, err := strconv.ParseUint(string(f.GetData()), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n, true
}

// TestIntakeRunsOnlyOnTheAdmin: a lone worker with the board elects itself
// (no admin at start-up) and its intake starts the board's tasks with its
// term in the memo; a second worker, better scored, takes over through a
// manual election from the ops API; the first stops its intake, the second
// starts tasks under the new term through the first's board API, and a
// call with the old term is refused there.
func TestIntakeRunsOnlyOnTheAdmin(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dcfg := devserver.DefaultConfig()
	dcfg.DataDir = t.TempDir()
	dcfg.FrontendPort = freeTCPPort(t)
	dcfg.UIPort = devserver.UIDisabled
	dcfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := devserver.Start(ctx, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	tc, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendAddr(), Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	b, err := board.Open(filepath.Join(t.TempDir(), "board.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	add := func(title string) string {
		task, _, err := b.Add(ctx, chorus.Task{Title: title, Repository: "demo"})
		if err != nil {
			t.Fatal(err)
		}
		return task.Key().String()
	}

	// Worker a serves the board and is alone: it elects itself.
	a := startTestWorker(t, ctx, tc, 0, "", func(f *election.Fence) func(uint64) intake.Lister { return localLister(b, f) }, b.Handler())
	cfg := election.FastConfig()
	waitFor(t, "a elects itself", cfg.StartupWait+3*time.Second, func() bool { return a.status().Leading })
	if s := a.status(); s.LastTrigger != election.TriggerNoAdmin || s.Term != 1 {
		t.Errorf("a: %+v, want term 1 by no_admin", s)
	}
	first := add("first")
	var term uint64
	waitFor(t, "a's intake starts the task", 10*time.Second, func() bool { var ok bool; term, ok = memoTerm(t, ctx, tc, first); return ok })
	if term != 1 {
		t.Errorf("task started under term %d, want 1", term)
	}

	// Worker b, better scored, joins and follows a.
	bl := func(f *election.Fence) func(uint64) intake.Lister { return remoteLister(a.ops.URL, f) }
	bw := startTestWorker(t, ctx, tc, 8, strings.Join(a.mesh.node.Addrs(), ","), bl, nil)
	if err := bw.mesh.node.WaitMesh(ctx, gossip.TopicElection, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b follows a", cfg.StartupWait+3*time.Second, func() bool { return bw.status().Admin == a.mesh.node.ID() })
	if bw.status().Leading {
		t.Fatal("b took over by itself")
	}

	// A manual election from b's ops API, past a's stability window.
	waitFor(t, "a manual election is accepted", 10*time.Second, func() bool {
		resp, err := http.Post(bw.ops.URL+"/api/v1/election/trigger", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	})
	waitFor(t, "b leads", 5*time.Second, func() bool { return bw.status().Leading && a.status().Admin == bw.mesh.node.ID() })
	if a.status().Leading {
		t.Error("a still leads")
	}
	newTerm := bw.status().Term
	a.el.mu.Lock()
	aRunning := a.el.cancel != nil
	a.el.mu.Unlock()
	if aRunning {
		t.Error("a's intake still runs after it was deposed")
	}
	second := add("second")
	waitFor(t, "b's intake starts the task", 10*time.Second, func() bool { var ok bool; term, ok = memoTerm(t, ctx, tc, second); return ok })
	if term != newTerm {
		t.Errorf("task started under term %d, want b's %d", term, newTerm)
	}
	// a's board knows the new term, from the election and from b's calls:
	// a call carrying the old term is refused.
	if a.fence.Highest() < newTerm {
		t.Errorf("a's fence at %d, want %d", a.fence.Highest(), newTerm)
	}
	// As a deposed admin elsewhere, unaware of the new term, would call.
	_, err = remoteLister(a.ops.URL, &election.Fence{})(1).ListOpen(ctx, 10)
	var apiErr *board.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict || !strings.Contains(apiErr.Message, "stale admin term") {
		t.Errorf("a call with the old term: %v", err)
	}
	if _, err := localLister(b, a.fence)(1).ListOpen(ctx, 10); !errors.Is(err, election.ErrStaleTerm) {
		t.Errorf("a's local intake under term 1: %v", err)
	}

	// The ops API.
	resp, err := http.Get(a.ops.URL + "/api/v1/election")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st election.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Admin != bw.mesh.node.ID() || st.Term != newTerm || st.Leading || len(st.Scores) != 2 {
		t.Errorf("GET /api/v1/election on a = %+v", st)
	}
	if err := a.el.check(ctx); err != nil {
		t.Errorf("election health check with an admin: %v", err)
	}
	bw.stop()
	// b gone: a, one of two members, has no quorum and reports it.
	waitFor(t, "a notices b is gone", cfg.Timeout+2*time.Second, func() bool { return a.status().Admin == "" })
	if err := a.el.check(ctx); err == nil || !strings.Contains(err.Error(), "no admin known") {
		t.Errorf("election health check without an admin: %v", err)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestElectionConfigFromFlags(t *testing.T) {
	cases := []struct {
		o                        options
		heartbeat, timeout, wait time.Duration
	}{
		{options{}, 5 * time.Second, 15 * time.Second, 6 * time.Second},
		{options{electionProfile: "fast"}, time.Second, 3 * time.Second, 1500 * time.Millisecond},
		{options{electionHeartbeat: 2 * time.Second, electionTimeout: 8 * time.Second}, 2 * time.Second, 8 * time.Second, 3 * time.Second},
	}
	for _, c := range cases {
		cfg, err := electionConfig(c.o)
		if err != nil {
			t.Fatalf("%+v: %v", c.o, err)
		}
		if cfg.Heartbeat != c.heartbeat || cfg.Timeout != c.timeout || cfg.StartupWait != c.wait {
			t.Errorf("%+v: heartbeat %s timeout %s start-up wait %s, want %s %s %s", c.o, cfg.Heartbeat, cfg.Timeout, cfg.StartupWait, c.heartbeat, c.timeout, c.wait)
		}
	}
}

func TestScoreComponents(t *testing.T) {
	r := &countingRunner{}
	r.n.Store(1)
	r.finished.Store(10)
	c := score(30*time.Minute, scoreSource{agent: true, expertise: 2, capabilities: 2, maxTasks: 4, running: r}, 2, 5)
	want := gossip.ScoreComponents{Uptime: 0.5, Capabilities: 0.5, Resources: 0.75, Network: 0.5, Experience: 0.5}
	if c != want {
		t.Errorf("score = %+v, want %+v", c, want)
	}
	if c := score(2*time.Hour, scoreSource{running: &countingRunner{}}, 0, 1); c.Uptime != 1 || c.Resources != 1 || c.Network != 1 || c.Capabilities != 0 {
		t.Errorf("node without an agent, alone: %+v", c)
	}
}
