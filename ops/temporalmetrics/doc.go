// Package temporalmetrics puts the Temporal SDK's metrics (temporal_*:
// requests, polls, task slots, workflow and activity latencies) on the
// worker's Prometheus registry, next to the chorus_* metrics. New returns a
// client.MetricsHandler for client.Options.MetricsHandler.
//
// The SDK names a metric and tags it as it goes, and the same metric may be
// emitted with different tag sets (a failure adds status_code). Prometheus
// wants one label set per metric family, so the handler keeps every series
// it has seen and, at scrape time, gives each family the union of its tag
// keys, with an empty value (which Prometheus treats as absent) where a
// series lacks one. Tags with empty values are dropped. Counters are
// exported as <name>_total, timers as histograms <name>_seconds with
// ops.LatencyBuckets, gauges under their own name; each family's help
// names the SDK metric. A name used first as one kind and later as another
// keeps its first kind; observations of the other kind are dropped and
// counted by Handler.Dropped.
//
// Invariants: the series are the SDK's own (no chorus task key ever becomes
// a label: the SDK tags by namespace, task queue, workflow and activity
// type, operation and status code); nothing is registered in a global
// registry.
//
// Concurrency: a Handler and every Counter, Gauge and Timer it returns are
// safe for concurrent use; WithTags handlers share one set of series.
package temporalmetrics
