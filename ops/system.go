package ops

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SystemConfig configures the chorus_system_* metrics.
type SystemConfig struct {
	// DataDir is the worker's data dir, whose file system's free and total
	// bytes are reported. Empty leaves those two metrics out.
	DataDir string
	// Version is the release reported by chorus_system_build_info; empty
	// means the main module's version from the build info.
	Version string
	// Clock gives the time for the uptime; nil means time.Now. The start
	// time is Clock() when RegisterSystem is called.
	Clock func() time.Time
	// ProcDir is where /proc is mounted; empty means /proc. Values read
	// from it (open file descriptors, threads, resident memory, load,
	// host memory) are left out where it does not exist.
	ProcDir string
}

// RegisterSystem registers a collector of the process's and host's
// resources (chorus_system_*) on reg. Everything is read at scrape time.
func RegisterSystem(reg prometheus.Registerer, cfg SystemConfig) error {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.ProcDir == "" {
		cfg.ProcDir = "/proc"
	}
	if err := reg.Register(newSystemCollector(cfg)); err != nil {
		return fmt.Errorf("register system metrics: %w", err)
	}
	return nil
}

type systemCollector struct {
	cfg   SystemConfig
	start time.Time
	// build holds the label values of build_info, read once.
	version, revision, goVersion string

	buildInfo, startTime, uptime, goroutines, threads, gomaxprocs, cpus      *prometheus.Desc
	openFDs, maxFDs, cpuSeconds, resident, heap, gcCycles, dirFree, dirTotal *prometheus.Desc
	load, memAvailable, memTotal                                             *prometheus.Desc
}

func newSystemCollector(cfg SystemConfig) *systemCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, CategorySystem, name), help, labels, nil)
	}
	c := &systemCollector{
		cfg:          cfg,
		start:        cfg.Clock(),
		version:      cfg.Version,
		revision:     "unknown",
		goVersion:    runtime.Version(),
		buildInfo:    d("build_info", "Always 1; the labels say which build of chorus runs.", "version", "revision", "go_version"),
		startTime:    d("start_time_seconds", "When the worker started (Unix time)."),
		uptime:       d("uptime_seconds", "Seconds since the worker started."),
		goroutines:   d("goroutines", "Goroutines that currently exist."),
		threads:      d("threads", "Operating system threads of the process."),
		gomaxprocs:   d("gomaxprocs", "GOMAXPROCS: CPUs the Go scheduler uses at once."),
		cpus:         d("cpus", "Logical CPUs usable by the process."),
		openFDs:      d("open_fds", "Open file descriptors of the process."),
		maxFDs:       d("max_fds", "Limit on open file descriptors (RLIMIT_NOFILE, soft)."),
		cpuSeconds:   d("cpu_seconds_total", "CPU time the process used, user and system.", "mode"),
		resident:     d("resident_memory_bytes", "Resident memory of the process."),
		heap:         d("heap_bytes", "Bytes of live and not yet collected heap objects."),
		gcCycles:     d("gc_cycles_total", "Completed garbage collection cycles."),
		dirFree:      d("data_dir_free_bytes", "Bytes available to the worker on the file system of its data dir."),
		dirTotal:     d("data_dir_size_bytes", "Size of the file system of the data dir."),
		load:         d("load_average", "Host load average over the window.", "window"),
		memAvailable: d("memory_available_bytes", "Host memory available for new work (MemAvailable)."),
		memTotal:     d("memory_total_bytes", "Host memory (MemTotal)."),
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if c.version == "" {
			c.version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				c.revision = s.Value
			}
		}
	}
	if c.version == "" {
		c.version = "(devel)"
	}
	return c
}

func (c *systemCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.buildInfo, c.startTime, c.uptime, c.goroutines, c.threads, c.gomaxprocs, c.cpus,
		c.openFDs, c.maxFDs, c.cpuSeconds, c.resident, c.heap, c.gcCycles, c.dirFree, c.dirTotal, c.load, c.memAvailable, c.memTotal} {
		ch <- d
	}
}

func (c *systemCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.buildInfo, 1, c.version, c.revision, c.goVersion)
	gauge(c.startTime, float64(c.start.UnixNano())/1e9)
	gauge(c.uptime, c.cfg.Clock().Sub(c.start).Seconds())
	gauge(c.goroutines, float64(runtime.NumGoroutine()))
	gauge(c.gomaxprocs, float64(runtime.GOMAXPROCS(0)))
	gauge(c.cpus, float64(runtime.NumCPU()))

	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(samples)
	if samples[0].Value.Kind() == metrics.KindUint64 {
		gauge(c.heap, float64(samples[0].Value.Uint64()))
	}
	if samples[1].Value.Kind() == metrics.KindUint64 {
		ch <- prometheus.MustNewConstMetric(c.gcCycles, prometheus.CounterValue, float64(samples[1].Value.Uint64()))
	}

	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		ch <- prometheus.MustNewConstMetric(c.cpuSeconds, prometheus.CounterValue, timeval(ru.Utime), "user")
		ch <- prometheus.MustNewConstMetric(c.cpuSeconds, prometheus.CounterValue, timeval(ru.Stime), "system")
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		gauge(c.maxFDs, float64(rl.Cur))
	}
	if c.cfg.DataDir != "" {
		var fs syscall.Statfs_t
		if syscall.Statfs(c.cfg.DataDir, &fs) == nil {
			gauge(c.dirFree, float64(fs.Bavail)*float64(fs.Bsize))
			gauge(c.dirTotal, float64(fs.Blocks)*float64(fs.Bsize))
		}
	}

	proc := c.cfg.ProcDir
	if fds, err := os.ReadDir(proc + "/self/fd"); err == nil {
		gauge(c.openFDs, float64(len(fds)))
	}
	if status, err := os.ReadFile(proc + "/self/status"); err == nil {
		if kv := fields(status, ":"); kv["Threads"] != "" {
			if n, err := strconv.ParseFloat(kv["Threads"], 64); err == nil {
				gauge(c.threads, n)
			}
		}
		if kb, ok := kilobytes(fields(status, ":")["VmRSS"]); ok {
			gauge(c.resident, kb)
		}
	}
	if b, err := os.ReadFile(proc + "/loadavg"); err == nil {
		f := strings.Fields(string(b))
		for i, w := range []string{"1m", "5m", "15m"} {
			if i < len(f) {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					gauge(c.load, v, w)
				}
			}
		}
	}
	if b, err := os.ReadFile(proc + "/meminfo"); err == nil {
		kv := fields(b, ":")
		if v, ok := kilobytes(kv["MemAvailable"]); ok {
			gauge(c.memAvailable, v)
		}
		if v, ok := kilobytes(kv["MemTotal"]); ok {
			gauge(c.memTotal, v)
		}
	}
}

func timeval(t syscall.Timeval) float64 {
	return float64(t.Sec) + float64(t.Usec)/1e6
}

// fields parses "Key: value" lines.
func fields(b []byte, sep string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// kilobytes parses "123 kB" into bytes.
func kilobytes(v string) (float64, bool) {
	num, unit, _ := strings.Cut(v, " ")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, false
	}
	if unit == "kB" {
		n *= 1024
	}
	return n, true
}
