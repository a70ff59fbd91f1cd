package gossip_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/gossip"
	"chorus/ops/opstest"
)

// newMeteredNode starts a loopback node whose metrics go to its own
// registry.
func newMeteredNode(t *testing.T, ctx context.Context, mode string, bootstrap ...string) (*gossip.Node, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, t.TempDir())
	cfg.Metrics = reg
	cfg.DHTMode = mode
	cfg.Bootstrap = bootstrap
	n, err := gossip.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n, reg
}

// eventually waits for cond with a deadline.
func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %v", what, ctx.Err())
		}
	}
}

// TestMetricsFollowTraffic: two real nodes exchange one message; the
// sender counts the publish and its connection, the receiver the message,
// its type, its size and its age, and both see the mesh and the bytes.
func TestMetricsFollowTraffic(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	a, regA := newMeteredNode(t, ctx, gossip.DHTOff)
	b, regB := newMeteredNode(t, ctx, gossip.DHTOff, a.Addrs()[0])
	ta, err := a.Join(gossip.TopicCoordination)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Join(gossip.TopicCoordination)
	if err != nil {
		t.Fatal(err)
	}
	got := subscribe(t, tb)
	for _, n := range []*gossip.Node{a, b} {
		if err := n.WaitMesh(ctx, gossip.TopicCoordination, 1); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(gossip.CapabilityBroadcast{AgentID: "a", Role: "tester", MaxTasks: 1, Timestamp: time.Now().UTC()})
	if err := ta.Publish(ctx, gossip.Envelope{Type: gossip.TypeCapabilityBroadcast, Data: data}); err != nil {
		t.Fatal(err)
	}
	next(t, ctx, got)

	for _, c := range []struct {
		reg    *prometheus.Registry
		name   string
		labels []string
		want   float64
	}{
		{regA, "chorus_pubsub_messages_published_total", []string{"topic", "coordination", "result", "ok"}, 1},
		{regA, "chorus_pubsub_message_size_bytes", []string{"direction", "out"}, 1},
		{regA, "chorus_p2p_peers", nil, 1},
		{regA, "chorus_p2p_connections_opened_total", []string{"direction", "inbound"}, 1},
		{regB, "chorus_p2p_connections_opened_total", []string{"direction", "outbound"}, 1},
		{regB, "chorus_p2p_connections", []string{"direction", "outbound", "transport", "tcp"}, 1},
		{regB, "chorus_p2p_bootstrap_peers", nil, 1},
		{regB, "chorus_p2p_bootstrap_dial_failures_total", nil, 0},
		{regB, "chorus_pubsub_messages_received_total", []string{"topic", "coordination"}, 1},
		{regB, "chorus_pubsub_messages_delivered_total", []string{"topic", "coordination", "type", "capability_broadcast"}, 1},
		{regB, "chorus_pubsub_message_size_bytes", []string{"direction", "in"}, 1},
		{regB, "chorus_pubsub_message_age_seconds", nil, 1},
		{regB, "chorus_pubsub_mesh_peers", []string{"topic", "coordination"}, 1},
		{regB, "chorus_pubsub_topic_peers", []string{"topic", "coordination"}, 1},
		{regB, "chorus_pubsub_topics", []string{"topic", "coordination"}, 1},
		{regB, "chorus_pubsub_subscriptions", nil, 1},
		{regB, "chorus_pubsub_messages_rejected_total", []string{"reason", "malformed"}, 0},
		{regB, "chorus_dht_mode_info", []string{"mode", "off"}, 1},
		{regB, "chorus_dht_routing_table_peers", nil, 0},
		{regB, "chorus_p2p_identity_info", []string{"peer_id", b.ID()}, 1},
	} {
		if v := opstest.Value(t, c.reg, c.name, c.labels...); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	if v := opstest.Value(t, regB, "chorus_pubsub_mesh_grafts_total", "topic", "coordination"); v < 1 {
		t.Errorf("grafts %v, want at least 1", v)
	}
	if v := opstest.Value(t, regB, "chorus_pubsub_rpcs_total", "direction", "in"); v < 1 {
		t.Errorf("rpcs in %v", v)
	}
	// The bandwidth meters are updated by a background sweep.
	eventually(t, ctx, "bytes sent to be counted", func() bool {
		return opstest.Value(t, regA, "chorus_p2p_sent_bytes_total") > 0 && opstest.Value(t, regB, "chorus_p2p_received_bytes_total") > 0
	})

	// A malformed publish is refused by this node's own validator and
	// counted by reason.
	if err := a.PublishRaw(ctx, gossip.TopicCoordination, []byte("not json")); err == nil {
		t.Fatal("malformed publish accepted")
	}
	if v := opstest.Value(t, regA, "chorus_pubsub_messages_rejected_total", "reason", "malformed"); v != 1 {
		t.Errorf("malformed rejections %v, want 1", v)
	}
	if v := opstest.Value(t, regA, "chorus_pubsub_messages_published_total", "topic", "coordination", "result", "error"); v != 1 {
		t.Errorf("failed publishes %v, want 1", v)
	}
}

func TestProbePubSub(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, t.TempDir())
	cfg.Metrics = reg
	cfg.DHTMode = gossip.DHTOff
	n, err := gossip.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := n.ProbePubSub(ctx); err != nil {
			t.Fatalf("probe: %v", err)
		}
	}
	if v := opstest.Value(t, reg, "chorus_pubsub_probes_total", "result", "ok"); v != 3 {
		t.Errorf("probes ok = %v, want 3", v)
	}
	if v := opstest.Value(t, reg, "chorus_pubsub_probe_duration_seconds"); v != 3 {
		t.Errorf("probe durations observed %v, want 3", v)
	}
	// The probe stays on this node: no topic of the vocabulary is joined
	// and nothing is published on one.
	if v := opstest.Value(t, reg, "chorus_pubsub_topics", "topic", "coordination"); v != 0 {
		t.Errorf("the probe joined coordination: %v", v)
	}
	expired, stop := context.WithCancel(ctx)
	stop()
	if err := n.ProbePubSub(expired); err == nil {
		t.Error("probe with a cancelled ctx succeeded")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.ProbePubSub(ctx); !errors.Is(err, gossip.ErrClosed) {
		t.Errorf("probe after Close = %v, want ErrClosed", err)
	}
	if v := opstest.Value(t, reg, "chorus_pubsub_probes_total", "result", "error"); v != 2 {
		t.Errorf("probes failed = %v, want 2", v)
	}
}

// TestProbeDHT: a node alone has nobody to probe; in the line A–B–C the
// probe of each node round-trips its record through the others.
func TestProbeDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	b, regB := newMeteredNode(t, ctx, gossip.DHTServer)
	if err := b.ProbeDHT(ctx); !errors.Is(err, gossip.ErrNoDHTPeers) {
		t.Fatalf("probe alone = %v, want ErrNoDHTPeers", err)
	}
	if v := opstest.Value(t, regB, "chorus_dht_probes_total", "result", "skipped"); v != 1 {
		t.Errorf("skipped probes %v", v)
	}
	a, regA := newMeteredNode(t, ctx, gossip.DHTServer, b.Addrs()[0])
	c, _ := newMeteredNode(t, ctx, gossip.DHTServer, b.Addrs()[0])

	for _, n := range []struct {
		node *gossip.Node
		reg  *prometheus.Registry
	}{{a, regA}, {b, regB}} {
		// The routing table fills once identify has run.
		var err error
		eventually(t, ctx, "a successful dht probe", func() bool {
			err = n.node.ProbeDHT(ctx)
			return err == nil
		})
		if v := opstest.Value(t, n.reg, "chorus_dht_probes_total", "result", "ok"); v != 1 {
			t.Errorf("ok probes %v", v)
		}
		if v := opstest.Value(t, n.reg, "chorus_dht_operations_total", "op", "put", "result", "ok"); v < 1 {
			t.Errorf("puts %v", v)
		}
		if v := opstest.Value(t, n.reg, "chorus_dht_operations_total", "op", "get", "result", "ok"); v != 1 {
			t.Errorf("gets %v", v)
		}
		if v := opstest.Value(t, n.reg, "chorus_dht_routing_table_peers"); v < 1 {
			t.Errorf("routing table %v", v)
		}
		if v := opstest.Value(t, n.reg, "chorus_dht_server"); v != 1 {
			t.Errorf("server %v", v)
		}
	}
	// B stored the records A (and C, whose probe did not run) put on it.
	if v := opstest.Value(t, regB, "chorus_dht_records_stored_total"); v < 1 {
		t.Errorf("B stored %v records", v)
	}
	// As in TestDHTFindsPeerAcrossALine, a lookup may have nobody to ask
	// for a moment; every attempt is counted.
	attempts := 0
	eventually(t, ctx, "FindPeer to find C", func() bool {
		attempts++
		_, err := a.FindPeer(ctx, c.ID())
		return err == nil
	})
	if v := opstest.Value(t, regA, "chorus_dht_operations_total", "op", "find_peer", "result", "ok"); v != 1 {
		t.Errorf("find_peer ok %v, want 1", v)
	}
	if v := opstest.Value(t, regA, "chorus_dht_operation_duration_seconds", "op", "find_peer"); v != float64(attempts) {
		t.Errorf("find_peer durations %v, want %d", v, attempts)
	}
}
