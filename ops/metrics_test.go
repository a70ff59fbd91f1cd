package ops_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/ops"
	"chorus/ops/opstest"
	"chorus/ops/temporalmetrics"
)

func TestBuckets(t *testing.T) {
	tests := []struct {
		name        string
		buckets     []float64
		first, last float64
	}{
		{"latency", ops.LatencyBuckets(), 0.001, 10},
		{"size", ops.SizeBuckets(), 64, 16 << 20},
		{"duration", ops.DurationBuckets(), 0.1, 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.buckets
			if b[0] != tt.first || b[len(b)-1] != tt.last || !slices.IsSorted(b) || len(slices.Compact(slices.Clone(b))) != len(b) {
				t.Fatalf("buckets %v, want strictly increasing from %v to %v", b, tt.first, tt.last)
			}
		})
	}
	a := ops.LatencyBuckets()
	a[0] = 42
	if ops.LatencyBuckets()[0] != 0.001 {
		t.Fatal("LatencyBuckets returns a shared slice")
	}
}

func TestHealthMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := ops.DefaultHealthConfig()
	cfg.Metrics = reg
	cfg.FailureThreshold = 2
	h, err := ops.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	docker := &probe{err: errors.New("daemon unreachable")}
	temporal := &probe{}
	for _, c := range []ops.Check{
		{Name: "temporal", Critical: true, Func: temporal.check},
		{Name: "docker", Func: docker.check},
	} {
		if err := h.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	// Before any run every series exists: the checks are starting.
	if v := opstest.Value(t, reg, "chorus_health_check_runs_total", "check", "docker", "result", "fail"); v != 0 {
		t.Fatalf("runs before a run = %v", v)
	}
	if v := opstest.Value(t, reg, "chorus_health_status", "status", "starting"); v != 1 {
		t.Fatalf("status starting = %v", v)
	}

	h.RunChecks(context.Background())
	h.RunChecks(context.Background())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"chorus_health_status", []string{"status", "degraded"}, 1},
		{"chorus_health_status", []string{"status", "healthy"}, 0},
		{"chorus_health_check_up", []string{"check", "docker", "critical", "false"}, 0},
		{"chorus_health_check_up", []string{"check", "temporal", "critical", "true"}, 1},
		{"chorus_health_check_runs_total", []string{"check", "docker", "result", "fail"}, 2},
		{"chorus_health_check_runs_total", []string{"check", "temporal", "result", "pass"}, 2},
		{"chorus_health_check_consecutive_failures", []string{"check", "docker"}, 2},
		{"chorus_health_check_duration_seconds", []string{"check", "docker"}, 2},
		{"chorus_health_check_transitions_total", []string{"check", "docker", "to", "unhealthy"}, 1},
		{"chorus_health_check_failure_threshold", []string{"check", "temporal"}, 2},
		{"chorus_health_checks", []string{"critical", "true"}, 1},
		{"chorus_health_ready", nil, 1},
		{"chorus_health_draining", nil, 0},
		{"chorus_health_live", nil, 1},
		{"chorus_health_drains_total", nil, 0},
	} {
		if got := opstest.Value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if v := opstest.Value(t, reg, "chorus_health_check_last_run_timestamp_seconds", "check", "docker"); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("last run timestamp %v is not now", v)
	}

	temporal.set(errors.New("unreachable"))
	h.RunChecks(context.Background())
	h.RunChecks(context.Background())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"chorus_health_status", []string{"status", "unhealthy"}, 1},
		{"chorus_health_ready", nil, 0},
		{"chorus_health_draining", nil, 1},
		{"chorus_health_drains_total", nil, 1},
		{"chorus_health_check_transitions_total", []string{"check", "temporal", "to", "unhealthy"}, 1},
		{"chorus_health_check_transitions_total", []string{"check", "temporal", "to", "healthy"}, 1},
	} {
		if got := opstest.Value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestSystemMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	clock := &fakeClock{now: epoch}
	dir := t.TempDir()
	if err := ops.RegisterSystem(reg, ops.SystemConfig{DataDir: dir, Version: "v1.2.3", Clock: clock.Now}); err != nil {
		t.Fatal(err)
	}
	clock.mu.Lock()
	clock.now = clock.now.Add(90 * time.Second)
	clock.mu.Unlock()
	if got := opstest.Value(t, reg, "chorus_system_uptime_seconds"); got != 90 {
		t.Errorf("uptime %v, want 90", got)
	}
	if got := opstest.Value(t, reg, "chorus_system_start_time_seconds"); got != float64(epoch.Unix()) {
		t.Errorf("start time %v, want %d", got, epoch.Unix())
	}
	if got := opstest.Value(t, reg, "chorus_system_build_info", "version", "v1.2.3"); got != 1 {
		t.Errorf("build info %v", got)
	}
	for _, name := range []string{"chorus_system_goroutines", "chorus_system_data_dir_free_bytes", "chorus_system_data_dir_size_bytes",
		"chorus_system_max_fds", "chorus_system_heap_bytes", "chorus_system_cpus", "chorus_system_gomaxprocs"} {
		if got := opstest.Value(t, reg, name); got <= 0 {
			t.Errorf("%s = %v, want > 0", name, got)
		}
	}
	if _, err := os.Stat("/proc/self/fd"); err == nil {
		before := opstest.Value(t, reg, "chorus_system_open_fds")
		f, err := os.Create(filepath.Join(dir, "held-open"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if after := opstest.Value(t, reg, "chorus_system_open_fds"); after < before+1 {
			t.Errorf("open fds %v after opening a file, %v before", after, before)
		}
		for _, name := range []string{"chorus_system_threads", "chorus_system_resident_memory_bytes", "chorus_system_memory_total_bytes"} {
			if got := opstest.Value(t, reg, name); got <= 0 {
				t.Errorf("%s = %v, want > 0", name, got)
			}
		}
		opstest.Value(t, reg, "chorus_system_load_average", "window", "5m")
	}
	if got := opstest.Value(t, reg, "chorus_system_cpu_seconds_total", "mode", "user"); got <= 0 {
		t.Errorf("user cpu %v", got)
	}
}

// newOpsRegistry builds what ops owns of the worker's registry: the
// standard collectors, the system and health metrics and the Temporal SDK
// adapter, with some traffic on each.
func newOpsRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := ops.RegisterStandard(reg); err != nil {
		t.Fatal(err)
	}
	if err := ops.RegisterSystem(reg, ops.SystemConfig{DataDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	cfg := ops.DefaultHealthConfig()
	cfg.Metrics = reg
	h, err := ops.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []ops.Check{{Name: "temporal", Critical: true, Func: ok}, {Name: "docker", Func: (&probe{err: errors.New("down")}).check}} {
		if err := h.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	h.RunChecks(context.Background())
	sdk, err := temporalmetrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m := sdk.WithTags(map[string]string{"namespace": "default", "task_queue": "chorus-tasks"})
	m.Counter("temporal_request").Inc(1)
	m.WithTags(map[string]string{"status_code": "Unavailable"}).Counter("temporal_request_failure").Inc(1)
	m.Timer("temporal_request_latency").Record(20 * time.Millisecond)
	m.Gauge("temporal_worker_task_slots_available").Update(4)
	return reg
}

func TestMetricsEndpoint(t *testing.T) {
	reg := newOpsRegistry(t)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", ops.MetricsHandler(reg, reg))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	body := opstest.Scrape(t, srv.URL+"/metrics")
	fams := opstest.Parse(t, body)
	for _, name := range []string{"chorus_health_status", "chorus_system_uptime_seconds", "temporal_request_total",
		"temporal_request_latency_seconds", "go_goroutines", "process_open_fds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("scrape lacks %s", name)
		}
	}
	// The handler counts its own scrapes on the registry.
	body = opstest.Scrape(t, srv.URL+"/metrics")
	if fams := opstest.Parse(t, body); fams["promhttp_metric_handler_requests_total"] == nil {
		t.Error("scrape lacks promhttp_metric_handler_requests_total")
	}
	if resp, err := http.Post(srv.URL+"/metrics", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %v %v", resp, err)
	}
}

// TestPromtoolChecksLiveScrape runs promtool check metrics (lint included)
// on what the ops metrics endpoint serves over HTTP.
func TestPromtoolChecksLiveScrape(t *testing.T) {
	opstest.Promtool(t)
	reg := newOpsRegistry(t)
	srv := httptest.NewServer(ops.MetricsHandler(reg, reg))
	defer srv.Close()
	opstest.CheckMetrics(t, opstest.Scrape(t, srv.URL))
}

// TestPrometheusDeployFiles checks what deploy/prometheus ships: the scrape
// config, the alert rules and their unit tests.
func TestPrometheusDeployFiles(t *testing.T) {
	opstest.Promtool(t)
	dir := filepath.Join("..", "deploy", "prometheus")
	opstest.RunPromtool(t, nil, "check", "config", filepath.Join(dir, "prometheus.yml"))
	opstest.RunPromtool(t, nil, "check", "rules", filepath.Join(dir, "alerts.yml"))
	out := opstest.RunPromtool(t, nil, "test", "rules", filepath.Join(dir, "alerts_test.yml"))
	t.Logf("promtool test rules:\n%s", out)
}
