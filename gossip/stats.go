package gossip

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Reasons counted by a Node on top of those Decode gives.
const (
	// RejectSpoofed: the envelope's from is not the peer that signed it.
	RejectSpoofed RejectReason = "spoofed"
	// RejectSelfEcho: a message signed by this node came back from the
	// network; it is ignored, not held against the peer that sent it.
	RejectSelfEcho RejectReason = "self_echo"
	// RejectBadSignature: the signature is missing, unexpected or invalid.
	RejectBadSignature RejectReason = "bad_signature"
)

// Drops counts messages GossipSub dropped because a queue was full. Each is
// a message some peer or handler never saw; raise the matching Config
// queue size if they grow.
type Drops struct {
	// OutboundQueue: RPCs not sent because a peer's outbound queue was full.
	OutboundQueue int64
	// ValidationQueue: received messages dropped before validation.
	ValidationQueue int64
	// Subscription: messages not delivered because a handler was too slow.
	Subscription int64
}

// stats is the node's pubsub RawTracer: it counts rejections and drops and
// mirrors each topic's mesh for WaitMesh. Tracer methods run synchronously
// in pubsub's event loop, so they only take the mutex briefly.
type stats struct {
	outbound, validation, subscription atomic.Int64

	mu         sync.Mutex
	rejections map[RejectReason]int64
	mesh       map[string]map[peer.ID]struct{}
	changed    chan struct{} // closed and replaced whenever a mesh changes
}

var _ pubsub.RawTracer = (*stats)(nil)

func newStats() *stats {
	return &stats{
		rejections: make(map[RejectReason]int64),
		mesh:       make(map[string]map[peer.ID]struct{}),
		changed:    make(chan struct{}),
	}
}

func (s *stats) reject(r RejectReason) {
	s.mu.Lock()
	s.rejections[r]++
	s.mu.Unlock()
}

func (s *stats) snapshot() map[RejectReason]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.rejections)
}

// meshSize returns the size of a topic's mesh and a channel closed at the
// next change of any mesh.
func (s *stats) meshSize(topic string) (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mesh[topic]), s.changed
}

// notify must be called with mu held.
func (s *stats) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *stats) Graft(p peer.ID, topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mesh[topic]
	if m == nil {
		m = make(map[peer.ID]struct{})
		s.mesh[topic] = m
	}
	m[p] = struct{}{}
	s.notify()
}

func (s *stats) Prune(p peer.ID, topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mesh[topic], p)
	s.notify()
}

// OnClosedOutboundStream: GossipSub drops a gone peer from every mesh
// without a Prune event.
func (s *stats) OnClosedOutboundStream(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.mesh {
		delete(m, p)
	}
	s.notify()
}

func (s *stats) Leave(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mesh, topic)
	s.notify()
}

func (s *stats) RejectMessage(_ *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationQueueFull, pubsub.RejectValidationThrottled:
		s.validation.Add(1)
	case pubsub.RejectSelfOrigin:
		s.reject(RejectSelfEcho)
	case pubsub.RejectMissingSignature, pubsub.RejectUnexpectedSignature,
		pubsub.RejectUnexpectedAuthInfo, pubsub.RejectInvalidSignature:
		s.reject(RejectBadSignature)
	}
	// "validation failed" and "validation ignored" come from our own
	// validator, which has already counted the precise reason.
}

func (s *stats) DropRPC(*pubsub.RPC, peer.ID)         { s.outbound.Add(1) }
func (s *stats) UndeliverableMessage(*pubsub.Message) { s.subscription.Add(1) }

func (s *stats) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (s *stats) Join(string)                                          {}
func (s *stats) ValidateMessage(*pubsub.Message)                      {}
func (s *stats) DeliverMessage(*pubsub.Message)                       {}
func (s *stats) DuplicateMessage(*pubsub.Message)                     {}
func (s *stats) ThrottlePeer(peer.ID)                                 {}
func (s *stats) RecvRPC(*pubsub.RPC)                                  {}
func (s *stats) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (s *stats) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

// Rejections returns how many received or published messages were refused,
// by reason, since the node started. Refused messages never reach handlers.
func (n *Node) Rejections() map[RejectReason]int64 { return n.stats.snapshot() }

// Drops returns how many messages GossipSub dropped on full queues.
func (n *Node) Drops() Drops {
	return Drops{
		OutboundQueue:   n.stats.outbound.Load(),
		ValidationQueue: n.stats.validation.Load(),
		Subscription:    n.stats.subscription.Load(),
	}
}
