package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus/activities"
	"chorus/gossip"
	"chorus/ops"
)

func TestBackbeatFlags(t *testing.T) {
	cases := []struct {
		args    []string
		env     map[string]string
		tempo   float64
		bar     int
		cluster string
		wantErr string
	}{
		{args: nil, tempo: 2, bar: 120, cluster: "dev"},
		{args: []string{"--dev"}, tempo: 30, bar: 120, cluster: "dev"},
		{args: []string{"--dev", "--backbeat-tempo", "2"}, tempo: 2, bar: 120, cluster: "dev"},
		{args: []string{"--backbeat-tempo", "600", "--backbeat-bar", "10", "--cluster-id", "lab"}, tempo: 600, bar: 10, cluster: "lab"},
		{env: map[string]string{"CHORUS_CLUSTER_ID": "envlab"}, tempo: 2, bar: 120, cluster: "envlab"},
		{args: []string{"--backbeat-tempo", "0"}, wantErr: "--backbeat-tempo"},
		{args: []string{"--backbeat-tempo", "7000"}, wantErr: "--backbeat-tempo"},
		{args: []string{"--backbeat-bar", "0"}, wantErr: "--backbeat-bar"},
	}
	for _, c := range cases {
		getenv := func(k string) string { return c.env[k] }
		o, err := parseFlags(c.args, getenv, io.Discard)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: err = %v, want one naming %s", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if o.backbeat.tempo != c.tempo || o.backbeat.bar != c.bar || o.lic.clusterID != c.cluster {
			t.Errorf("%q: tempo %v bar %d cluster %q; want %v %d %q", c.args, o.backbeat.tempo, o.backbeat.bar, o.lic.clusterID, c.tempo, c.bar, c.cluster)
		}
	}
}

func TestBeatBudget(t *testing.T) {
	agent := activities.AgentInfo{HelpWindow: 30 * time.Second, AIWallTime: 10 * time.Minute, ExecutionTimeout: 10 * time.Minute}
	if got := beatBudget(agent, 2); got != 41 { // 20.5 min at 30 s a beat
		t.Errorf("budget at 2 BPM = %d, want 41", got)
	}
	if got := beatBudget(agent, 30); got != 615 {
		t.Errorf("budget at 30 BPM = %d, want 615", got)
	}
	if got := beatBudget(activities.AgentInfo{}, 2); got != 1 {
		t.Errorf("budget of nothing = %d, want 1", got)
	}
}

// backbeatSnapshot is GET /api/v1/backbeat as a client reads it.
type backbeatSnapshot struct {
	Admin      bool    `json:"admin"`
	Locked     bool    `json:"locked"`
	Degraded   bool    `json:"degraded"`
	BeatIndex  int64   `json:"beat_index"`
	TempoBPM   float64 `json:"tempo_bpm"`
	DriftMS    float64 `json:"tempo_drift_ms"`
	Operations []struct {
		TaskKey   string `json:"task_key"`
		Phase     string `json:"phase"`
		BeatsLeft int    `json:"beats_left"`
	} `json:"operations"`
	LastBarReport *gossip.BarReport `json:"last_bar_report"`
}

func getSnapshot(t *testing.T, url string) backbeatSnapshot {
	t.Helper()
	resp, err := http.Get(url + "/api/v1/backbeat")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s backbeatSnapshot
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/v1/backbeat: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBackbeatWiring runs a --dev worker's backbeat (the admin) and another
// worker's on real gossip nodes, with their ops muxes and health, and
// feeds the second one's phases.
func TestBackbeatWiring(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	flags := []string{"--backbeat-tempo", "600", "--backbeat-bar", "10", "--cluster-id", "wiring"}
	type worker struct {
		url    string
		health *ops.Health
		stop   func()
	}
	var nodes []*gossip.Node
	start := func(dev bool, id string) worker {
		args := flags
		if dev {
			args = append([]string{"--dev"}, flags...)
		}
		o, err := parseFlags(args, noenv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		gcfg := gossip.DefaultConfig()
		gcfg.DataDir, gcfg.ListenAddrs, gcfg.MDNS, gcfg.DHTMode = t.TempDir(), []string{"/ip4/127.0.0.1/tcp/0"}, false, gossip.DHTOff
		node, err := gossip.New(ctx, gcfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		for _, prev := range nodes {
			if err := node.Connect(ctx, prev.Addrs()[0]); err != nil {
				t.Fatal(err)
			}
		}
		nodes = append(nodes, node)
		mux := http.NewServeMux()
		health := ops.NewHealth(nil, nil)
		health.Routes(mux)
		agent := activities.AgentInfo{ID: id, ExecutionTimeout: 10 * time.Second}
		bb, err := startBackbeat(o, node, agent, func() bool { return o.dev }, mux, health, nil, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- bb.Run(rctx) }()
		w := worker{url: srv.URL, health: health, stop: sync.OnceFunc(func() { rcancel(); <-done })}
		t.Cleanup(w.stop)
		if !dev {
			ph := newOpPhases(id, bb, discardLogger())
			ph.placed("task/github/o/r/5", id)
			ph.accepted("task/github/o/r/5", id)
			ph.started("Execute", "task/github/o/r/5", id)
		}
		return w
	}
	admin := start(true, "a")
	other := start(false, "b")
	for _, n := range nodes {
		if err := n.WaitMesh(ctx, gossip.TopicBackbeat, 1); err != nil {
			t.Fatal(err)
		}
	}

	eventually := func(what string, cond func(backbeatSnapshot) bool, url string) backbeatSnapshot {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			s := getSnapshot(t, url)
			if cond(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("not within 15 s: %s; last %+v", what, s)
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if s := getSnapshot(t, admin.url); !s.Admin {
		t.Errorf("the --dev worker is not the admin: %+v", s)
	}
	s := eventually("the other worker locked, with a bar report", func(s backbeatSnapshot) bool {
		return s.Locked && s.LastBarReport != nil && s.LastBarReport.ClusterID == "wiring"
	}, other.url)
	if s.Admin || s.TempoBPM != 600 || len(s.Operations) != 1 || s.Operations[0].Phase != "executing" || s.Operations[0].BeatsLeft <= 0 {
		t.Errorf("other worker: %+v", s)
	}
	// 10 s of execution timeout at 100 ms a beat.
	if s.Operations[0].BeatsLeft > 100 {
		t.Errorf("beats left %d, want at most the budget of 100", s.Operations[0].BeatsLeft)
	}
	other.health.RunChecks(ctx)
	if r := other.health.Snapshot(); r.Status != ops.StatusHealthy {
		t.Errorf("health while locked: %+v", r)
	}

	admin.stop()
	eventually("the other worker degraded", func(s backbeatSnapshot) bool { return s.Degraded }, other.url)
	other.health.RunChecks(ctx)
	r := other.health.Snapshot()
	if r.Status != ops.StatusDegraded || len(r.Checks) != 1 || r.Checks[0].Name != "backbeat" || r.Checks[0].Critical ||
		!strings.Contains(r.Checks[0].Message, "beats; using local timing") {
		t.Errorf("health while degraded: %+v", r)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
