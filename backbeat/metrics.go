package backbeat

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's counters, plus a collector that reads its state
// (beat, tempo, drift, operations) at scrape time.
type metrics struct {
	framesPublished  prometheus.Counter
	framesReceived   prometheus.Counter
	framesMissed     prometheus.Counter
	relocks          prometheus.Counter
	drift            prometheus.Histogram
	claims           *prometheus.CounterVec
	claimsReceived   prometheus.Counter
	reportsPublished prometheus.Counter
	reportsReceived  prometheus.Counter
	dropped          prometheus.Counter
	forgotten        prometheus.Counter
}

// newMetrics registers the node's metrics on reg; a nil reg gives
// unregistered (working, unexported) metrics.
func newMetrics(reg prometheus.Registerer, n *Node) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "chorus_backbeat_" + name, Help: help})
	}
	m := &metrics{
		framesPublished: counter("frames_published_total", "Beat frames this node published as admin."),
		framesReceived:  counter("frames_received_total", "Beat frames received from the admin."),
		framesMissed:    counter("frames_missed_total", "Beat frames that never arrived (gaps in the beat index)."),
		relocks:         counter("relocks_total", "Times the beat clock jumped to a new timeline (first frame, new admin, stalled admin)."),
		drift: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chorus_backbeat_frame_drift_seconds",
			Help:    "tempo_drift_ms of each beat frame, in seconds and absolute: how far it arrived from where the local beat clock expected it.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 10, 14),
		}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chorus_backbeat_status_claims_total", Help: "Status claims this node emitted, by state.",
		}, []string{"state"}),
		claimsReceived:   counter("status_claims_received_total", "Status claims of other agents taken into bar reports (admin)."),
		reportsPublished: counter("bar_reports_published_total", "Bar reports this node published as admin."),
		reportsReceived:  counter("bar_reports_received_total", "Bar reports received from the admin."),
		dropped:          counter("messages_dropped_total", "Backbeat messages dropped because the node's inbox was full."),
		forgotten:        counter("operations_forgotten_total", "Operations dropped after staying open for three beat budgets: their end was never heard."),
	}
	for _, s := range ClaimStates() {
		m.claims.WithLabelValues(s)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.framesPublished, m.framesReceived, m.framesMissed, m.relocks, m.drift, m.claims,
		m.claimsReceived, m.reportsPublished, m.reportsReceived, m.dropped, m.forgotten, newStateCollector(n)} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register backbeat metrics: %w", err)
		}
	}
	return m, nil
}

// stateCollector reads the node's state at scrape time.
type stateCollector struct {
	n                                                   *Node
	beat, tempo, drift, degraded, admin, silent, phases *prometheus.Desc
}

func newStateCollector(n *Node) *stateCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("chorus_backbeat_"+name, help, labels, nil)
	}
	return &stateCollector{n: n,
		beat:     d("beat_index", "Current beat by this node's beat clock."),
		tempo:    d("tempo_bpm", "Tempo of this node's beat clock, beats per minute."),
		drift:    d("tempo_drift_seconds", "tempo_drift_ms of the latest beat frame, in seconds (signed: positive is late)."),
		degraded: d("degraded", "1 while no pulse is heard and the node runs on local timing."),
		admin:    d("admin", "1 while this node publishes the pulse."),
		silent:   d("silent_beats", "Expected beat frames overdue since the latest one."),
		phases:   d("operations", "Tracked operations by phase.", "phase"),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.beat, c.tempo, c.drift, c.degraded, c.admin, c.silent, c.phases} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.beat, float64(s.BeatIndex))
	gauge(c.tempo, s.TempoBPM)
	gauge(c.drift, s.DriftMS/1000)
	gauge(c.degraded, b2f(s.Degraded))
	gauge(c.admin, b2f(s.Admin))
	gauge(c.silent, float64(s.SilentBeats))
	counts := map[Phase]int{}
	for _, op := range s.Operations {
		counts[op.Phase]++
	}
	for _, p := range Phases() {
		gauge(c.phases, float64(counts[p]), string(p))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
