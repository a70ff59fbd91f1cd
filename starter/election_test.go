package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"chorus/election"
	"chorus/gossip"
)

// electionWorker serves a real election driver, on a real gossip node
// alone on loopback, the way a worker's ops server does.
func electionWorker(t *testing.T, stability time.Duration) (*election.Driver, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	gcfg := gossip.DefaultConfig()
	gcfg.DataDir = t.TempDir()
	gcfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	gcfg.MDNS = false
	gcfg.DHTMode = gossip.DHTOff
	node, err := gossip.New(ctx, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := node.Join(gossip.TopicElection)
	if err != nil {
		t.Fatal(err)
	}
	cfg := election.FastConfig()
	cfg.ID = node.ID()
	cfg.Stability = stability
	d, err := election.NewDriver(election.DriverConfig{Election: cfg, Topic: topic,
		Components: func() gossip.ScoreComponents { return gossip.ScoreComponents{Uptime: 1, Resources: 0.5} }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	mux := http.NewServeMux()
	d.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		node.Close()
	})
	deadline := time.Now().Add(cfg.StartupWait + 5*time.Second)
	for !d.Status().Leading {
		if time.Now().After(deadline) {
			t.Fatal("the lone node did not elect itself")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
	return d, srv.URL
}

func TestElectionStatusAndTrigger(t *testing.T) {
	d, url := electionWorker(t, 2*time.Second)
	id := d.Status().NodeID

	out, errOut, code := starter(t, map[string]string{"CHORUS_WORKER": url}, "election", "status", "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, errOut)
	}
	var st electionOutput
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v: %s", err, out)
	}
	if st.Admin != id || st.Term != 1 || !st.Leading || len(st.Scores) != 1 || st.Scores[0].NodeID != id || st.Scores[0].Score != 0.4 {
		t.Errorf("status --json = %+v", st)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"admin", "term", "leading", "scores", "last_heartbeat"} {
		if _, ok := raw[field]; !ok {
			t.Errorf("status --json lacks %q", field)
		}
	}

	out, _, code = starter(t, nil, "election", "status", "--worker", url)
	if code != 0 || !strings.Contains(out, "admin:     "+id+"  term 1") || !strings.Contains(out, "(this node) (admin)") || !strings.Contains(out, "0.400") {
		t.Errorf("status table: exit %d:\n%s", code, out)
	}

	// Within the stability window the worker refuses, and says why.
	_, errOut, code = starter(t, nil, "election", "trigger", "--worker", url)
	if code != 1 || !strings.Contains(errOut, "stability window") {
		t.Errorf("trigger within the window: exit %d, %q", code, errOut)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, errOut, code = starter(t, nil, "election", "trigger", "--worker", url)
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the window ends on its own; retry until it has
	}
	if code != 0 || !strings.Contains(out, "election for term 2 started on "+id+" (manual)") {
		t.Fatalf("trigger: exit %d, %q %q", code, out, errOut)
	}
	deadline = time.Now().Add(5 * time.Second)
	for d.Status().Term != 2 || !d.Status().Leading {
		if time.Now().After(deadline) {
			t.Fatalf("no term 2 after the manual election: %+v", d.Status())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
}

func TestElectionBadInput(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"election"}, "status or trigger"},
		{[]string{"election", "vote"}, `unknown subcommand "vote"`},
		{[]string{"election", "status", "extra"}, `unexpected argument "extra"`},
		{[]string{"election", "status", "--worker", "http://127.0.0.1:1"}, "127.0.0.1:1"},
		{[]string{"election", "trigger", "--worker", "http://127.0.0.1:1"}, "127.0.0.1:1"},
	}
	for _, c := range cases {
		_, errOut, code := starter(t, nil, c.args...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, %q; want 1 and %q", c.args, code, errOut, c.want)
		}
	}
	for _, sub := range []string{"status", "trigger"} {
		_, errOut, code := starter(t, nil, "election", sub, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage: starter election "+sub) || !strings.Contains(errOut, "-worker") {
			t.Errorf("election %s --help: exit %d, %q", sub, code, errOut)
		}
	}
	if out, _, _ := starter(t, nil, "--help"); !strings.Contains(out, "election") {
		t.Error("usage does not list election")
	}
}
