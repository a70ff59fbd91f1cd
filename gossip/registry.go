package gossip

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"chorus"
)

// CapabilityBroadcast is the data of a capability_broadcast: what an agent
// can do, sent at start and whenever its capabilities change.
type CapabilityBroadcast struct {
	AgentID   string    `json:"agent_id"`
	Role      string    `json:"role"`
	Expertise []string  `json:"expertise,omitempty"`
	MaxTasks  int       `json:"max_tasks"`
	Timestamp time.Time `json:"timestamp"`
	// Capabilities and Specialization are optional detail for selection.
	Capabilities   []string `json:"capabilities,omitempty"`
	Specialization string   `json:"specialization,omitempty"`
}

func (CapabilityBroadcast) MessageType() MessageType { return TypeCapabilityBroadcast }

// Validate reports the first missing or impossible field.
func (c CapabilityBroadcast) Validate() error {
	switch {
	case c.AgentID == "":
		return fmt.Errorf("%w: agent_id: missing", chorus.ErrInvalid)
	case c.MaxTasks < 1:
		return fmt.Errorf("%w: max_tasks: %d must be at least 1", chorus.ErrInvalid, c.MaxTasks)
	case c.Timestamp.IsZero():
		return fmt.Errorf("%w: timestamp: missing", chorus.ErrInvalid)
	}
	return nil
}

// PeerInfo is what the registry knows about one peer.
type PeerInfo struct {
	AgentID      string   `json:"agent_id"`
	PeerID       string   `json:"peer_id"`
	Role         string   `json:"role"`
	Expertise    []string `json:"expertise"`
	CurrentTasks int      `json:"current_tasks"`
	MaxTasks     int      `json:"max_tasks"`
	Status       string   `json:"status"`
	// Performance is the agent's success record, 0..1, as it reports it.
	Performance float64 `json:"performance"`
	// LastSeen is the registry's clock when the peer was last heard from.
	LastSeen time.Time `json:"last_seen"`
}

// Registry keeps the peers heard on the coordination topic through their
// availability and capability broadcasts. A peer silent for more than
// ExpiryIntervals broadcast intervals is forgotten.
type Registry struct {
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	peers map[string]*PeerInfo // by peer id
}

// AvailabilityInterval is how often a node broadcasts its availability.
const AvailabilityInterval = 30 * time.Second

// ExpiryIntervals is how many missed broadcast intervals make a peer expire.
const ExpiryIntervals = 3

// NewRegistry returns an empty registry for peers that broadcast every
// interval (AvailabilityInterval in production). now is the clock; nil means time.Now.
func NewRegistry(interval time.Duration, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{interval: interval, now: now, peers: make(map[string]*PeerInfo)}
}

// Observe records an envelope received from peer from. It has the shape of
// a Subscribe handler once its error is dropped; other message types are
// ignored and return nil, and a broadcast with invalid data returns the
// reason and changes nothing.
func (r *Registry) Observe(e Envelope, from string) error {
	switch e.Type {
	case TypeAvailabilityBroadcast:
		var a AvailabilityBroadcast
		if err := e.DecodeData(&a); err != nil {
			return err
		}
		r.update(from, func(p *PeerInfo) {
			if p.AgentID == "" {
				p.AgentID = a.NodeID
			}
			p.CurrentTasks = a.CurrentTasks
			p.MaxTasks = a.MaxTasks
			p.Status = string(a.Status)
			p.Performance = a.Performance
		})
	case TypeCapabilityBroadcast:
		var c CapabilityBroadcast
		if err := e.DecodeData(&c); err != nil {
			return err
		}
		r.update(from, func(p *PeerInfo) {
			p.AgentID = c.AgentID
			p.Role = c.Role
			p.Expertise = slices.Clone(c.Expertise)
			p.MaxTasks = c.MaxTasks
		})
	}
	return nil
}

func (r *Registry) update(from string, f func(*PeerInfo)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.peers[from]
	if p == nil {
		p = &PeerInfo{PeerID: from}
		r.peers[from] = p
	}
	f(p)
	p.LastSeen = r.now()
}

// Snapshot forgets expired peers and returns the others sorted by agent id,
// then peer id. The result is a copy the caller may keep.
func (r *Registry) Snapshot() []PeerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	cutoff := r.now().Add(-ExpiryIntervals * r.interval)
	out := make([]PeerInfo, 0, len(r.peers))
	for id, p := range r.peers {
		if p.LastSeen.Before(cutoff) {
			delete(r.peers, id)
			continue
		}
		c := *p
		c.Expertise = slices.Clone(p.Expertise)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b PeerInfo) int {
		return cmp.Or(cmp.Compare(a.AgentID, b.AgentID), cmp.Compare(a.PeerID, b.PeerID))
	})
	return out
}
