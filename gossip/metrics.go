package gossip

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	lp2pmetrics "github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"chorus/ops"
)

// Topic classes: the topic label of the chorus_pubsub_* metrics. Issue
// rooms and role topics are one class each, so the label stays bounded
// however many issues and roles there are.
const (
	classCoordination    = "coordination"
	classMetaDiscussion  = "meta_discussion"
	classContextFeedback = "context_feedback"
	classElection        = "election"
	classBackbeat        = "backbeat"
	classIssueRoom       = "issue_room"
	classRole            = "role"
	classProbe           = "probe"
	classOther           = "other"
)

var topicClasses = []string{classCoordination, classMetaDiscussion, classContextFeedback, classElection, classBackbeat,
	classIssueRoom, classRole, classProbe, classOther}

// topicClass maps a topic name to its class.
func topicClass(name string) string {
	switch name {
	case TopicCoordination:
		return classCoordination
	case TopicMetaDiscussion:
		return classMetaDiscussion
	case TopicContextFeedback:
		return classContextFeedback
	case TopicElection:
		return classElection
	case TopicBackbeat:
		return classBackbeat
	}
	switch {
	case strings.HasPrefix(name, "CHORUS/meta/issue/"):
		return classIssueRoom
	case strings.HasPrefix(name, "CHORUS/roles/"):
		return classRole
	case strings.HasPrefix(name, probeTopicPrefix):
		return classProbe
	}
	return classOther
}

// homeClass is the topic class where a message type lives, for creating
// the delivered series up front.
func homeClass(t MessageType) string {
	return topicClass(t.Topic())
}

// Operation results used as label values.
const (
	resultOK       = "ok"
	resultError    = "error"
	resultNotFound = "not_found"
	resultSkipped  = "skipped"
)

// metrics are a node's chorus_p2p_*, chorus_dht_* and chorus_pubsub_*
// metrics. They exist even without a registry (then nothing reads them),
// so the node records unconditionally. As a pubsub.RawTracer its methods
// run in GossipSub's event loop and only touch atomic counters.
type metrics struct {
	bandwidth *byteTotals
	bootstrap int // configured bootstrap peers
	connLow   int
	connHigh  int

	// p2p
	connsOpened, connsClosed *prometheus.CounterVec
	bootstrapFailures        prometheus.Counter
	mdnsFound                prometheus.Counter
	// dht
	dhtOps           *prometheus.CounterVec
	dhtOpDuration    *prometheus.HistogramVec
	dhtProbes        *prometheus.CounterVec
	dhtProbeDuration prometheus.Histogram
	dhtStored        prometheus.Counter
	// pubsub
	published, received, delivered, duplicates *prometheus.CounterVec
	messageSize                                *prometheus.HistogramVec
	messageAge                                 prometheus.Histogram
	rpcs                                       *prometheus.CounterVec
	rpcWrite                                   prometheus.Histogram
	grafts, prunes                             *prometheus.CounterVec
	throttled                                  prometheus.Counter
	probes                                     *prometheus.CounterVec
	probeDuration                              prometheus.Histogram

	// The series that every message touches, resolved once: a label
	// lookup hashes its values and takes a lock, several times per
	// message per node. Both maps are read-only after newMetrics.
	byClass         map[string]*classSeries
	deliveredByType map[deliveredKey]prometheus.Counter
	rpcsIn, rpcsOut prometheus.Counter
	sizeIn, sizeOut prometheus.Observer
}

// classSeries are the per-message series of one topic class.
type classSeries struct {
	publishedOK, publishedErr, received, duplicates, grafts, prunes prometheus.Counter
}

type deliveredKey struct{ class, typ string }

var _ pubsub.RawTracer = (*metrics)(nil)

func newMetrics(cfg Config) *metrics {
	counter := func(sub, name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: sub, Name: name, Help: help}, labels)
	}
	m := &metrics{
		bandwidth: &byteTotals{},
		bootstrap: len(cfg.Bootstrap),
		connLow:   cfg.ConnLow,
		connHigh:  cfg.ConnHigh,

		connsOpened: counter(ops.CategoryP2P, "connections_opened_total", "Connections opened, by direction (inbound, outbound).", "direction"),
		connsClosed: counter(ops.CategoryP2P, "connections_closed_total", "Connections closed, by direction (inbound, outbound).", "direction"),
		bootstrapFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryP2P,
			Name: "bootstrap_dial_failures_total", Help: "Bootstrap peers that could not be reached at start."}),
		mdnsFound: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryP2P,
			Name: "mdns_discoveries_total", Help: "Peers discovered on the local network by mDNS (repeats included)."}),

		dhtOps: counter(ops.CategoryDHT, "operations_total", "DHT operations of this node (find_peer, put, get), by result (ok, not_found, error).", "op", "result"),
		dhtOpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryDHT,
			Name: "operation_duration_seconds", Help: "How long DHT operations took, by operation.", Buckets: ops.LatencyBuckets()}, []string{"op"}),
		dhtProbes: counter(ops.CategoryDHT, "probes_total", "DHT put/get probes, by result (ok, error, skipped when the routing table is empty).", "result"),
		dhtProbeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryDHT,
			Name: "probe_duration_seconds", Help: "How long a DHT put/get probe took.", Buckets: ops.LatencyBuckets()}),
		dhtStored: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryDHT,
			Name: "records_stored_total", Help: "Value records written to this node's DHT store (records peers put here, and this node's own)."}),

		published:  counter(ops.CategoryPubSub, "messages_published_total", "Messages this node published, by topic class and result (ok, error).", "topic", "result"),
		received:   counter(ops.CategoryPubSub, "messages_received_total", "Messages received from peers that entered validation, by topic class.", "topic"),
		delivered:  counter(ops.CategoryPubSub, "messages_delivered_total", "Messages from peers accepted and delivered to this node's subscribers, by topic class and message type.", "topic", "type"),
		duplicates: counter(ops.CategoryPubSub, "duplicate_messages_total", "Messages received again and dropped as already seen, by topic class.", "topic"),
		messageSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryPubSub,
			Name: "message_size_bytes", Help: "Size of message payloads, by direction (in: received from peers, out: published).", Buckets: ops.SizeBuckets()}, []string{"direction"}),
		messageAge: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryPubSub,
			Name: "message_age_seconds", Help: "Time from a delivered message's timestamp (the sender's clock) to its delivery here.", Buckets: ops.LatencyBuckets()}),
		rpcs: counter(ops.CategoryPubSub, "rpcs_total", "GossipSub RPCs, by direction (in, out).", "direction"),
		rpcWrite: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryPubSub,
			Name: "rpc_write_duration_seconds", Help: "Time spent writing one RPC to a peer's stream.", Buckets: ops.LatencyBuckets()}),
		grafts: counter(ops.CategoryPubSub, "mesh_grafts_total", "Peers grafted onto this node's mesh, by topic class.", "topic"),
		prunes: counter(ops.CategoryPubSub, "mesh_prunes_total", "Peers pruned from this node's mesh, by topic class.", "topic"),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryPubSub,
			Name: "peers_throttled_total", Help: "Times GossipSub's peer gater throttled a peer."}),
		probes: counter(ops.CategoryPubSub, "probes_total", "Pubsub loopback probes, by result (ok, error).", "result"),
		probeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryPubSub,
			Name: "probe_duration_seconds", Help: "How long a pubsub loopback probe took, publish to local delivery.", Buckets: ops.LatencyBuckets()}),
	}
	// Bounded label values are created up front, so each series reads 0
	// rather than being absent (which rate() and alerts cannot see).
	for _, d := range []string{"inbound", "outbound"} {
		m.connsOpened.WithLabelValues(d)
		m.connsClosed.WithLabelValues(d)
	}
	for _, op := range []string{"find_peer", "put", "get"} {
		m.dhtOpDuration.WithLabelValues(op)
		for _, r := range []string{resultOK, resultNotFound, resultError} {
			m.dhtOps.WithLabelValues(op, r)
		}
	}
	for _, r := range []string{resultOK, resultError, resultSkipped} {
		m.dhtProbes.WithLabelValues(r)
	}
	m.byClass = make(map[string]*classSeries, len(topicClasses))
	for _, c := range topicClasses {
		m.byClass[c] = &classSeries{
			publishedOK:  m.published.WithLabelValues(c, resultOK),
			publishedErr: m.published.WithLabelValues(c, resultError),
			received:     m.received.WithLabelValues(c),
			duplicates:   m.duplicates.WithLabelValues(c),
			grafts:       m.grafts.WithLabelValues(c),
			prunes:       m.prunes.WithLabelValues(c),
		}
	}
	m.deliveredByType = make(map[deliveredKey]prometheus.Counter)
	for _, t := range MessageTypes() {
		k := deliveredKey{homeClass(t), string(t)}
		m.deliveredByType[k] = m.delivered.WithLabelValues(k.class, k.typ)
	}
	m.rpcsIn, m.rpcsOut = m.rpcs.WithLabelValues("in"), m.rpcs.WithLabelValues("out")
	m.sizeIn, m.sizeOut = m.messageSize.WithLabelValues("in"), m.messageSize.WithLabelValues("out")
	for _, r := range []string{resultOK, resultError} {
		m.probes.WithLabelValues(r)
	}
	return m
}

// register puts the metrics and a collector reading n on reg (none when
// reg is nil).
func (m *metrics) register(reg prometheus.Registerer, n *Node) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		m.connsOpened, m.connsClosed, m.bootstrapFailures, m.mdnsFound,
		m.dhtOps, m.dhtOpDuration, m.dhtProbes, m.dhtProbeDuration, m.dhtStored,
		m.published, m.received, m.delivered, m.duplicates, m.messageSize, m.messageAge, m.rpcs, m.rpcWrite,
		m.grafts, m.prunes, m.throttled, m.probes, m.probeDuration,
		newCollector(n),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register gossip metrics: %w", err)
		}
	}
	return nil
}

// notifiee counts connections as they open and close.
func (m *metrics) notifiee() network.Notifiee {
	return &network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { m.connsOpened.WithLabelValues(direction(c)).Inc() },
		DisconnectedF: func(_ network.Network, c network.Conn) { m.connsClosed.WithLabelValues(direction(c)).Inc() },
	}
}

func direction(c network.Conn) string {
	if c.Stat().Direction == network.DirInbound {
		return "inbound"
	}
	return "outbound"
}

// dhtOp records one DHT operation: a nil error is ok, a not-found error
// (ErrPeerNotFound, routing.ErrNotFound) not_found.
func (m *metrics) dhtOp(op string, start time.Time, err error, notFound bool) {
	result := resultOK
	switch {
	case notFound:
		result = resultNotFound
	case err != nil:
		result = resultError
	}
	m.dhtOps.WithLabelValues(op, result).Inc()
	m.dhtOpDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// probed records a probe's outcome.
func (m *metrics) probed(kind string, start time.Time, err error) {
	result := resultOK
	switch {
	case errors.Is(err, ErrNoDHTPeers):
		result = resultSkipped
	case err != nil:
		result = resultError
	}
	if kind == "dht" {
		m.dhtProbes.WithLabelValues(result).Inc()
		m.dhtProbeDuration.Observe(time.Since(start).Seconds())
		return
	}
	m.probes.WithLabelValues(result).Inc()
	m.probeDuration.Observe(time.Since(start).Seconds())
}

// publishedMsg records one publish of size bytes on topic.
func (m *metrics) publishedMsg(topic string, size int, err error) {
	c := m.byClass[topicClass(topic)]
	if err != nil {
		c.publishedErr.Inc()
		return
	}
	c.publishedOK.Inc()
	m.sizeOut.Observe(float64(size))
}

// RawTracer: called only for messages from other peers (pubsub leaves this
// node's own publishes out of the raw trace).

func (m *metrics) ValidateMessage(msg *pubsub.Message) {
	m.byClass[topicClass(msg.GetTopic())].received.Inc()
	m.sizeIn.Observe(float64(len(msg.GetData())))
}

func (m *metrics) DeliverMessage(msg *pubsub.Message) {
	typ := "unknown"
	if e, ok := msg.ValidatorData.(Envelope); ok {
		typ = string(e.Type)
		if !e.Timestamp.IsZero() {
			m.messageAge.Observe(max(0, time.Since(e.Timestamp).Seconds()))
		}
	}
	k := deliveredKey{topicClass(msg.GetTopic()), typ}
	if c, ok := m.deliveredByType[k]; ok {
		c.Inc()
		return
	}
	m.delivered.WithLabelValues(k.class, k.typ).Inc()
}

func (m *metrics) DuplicateMessage(msg *pubsub.Message) {
	m.byClass[topicClass(msg.GetTopic())].duplicates.Inc()
}

func (m *metrics) Graft(_ peer.ID, topic string) { m.byClass[topicClass(topic)].grafts.Inc() }
func (m *metrics) Prune(_ peer.ID, topic string) { m.byClass[topicClass(topic)].prunes.Inc() }
func (m *metrics) ThrottlePeer(peer.ID)          { m.throttled.Inc() }
func (m *metrics) RecvRPC(*pubsub.RPC)           { m.rpcsIn.Inc() }
func (m *metrics) SendRPC(*pubsub.RPC, peer.ID)  { m.rpcsOut.Inc() }
func (m *metrics) SendRPCCompleted(_ *pubsub.RPC, _ peer.ID, d time.Duration) {
	m.rpcWrite.Observe(d.Seconds())
}
func (m *metrics) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (m *metrics) OnClosedOutboundStream(peer.ID)           {}
func (m *metrics) Join(string)                              {}
func (m *metrics) Leave(string)                             {}
func (m *metrics) RejectMessage(*pubsub.Message, string)    {} // counted by stats, by reason
func (m *metrics) DropRPC(*pubsub.RPC, peer.ID)             {} // counted by stats
func (m *metrics) UndeliverableMessage(*pubsub.Message)     {} // counted by stats

// transportOf names the transport of a connection's address.
func transportOf(a ma.Multiaddr) string {
	if a == nil {
		return "other"
	}
	for _, p := range a.Protocols() {
		switch p.Code {
		case ma.P_QUIC_V1, ma.P_QUIC:
			return "quic"
		}
	}
	for _, p := range a.Protocols() {
		if p.Code == ma.P_TCP {
			return "tcp"
		}
	}
	return "other"
}

// byteTotals is the host's bandwidth reporter. It keeps the two totals the
// metrics export (chorus_p2p_bytes_*) and nothing per peer or protocol:
// libp2p's BandwidthCounter looks up a meter per protocol and per peer in
// a sync.Map for every stream read and write, which cost more CPU per
// gossip message than the totals are worth. Per-peer and per-protocol
// queries return zero Stats.
type byteTotals struct{ in, out atomic.Int64 }

var _ lp2pmetrics.Reporter = (*byteTotals)(nil)

func (b *byteTotals) LogSentMessage(n int64)                           { b.out.Add(n) }
func (b *byteTotals) LogRecvMessage(n int64)                           { b.in.Add(n) }
func (b *byteTotals) LogSentMessageStream(int64, protocol.ID, peer.ID) {}
func (b *byteTotals) LogRecvMessageStream(int64, protocol.ID, peer.ID) {}
func (b *byteTotals) GetBandwidthForPeer(peer.ID) lp2pmetrics.Stats    { return lp2pmetrics.Stats{} }
func (b *byteTotals) GetBandwidthForProtocol(protocol.ID) lp2pmetrics.Stats {
	return lp2pmetrics.Stats{}
}
func (b *byteTotals) GetBandwidthTotals() lp2pmetrics.Stats {
	return lp2pmetrics.Stats{TotalIn: b.in.Load(), TotalOut: b.out.Load()}
}
func (b *byteTotals) GetBandwidthByPeer() map[peer.ID]lp2pmetrics.Stats         { return nil }
func (b *byteTotals) GetBandwidthByProtocol() map[protocol.ID]lp2pmetrics.Stats { return nil }
func (b *byteTotals) Reset()                                                    { b.in.Store(0); b.out.Store(0) }
func (b *byteTotals) TrimIdle(time.Time)                                        {}
