package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"chorus/gossip"
)

// rawNet is the baseline: plain libp2p hosts running GossipSub with the
// options gossip.New uses (transports, Noise, connection manager, strict
// signing, content-hash ids, queue and message sizes) and nothing of
// chorus on top: no envelope, validator, redaction or audit. It is the
// baseline of -mesh separate; bareView (shared.go) is the one of -mesh
// shared.
type rawNet struct {
	bareTopics
	cancel  context.CancelFunc
	hosts   []host.Host
	tracers []*meshTracer
}

// bareTopics is what both baselines do on their nodes: a bare pubsub
// topic per node, its subscription, and a goroutine reading it.
type bareTopics struct {
	topics  []*pubsub.Topic
	subs    []*pubsub.Subscription
	readers sync.WaitGroup
}

// add subscribes to topic, node i's, and reads it until life ends, handing
// every message not published by self to recv with its time of receipt.
func (b *bareTopics) add(life context.Context, i int, topic *pubsub.Topic, self peer.ID, base time.Time, recv receiver) error {
	b.topics = append(b.topics, topic)
	sub, err := topic.Subscribe(pubsub.WithBufferSize(gossip.DefaultConfig().SubscriptionBuffer))
	if err != nil {
		return fmt.Errorf("subscribe bare topic of node %d: %w", i, err)
	}
	b.subs = append(b.subs, sub)
	b.readers.Go(func() {
		for {
			m, err := sub.Next(life)
			if err != nil {
				return
			}
			at := time.Since(base)
			if m.GetFrom() == self {
				continue
			}
			recv(i, m.GetData(), at)
		}
	})
	return nil
}

func (b *bareTopics) size() int { return len(b.topics) }

func (b *bareTopics) publish(ctx context.Context, node int, body body) error {
	data, err := jsonBody(body)
	if err != nil {
		return err
	}
	return b.topics[node].Publish(ctx, data)
}

// stop ends the subscriptions, runs end, which must end the readers'
// life, and waits for the readers.
func (b *bareTopics) stop(end func()) {
	for _, s := range b.subs {
		s.Cancel()
	}
	end()
	b.readers.Wait()
}

// rawMaxMessage mirrors gossip.New's wire limit: the envelope limit plus
// 64 KiB for GossipSub's framing.
const rawMaxMessage = gossip.MaxMessageBytes + 64<<10

// contentHashID names a message by the SHA-256 of its topic, a zero byte
// and its data, the scheme the gossip package documents.
func contentHashID(m *pb.Message) string {
	h := sha256.New()
	h.Write([]byte(m.GetTopic()))
	h.Write([]byte{0})
	h.Write(m.GetData())
	return string(h.Sum(nil))
}

func startRaw(ctx context.Context, n int, base time.Time, recv receiver) (_ *rawNet, err error) {
	life, cancel := context.WithCancel(context.Background())
	r := &rawNet{cancel: cancel}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.close())
		}
	}()
	def := gossip.DefaultConfig()
	quiet := slog.New(slog.DiscardHandler)
	for i := range n {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return nil, err
		}
		cm, err := connmgr.NewConnManager(def.ConnLow, def.ConnHigh)
		if err != nil {
			return nil, err
		}
		h, err := libp2p.New(
			libp2p.Identity(key),
			libp2p.ListenAddrStrings(loopback),
			libp2p.Transport(tcp.NewTCPTransport),
			libp2p.Transport(quic.NewTransport),
			libp2p.Security(noise.ID, noise.New),
			libp2p.ConnectionManager(cm),
			libp2p.DisableMetrics(),
		)
		if err != nil {
			return nil, fmt.Errorf("start raw host %d: %w", i, err)
		}
		r.hosts = append(r.hosts, h)
		tr := newMeshTracer()
		r.tracers = append(r.tracers, tr)
		ps, err := pubsub.NewGossipSub(life, h,
			pubsub.WithGossipSubParams(gossip.GossipSubParams(def)),
			pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
			pubsub.WithMessageIdFn(contentHashID),
			pubsub.WithPeerOutboundQueueSize(def.PeerOutboundQueue),
			pubsub.WithValidateQueueSize(def.ValidateQueue),
			pubsub.WithMaxMessageSize(rawMaxMessage),
			pubsub.WithRawTracer(tr),
			pubsub.WithLogger(quiet),
		)
		if err != nil {
			return nil, fmt.Errorf("start raw gossipsub %d: %w", i, err)
		}
		topic, err := ps.Join(benchTopic)
		if err != nil {
			return nil, err
		}
		if err := r.add(life, i, topic, h.ID(), base, recv); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *rawNet) connect(ctx context.Context, from, to int) error {
	pi := peer.AddrInfo{ID: r.hosts[to].ID(), Addrs: r.hosts[to].Addrs()}
	if err := r.hosts[from].Connect(ctx, pi); err != nil {
		return fmt.Errorf("connect raw %d to %d: %w", from, to, err)
	}
	return nil
}

func (r *rawNet) waitMesh(ctx context.Context, node, peers int) error {
	return r.tracers[node].wait(ctx, benchTopic, peers)
}

func (r *rawNet) drops() int64 {
	var sum int64
	for _, t := range r.tracers {
		sum += t.dropped.Load()
	}
	return sum
}

func (r *rawNet) close() error {
	var errs []error
	r.stop(func() {
		// Topics close before the router's life ends.
		for _, t := range r.topics {
			errs = append(errs, t.Close())
		}
		r.cancel()
	})
	for _, h := range r.hosts {
		errs = append(errs, h.Close())
	}
	return errors.Join(errs...)
}

// meshTracer mirrors one host's GossipSub mesh, so the baseline can wait
// for it as gossip.Node.WaitMesh does, and counts queue drops.
type meshTracer struct {
	dropped atomic.Int64

	mu      sync.Mutex
	mesh    map[string]map[peer.ID]bool
	changed chan struct{} // closed and replaced at every mesh change
}

var _ pubsub.RawTracer = (*meshTracer)(nil)

func newMeshTracer() *meshTracer {
	return &meshTracer{mesh: map[string]map[peer.ID]bool{}, changed: make(chan struct{})}
}

func (t *meshTracer) wait(ctx context.Context, topic string, peers int) error {
	for {
		t.mu.Lock()
		size, changed := len(t.mesh[topic]), t.changed
		t.mu.Unlock()
		if size >= peers {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d mesh peers (have %d): %w", peers, size, ctx.Err())
		}
	}
}

// update applies f to the mesh and wakes waiters.
func (t *meshTracer) update(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f()
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *meshTracer) Graft(p peer.ID, topic string) {
	t.update(func() {
		if t.mesh[topic] == nil {
			t.mesh[topic] = map[peer.ID]bool{}
		}
		t.mesh[topic][p] = true
	})
}

func (t *meshTracer) Prune(p peer.ID, topic string) {
	t.update(func() { delete(t.mesh[topic], p) })
}

func (t *meshTracer) OnClosedOutboundStream(p peer.ID) {
	t.update(func() {
		for _, m := range t.mesh {
			delete(m, p)
		}
	})
}

func (t *meshTracer) RejectMessage(_ *pubsub.Message, reason string) {
	if reason == pubsub.RejectValidationQueueFull || reason == pubsub.RejectValidationThrottled {
		t.dropped.Add(1)
	}
}

func (t *meshTracer) DropRPC(*pubsub.RPC, peer.ID)         { t.dropped.Add(1) }
func (t *meshTracer) UndeliverableMessage(*pubsub.Message) { t.dropped.Add(1) }

func (t *meshTracer) Leave(string)                                         {}
func (t *meshTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *meshTracer) Join(string)                                          {}
func (t *meshTracer) ValidateMessage(*pubsub.Message)                      {}
func (t *meshTracer) DeliverMessage(*pubsub.Message)                       {}
func (t *meshTracer) DuplicateMessage(*pubsub.Message)                     {}
func (t *meshTracer) ThrottlePeer(peer.ID)                                 {}
func (t *meshTracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *meshTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
