package ops_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/ops"
)

func ExampleHealth() {
	h := ops.NewHealth(nil, nil)
	_ = h.Register(ops.Check{Name: "temporal", Critical: true, Func: func(context.Context) error { return nil }})
	_ = h.Register(ops.Check{Name: "docker", Func: func(context.Context) error { return errors.New("daemon not reachable") }})
	h.RunChecks(context.Background())

	mux := http.NewServeMux()
	h.Routes(mux)
	for _, path := range []string{"/health", "/health/ready"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, rec.Code)
	}
	fmt.Println(h.Snapshot().Status)
	// Output:
	// /health 200
	// /health/ready 200
	// degraded
}

func ExampleNew() {
	cfg := ops.DefaultHealthConfig()
	cfg.FailureThreshold = 2
	cfg.OnCritical = func(f ops.CriticalFailure) { fmt.Println("drain:", f) }
	h, err := ops.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = h.Register(ops.Check{Name: "temporal", Critical: true, Func: func(context.Context) error { return errors.New("connection refused") }})
	h.RunChecks(context.Background()) // one failure: unhealthy, not yet draining
	fmt.Println(h.Snapshot().Status, h.Ready())
	h.RunChecks(context.Background()) // the second in a row drains
	// Output:
	// unhealthy false
	// drain: critical health check "temporal" failed 2 runs in a row: connection refused
}

func ExampleMetricsHandler() {
	reg := prometheus.NewRegistry()
	cfg := ops.DefaultHealthConfig()
	cfg.Metrics = reg
	h, _ := ops.New(cfg)
	_ = h.Register(ops.Check{Name: "docker", Func: func(context.Context) error { return nil }})
	h.RunChecks(context.Background())

	rec := httptest.NewRecorder()
	ops.MetricsHandler(reg, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "chorus_health_check_up") || strings.HasPrefix(line, "chorus_health_ready") {
			fmt.Print(line)
		}
	}
	// Output:
	// chorus_health_check_up{check="docker",critical="false"} 1
	// chorus_health_ready 1
}
