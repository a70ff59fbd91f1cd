package election_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/election"
	"chorus/gossip"
)

// leadership records every node's leading intervals from the callbacks and
// counts a split brain whenever a node starts leading while another one,
// still alive, leads.
type leadership struct {
	logMu   sync.Mutex
	logs    strings.Builder // every driver's log, shown when a test fails
	mu      sync.Mutex
	leading map[string]uint64 // node → term it leads
	dead    map[string]bool
	splits  []string
	starts  []string
}

func newLeadership() *leadership {
	return &leadership{leading: map[string]uint64{}, dead: map[string]bool{}}
}

func (l *leadership) Write(p []byte) (int, error) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	return l.logs.Write(p)
}

func (l *leadership) dump(t *testing.T) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	t.Logf("driver logs:\n%s", l.logs.String())
}

func (l *leadership) start(node string, term uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for other, t := range l.leading {
		if other != node && !l.dead[other] {
			l.splits = append(l.splits, fmt.Sprintf("%s (term %d) started while %s (term %d) led", node, term, other, t))
		}
	}
	l.leading[node] = term
	l.starts = append(l.starts, fmt.Sprintf("%s@%d", node, term))
}

func (l *leadership) stop(node string, term uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead[node] {
		return // a killed node's driver winding down
	}
	if l.leading[node] != term {
		l.splits = append(l.splits, fmt.Sprintf("%s stopped term %d but led %d", node, term, l.leading[node]))
	}
	delete(l.leading, node)
}

func (l *leadership) kill(node string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead[node] = true
	delete(l.leading, node)
}

func (l *leadership) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.splits {
		t.Errorf("split brain: %s", s)
	}
}

// member is one node of a test cluster: a gossip node and its driver.
type member struct {
	node   *gossip.Node
	driver *election.Driver
	score  atomic.Value // float64
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	runErr error
}

// stop ends the driver's Run (once) and returns its error.
func (m *member) stop() error {
	m.once.Do(func() {
		m.cancel()
		m.runErr = <-m.done
	})
	return m.runErr
}

func (m *member) id() string { return m.node.ID() }

func (m *member) kill(t *testing.T) {
	t.Helper()
	if err := m.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := m.node.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func testProfile() election.Config {
	cfg := election.FastConfig()
	cfg.Stability = 2 * time.Second
	return cfg
}

// startCluster starts n nodes connected to each other, waits for the
// election topic's mesh, then starts a driver on each; scores[i] is node
// i's score.
func startCluster(t *testing.T, ctx context.Context, scores []float64, lead *leadership, tweak func(i int, c *election.DriverConfig)) []*member {
	t.Helper()
	ms := make([]*member, len(scores))
	for i := range ms {
		cfg := gossip.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.MDNS = false
		cfg.DHTMode = gossip.DHTOff
		n, err := gossip.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = &member{node: n, done: make(chan error, 1)}
		t.Cleanup(func() { ms[i].node.Close() })
		for _, prev := range ms[:i] {
			if err := n.Connect(ctx, prev.node.Addrs()[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	topics := make([]*gossip.Topic, len(ms))
	for i, m := range ms {
		tp, err := m.node.Join(gossip.TopicElection)
		if err != nil {
			t.Fatal(err)
		}
		topics[i] = tp
	}
	for _, m := range ms {
		if err := m.node.WaitMesh(ctx, gossip.TopicElection, len(ms)-1); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range ms {
		m.score.Store(scores[i])
		id := m.id()
		cfg := election.DriverConfig{
			Election:       testProfile(),
			Topic:          topics[i],
			Peers:          func() int { return len(m.node.Peers()) },
			Components:     func() gossip.ScoreComponents { return all(m.score.Load().(float64)) },
			OnStartLeading: func(_ context.Context, term uint64) { lead.start(id, term) },
			OnStopLeading:  func(term uint64) { lead.stop(id, term) },
		}
		cfg.Election.ID = id
		cfg.Logger = slog.New(slog.NewTextHandler(lead, nil)).With("n", i)
		if tweak != nil {
			tweak(i, &cfg)
		}
		d, err := election.NewDriver(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.driver = d
		rctx, cancel := context.WithCancel(ctx)
		m.cancel = cancel
		go func() { m.done <- d.Run(rctx) }()
		t.Cleanup(func() { m.stop() })
	}
	return ms
}

func all(s float64) gossip.ScoreComponents {
	return gossip.ScoreComponents{Uptime: s, Capabilities: s, Resources: s, Network: s, Experience: s}
}

// waitAgree waits until every member in ms reports the same admin, one of
// them, leading, other than not; it returns the admin's index.
func waitAgree(t *testing.T, ms []*member, within time.Duration, not string) (int, election.Status) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		first := ms[0].driver.Status()
		ok := first.Admin != "" && first.Admin != not
		for _, m := range ms[1:] {
			if s := m.driver.Status(); s.Admin != first.Admin || s.Term != first.Term {
				ok = false
			}
		}
		if ok {
			for i, m := range ms {
				if m.id() == first.Admin && m.driver.Status().Leading {
					return i, m.driver.Status()
				}
			}
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	for _, m := range ms {
		s := m.driver.Status()
		t.Logf("%s: role %s admin %s term %d election %+v", m.id(), s.Role, s.Admin, s.Term, s.Election)
	}
	t.Fatalf("no agreement on one admin within %s", within)
	return 0, election.Status{}
}

func TestDriverElectsAndFailsOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	lead := newLeadership()
	regs := make([]*prometheus.Registry, 4)
	ms := startCluster(t, ctx, []float64{0.3, 0.9, 0.5, 0.7}, lead, func(i int, c *election.DriverConfig) {
		regs[i] = prometheus.NewRegistry()
		c.Metrics = regs[i]
	})
	cfg := testProfile()
	a, st := waitAgree(t, ms, cfg.StartupWait+3*cfg.RoundTimeout+5*time.Second, "")
	if a != 1 {
		t.Errorf("admin is node %d, want node 1 (best score)", a)
	}
	if len(st.Scores) != 4 || st.Scores[0].NodeID != ms[1].id() || !st.Scores[0].Self || !st.Scores[0].Admin {
		t.Errorf("admin's scores = %+v, want 4 with itself first", st.Scores)
	}
	term := st.Term

	// Kill the admin: a new one within the timeout plus one election.
	killed := ms[a].id()
	lead.kill(killed)
	start := time.Now()
	ms[a].kill(t)
	survivors := append(append([]*member{}, ms[:a]...), ms[a+1:]...)
	snapDone := make(chan struct{})
	go func() {
		for {
			select {
			case <-snapDone:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for i, m := range survivors {
				s := m.driver.Status()
				fmt.Fprintf(lead, "snap %d %s admin=%.8s term=%d members=%d live=%d quorum=%d election=%+v\n", i, s.Role, s.Admin, s.Term, s.Members, s.Live, s.Quorum, s.Election)
			}
		}
	}()
	b, st := waitAgree(t, survivors, cfg.Timeout+cfg.RoundTimeout+3*time.Second, killed)
	close(snapDone)
	took := time.Since(start)
	t.Logf("failover to %s in %s", st.Admin, took)
	if took > cfg.Timeout+cfg.Collect+time.Second {
		lead.dump(t)
	}
	if survivors[b].id() != ms[3].id() {
		t.Errorf("new admin %s, want node 3 (next best)", st.Admin)
	}
	if st.Term <= term {
		t.Errorf("term %d after failover, want > %d", st.Term, term)
	}
	if took > cfg.Timeout+cfg.RoundTimeout+3*time.Second {
		t.Errorf("failover took %s", took)
	}
	lead.check(t)

	// The metrics of node 2, a follower all along.
	got := gather(t, regs[2])
	want := map[string]float64{"chorus_election_term": float64(st.Term), "chorus_election_is_leader": 0, "chorus_election_leader_changes_total": 2,
		"chorus_election_failover_duration_seconds": 1, "chorus_election_admin_known": 1, "chorus_election_members": 4}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	for _, name := range []string{"chorus_election_candidacies_total", "chorus_election_votes_total", "chorus_election_heartbeats_total"} {
		if got[name] == 0 {
			t.Errorf("%s = 0", name)
		}
	}
	if g := gather(t, regs[3]); g["chorus_election_is_leader"] != 1 {
		t.Errorf("new admin: chorus_election_is_leader = %v", g["chorus_election_is_leader"])
	}
	// Somebody started each of the two elections.
	started := 0.0
	for _, reg := range []*prometheus.Registry{regs[0], regs[2], regs[3]} {
		started += gather(t, reg)["chorus_election_elections_started_total"]
	}
	if started < 1 {
		t.Errorf("no survivor counted a started election")
	}
}

// gather sums every sample of each metric family.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range mf {
		for _, m := range f.GetMetric() {
			got[f.GetName()] += m.GetGauge().GetValue() + m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return got
}

func TestDriverManualTriggerOverHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	lead := newLeadership()
	ms := startCluster(t, ctx, []float64{0.8, 0.5, 0.4}, lead, nil)
	cfg := testProfile()
	a, st := waitAgree(t, ms, cfg.StartupWait+3*cfg.RoundTimeout+5*time.Second, "")
	if a != 0 {
		t.Fatalf("admin is node %d, want 0", a)
	}
	mux := http.NewServeMux()
	ms[2].driver.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Within the stability window: refused.
	code, body := post(t, srv.URL+"/api/v1/election/trigger")
	if code != http.StatusConflict || !strings.Contains(body, "stability window") {
		t.Fatalf("trigger within the window: %d %s", code, body)
	}
	// Node 1 becomes the best; past the window a manual election elects it.
	ms[1].score.Store(0.95)
	deadline := time.Now().Add(cfg.Stability + 5*time.Second)
	for {
		code, body = post(t, srv.URL+"/api/v1/election/trigger")
		if code == http.StatusAccepted || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the window ends on its own; retry until it has
	}
	if code != http.StatusAccepted {
		t.Fatalf("trigger after the window: %d %s", code, body)
	}
	// Scores are refreshed every heartbeat, so node 1 may need a second
	// election if the first one ran before its new score was read.
	b, after := waitAgree(t, ms, 2*cfg.RoundTimeout+2*time.Second, ms[0].id())
	if b != 1 || after.Term <= st.Term {
		t.Errorf("after the manual election: admin node %d term %d, want node 1 and a term above %d", b, after.Term, st.Term)
	}
	resp, err := http.Get(srv.URL + "/api/v1/election")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got election.Status
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Admin != ms[1].id() || got.Term != after.Term || got.Leading || got.LastTrigger != election.TriggerManual || len(got.Scores) != 3 {
		t.Errorf("GET /api/v1/election = %+v", got)
	}
	lead.check(t)
}

func post(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestDriverSingleNodeKeepsTermOnDisk: a node alone elects itself after
// the start-up wait, one term above the saved one, and saves the new term.
func TestDriverSingleNodeKeepsTermOnDisk(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	file := filepath.Join(t.TempDir(), "election", "term")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("41\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fence := &election.Fence{}
	lead := newLeadership()
	ms := startCluster(t, ctx, []float64{0.2}, lead, func(_ int, c *election.DriverConfig) {
		c.TermFile = file
		c.Fence = fence
	})
	_, st := waitAgree(t, ms, testProfile().StartupWait+3*time.Second, "")
	if st.Term != 42 || st.LastTrigger != election.TriggerNoAdmin {
		t.Errorf("term %d trigger %s, want 42 by no_admin", st.Term, st.LastTrigger)
	}
	if b, _ := os.ReadFile(file); strings.TrimSpace(string(b)) != "42" {
		t.Errorf("term file holds %q, want 42", b)
	}
	if err := fence.Check(41); !errors.Is(err, election.ErrStaleTerm) {
		t.Errorf("fence accepted term 41 after term 42: %v", err)
	}
	// Trigger on a stopped driver.
	ms[0].kill(t)
	if err := ms[0].driver.Trigger(ctx); !errors.Is(err, election.ErrNotRunning) {
		t.Errorf("Trigger after Run ended: %v", err)
	}
	if s := ms[0].driver.Status(); s.Leading || s.Running {
		t.Errorf("status after Run ended: %+v", s)
	}
	lead.mu.Lock()
	if len(lead.leading) != 0 {
		t.Errorf("still leading after Run ended: %v", lead.leading)
	}
	lead.mu.Unlock()

	if err := os.WriteFile(file, []byte("forty-two"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := election.DriverConfig{Election: testProfile(), Topic: nopTopic{}, TermFile: file}
	cfg.Election.ID = "x"
	if _, err := election.NewDriver(cfg); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("corrupt term file: %v", err)
	}
}

type nopTopic struct{}

func (nopTopic) PublishBody(context.Context, gossip.Body, gossip.Envelope) error { return nil }
func (nopTopic) Subscribe(func(gossip.Envelope, string)) (func(), error)         { return func() {}, nil }
