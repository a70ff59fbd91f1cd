package licensing

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets are 1 ms … 10 s, the project's latency buckets.
var latencyBuckets = prometheus.ExponentialBucketsRange(0.001, 10, 14)

// gateMetrics are the gate's; nil when no registry was given.
type gateMetrics struct {
	validations *prometheus.CounterVec
	requests    *prometheus.HistogramVec
	opens       prometheus.Counter
}

// gateCollector reads the gate's state at scrape time.
type gateCollector struct {
	g                                        *Gate
	breaker, allowed, grace, lease, licenseD *prometheus.Desc
}

func newGateMetrics(reg prometheus.Registerer, g *Gate) (*gateMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &gateMetrics{
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chorus_licensing_validations_total",
			Help: "License validations by result: ok (the authority granted or renewed the lease), cached, grace (started on the offline grace), refused, unreachable.",
		}, []string{"result"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chorus_licensing_request_duration_seconds",
			Help:    "Latency of the gate's calls to the license authority, by operation (activate, heartbeat).",
			Buckets: latencyBuckets,
		}, []string{"op"}),
		opens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chorus_licensing_breaker_opens_total",
			Help: "Times the circuit breaker in front of the license authority opened.",
		}),
	}
	c := &gateCollector{
		g:        g,
		breaker:  prometheus.NewDesc("chorus_licensing_breaker_state", "Circuit breaker in front of the license authority: 0 closed, 1 half-open, 2 open.", nil, nil),
		allowed:  prometheus.NewDesc("chorus_licensing_allowed", "1 when the license allows this node to take new work, else 0.", nil, nil),
		grace:    prometheus.NewDesc("chorus_licensing_grace_remaining_seconds", "Seconds of offline grace left after the last successful validation (0 when none).", nil, nil),
		lease:    prometheus.NewDesc("chorus_licensing_lease_expiry_timestamp_seconds", "When this node's seat lease expires unless renewed (Unix time; 0 when none).", nil, nil),
		licenseD: prometheus.NewDesc("chorus_licensing_license_expiry_timestamp_seconds", "When this node's license expires (Unix time; 0 when unknown).", nil, nil),
	}
	for _, col := range []prometheus.Collector{m.validations, m.requests, m.opens, c} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	// Show every result from the start, so rate() works on the first one.
	for _, r := range []string{"ok", "cached", "grace", "refused", "unreachable"} {
		m.validations.WithLabelValues(r)
	}
	return m, nil
}

func (m *gateMetrics) validation(result string) {
	if m != nil {
		m.validations.WithLabelValues(result).Inc()
	}
}

func (m *gateMetrics) request(op string, d time.Duration) {
	if m != nil {
		m.requests.WithLabelValues(op).Observe(d.Seconds())
	}
}

func (m *gateMetrics) breakerOpened() {
	if m != nil {
		m.opens.Inc()
	}
}

func (c *gateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.breaker, c.allowed, c.grace, c.lease, c.licenseD} {
		ch <- d
	}
}

func (c *gateCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.g
	g.mu.Lock()
	now := g.now()
	state := g.breaker.at(now)
	allowed := g.allowedLocked(now) == nil
	var grace, lease, lic float64
	if g.have {
		grace = max(0, g.claims.Issued().Add(g.cfg.Grace).Sub(now).Seconds())
		lease, lic = float64(g.claims.ExpiresAt), float64(g.claims.LicenseExpiresAt)
	}
	g.mu.Unlock()
	b := 0.0
	if allowed {
		b = 1
	}
	ch <- prometheus.MustNewConstMetric(c.breaker, prometheus.GaugeValue, float64(state))
	ch <- prometheus.MustNewConstMetric(c.allowed, prometheus.GaugeValue, b)
	ch <- prometheus.MustNewConstMetric(c.grace, prometheus.GaugeValue, grace)
	ch <- prometheus.MustNewConstMetric(c.lease, prometheus.GaugeValue, lease)
	ch <- prometheus.MustNewConstMetric(c.licenseD, prometheus.GaugeValue, lic)
}

// authorityMetrics are the authority's; nil when no registry was given.
type authorityMetrics struct {
	requests *prometheus.CounterVec
}

// authorityCollector reads the store at scrape time.
type authorityCollector struct {
	a               *Authority
	seats, licenses *prometheus.Desc
}

func newAuthorityMetrics(reg prometheus.Registerer, a *Authority) (*authorityMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &authorityMetrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chorus_licensing_authority_requests_total",
		Help: "Seat requests the license authority answered, by operation and result (ok or the error code).",
	}, []string{"op", "result"})}
	c := &authorityCollector{
		a:        a,
		seats:    prometheus.NewDesc("chorus_licensing_seats_in_use", "Live seat leases over all licenses of this authority.", nil, nil),
		licenses: prometheus.NewDesc("chorus_licensing_licenses", "Licenses of this authority by state (active, revoked, expired).", []string{"state"}, nil),
	}
	for _, col := range []prometheus.Collector{m.requests, c} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *authorityMetrics) observe(op string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = CodeInternal
		for _, c := range codes {
			if errors.Is(err, c.err) {
				result = c.code
				break
			}
		}
	}
	m.requests.WithLabelValues(op, result).Inc()
}

func (c *authorityCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.seats
	ch <- c.licenses
}

// Collect reads the store; a failing read reports an invalid metric so the
// scrape shows the error instead of a wrong number.
func (c *authorityCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.a.now()
	n, err := countLive(ctx, c.a.store.db, now)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.seats, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.seats, prometheus.GaugeValue, float64(n))
	}
	ls, err := listLicenses(ctx, c.a.store.db)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.licenses, err)
		return
	}
	counts := map[string]int{StateActive: 0, StateRevoked: 0, StateExpired: 0}
	for _, l := range ls {
		counts[l.State(now)]++
	}
	for _, s := range []string{StateActive, StateRevoked, StateExpired} {
		ch <- prometheus.MustNewConstMetric(c.licenses, prometheus.GaugeValue, float64(counts[s]), s)
	}
}
