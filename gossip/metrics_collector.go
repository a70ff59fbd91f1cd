package gossip

import (
	"github.com/prometheus/client_golang/prometheus"

	dht "github.com/libp2p/go-libp2p-kad-dht"

	"chorus/ops"
)

// rejectReasons are every reason a node counts, for zero-valued series.
var rejectReasons = []RejectReason{RejectMalformed, RejectOversized, RejectUnknownType, RejectStale, RejectOverHop,
	RejectSpoofed, RejectSelfEcho, RejectBadSignature}

// collector reads a node's state at scrape time: connections, the routing
// table, the meshes and the counters of stats.
type collector struct {
	n *Node

	peers, conns, streams, peerstore, listen, bootstrap, latencyMean, latencyMax *prometheus.Desc
	sent, received, connLimit, identity                                          *prometheus.Desc
	dhtPeers, dhtMode, dhtServer                                                 *prometheus.Desc
	rejected, dropped, mesh, topicPeers, topics, subscriptions                   *prometheus.Desc
}

func newCollector(n *Node) *collector {
	d := func(sub, name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ops.Namespace, sub, name), help, labels, nil)
	}
	return &collector{
		n:           n,
		peers:       d(ops.CategoryP2P, "peers", "Peers this node is connected to."),
		conns:       d(ops.CategoryP2P, "connections", "Open connections, by direction (inbound, outbound) and transport (tcp, quic).", "direction", "transport"),
		streams:     d(ops.CategoryP2P, "streams", "Open streams over all connections."),
		peerstore:   d(ops.CategoryP2P, "peerstore_peers", "Peers in the peerstore (known, connected or not, this node included)."),
		listen:      d(ops.CategoryP2P, "listen_addresses", "Addresses this node listens on."),
		bootstrap:   d(ops.CategoryP2P, "bootstrap_peers", "Bootstrap peers configured."),
		latencyMean: d(ops.CategoryP2P, "peer_latency_mean_seconds", "Mean of the round-trip time estimates (EWMA) of the connected peers; 0 with none measured."),
		latencyMax:  d(ops.CategoryP2P, "peer_latency_max_seconds", "Largest round-trip time estimate (EWMA) of a connected peer; 0 with none measured."),
		sent:        d(ops.CategoryP2P, "sent_bytes_total", "Bytes sent over libp2p streams."),
		received:    d(ops.CategoryP2P, "received_bytes_total", "Bytes received over libp2p streams."),
		connLimit:   d(ops.CategoryP2P, "connection_manager_limit", "The connection manager's water marks (low, high): above high it trims to low.", "mark"),
		identity:    d(ops.CategoryP2P, "identity_info", "Always 1; peer_id is this node's libp2p peer id.", "peer_id"),

		dhtPeers:  d(ops.CategoryDHT, "routing_table_peers", "Peers in the Kademlia routing table (0 when the DHT is off)."),
		dhtMode:   d(ops.CategoryDHT, "mode_info", "Always 1; mode is the configured DHT mode (auto, client, server, off).", "mode"),
		dhtServer: d(ops.CategoryDHT, "server", "1 while this node answers DHT queries (server mode), 0 as a client or with the DHT off."),

		rejected:      d(ops.CategoryPubSub, "messages_rejected_total", "Messages refused before any handler saw them, by reason.", "reason"),
		dropped:       d(ops.CategoryPubSub, "messages_dropped_total", "Messages GossipSub dropped on a full queue, by queue (outbound, validation, subscription).", "queue"),
		mesh:          d(ops.CategoryPubSub, "mesh_peers", "Peers in this node's GossipSub mesh, summed over the topics of each topic class.", "topic"),
		topicPeers:    d(ops.CategoryPubSub, "topic_peers", "Peers known to subscribe to the joined topics, summed over the topics of each topic class.", "topic"),
		topics:        d(ops.CategoryPubSub, "topics", "Topics this node has joined, by topic class.", "topic"),
		subscriptions: d(ops.CategoryPubSub, "subscriptions", "Active subscriptions (handlers) over all joined topics."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.peers, c.conns, c.streams, c.peerstore, c.listen, c.bootstrap, c.latencyMean, c.latencyMax,
		c.sent, c.received, c.connLimit, c.identity, c.dhtPeers, c.dhtMode, c.dhtServer,
		c.rejected, c.dropped, c.mesh, c.topicPeers, c.topics, c.subscriptions} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}

	// p2p
	peers := n.host.Network().Peers()
	gauge(c.peers, float64(len(peers)))
	byKind := map[[2]string]int{}
	for _, d := range []string{"inbound", "outbound"} {
		for _, t := range []string{"tcp", "quic"} {
			byKind[[2]string{d, t}] = 0
		}
	}
	streams := 0
	for _, conn := range n.host.Network().Conns() {
		byKind[[2]string{direction(conn), transportOf(conn.RemoteMultiaddr())}]++
		streams += len(conn.GetStreams())
	}
	for k, v := range byKind {
		gauge(c.conns, float64(v), k[0], k[1])
	}
	gauge(c.streams, float64(streams))
	gauge(c.peerstore, float64(len(n.host.Peerstore().Peers())))
	gauge(c.listen, float64(len(n.host.Addrs())))
	gauge(c.bootstrap, float64(n.metrics.bootstrap))
	var sum, most float64
	measured := 0
	for _, p := range peers {
		if l := n.host.Peerstore().LatencyEWMA(p).Seconds(); l > 0 {
			sum += l
			most = max(most, l)
			measured++
		}
	}
	mean := 0.0
	if measured > 0 {
		mean = sum / float64(measured)
	}
	gauge(c.latencyMean, mean)
	gauge(c.latencyMax, most)
	bw := n.metrics.bandwidth.GetBandwidthTotals()
	counter(c.sent, float64(bw.TotalOut))
	counter(c.received, float64(bw.TotalIn))
	gauge(c.connLimit, float64(n.metrics.connLow), "low")
	gauge(c.connLimit, float64(n.metrics.connHigh), "high")
	gauge(c.identity, 1, n.host.ID().String())

	// dht
	rt, server := 0, false
	if n.dht != nil {
		rt = n.dht.RoutingTable().Size()
		server = n.dht.Mode() == dht.ModeServer
	}
	gauge(c.dhtPeers, float64(rt))
	gauge(c.dhtMode, 1, n.dhtMode)
	gauge(c.dhtServer, b2f(server))

	// pubsub
	rej := n.stats.snapshot()
	for _, r := range rejectReasons {
		counter(c.rejected, float64(rej[r]), string(r))
	}
	drops := n.Drops()
	counter(c.dropped, float64(drops.OutboundQueue), "outbound")
	counter(c.dropped, float64(drops.ValidationQueue), "validation")
	counter(c.dropped, float64(drops.Subscription), "subscription")

	mesh := map[string]int{}
	n.stats.mu.Lock()
	for topic, m := range n.stats.mesh {
		mesh[topicClass(topic)] += len(m)
	}
	n.stats.mu.Unlock()
	n.mu.Lock()
	joined := make([]*Topic, 0, len(n.topics))
	for _, t := range n.topics {
		joined = append(joined, t)
	}
	n.mu.Unlock()
	topics, subscribers := map[string]int{}, map[string]int{}
	subs := 0
	for _, t := range joined {
		class := topicClass(t.name)
		topics[class]++
		subscribers[class] += len(t.t.ListPeers())
		t.mu.Lock()
		subs += len(t.subs)
		t.mu.Unlock()
	}
	for _, class := range topicClasses {
		gauge(c.mesh, float64(mesh[class]), class)
		gauge(c.topicPeers, float64(subscribers[class]), class)
		gauge(c.topics, float64(topics[class]), class)
	}
	gauge(c.subscriptions, float64(subs))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
