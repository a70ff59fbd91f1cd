package gossip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrClosed is returned by operations on a closed Node or Topic.
var ErrClosed = errors.New("gossip: closed")

// Topic is a joined GossipSub topic. Every message on it passes the node's
// validator (Decode plus sender checks) before any handler sees it.
type Topic struct {
	node  *Node
	name  string
	t     *pubsub.Topic
	relay pubsub.RelayCancelFunc

	mu     sync.Mutex
	subs   map[int]func()
	nextID int
	closed bool
}

// Join joins a topic and takes part in its mesh (forwarding messages even
// with no subscriber). Joining a topic again returns the same *Topic.
func (n *Node) Join(name string) (*Topic, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if t, ok := n.topics[name]; ok {
		return t, nil
	}
	if _, ok := n.bare[name]; ok {
		return nil, fmt.Errorf("join %s: already joined bare", name)
	}
	if err := n.ps.RegisterTopicValidator(name, n.validate, pubsub.WithValidatorInline(true)); err != nil {
		return nil, fmt.Errorf("join %s: %w", name, err)
	}
	pt, err := n.ps.Join(name)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("join %s: %w", name, err), n.ps.UnregisterTopicValidator(name))
	}
	relay, err := pt.Relay()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("join %s: %w", name, err), pt.Close(), n.ps.UnregisterTopicValidator(name))
	}
	t := &Topic{node: n, name: name, t: pt, relay: relay, subs: make(map[int]func())}
	n.topics[name] = t
	return t, nil
}

// JoinBare joins a topic on the node's GossipSub router with nothing of
// chorus on it: no envelope, no validator, no redaction, no publish
// metrics, only GossipSub's own signing and checks, over the node's
// connections and mesh. It exists to measure what the typed path costs
// against bare GossipSub on the same mesh (tests/bench/gossip); agents
// talk through Join. The name must not be a topic joined with Join; the
// topic is closed with the node.
func (n *Node) JoinBare(name string) (*pubsub.Topic, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if t, ok := n.bare[name]; ok {
		return t, nil
	}
	if _, ok := n.topics[name]; ok {
		return nil, fmt.Errorf("join %s bare: already joined with its validator", name)
	}
	t, err := n.ps.Join(name)
	if err != nil {
		return nil, fmt.Errorf("join %s bare: %w", name, err)
	}
	n.bare[name] = t
	return t, nil
}

// Leave ends every subscription of a joined topic and leaves it; leaving
// a topic not joined does nothing.
func (n *Node) Leave(name string) error {
	n.mu.Lock()
	t, ok := n.topics[name]
	delete(n.topics, name)
	n.mu.Unlock()
	if !ok {
		return nil
	}
	if err := t.close(); err != nil {
		return fmt.Errorf("leave %s: %w", name, err)
	}
	return nil
}

// validate is the topic validator: it decodes the envelope and checks that
// its from is the peer that signed it. The decoded Envelope travels to the
// handlers as ValidatorData, so they never decode again.
func (n *Node) validate(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	// Data shares the message's bytes, which pubsub never writes to.
	e, err := decode(m.GetData(), time.Now(), true)
	if err == nil {
		// The body too: a handler never sees data that does not decode
		// into its message type's Body, and gets it decoded.
		body := NewBody(e.Type)
		if err = e.DecodeData(body); err == nil {
			e.body = body
		}
	}
	if err != nil {
		reason := RejectMalformed
		if re, ok := errors.AsType[*RejectError](err); ok {
			reason = re.Reason
		}
		n.stats.reject(reason)
		n.log.Debug("message rejected", "topic", m.GetTopic(), "author", m.GetFrom().String(), "reason", string(reason))
		return pubsub.ValidationReject
	}
	author := m.GetFrom()
	if author == n.host.ID() && m.ReceivedFrom != n.host.ID() {
		n.stats.reject(RejectSelfEcho)
		return pubsub.ValidationIgnore
	}
	if e.From != n.authors.text(author) {
		n.stats.reject(RejectSpoofed)
		n.log.Debug("message rejected", "topic", m.GetTopic(), "author", n.authors.text(author), "reason", string(RejectSpoofed))
		return pubsub.ValidationReject
	}
	m.ValidatorData = e
	return pubsub.ValidationAccept
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Publish sends an envelope to the topic. It sets From to the node's peer
// id and fills Version, Timestamp (now) and FromRole (Config.Role) when
// they are empty. A nil error means the message left this node, not that
// anyone received it: publish after WaitMesh.
func (t *Topic) Publish(ctx context.Context, e Envelope) error {
	e.From = t.node.ID()
	if e.Version == 0 {
		e.Version = Version
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now().UTC()
	}
	if e.FromRole == "" {
		e.FromRole = t.node.role
	}
	if t.node.redact != nil && len(e.Data) > 0 {
		e.Data = t.node.redact(e.Data)
	}
	b, err := Encode(e)
	if err == nil {
		err = e.DecodeData(NewBody(e.Type))
	}
	if err != nil {
		return fmt.Errorf("publish %s on %s: %w", e.Type, t.name, err)
	}
	err = t.t.Publish(ctx, b)
	t.node.metrics.publishedMsg(t.name, len(b), err)
	if err != nil {
		return fmt.Errorf("publish %s on %s: %w", e.Type, t.name, err)
	}
	return nil
}

// PublishBody sends a typed body: the envelope's Type and Data come from
// b, the other header fields from e (zero for the defaults). The body must
// pass its own Validate.
func (t *Topic) PublishBody(ctx context.Context, b Body, e Envelope) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("publish %s on %s: %w", b.MessageType(), t.name, err)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("publish %s on %s: %w", b.MessageType(), t.name, err)
	}
	e.Type, e.Data = b.MessageType(), data
	return t.Publish(ctx, e)
}

// PublishRaw sends already encoded bytes on a topic, joining it if needed;
// it is meant for HMMM rooms whose envelopes are built elsewhere. The bytes
// pass the same validator as received messages, so a malformed message is
// refused here with an error and counted in Rejections.
func (n *Node) PublishRaw(ctx context.Context, topic string, data []byte) error {
	t, err := n.Join(topic)
	if err != nil {
		return err
	}
	if n.redact != nil {
		data = n.redact(data)
	}
	err = t.t.Publish(ctx, data)
	n.metrics.publishedMsg(topic, len(data), err)
	if err != nil {
		return fmt.Errorf("publish raw on %s: %w", topic, err)
	}
	return nil
}

// Subscribe calls handler, from one goroutine, for every valid message on
// the topic published by another node; from is the publisher's peer id.
// The returned cancel ends the subscription and waits for a running
// handler to return, so it must not be called from the handler.
func (t *Topic) Subscribe(handler func(e Envelope, from string)) (cancel func(), err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	sub, err := t.t.Subscribe(pubsub.WithBufferSize(t.node.subBuffer))
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", t.name, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	self := t.node.host.ID()
	go func() {
		defer close(done)
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return // cancelled, or the node closed
			}
			e, ok := m.ValidatorData.(Envelope)
			if !ok || m.GetFrom() == self {
				continue
			}
			// The validator checked that From is the signer's id.
			handler(e, e.From)
		}
	}()
	id := t.nextID
	t.nextID++
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			stop()
			sub.Cancel()
			<-done
			t.mu.Lock()
			delete(t.subs, id)
			t.mu.Unlock()
		})
	}
	t.subs[id] = cancel
	return cancel, nil
}

// close ends every subscription and leaves the topic.
func (t *Topic) close() error {
	t.mu.Lock()
	t.closed = true
	subs := make([]func(), 0, len(t.subs))
	for _, c := range t.subs {
		subs = append(subs, c)
	}
	t.mu.Unlock()
	for _, c := range subs {
		c()
	}
	t.relay()
	return errors.Join(t.t.Close(), t.node.ps.UnregisterTopicValidator(t.name))
}

// WaitMesh waits until at least n peers are in the node's GossipSub mesh
// for the topic, or ctx ends. Messages published before the mesh forms
// (about one heartbeat, 1 s, after peers connect) are lost silently.
func (n *Node) WaitMesh(ctx context.Context, topic string, peers int) error {
	n.mu.Lock()
	_, joined := n.topics[topic]
	_, bare := n.bare[topic]
	joined = joined || bare
	n.mu.Unlock()
	if !joined {
		return fmt.Errorf("wait for mesh of %s: topic not joined", topic)
	}
	for {
		size, changed := n.stats.meshSize(topic)
		if size >= peers {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d mesh peers on %s (have %d): %w", peers, topic, size, ctx.Err())
		}
	}
}
