package gossip

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// dialTimeout bounds one attempt to connect to a bootstrap or mDNS peer.
const dialTimeout = 10 * time.Second

// wireSlack is what GossipSub's framing (signature, key, topic, seqno) adds
// to a message's data. The wire limit is MaxMessageBytes plus this, so that
// a message slightly over MaxMessageBytes reaches the validator and is
// counted as oversized instead of vanishing in the stream reader.
const wireSlack = 64 << 10

// Node is one agent's presence on the gossip network: a libp2p host, its
// GossipSub router and the topics it has joined.
type Node struct {
	log    *slog.Logger
	role   string
	redact func([]byte) []byte
	host   host.Host
	// self is host.ID() as text, the From of every publish.
	self string
	// authors caches peer ids as text for the validator's From check.
	authors idText
	ps      *pubsub.PubSub
	mdns    mdns.Service // nil when MDNS is off
	dht     *dht.IpfsDHT // nil when DHTMode is off
	// dhtMode is Config.DHTMode.
	dhtMode string
	stats   *stats
	metrics *metrics // metrics.go; probe.go
	probe   *probe
	cancel  context.CancelFunc // ends the lifetime context of pubsub and mDNS dials
	// subBuffer is the buffer of each subscription (Config.SubscriptionBuffer).
	subBuffer int

	mu     sync.Mutex
	topics map[string]*Topic
	// bare are topics joined with JoinBare, closed with the node.
	bare   map[string]*pubsub.Topic
	closed bool

	// roomsMu guards rooms; it is taken before mu, never after.
	roomsMu sync.Mutex
	rooms   map[int]*Room
}

// New starts a node: it loads or creates the identity in cfg.DataDir,
// listens on cfg.ListenAddrs, starts GossipSub, dials the bootstrap peers
// (a peer that cannot be reached is logged, not fatal), starts the DHT
// unless cfg.DHTMode is off and starts mDNS when enabled. ctx bounds the
// start-up only; the node runs until Close.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key, err := loadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	m := newMetrics(cfg)
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh)
	if err != nil {
		return nil, fmt.Errorf("create connection manager: %w", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.ConnectionManager(cm),
		// libp2p would register its metrics in the global Prometheus
		// registry; metrics belong to one registry built by the caller.
		libp2p.DisableMetrics(),
		libp2p.BandwidthReporter(m.bandwidth),
	)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	life, cancel := context.WithCancel(context.Background())
	n := &Node{
		log:       log.With("peer", h.ID().String()),
		role:      cfg.Role,
		redact:    cfg.Redact,
		host:      h,
		self:      h.ID().String(),
		stats:     newStats(),
		metrics:   m,
		probe:     newProbe(),
		cancel:    cancel,
		subBuffer: cfg.SubscriptionBuffer,
		topics:    make(map[string]*Topic),
		bare:      make(map[string]*pubsub.Topic),
		rooms:     make(map[int]*Room),
		dhtMode:   cfg.DHTMode,
	}
	h.Network().Notify(m.notifiee())
	n.ps, err = pubsub.NewGossipSub(life, h,
		pubsub.WithGossipSubParams(GossipSubParams(cfg)),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(contentID),
		pubsub.WithPeerOutboundQueueSize(cfg.PeerOutboundQueue),
		pubsub.WithValidateQueueSize(cfg.ValidateQueue),
		pubsub.WithMaxMessageSize(MaxMessageBytes+wireSlack),
		pubsub.WithRawTracer(n.stats),
		pubsub.WithRawTracer(m),
		pubsub.WithLogger(n.log.With("component", "pubsub")),
	)
	if err != nil {
		cancel()
		return nil, errors.Join(fmt.Errorf("start gossipsub: %w", err), h.Close())
	}
	if cfg.DHTMode != DHTOff {
		// Started before dialling, so that the bootstrap peers enter the
		// routing table as soon as they are identified.
		n.dht, err = startDHT(h, cfg.DHTMode, bootstrapInfos(h.ID(), cfg.Bootstrap), m.dhtStored.Inc)
		if err != nil {
			cancel()
			return nil, errors.Join(err, h.Close())
		}
	}
	n.connectBootstrap(ctx, cfg.Bootstrap)
	if n.dht != nil {
		// Fills the routing table from the connected peers and looks up
		// the node's neighbourhood in the background.
		if err := n.dht.Bootstrap(ctx); err != nil {
			n.log.Warn("dht bootstrap failed", "err", err)
		}
	}
	if cfg.MDNS {
		n.mdns = mdns.NewMdnsService(h, cfg.MDNSService, mdnsNotifee(func(pi peer.AddrInfo) { n.found(life, pi) }))
		if err := n.mdns.Start(); err != nil {
			// mDNS needs a multicast interface; a node without one can
			// still work through bootstrap peers.
			n.log.Warn("mdns unavailable", "err", err)
			n.mdns = nil
		}
	}
	if err := m.register(cfg.Metrics, n); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	n.log.Info("gossip node started", "addrs", n.Addrs())
	return n, nil
}

// GossipSubParams are the router parameters a node runs with: GossipSub's
// defaults and Config.IDontWantThreshold. The gossip benchmark gives its
// raw baseline the same.
func GossipSubParams(cfg Config) pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.IDontWantMessageThreshold = cfg.IDontWantThreshold
	return p
}

// contentID names a message by a hash of its topic and data, so a message
// is the same message whichever peer forwards it. Publish stamps every
// envelope with a nanosecond timestamp, so distinct messages differ.
func contentID(m *pb.Message) string {
	h := sha256.New()
	h.Write([]byte(m.GetTopic()))
	h.Write([]byte{0})
	h.Write(m.GetData())
	return string(h.Sum(nil))
}

// connectBootstrap dials every bootstrap peer concurrently and protects the
// connections from trimming.
func (n *Node) connectBootstrap(ctx context.Context, addrs []string) {
	var wg sync.WaitGroup
	for _, a := range addrs {
		pi, err := peer.AddrInfoFromString(a) // checked by Validate
		if err != nil || pi.ID == n.host.ID() {
			continue
		}
		n.host.ConnManager().Protect(pi.ID, "bootstrap")
		wg.Go(func() {
			if err := n.connect(ctx, *pi); err != nil {
				n.metrics.bootstrapFailures.Inc()
				n.log.Warn("bootstrap peer unreachable", "addr", a, "err", err)
			}
		})
	}
	wg.Wait()
}

func (n *Node) connect(ctx context.Context, pi peer.AddrInfo) error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := n.host.Connect(ctx, pi); err != nil {
		return fmt.Errorf("connect %s: %w", pi.ID, err)
	}
	return nil
}

// found handles a peer discovered by mDNS. Both sides discover each other
// within a millisecond; if both dial, TCP simultaneous open fails a third of
// the time, so only the side with the smaller peer id dials.
func (n *Node) found(ctx context.Context, pi peer.AddrInfo) {
	if pi.ID != n.host.ID() {
		n.metrics.mdnsFound.Inc()
	}
	if pi.ID == n.host.ID() || n.host.ID() > pi.ID {
		return
	}
	go func() {
		if err := n.connect(ctx, pi); err != nil {
			n.log.Debug("mdns peer unreachable", "remote", pi.ID.String(), "err", err)
		}
	}()
}

type mdnsNotifee func(peer.AddrInfo)

func (f mdnsNotifee) HandlePeerFound(pi peer.AddrInfo) { f(pi) }

// Connect dials a peer given by a full multiaddr ending in /p2p/<peer id>,
// such as one of another node's Addrs.
func (n *Node) Connect(ctx context.Context, addr string) error {
	pi, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fmt.Errorf("connect %q: %w", addr, err)
	}
	return n.connect(ctx, *pi)
}

// ID returns the node's peer id, the value of From in what it publishes.
func (n *Node) ID() string { return n.self }

// Addrs returns the node's listen addresses as full multiaddrs ending in
// /p2p/<peer id>, usable as another node's Bootstrap entries.
func (n *Node) Addrs() []string {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	slices.Sort(out)
	return out
}

// Peers returns the sorted peer ids of the peers the node is connected to.
func (n *Node) Peers() []string {
	ps := n.host.Network().Peers()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	slices.Sort(out)
	return out
}

// Close leaves every topic, stops mDNS, the DHT and GossipSub and closes
// the host. Subscriptions end; their handlers are not called after Close returns.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	topics, bare := n.topics, n.bare
	n.topics, n.bare = nil, nil
	n.mu.Unlock()

	var errs []error
	for _, t := range topics {
		errs = append(errs, t.close())
	}
	for _, t := range bare {
		errs = append(errs, t.Close())
	}
	if n.mdns != nil {
		errs = append(errs, n.mdns.Close())
	}
	errs = append(errs, n.probe.close(n))
	if n.dht != nil {
		errs = append(errs, n.dht.Close())
	}
	n.cancel()
	errs = append(errs, n.host.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close gossip node: %w", err)
	}
	return nil
}

// idText maps peer ids to their text form. Encoding one (base58 of the
// multihash) cost about as much per received message as the envelope's
// header checks together; the authors a node hears are few and repeat.
type idText struct {
	m    sync.Map // peer.ID -> string
	size atomic.Int64
}

// maxIDText bounds the cache; when full it starts again empty.
const maxIDText = 4096

func (c *idText) text(id peer.ID) string {
	if s, ok := c.m.Load(id); ok {
		return s.(string)
	}
	if c.size.Add(1) > maxIDText {
		c.m.Clear()
		c.size.Store(1)
	}
	s := id.String()
	c.m.Store(id, s)
	return s
}
