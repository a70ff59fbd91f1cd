package gossip_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"chorus/gossip"
)

// waitMessages waits until the room has at least n messages.
func waitMessages(t *testing.T, ctx context.Context, r *gossip.Room, n int) []gossip.RoomMessage {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if got := r.Messages(); len(got) >= n {
			return got
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("room %d has %d messages, want %d", r.Issue(), len(r.Messages()), n)
		}
	}
}

func TestIssueRoomKeepsTheDiscussion(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nodes := cluster(t, ctx, 3)
	a, b, outsider := nodes[0], nodes[1], nodes[2]
	ra, err := a.JoinRoom(7)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := a.JoinRoom(7); err != nil || again != ra {
		t.Fatalf("second JoinRoom = %p, %v; want the same room", again, err)
	}
	rb, err := b.JoinRoom(7)
	if err != nil {
		t.Fatal(err)
	}
	// The outsider is in another issue's room: it must hear nothing of 7.
	ro, err := outsider.JoinRoom(8)
	if err != nil {
		t.Fatal(err)
	}
	if err := ra.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	thread := "task/board/acme/7"
	if err := ra.Post(ctx, thread, gossip.MetaDiscussion{TaskKey: thread, AgentID: "a", Kind: "seed", Text: "claimed by a"}); err != nil {
		t.Fatal(err)
	}
	got := waitMessages(t, ctx, rb, 1)
	if m := got[0]; m.From != a.ID() || m.ThreadID != thread || m.Message.Kind != "seed" || m.Message.Issue != 7 || m.Own {
		t.Fatalf("b heard %+v", m)
	}
	if err := rb.Post(ctx, thread, gossip.MetaDiscussion{AgentID: "b", Kind: "note", Text: "I can review"}); err != nil {
		t.Fatal(err)
	}
	mine := waitMessages(t, ctx, ra, 2)
	if !mine[0].Own || mine[0].Message.Kind != "seed" || mine[1].From != b.ID() || mine[1].Message.Text != "I can review" {
		t.Fatalf("a's room = %+v", mine)
	}
	// Other message types on the room topic are not kept.
	roomTopic, err := b.Join(gossip.IssueRoom(7))
	if err != nil {
		t.Fatal(err)
	}
	if err := roomTopic.PublishBody(ctx, gossip.StatusUpdate{AgentID: "b", Status: "idle", At: time.Now()}, gossip.Envelope{}); err != nil {
		t.Fatal(err)
	}
	if err := rb.Post(ctx, thread, gossip.MetaDiscussion{AgentID: "b", Kind: "note", Text: "last"}); err != nil {
		t.Fatal(err)
	}
	mine = waitMessages(t, ctx, ra, 3)
	if len(mine) != 3 || mine[2].Message.Text != "last" {
		t.Fatalf("a's room = %+v, want the status update left out", mine)
	}
	if n := len(ro.Messages()); n != 0 {
		t.Fatalf("room 8 kept %d messages of room 7", n)
	}
	if got := a.Rooms(); !slices.Equal(got, []int{7}) {
		t.Fatalf("a's rooms = %v", got)
	}
	if err := a.LeaveRoom(7); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Room(7); ok || len(a.Rooms()) != 0 {
		t.Fatal("room 7 still joined after LeaveRoom")
	}
	if _, err := a.JoinRoom(0); err == nil {
		t.Fatal("JoinRoom(0) succeeded")
	}
}
