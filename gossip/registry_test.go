package gossip_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"chorus/gossip"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func broadcast(t *testing.T, typ gossip.MessageType, body any) gossip.Envelope {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return gossip.Envelope{Type: typ, Data: b}
}

func TestRegistry(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	const interval = 30 * time.Second
	r := gossip.NewRegistry(interval, clock.now)
	avail := func(node string, cur int) gossip.Envelope {
		return broadcast(t, gossip.TypeAvailabilityBroadcast, gossip.AvailabilityBroadcast{
			NodeID: node, AvailableForWork: true, CurrentTasks: cur, MaxTasks: 3,
			Status: gossip.AvailabilityWorking, Timestamp: clock.t, LastActivity: clock.t,
		})
	}
	caps := broadcast(t, gossip.TypeCapabilityBroadcast, gossip.CapabilityBroadcast{
		AgentID: "agent-b", Role: "developer", Expertise: []string{"go", "sql"}, MaxTasks: 2, Timestamp: clock.t,
	})
	for _, obs := range []struct {
		e    gossip.Envelope
		from string
	}{{caps, "peer-b"}, {avail("agent-a", 1), "peer-a"}, {avail("agent-b", 2), "peer-b"}} {
		if err := r.Observe(obs.e, obs.from); err != nil {
			t.Fatalf("Observe: %v", err)
		}
	}
	t0 := clock.t
	want := []gossip.PeerInfo{
		{AgentID: "agent-a", PeerID: "peer-a", CurrentTasks: 1, MaxTasks: 3, Status: "working", LastSeen: t0},
		{AgentID: "agent-b", PeerID: "peer-b", Role: "developer", Expertise: []string{"go", "sql"}, CurrentTasks: 2, MaxTasks: 3, Status: "working", LastSeen: t0},
	}
	if got := r.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapshot =\n%+v\nwant\n%+v", got, want)
	}

	// Invalid data and unrelated types change nothing.
	if err := r.Observe(broadcast(t, gossip.TypeAvailabilityBroadcast, map[string]any{"node_id": "x"}), "peer-x"); err == nil {
		t.Error("Observe accepted an availability broadcast without max_tasks")
	}
	if err := r.Observe(broadcast(t, gossip.TypeTaskClaim, map[string]any{}), "peer-y"); err != nil {
		t.Errorf("Observe of an unrelated type: %v", err)
	}
	if got := len(r.Snapshot()); got != 2 {
		t.Errorf("Snapshot has %d peers, want 2", got)
	}

	// peer-b keeps broadcasting; peer-a falls silent.
	clock.advance(2 * interval)
	if err := r.Observe(avail("agent-b", 0), "peer-b"); err != nil {
		t.Fatal(err)
	}
	clock.advance(interval) // peer-a silent for exactly 3 intervals: kept
	if got := len(r.Snapshot()); got != 2 {
		t.Errorf("after 3 intervals Snapshot has %d peers, want 2", got)
	}
	clock.advance(time.Second) // just over 3 intervals: expired
	got := r.Snapshot()
	if len(got) != 1 || got[0].PeerID != "peer-b" || got[0].CurrentTasks != 0 || !got[0].LastSeen.Equal(t0.Add(2*interval)) {
		t.Errorf("Snapshot = %+v, want only peer-b seen at +2 intervals", got)
	}
	clock.advance(3*interval + time.Second)
	if got := r.Snapshot(); len(got) != 0 {
		t.Errorf("Snapshot = %+v, want empty", got)
	}
}
