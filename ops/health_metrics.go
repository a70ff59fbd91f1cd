package ops

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// healthMetrics are the chorus_health_* metrics of one Health. Its methods
// do nothing on a nil receiver (a Health without metrics).
type healthMetrics struct {
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	transitions *prometheus.CounterVec
	drains      prometheus.Counter
}

func newHealthMetrics(reg prometheus.Registerer, h *Health) (*healthMetrics, error) {
	m := &healthMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: CategoryHealth, Name: "check_runs_total",
			Help: "Completed runs of each health check, by result (pass or fail).",
		}, []string{"check", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: CategoryHealth, Name: "check_duration_seconds",
			Help:    "How long each health check run took.",
			Buckets: LatencyBuckets(),
		}, []string{"check"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: CategoryHealth, Name: "check_transitions_total",
			Help: "Changes of a health check's state (its first result counts as one), by the state entered.",
		}, []string{"check", "to"}),
		drains: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: CategoryHealth, Name: "drains_total",
			Help: "Times this process started draining (a critical check failed its threshold of runs, or a stop was requested).",
		}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.duration, m.transitions, m.drains, newHealthCollector(h)} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register health metrics: %w", err)
		}
	}
	return m, nil
}

// registered creates the series of a new check, so that they read 0
// instead of being absent before its first run.
func (m *healthMetrics) registered(check string) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(check, "pass")
	m.runs.WithLabelValues(check, "fail")
	m.transitions.WithLabelValues(check, StatusHealthy)
	m.transitions.WithLabelValues(check, StatusUnhealthy)
	m.duration.WithLabelValues(check)
}

func (m *healthMetrics) observe(check string, healthy bool, latency time.Duration, transition bool) {
	if m == nil {
		return
	}
	result, state := "pass", StatusHealthy
	if !healthy {
		result, state = "fail", StatusUnhealthy
	}
	m.runs.WithLabelValues(check, result).Inc()
	m.duration.WithLabelValues(check).Observe(latency.Seconds())
	if transition {
		m.transitions.WithLabelValues(check, state).Inc()
	}
}

func (m *healthMetrics) drained() {
	if m == nil {
		return
	}
	m.drains.Inc()
}

// healthCollector reads the check table at scrape time.
type healthCollector struct {
	h                                            *Health
	status, up, failures, lastRun, latency       *prometheus.Desc
	ready, draining, live, checks, failThreshold *prometheus.Desc
}

func newHealthCollector(h *Health) *healthCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, CategoryHealth, name), help, labels, nil)
	}
	return &healthCollector{
		h:             h,
		status:        d("status", "1 for the overall health status this worker reports on /health (healthy, degraded, unhealthy, starting), 0 for the others.", "status"),
		up:            d("check_up", "1 when the latest run of the check passed, 0 when it failed or has not run yet.", "check", "critical"),
		failures:      d("check_consecutive_failures", "Failed runs of the check since its last healthy one.", "check"),
		lastRun:       d("check_last_run_timestamp_seconds", "When the latest run of the check finished (Unix time).", "check"),
		latency:       d("check_latency_seconds", "How long the latest run of the check took.", "check"),
		ready:         d("ready", "1 when the worker is ready (/health/ready answers 200): every critical check passed and it is not draining."),
		draining:      d("draining", "1 while the worker drains: it stops taking work and will exit."),
		live:          d("live", "1 while /health/live answers 200 (the check scheduler is not wedged)."),
		checks:        d("checks", "Registered health checks, by criticality.", "critical"),
		failThreshold: d("check_failure_threshold", "Consecutive failed runs of a critical check that drain the worker.", "check"),
	}
}

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.status, c.up, c.failures, c.lastRun, c.latency, c.ready, c.draining, c.live, c.checks, c.failThreshold} {
		ch <- d
	}
}

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.h.Snapshot()
	for _, s := range []string{StatusHealthy, StatusDegraded, StatusUnhealthy, StatusStarting} {
		ch <- prometheus.MustNewConstMetric(c.status, prometheus.GaugeValue, boolValue(r.Status == s), s)
	}
	counts := map[bool]int{}
	c.h.mu.Lock()
	thresholds := make(map[string]int, len(c.h.checks))
	for name, e := range c.h.checks {
		if e.check.Critical {
			thresholds[name] = e.check.FailureThreshold
		}
	}
	c.h.mu.Unlock()
	for _, s := range r.Checks {
		counts[s.Critical]++
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolValue(s.Runs > 0 && s.Healthy), s.Name, strconv.FormatBool(s.Critical))
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.GaugeValue, float64(s.ConsecutiveFailures), s.Name)
		if s.Runs > 0 {
			ch <- prometheus.MustNewConstMetric(c.lastRun, prometheus.GaugeValue, float64(s.LastRun.UnixNano())/1e9, s.Name)
			ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, s.LatencyMS/1000, s.Name)
		}
		if n, ok := thresholds[s.Name]; ok {
			ch <- prometheus.MustNewConstMetric(c.failThreshold, prometheus.GaugeValue, float64(n), s.Name)
		}
	}
	for _, critical := range []bool{false, true} {
		ch <- prometheus.MustNewConstMetric(c.checks, prometheus.GaugeValue, float64(counts[critical]), strconv.FormatBool(critical))
	}
	ready := !r.Draining && len(failingCritical(r.Checks)) == 0
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, boolValue(ready))
	ch <- prometheus.MustNewConstMetric(c.draining, prometheus.GaugeValue, boolValue(r.Draining))
	alive, _ := c.h.Live()
	ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, boolValue(alive))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
