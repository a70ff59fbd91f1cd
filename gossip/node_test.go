package gossip_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"chorus/gossip"
)

func testConfig(t testing.TB, dir string) gossip.Config {
	t.Helper()
	cfg := gossip.DefaultConfig()
	cfg.DataDir = dir
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS = false
	cfg.Role = "tester"
	return cfg
}

func newNode(t *testing.T, ctx context.Context) *gossip.Node {
	t.Helper()
	n, err := gossip.New(ctx, testConfig(t, t.TempDir()))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// cluster starts n nodes, each connected directly to all the others.
func cluster(t *testing.T, ctx context.Context, n int) []*gossip.Node {
	t.Helper()
	nodes := make([]*gossip.Node, n)
	for i := range nodes {
		nodes[i] = newNode(t, ctx)
		for _, prev := range nodes[:i] {
			if err := nodes[i].Connect(ctx, prev.Addrs()[0]); err != nil {
				t.Fatalf("Connect: %v", err)
			}
		}
	}
	return nodes
}

type received struct {
	e    gossip.Envelope
	from string
}

func subscribe(t *testing.T, topic *gossip.Topic) <-chan received {
	t.Helper()
	ch := make(chan received, 64)
	cancel, err := topic.Subscribe(func(e gossip.Envelope, from string) { ch <- received{e, from} })
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(cancel)
	return ch
}

func next(t *testing.T, ctx context.Context, ch <-chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		t.Fatalf("no message: %v", ctx.Err())
		return received{}
	}
}

func TestDeliveryToEverySubscriber(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nodes := cluster(t, ctx, 4)
	chans := make([]<-chan received, len(nodes))
	topics := make([]*gossip.Topic, len(nodes))
	for i, n := range nodes {
		tp, err := n.Join(gossip.TopicCoordination)
		if err != nil {
			t.Fatalf("Join: %v", err)
		}
		again, err := n.Join(gossip.TopicCoordination)
		if err != nil || again != tp {
			t.Fatalf("second Join = %p, %v; want the same handle %p", again, err, tp)
		}
		topics[i], chans[i] = tp, subscribe(t, tp)
	}
	for _, n := range nodes {
		if err := n.WaitMesh(ctx, gossip.TopicCoordination, len(nodes)-1); err != nil {
			t.Fatal(err)
		}
	}

	data := json.RawMessage(`{"task_key":"task/github/o/r/7","agent_id":"a0","status":"working","fence":1,"at":"2025-06-01T12:00:00Z"}`)
	if err := topics[0].Publish(ctx, gossip.Envelope{Type: gossip.TypeTaskProgress, Priority: gossip.PriorityHigh, Data: data}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for i := 1; i < len(nodes); i++ {
		r := next(t, ctx, chans[i])
		if r.from != nodes[0].ID() || r.e.From != nodes[0].ID() || r.e.Type != gossip.TypeTaskProgress ||
			r.e.FromRole != "tester" || r.e.Version != gossip.Version || r.e.Timestamp.IsZero() || string(r.e.Data) != string(data) {
			t.Errorf("node %d got %+v from %s", i, r.e, r.from)
		}
	}

	// Node 0 does not hear its own message: the first thing it receives
	// is node 1's, published after its own.
	if err := topics[1].PublishBody(ctx, gossip.StatusUpdate{AgentID: "a1", Status: "idle", At: time.Now()}, gossip.Envelope{}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if r := next(t, ctx, chans[0]); r.from != nodes[1].ID() || r.e.Type != gossip.TypeStatusUpdate {
		t.Errorf("node 0 got %s from %s, want status_update from node 1", r.e.Type, r.from)
	}
	for i, n := range nodes {
		if got := len(n.Peers()); got != len(nodes)-1 {
			t.Errorf("node %d has %d peers, want %d", i, got, len(nodes)-1)
		}
		if rej := n.Rejections(); len(rej) != 0 {
			t.Errorf("node %d rejected %v", i, rej)
		}
	}
}

// rogue is a bare GossipSub peer without our validator, able to put any
// bytes on the wire.
type rogue struct {
	id    peer.ID
	topic *pubsub.Topic
}

func newRogue(t *testing.T, ctx context.Context, target *gossip.Node, topic string) *rogue {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	psCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(psCtx, h, pubsub.WithMaxMessageSize(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := ps.Join(topic)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := tp.Relay()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay)
	pi, err := peer.AddrInfoFromString(target.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, *pi); err != nil {
		t.Fatal(err)
	}
	// Wait until the rogue knows the target is subscribed, so a publish
	// (flood publish is on by default) reaches it.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(tp.ListPeers()) == 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("target never joined the rogue's view of %s: %v", topic, ctx.Err())
		}
	}
	return &rogue{id: h.ID(), topic: tp}
}

// heartbeat is a valid admin_heartbeat body of a term.
func heartbeat(term int) map[string]any {
	return map[string]any{"term": term, "admin": "rogue", "seq": 1, "score": 0.5, "at": time.Now().UTC().Format(time.RFC3339Nano)}
}

func envelopeJSON(t *testing.T, edits map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"type":      "admin_heartbeat",
		"version":   1,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"hop_count": 0,
	}
	for k, v := range edits {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidatorRejectsBadMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	node := newNode(t, ctx)
	tp, err := node.Join(gossip.TopicElection)
	if err != nil {
		t.Fatal(err)
	}
	ch := subscribe(t, tp)
	r := newRogue(t, ctx, node, gossip.TopicElection)
	from := r.id.String()

	// Messages sent right after connecting can be lost, so the rogue
	// probes until the node hears it.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
probing:
	for i := 0; ; i++ {
		probe := envelopeJSON(t, map[string]any{"from": from, "data": heartbeat(i + 2)})
		if err := r.topic.Publish(ctx, probe); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			break probing
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no probe arrived; rejections %v, drops %+v", node.Rejections(), node.Drops())
		}
	}

	bad := []struct {
		name   string
		data   []byte
		reason gossip.RejectReason
	}{
		{"malformed json", []byte(`{"type":"admin_heartbeat",`), gossip.RejectMalformed},
		{"unknown type", envelopeJSON(t, map[string]any{"from": from, "type": "launch_missiles"}), gossip.RejectUnknownType},
		{"stale", envelopeJSON(t, map[string]any{"from": from, "timestamp": time.Now().Add(-10 * time.Minute).Format(time.RFC3339)}), gossip.RejectStale},
		{"over hop", envelopeJSON(t, map[string]any{"from": from, "hop_count": gossip.MaxHops + 1}), gossip.RejectOverHop},
		{"oversized", envelopeJSON(t, map[string]any{"from": from, "data": map[string]string{"pad": strings.Repeat("x", gossip.MaxMessageBytes)}}), gossip.RejectOversized},
		{"spoofed from", envelopeJSON(t, map[string]any{"from": node.ID(), "data": heartbeat(1)}), gossip.RejectSpoofed},
		{"body of the wrong shape", envelopeJSON(t, map[string]any{"from": from, "data": map[string]any{"probe": 1}}), gossip.RejectMalformed},
		{"body failing its checks", envelopeJSON(t, map[string]any{"from": from, "data": heartbeat(0)}), gossip.RejectMalformed},
	}
	for _, b := range bad {
		if err := r.topic.Publish(ctx, b.data); err != nil {
			t.Fatalf("rogue publish %s: %v", b.name, err)
		}
	}
	// A good message last: once it arrives the bad ones must have been
	// counted, and none of them may have reached the handler.
	good := envelopeJSON(t, map[string]any{"from": from, "data": heartbeat(1)})
	if err := r.topic.Publish(ctx, good); err != nil {
		t.Fatal(err)
	}
	for {
		got := next(t, ctx, ch)
		if got.from != from || got.e.From != from || got.e.Type != gossip.TypeAdminHeartbeat {
			t.Fatalf("handler got %s from %s, want only the rogue's good admin_heartbeats", got.e.Type, got.from)
		}
		var hb gossip.AdminHeartbeat
		if err := got.e.DecodeData(&hb); err != nil {
			t.Fatalf("handler got a body that does not decode: %v", err)
		}
		if hb.Term == 1 {
			break
		}
	}
	want := map[gossip.RejectReason]int64{}
	for _, b := range bad {
		want[b.reason]++
	}
	waitRejections(t, ctx, node, want)

	// A bad raw publish is refused locally with an error and counted too.
	if err := node.PublishRaw(ctx, gossip.TopicElection, []byte("not json")); err == nil {
		t.Error("PublishRaw of garbage succeeded")
	}
	want[gossip.RejectMalformed]++
	waitRejections(t, ctx, node, want)
}

// waitRejections waits until the node's counts equal want.
func waitRejections(t *testing.T, ctx context.Context, n *gossip.Node, want map[gossip.RejectReason]int64) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := n.Rejections()
		same := len(got) == len(want)
		for k, v := range want {
			same = same && got[k] == v
		}
		if same {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("rejections = %v, want %v", got, want)
		}
	}
}

func TestIdentityPersistsAcrossRestart(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	first, err := gossip.New(ctx, testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	id := first.ID()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir + "/p2p/identity.key")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity.key mode = %v, want 0600", fi.Mode().Perm())
	}
	second, err := gossip.New(ctx, testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if second.ID() != id {
		t.Errorf("peer id after restart = %s, want %s", second.ID(), id)
	}
	other := newNode(t, ctx)
	if other.ID() == id {
		t.Error("a node with another data dir has the same peer id")
	}

	corrupt := t.TempDir()
	if err := os.MkdirAll(corrupt+"/p2p", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(corrupt+"/p2p/identity.key", []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := gossip.New(ctx, testConfig(t, corrupt)); err == nil {
		n.Close()
		t.Error("New accepted a corrupt identity key")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(c *gossip.Config)
		field string
	}{
		{"no data dir", func(c *gossip.Config) { c.DataDir = "" }, "DataDir"},
		{"no listen addrs", func(c *gossip.Config) { c.ListenAddrs = nil }, "ListenAddrs"},
		{"bad listen addr", func(c *gossip.Config) { c.ListenAddrs = []string{"tcp:80"} }, "ListenAddrs"},
		{"bootstrap without peer id", func(c *gossip.Config) { c.Bootstrap = []string{"/ip4/127.0.0.1/tcp/4001"} }, "Bootstrap"},
		{"mdns without name", func(c *gossip.Config) { c.MDNSService = "" }, "MDNSService"},
		{"low above high", func(c *gossip.Config) { c.ConnLow = 10; c.ConnHigh = 5 }, "ConnLow"},
		{"no validate queue", func(c *gossip.Config) { c.ValidateQueue = 0 }, "ValidateQueue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := gossip.DefaultConfig()
			c.DataDir = "/tmp/x"
			tt.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.field)
			}
			if _, err := gossip.New(t.Context(), c); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
	c := gossip.DefaultConfig()
	c.DataDir = "/tmp/x"
	if err := c.Validate(); err != nil {
		t.Errorf("DefaultConfig with DataDir: %v", err)
	}
}

// TestPublishIsRedacted: with Config.Redact set, what leaves the node has
// been through it (the worker plugs SHHH in here).
func TestPublishIsRedacted(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	secret := "hunter2-" + t.Name()
	cfg := testConfig(t, t.TempDir())
	cfg.Redact = func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(secret), []byte("[REDACTED]")) }
	sender, err := gossip.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Close() })
	receiver := newNode(t, ctx)
	if err := receiver.Connect(ctx, sender.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	st, err := sender.Join(gossip.TopicCoordination)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := receiver.Join(gossip.TopicCoordination)
	if err != nil {
		t.Fatal(err)
	}
	ch := subscribe(t, rt)
	if err := sender.WaitMesh(ctx, gossip.TopicCoordination, 1); err != nil {
		t.Fatal(err)
	}
	body := gossip.MetaDiscussion{AgentID: "a", Kind: "note", Text: "the password is " + secret, At: time.Now()}
	if err := st.PublishBody(ctx, body, gossip.Envelope{}); err != nil {
		t.Fatal(err)
	}
	r := next(t, ctx, ch)
	if strings.Contains(string(r.e.Data), secret) || !strings.Contains(string(r.e.Data), "[REDACTED]") {
		t.Fatalf("received %s", r.e.Data)
	}
}

// TestJoinBare: a bare topic carries any bytes over the node's mesh,
// outside the validator (nothing is rejected or counted), and its name
// cannot also be joined with the validator.
func TestJoinBare(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := cluster(t, ctx, 2)
	const name = "bench/bare"
	var topics []*pubsub.Topic
	for _, n := range nodes {
		bt, err := n.JoinBare(name)
		if err != nil {
			t.Fatalf("JoinBare: %v", err)
		}
		topics = append(topics, bt)
	}
	own, err := topics[0].Subscribe() // the mesh forms between subscribers
	if err != nil {
		t.Fatal(err)
	}
	defer own.Cancel()
	sub, err := topics[1].Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	if err := nodes[0].WaitMesh(ctx, name, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].Join(name); err == nil {
		t.Fatal("Join of a bare topic's name succeeded")
	}
	payload := []byte("not an envelope")
	for {
		// The mesh may still be forming on the receiver's side: publish
		// until a copy arrives.
		if err := topics[0].Publish(ctx, payload); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		m, err := sub.Next(rctx)
		rcancel()
		if err == nil {
			if string(m.GetData()) != string(payload) {
				t.Fatalf("got %q, want %q", m.GetData(), payload)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no message on the bare topic")
		}
	}
	if r := nodes[1].Rejections(); len(r) != 0 {
		t.Fatalf("bare message counted as rejected: %v", r)
	}
}
