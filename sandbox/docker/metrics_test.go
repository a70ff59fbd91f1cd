package docker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/ops/opstest"
	"chorus/sandbox"
	"chorus/sandbox/docker"
)

// newMeteredRunner is newRunnerFor with the runner's metrics on a fresh
// registry.
func newMeteredRunner(t *testing.T, pool docker.PoolConfig) (*docker.Runner, *prometheus.Registry) {
	t.Helper()
	agent := newAgent(t)
	reg := prometheus.NewRegistry()
	r, err := docker.New(docker.Config{AgentID: agent, Logger: slog.New(slog.DiscardHandler), Pool: pool, Metrics: reg})
	if err != nil {
		t.Fatalf("new runner: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.WaitRemoved(ctx); err != nil {
			t.Errorf("wait for removals: %v", err)
		}
		if _, err := r.Reap(ctx); err != nil {
			t.Errorf("reap: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r, reg
}

// TestMetricsOfColdRuns runs real containers: a success, a failing
// command, a timeout and an invalid spec, and reads what a scrape would.
func TestMetricsOfColdRuns(t *testing.T) {
	r, reg := newMeteredRunner(t, docker.PoolConfig{})
	ctx := testContext(t, 2*time.Minute)
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		spec sandbox.Spec
	}{
		{spec(t, "/bin/sh", "-c", "head -c 1000 /dev/zero")},
		{spec(t, "/bin/sh", "-c", "exit 3")},
		{func() sandbox.Spec { s := spec(t, "/bin/sleep", "30"); s.Timeout = 500 * time.Millisecond; return s }()},
		{sandbox.Spec{Image: docker.DefaultImage}}, // no command, no workspace
	}
	for _, run := range runs {
		_, _ = r.Run(ctx, run.spec)
	}
	if err := r.WaitRemoved(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"chorus_sandbox_runs_total", []string{"mode", "cold", "outcome", "ok"}, 1},
		{"chorus_sandbox_runs_total", []string{"mode", "cold", "outcome", "nonzero"}, 1},
		{"chorus_sandbox_runs_total", []string{"mode", "cold", "outcome", "timeout"}, 1},
		{"chorus_sandbox_runs_total", []string{"mode", "cold", "outcome", "invalid"}, 1},
		{"chorus_sandbox_runs_total", []string{"mode", "cold", "outcome", "error"}, 0},
		{"chorus_sandbox_run_duration_seconds", []string{"mode", "cold"}, 3},
		{"chorus_sandbox_output_bytes", nil, 3},
		{"chorus_sandbox_runs_in_flight", nil, 0},
		{"chorus_sandbox_docker_operation_duration_seconds", []string{"op", "create"}, 3},
		{"chorus_sandbox_docker_operation_duration_seconds", []string{"op", "start"}, 3},
		{"chorus_sandbox_docker_operation_duration_seconds", []string{"op", "kill"}, 1},
		{"chorus_sandbox_docker_operation_duration_seconds", []string{"op", "remove"}, 3},
		{"chorus_sandbox_docker_errors_total", []string{"op", "create"}, 0},
		{"chorus_sandbox_daemon_pings_total", []string{"result", "ok"}, 1},
		{"chorus_sandbox_removals_pending", nil, 0},
		{"chorus_sandbox_warm_pool_size", nil, 0},
		{"chorus_sandbox_warm_pool_misses_total", nil, 0},
	} {
		if got := opstest.Value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The 1000 bytes of output land in the 1024 B bucket of the first run.
	h := opstest.Families(t, reg)["chorus_sandbox_output_bytes"].GetMetric()[0].GetHistogram()
	if h.GetSampleSum() < 1000 {
		t.Errorf("output bytes summed %v, want at least the 1000 written", h.GetSampleSum())
	}

	// A missing image is a failure of the sandbox itself.
	missing := spec(t, "/bin/true")
	missing.Image = "chorus-no-such-image:" + rand8()
	if _, err := r.Run(ctx, missing); err == nil {
		t.Fatal("run of a missing image succeeded")
	}
	if got := opstest.Value(t, reg, "chorus_sandbox_runs_total", "mode", "cold", "outcome", "error"); got != 1 {
		t.Errorf("error runs %v, want 1", got)
	}
	if got := opstest.Value(t, reg, "chorus_sandbox_docker_errors_total", "op", "create"); got != 1 {
		t.Errorf("create errors %v, want 1", got)
	}
}

// TestMetricsOfWarmPool: the pool's size and idle containers are read at
// scrape time; a matching run is warm, a mismatching one a miss.
func TestMetricsOfWarmPool(t *testing.T) {
	template := sandbox.Spec{Image: docker.DefaultImage}
	r, reg := newMeteredRunner(t, poolOf(t, 1, template))
	keepWarm(t, r, 1)
	if got := opstest.Value(t, reg, "chorus_sandbox_warm_pool_idle"); got != 1 {
		t.Fatalf("idle %v, want 1", got)
	}
	for _, c := range []struct {
		name string
		want float64
	}{{"chorus_sandbox_warm_pool_size", 1}, {"chorus_sandbox_warm_pool_active", 1}} {
		if got := opstest.Value(t, reg, c.name); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if v := opstest.Value(t, reg, "chorus_sandbox_warm_pool_refills_total", "result", "ok"); v < 1 {
		t.Errorf("refills %v", v)
	}
	ctx := testContext(t, 2*time.Minute)
	res, err := r.Run(ctx, spec(t, "/bin/true"))
	if err != nil || !res.Warm {
		t.Fatalf("run = %+v, %v; want warm", res, err)
	}
	labelled := spec(t, "/bin/true")
	labelled.Labels = map[string]string{"chorus.task": "t1"} // not in the template: cold
	if _, err := r.Run(ctx, labelled); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"chorus_sandbox_runs_total", []string{"mode", "warm", "outcome", "ok"}, 1},
		{"chorus_sandbox_runs_total", []string{"mode", "cold", "outcome", "ok"}, 1},
		{"chorus_sandbox_warm_pool_misses_total", nil, 1},
		{"chorus_sandbox_docker_operation_duration_seconds", []string{"op", "warm_start"}, 1},
	} {
		if got := opstest.Value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
