package gossip

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// RoomHistory is how many messages a Room keeps: a few days of discussion
// on one issue, and a bound on memory for a node in many rooms.
const RoomHistory = 256

// RoomMessage is one meta_discussion message heard or posted in a room.
type RoomMessage struct {
	// From is the publisher's peer id.
	From     string         `json:"from"`
	ThreadID string         `json:"thread_id,omitempty"`
	Message  MetaDiscussion `json:"message"`
	// Own marks messages this node posted.
	Own bool `json:"own,omitempty"`
}

// Room is the HMMM room of one issue (IssueRoom): a joined topic whose
// meta_discussion messages, heard and posted, are kept in order (the last
// RoomHistory of them). Other message types on the room topic pass the
// validator but are not kept.
type Room struct {
	issue  int
	topic  *Topic
	cancel func()

	mu     sync.Mutex
	log    []RoomMessage
	active time.Time
}

// JoinRoom joins the room of an issue and starts keeping its messages.
// Joining a room again returns the same *Room.
func (n *Node) JoinRoom(issue int) (*Room, error) {
	if issue < 1 {
		return nil, fmt.Errorf("join room: issue %d must be positive", issue)
	}
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	if r, ok := n.rooms[issue]; ok {
		return r, nil
	}
	t, err := n.Join(IssueRoom(issue))
	if err != nil {
		return nil, err
	}
	r := &Room{issue: issue, topic: t, active: time.Now()}
	r.cancel, err = t.Subscribe(func(e Envelope, from string) {
		if e.Type != TypeMetaDiscussion {
			return
		}
		var m MetaDiscussion
		if e.DecodeData(&m) == nil {
			r.add(RoomMessage{From: from, ThreadID: e.ThreadID, Message: m})
		}
	})
	if err != nil {
		return nil, err
	}
	n.rooms[issue] = r
	return r, nil
}

// Room returns the joined room of an issue.
func (n *Node) Room(issue int) (*Room, bool) {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	r, ok := n.rooms[issue]
	return r, ok
}

// Rooms returns the issues whose rooms this node has joined, sorted.
func (n *Node) Rooms() []int {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	out := make([]int, 0, len(n.rooms))
	for i := range n.rooms {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// LeaveRoom stops keeping the room's messages and leaves its topic.
func (n *Node) LeaveRoom(issue int) error {
	n.roomsMu.Lock()
	r, ok := n.rooms[issue]
	delete(n.rooms, issue)
	n.roomsMu.Unlock()
	if !ok {
		return nil
	}
	r.cancel()
	return n.Leave(IssueRoom(issue))
}

// Issue returns the room's issue number.
func (r *Room) Issue() int { return r.issue }

// WaitPeers waits until at least peers others are in the room's mesh; a
// post before anyone is there reaches nobody.
func (r *Room) WaitPeers(ctx context.Context, peers int) error {
	return r.topic.node.WaitMesh(ctx, r.topic.name, peers)
}

// Post publishes a message in the room, in the conversation thread (a task
// key, a session id), and keeps it.
func (r *Room) Post(ctx context.Context, thread string, m MetaDiscussion) error {
	if m.Issue == 0 {
		m.Issue = r.issue
	}
	if m.At.IsZero() {
		m.At = time.Now().UTC()
	}
	if err := r.topic.PublishBody(ctx, m, Envelope{ThreadID: thread}); err != nil {
		return err
	}
	r.add(RoomMessage{From: r.topic.node.ID(), ThreadID: thread, Message: m, Own: true})
	return nil
}

func (r *Room) add(m RoomMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, m)
	r.active = time.Now()
	if over := len(r.log) - RoomHistory; over > 0 {
		r.log = slices.Delete(r.log, 0, over)
	}
}

// LastActivity is when the room was joined or last had a message.
func (r *Room) LastActivity() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active
}

// Messages returns a copy of the kept messages, oldest first.
func (r *Room) Messages() []RoomMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}
