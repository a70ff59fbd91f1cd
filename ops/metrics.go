package ops

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace is the prefix of every chorus metric: names are
// chorus_<category>_<name>_<unit>, counters end in _total.
const Namespace = "chorus"

// Metric categories (SPEC section 8); each is the subsystem of the metrics
// of the package that owns that state.
const (
	CategoryP2P       = "p2p"
	CategoryDHT       = "dht"
	CategoryPubSub    = "pubsub"
	CategoryElection  = "election"
	CategoryTasks     = "tasks"
	CategorySandbox   = "sandbox"
	CategoryAI        = "ai"
	CategoryHealth    = "health"
	CategorySHHH      = "shhh"
	CategoryLicensing = "licensing"
	CategoryBackbeat  = "backbeat"
	CategorySystem    = "system"
)

// Categories returns the 12 metric categories in SPEC order.
func Categories() []string {
	return []string{CategoryP2P, CategoryDHT, CategoryPubSub, CategoryElection, CategoryTasks, CategorySandbox,
		CategoryAI, CategoryHealth, CategorySHHH, CategoryLicensing, CategoryBackbeat, CategorySystem}
}

// LatencyBuckets are the buckets of every latency histogram (seconds): 1 ms
// to 10 s in 1-2.5-5 steps, so that alert thresholds such as 0.5 s or 1 s
// fall on a bucket bound. A new slice each call: callers may not share one.
func LatencyBuckets() []float64 {
	return []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
}

// SizeBuckets are the buckets of every size histogram (bytes): 64 B to
// 16 MiB in steps of 4, covering a gossip message (at most 1 MiB) and a
// sandbox's output.
func SizeBuckets() []float64 {
	return prometheus.ExponentialBuckets(64, 4, 10)
}

// DurationBuckets are for the durations of whole units of work, which are
// not latencies: a sandbox run, a task execution or an LLM call, from 100 ms
// up to an hour (the default execution timeout is 10 minutes).
func DurationBuckets() []float64 {
	return []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
}

// MetricsHandler serves the metrics of g in the Prometheus text format (or
// OpenMetrics when the scraper asks for it). A collector that fails is
// reported in the log and the rest is still served.
func MetricsHandler(g prometheus.Gatherer, reg prometheus.Registerer) http.Handler {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
	if reg == nil {
		return h
	}
	return promhttp.InstrumentMetricHandler(reg, h)
}

// RegisterStandard registers the Go runtime and process collectors of
// client_golang on reg (go_* and process_* metrics), next to the chorus_
// ones.
func RegisterStandard(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
