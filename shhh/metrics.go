package shhh

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/ops"
)

// Kinds of scans (kind label): Redact and RedactBytes scan text,
// RedactValue a value.
const (
	kindText  = "text"
	kindValue = "value"
)

// metrics are a Redactor's chorus_shhh_* metrics; nil records nothing.
// The totals by rule and the bytes scanned are the Redactor's own atomic
// counters, read at scrape time.
type metrics struct {
	scans, withFindings *prometheus.CounterVec
	duration            *prometheus.HistogramVec
	size                prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, r *Redactor) (*metrics, error) {
	m := &metrics{
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: ops.CategorySHHH, Name: "scans_total",
			Help: "Inputs scanned for secrets, by kind (text, value)."}, []string{"kind"}),
		withFindings: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: ops.CategorySHHH, Name: "scans_with_findings_total",
			Help: "Scanned inputs in which at least one secret was redacted, by kind."}, []string{"kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategorySHHH, Name: "scan_duration_seconds",
			Help: "Time to redact one input, by kind.", Buckets: ops.LatencyBuckets()}, []string{"kind"}),
		size: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategorySHHH, Name: "scan_size_bytes",
			Help: "Bytes of text scanned per input.", Buckets: ops.SizeBuckets()}),
	}
	for _, k := range []string{kindText, kindValue} {
		m.scans.WithLabelValues(k)
		m.withFindings.WithLabelValues(k)
		m.duration.WithLabelValues(k)
	}
	for _, c := range []prometheus.Collector{m.scans, m.withFindings, m.duration, m.size, newCollector(r)} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register shhh metrics: %w", err)
		}
	}
	return m, nil
}

// scanned records one scan of size bytes that began at start.
func (m *metrics) scanned(kind string, start time.Time, size int64, findings int) {
	if m == nil {
		return
	}
	m.scans.WithLabelValues(kind).Inc()
	if findings > 0 {
		m.withFindings.WithLabelValues(kind).Inc()
	}
	m.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	m.size.Observe(float64(size))
}

// collector reads the Redactor's counters at scrape time.
type collector struct {
	r                          *Redactor
	scannedBytes, found, rules *prometheus.Desc
}

func newCollector(r *Redactor) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ops.Namespace, ops.CategorySHHH, name), help, labels, nil)
	}
	return &collector{
		r:            r,
		scannedBytes: d("scanned_bytes_total", "Bytes of text scanned for secrets."),
		found:        d("redactions_total", "Secrets redacted, by rule and severity (rule unencodable: values that could not be checked and were replaced whole).", "rule", "severity"),
		rules:        d("rules", "Redaction rules in force, by severity.", "severity"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.scannedBytes
	ch <- c.found
	ch <- c.rules
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.scannedBytes, prometheus.CounterValue, float64(c.r.scanned.Load()))
	for i := range c.r.hits {
		name, sev := c.r.ruleOf(i)
		ch <- prometheus.MustNewConstMetric(c.found, prometheus.CounterValue, float64(c.r.hits[i].Load()), name, sev)
	}
	bySeverity := map[string]int{SeverityLow: 0, SeverityMedium: 0, SeverityHigh: 0, SeverityCritical: 0}
	for _, r := range c.r.rules {
		bySeverity[r.Severity]++
	}
	for sev, n := range bySeverity {
		ch <- prometheus.MustNewConstMetric(c.rules, prometheus.GaugeValue, float64(n), sev)
	}
}
