package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/ops"
	"chorus/sandbox"
)

// Run outcomes, the outcome label of chorus_sandbox_runs_total.
const (
	outcomeOK        = "ok"        // exit code 0
	outcomeNonzero   = "nonzero"   // the command failed: a Result, not a sandbox failure
	outcomeTimeout   = "timeout"   // Spec.Timeout killed it
	outcomeOOM       = "oom"       // the memory limit killed it
	outcomeCancelled = "cancelled" // ctx ended (the activity was cancelled)
	outcomeInvalid   = "invalid"   // the Spec was refused
	outcomeError     = "error"     // the sandbox itself failed (daemon, image, mounts)
)

var outcomes = []string{outcomeOK, outcomeNonzero, outcomeTimeout, outcomeOOM, outcomeCancelled, outcomeInvalid, outcomeError}

// Docker API operations, the op label of the operation metrics.
const (
	opCreate    = "create"
	opAttach    = "attach"
	opStart     = "start"      // a cold container's start
	opWarmStart = "warm_start" // sending the command to a pool container
	opKill      = "kill"
	opInspect   = "inspect"
	opRemove    = "remove"
)

var operations = []string{opCreate, opAttach, opStart, opWarmStart, opKill, opInspect, opRemove}

// memoryBuckets bound a sandbox's peak memory: 1 MiB to 4 GiB, doubling
// (the default limit is 512 MiB).
func memoryBuckets() []float64 { return prometheus.ExponentialBuckets(1<<20, 2, 13) }

// metrics are a Runner's chorus_sandbox_* metrics. They exist without a
// registry too (then nothing reads them), so the runner records
// unconditionally.
type metrics struct {
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	inFlight    prometheus.Gauge
	output      prometheus.Histogram
	cpu         prometheus.Counter
	memory      prometheus.Histogram
	opDuration  *prometheus.HistogramVec
	opErrors    *prometheus.CounterVec
	refills     *prometheus.CounterVec
	evictions   prometheus.Counter
	misses      prometheus.Counter
	reaped      prometheus.Counter
	images      *prometheus.CounterVec
	pings       *prometheus.CounterVec
	removalFail prometheus.Counter
	egressRuns  prometheus.Counter
}

func newMetrics() *metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: ops.Namespace, Subsystem: ops.CategorySandbox, Name: name, Help: help}
	}
	hist := func(name, help string, buckets []float64) prometheus.HistogramOpts {
		return prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategorySandbox, Name: name, Help: help, Buckets: buckets}
	}
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts(opts("runs_total",
			"Sandbox runs, by mode (warm, cold) and outcome (ok, nonzero, timeout, oom, cancelled, invalid, error; error is a failure of the sandbox itself).")),
			[]string{"mode", "outcome"}),
		duration: prometheus.NewHistogramVec(hist("run_duration_seconds",
			"How long the command ran in its container, by mode.", ops.DurationBuckets()), []string{"mode"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts(opts("runs_in_flight", "Sandbox runs in progress."))),
		output:   prometheus.NewHistogram(hist("output_bytes", "Combined stdout and stderr bytes of a run.", ops.SizeBuckets())),
		cpu:      prometheus.NewCounter(prometheus.CounterOpts(opts("cpu_seconds_total", "CPU time used by sandboxed commands (sampled about once a second)."))),
		memory:   prometheus.NewHistogram(hist("peak_memory_bytes", "Peak memory of a run (sampled about once a second; short runs report 0).", memoryBuckets())),
		opDuration: prometheus.NewHistogramVec(hist("docker_operation_duration_seconds",
			"Latency of Docker Engine API calls of a run, by operation (create, attach, start, warm_start, kill, inspect, remove).", ops.LatencyBuckets()),
			[]string{"op"}),
		opErrors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("docker_errors_total",
			"Failed Docker Engine API calls, by operation.")), []string{"op"}),
		refills: prometheus.NewCounterVec(prometheus.CounterOpts(opts("warm_pool_refills_total",
			"Containers the warm pool created, by result (ok, error).")), []string{"result"}),
		evictions:   prometheus.NewCounter(prometheus.CounterOpts(opts("warm_pool_evictions_total", "Idle warm containers that exited on their own and were replaced."))),
		misses:      prometheus.NewCounter(prometheus.CounterOpts(opts("warm_pool_misses_total", "Runs that went cold although a warm pool is configured (pool empty or spec not matching)."))),
		reaped:      prometheus.NewCounter(prometheus.CounterOpts(opts("orphans_reaped_total", "Containers of an earlier, crashed process removed at start-up."))),
		images:      prometheus.NewCounterVec(prometheus.CounterOpts(opts("image_ensures_total", "EnsureImage calls, by result (present, built, error).")), []string{"result"}),
		pings:       prometheus.NewCounterVec(prometheus.CounterOpts(opts("daemon_pings_total", "Pings of the Docker daemon, by result (ok, error).")), []string{"result"}),
		removalFail: prometheus.NewCounter(prometheus.CounterOpts(opts("removal_failures_total", "Stopped containers whose background removal failed (Reap removes them later)."))),
		egressRuns:  prometheus.NewCounter(prometheus.CounterOpts(opts("egress_runs_total", "Runs given network access through an allow-list proxy."))),
	}
	for _, mode := range []string{"warm", "cold"} {
		m.duration.WithLabelValues(mode)
		for _, o := range outcomes {
			m.runs.WithLabelValues(mode, o)
		}
	}
	for _, op := range operations {
		m.opDuration.WithLabelValues(op)
		m.opErrors.WithLabelValues(op)
	}
	for _, r := range []string{"ok", "error"} {
		m.refills.WithLabelValues(r)
		m.pings.WithLabelValues(r)
	}
	for _, r := range []string{"present", "built", "error"} {
		m.images.WithLabelValues(r)
	}
	return m
}

// register puts the metrics and a collector of r's pool and removals on
// reg (none when reg is nil).
func (m *metrics) register(reg prometheus.Registerer, r *Runner) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.runs, m.duration, m.inFlight, m.output, m.cpu, m.memory, m.opDuration, m.opErrors,
		m.refills, m.evictions, m.misses, m.reaped, m.images, m.pings, m.removalFail, m.egressRuns, newCollector(r)} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register sandbox metrics: %w", err)
		}
	}
	return nil
}

// ran records the end of one Run.
func (m *metrics) ran(res sandbox.Result, err error) {
	mode := "cold"
	if res.Warm {
		mode = "warm"
	}
	outcome := outcomeOK
	switch {
	case errors.Is(err, sandbox.ErrInvalidSpec):
		outcome = outcomeInvalid
	case err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		outcome = outcomeCancelled
	case err != nil:
		outcome = outcomeError
	case res.TimedOut:
		outcome = outcomeTimeout
	case res.OOMKilled:
		outcome = outcomeOOM
	case res.ExitCode != 0:
		outcome = outcomeNonzero
	}
	m.runs.WithLabelValues(mode, outcome).Inc()
	if outcome == outcomeInvalid || res.ContainerID == "" {
		return // nothing ran
	}
	m.duration.WithLabelValues(mode).Observe(res.Duration.Seconds())
	m.output.Observe(float64(res.OutputBytes))
	m.cpu.Add(float64(res.Usage.CPUTimeMS) / 1000)
	m.memory.Observe(float64(res.Usage.PeakMemoryBytes))
}

// op records one Docker API call that started at start.
func (m *metrics) op(op string, start time.Time, err error) {
	m.opDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		m.opErrors.WithLabelValues(op).Inc()
	}
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// collector reads the pool and the pending removals at scrape time.
type collector struct {
	r                         *Runner
	size, idle, keeping, pend *prometheus.Desc
}

func newCollector(r *Runner) *collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ops.Namespace, ops.CategorySandbox, name), help, nil, nil)
	}
	return &collector{
		r:       r,
		size:    d("warm_pool_size", "Warm containers the pool keeps ready (0: no pool)."),
		idle:    d("warm_pool_idle", "Warm containers started and waiting for a run."),
		keeping: d("warm_pool_active", "1 while KeepWarm maintains the pool."),
		pend:    d("removals_pending", "Stopped containers being removed in the background."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.idle
	ch <- c.keeping
	ch <- c.pend
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	size, idle, keeping := 0, 0, false
	if p := c.r.pool; p != nil {
		size = p.size
		idle, _ = p.state()
		p.mu.Lock()
		keeping = p.keeping
		p.mu.Unlock()
	}
	c.r.removals.mu.Lock()
	pending := c.r.removals.pending
	c.r.removals.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(c.size, float64(size))
	gauge(c.idle, float64(idle))
	k := 0.0
	if keeping {
		k = 1
	}
	gauge(c.keeping, k)
	gauge(c.pend, float64(pending))
}
