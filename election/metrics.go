package election

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the driver's Prometheus metrics (category election). A nil
// *metrics records nothing.
type metrics struct {
	leaderChanges prometheus.Counter
	elections     *prometheus.CounterVec
	candidacies   *prometheus.CounterVec
	votes         *prometheus.CounterVec
	heartbeats    *prometheus.CounterVec
	splitBrains   prometheus.Counter
	quorumLost    prometheus.Counter
	failover      prometheus.Histogram
}

// failoverBuckets are the latency buckets (1 ms … 10 s) plus four more up
// to a minute: a failover takes about the heartbeat timeout, 15 s by default.
func failoverBuckets() []float64 {
	return append(prometheus.ExponentialBucketsRange(0.001, 10, 14), 15, 20, 30, 60)
}

// newMetrics registers the driver's metrics in reg; nil reg means none. The
// current term, leadership and membership are read from the driver's
// status at scrape time.
func newMetrics(reg prometheus.Registerer, d *Driver) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	const ns, sub = "chorus", "election"
	m := &metrics{
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "leader_changes_total",
			Help: "Times this node saw a new admin (or a new term of the same admin)."}),
		elections: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "elections_started_total",
			Help: "Elections this node started, by trigger."}, []string{"trigger"}),
		candidacies: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "candidacies_total",
			Help: "Election candidacies sent and received."}, []string{"direction"}),
		votes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "votes_total",
			Help: "Election votes (and a follower's endorsements of its admin) sent and received."}, []string{"direction"}),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "heartbeats_total",
			Help: "Admin heartbeats sent and received."}, []string{"direction"}),
		splitBrains: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "split_brains_total",
			Help: "Times this node saw two admins at once."}),
		quorumLost: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "quorum_lost_total",
			Help: "Times this node stepped down as admin because its majority went silent."}),
		failover: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "failover_duration_seconds",
			Help: "Time from the last sign of life of the previous admin to the next admin, as seen by this node.", Buckets: failoverBuckets()}),
	}
	for _, t := range Triggers() {
		m.elections.WithLabelValues(string(t))
	}
	for _, v := range []*prometheus.CounterVec{m.candidacies, m.votes, m.heartbeats} {
		v.WithLabelValues("sent")
		v.WithLabelValues("received")
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.leaderChanges, m.elections, m.candidacies, m.votes, m.heartbeats, m.splitBrains,
		m.quorumLost, m.failover, statusCollector{d}} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register election metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) sent(k Kind)     { m.count(k, "sent") }
func (m *metrics) received(k Kind) { m.count(k, "received") }

func (m *metrics) count(k Kind, direction string) {
	if m == nil {
		return
	}
	switch k {
	case KindCandidacy:
		m.candidacies.WithLabelValues(direction).Inc()
	case KindVote:
		m.votes.WithLabelValues(direction).Inc()
	case KindHeartbeat:
		m.heartbeats.WithLabelValues(direction).Inc()
	}
}

func (m *metrics) event(msg Msg) {
	if m == nil {
		return
	}
	switch msg.Kind {
	case KindElectionStarted:
		m.elections.WithLabelValues(string(msg.Trigger)).Inc()
	case KindSplitBrain:
		m.splitBrains.Inc()
	case KindQuorumLost:
		m.quorumLost.Inc()
	case KindAdminChanged:
		if msg.Node != "" {
			m.leaderChanges.Inc()
		}
	}
}

func (m *metrics) observeFailover(seconds float64) {
	if m != nil {
		m.failover.Observe(seconds)
	}
}

// statusCollector reads the driver's status at scrape time.
type statusCollector struct{ d *Driver }

var (
	descTerm = prometheus.NewDesc("chorus_election_term", "The current admin term this node knows (the fencing token).", nil, nil)
	descLead = prometheus.NewDesc("chorus_election_is_leader", "1 while this node is the admin.", nil, nil)
	descKnow = prometheus.NewDesc("chorus_election_members", "Election members this node knows (heard within the member TTL), itself included.", nil, nil)
	descLive = prometheus.NewDesc("chorus_election_live_members", "Election members heard within the heartbeat timeout, itself included.", nil, nil)
	descAdm  = prometheus.NewDesc("chorus_election_admin_known", "1 while this node knows an admin.", nil, nil)
)

func (statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTerm, descLead, descKnow, descLive, descAdm} {
		ch <- d
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.Status()
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(s.Term))
	ch <- prometheus.MustNewConstMetric(descLead, prometheus.GaugeValue, boolValue(s.Leading))
	ch <- prometheus.MustNewConstMetric(descKnow, prometheus.GaugeValue, float64(s.Members))
	ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, float64(s.Live))
	ch <- prometheus.MustNewConstMetric(descAdm, prometheus.GaugeValue, boolValue(s.Admin != ""))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
