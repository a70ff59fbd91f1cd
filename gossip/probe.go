package gossip

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// probeTopicPrefix starts the name of each node's probe topic,
// CHORUS/probe/<peer id>. No other node joins it, so a probe never leaves
// the node.
const probeTopicPrefix = "CHORUS/probe/"

// probeMagic starts every probe payload; the probe topic's validator
// accepts nothing else.
var probeMagic = []byte("chorus-probe:")

// probe is the node's pubsub loopback probe: its topic and subscription,
// joined on first use and left by Node.Close. mu is held for a whole probe,
// so concurrent probes take turns instead of reading each other's
// messages; every blocking call inside honours the probe's ctx, which also
// ends when life does (Node.Close), so closing never waits for a probe.
type probe struct {
	life context.Context
	end  context.CancelFunc

	mu     sync.Mutex
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	closed bool
}

func newProbe() *probe {
	life, end := context.WithCancel(context.Background())
	return &probe{life: life, end: end}
}

// ProbePubSub publishes a probe message on this node's own probe topic and
// waits until GossipSub delivers it to the node's own subscription, or ctx
// ends. A nil error proves that the GossipSub router of this node works:
// the message was signed, passed the validation pipeline and went through
// the router's event loop to a subscriber, so neither the event loop nor
// the delivery path is wedged. It does not involve any peer (the probe
// topic is this node's alone): whether peers hear us is what the mesh and
// peer metrics, and the DHT probe, tell.
func (n *Node) ProbePubSub(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { n.metrics.probed("pubsub", start, err) }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(n.probe.life, cancel)()
	n.probe.mu.Lock()
	defer n.probe.mu.Unlock()
	if err := n.probe.join(n); err != nil {
		return fmt.Errorf("probe pubsub: %w", err)
	}
	payload := append(bytes.Clone(probeMagic), rand.Text()...)
	if err := n.probe.topic.Publish(ctx, payload); err != nil {
		return fmt.Errorf("probe pubsub: publish: %w", err)
	}
	for {
		m, err := n.probe.sub.Next(ctx)
		if err != nil {
			return fmt.Errorf("probe pubsub: message published %s ago not delivered back: %w", time.Since(start).Round(time.Millisecond), err)
		}
		if bytes.Equal(m.GetData(), payload) {
			return nil
		}
		// An earlier probe's message that arrived after its ctx ended.
	}
}

// join joins the probe topic unless it already has; p.mu is held.
func (p *probe) join(n *Node) error {
	if p.closed {
		return ErrClosed
	}
	if p.topic != nil {
		return nil
	}
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return ErrClosed
	}
	name := probeTopicPrefix + n.host.ID().String()
	self := n.host.ID()
	validate := func(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if m.GetFrom() == self && m.ReceivedFrom == self && bytes.HasPrefix(m.GetData(), probeMagic) {
			return pubsub.ValidationAccept
		}
		return pubsub.ValidationIgnore
	}
	if err := n.ps.RegisterTopicValidator(name, validate); err != nil {
		return fmt.Errorf("join %s: %w", name, err)
	}
	t, err := n.ps.Join(name)
	if err != nil {
		return errors.Join(fmt.Errorf("join %s: %w", name, err), n.ps.UnregisterTopicValidator(name))
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(8))
	if err != nil {
		return errors.Join(fmt.Errorf("subscribe %s: %w", name, err), t.Close(), n.ps.UnregisterTopicValidator(name))
	}
	p.topic, p.sub = t, sub
	return nil
}

// close ends a probe in progress and leaves the probe topic; later probes
// fail with ErrClosed.
func (p *probe) close(n *Node) error {
	p.end()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.topic == nil {
		return nil
	}
	p.sub.Cancel()
	name := p.topic.String()
	return errors.Join(p.topic.Close(), n.ps.UnregisterTopicValidator(name))
}
