package temporalmetrics_test

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"chorus/ops/temporalmetrics"
)

// compare checks that reg serves want in the text format, ignoring the
// order of lines, blank lines and indentation.
func compare(t *testing.T, reg *prometheus.Registry, want string) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	norm := func(s string) []string {
		var out []string
		for line := range strings.Lines(s) {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
		slices.Sort(out)
		return out
	}
	if got, w := norm(buf.String()), norm(want); !slices.Equal(got, w) {
		t.Fatalf("exposition:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func count(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

func newHandler(t *testing.T) (*temporalmetrics.Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := temporalmetrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return h, reg
}

func TestExportsSDKMetricsWithPrometheusNames(t *testing.T) {
	h, reg := newHandler(t)
	root := h.WithTags(map[string]string{"namespace": "default", "client_name": "temporal_go"})
	ops := root.WithTags(map[string]string{"operation": "PollActivityTaskQueue"})
	ops.Counter("temporal_request").Inc(2)
	ops.Counter("temporal_request").Inc(1)
	// A failure adds a tag the success series lacks.
	ops.WithTags(map[string]string{"status_code": "Unavailable"}).Counter("temporal_request_failure").Inc(1)
	ops.Counter("temporal_request_failure").Inc(0)
	root.Gauge("temporal_num_pollers").Update(2)
	root.Gauge("temporal_num_pollers").Update(5)
	lat := ops.Timer("temporal_request_latency")
	lat.Record(3 * time.Millisecond)
	lat.Record(2 * time.Second)
	lat.Record(time.Minute) // beyond the last bucket

	want := `
# HELP temporal_request_total Temporal SDK counter temporal_request.
# TYPE temporal_request_total counter
temporal_request_total{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue"} 3
# HELP temporal_request_failure_total Temporal SDK counter temporal_request_failure.
# TYPE temporal_request_failure_total counter
temporal_request_failure_total{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",status_code=""} 0
temporal_request_failure_total{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",status_code="Unavailable"} 1
# HELP temporal_num_pollers Temporal SDK gauge temporal_num_pollers.
# TYPE temporal_num_pollers gauge
temporal_num_pollers{client_name="temporal_go",namespace="default"} 5
# HELP temporal_request_latency_seconds Temporal SDK timer temporal_request_latency.
# TYPE temporal_request_latency_seconds histogram
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="0.001"} 0
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="0.0025"} 0
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="0.005"} 1
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="0.01"} 1
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="0.025"} 1
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="0.05"} 1
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="0.1"} 1
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="0.25"} 1
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="0.5"} 1
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="1"} 1
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="2.5"} 2
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="5"} 2
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="10"} 2
temporal_request_latency_seconds_bucket{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue",le="+Inf"} 3
temporal_request_latency_seconds_sum{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue"} 62.003
temporal_request_latency_seconds_count{client_name="temporal_go",namespace="default",operation="PollActivityTaskQueue"} 3
`
	compare(t, reg, want)
}

func TestTagsOverrideAndEmptyValuesDrop(t *testing.T) {
	h, reg := newHandler(t)
	a := h.WithTags(map[string]string{"task_queue": "q1", "activity_type": "Execute"})
	b := a.WithTags(map[string]string{"task_queue": "q2", "activity_type": ""})
	a.Counter("temporal_activity_execution_failed").Inc(1)
	b.Counter("temporal_activity_execution_failed").Inc(4)
	want := `
# HELP temporal_activity_execution_failed_total Temporal SDK counter temporal_activity_execution_failed.
# TYPE temporal_activity_execution_failed_total counter
temporal_activity_execution_failed_total{activity_type="Execute",task_queue="q1"} 1
temporal_activity_execution_failed_total{activity_type="",task_queue="q2"} 4
`
	compare(t, reg, want)
}

func TestKindConflictIsDropped(t *testing.T) {
	h, reg := newHandler(t)
	h.Counter("temporal_x").Inc(1)
	h.Gauge("temporal_x").Update(7)
	h.Timer("temporal_x").Record(time.Second)
	if got := h.Dropped(); got != 2 {
		t.Fatalf("Dropped = %d, want 2", got)
	}
	if n := count(t, reg); n != 1 {
		t.Fatalf("%d series, want the counter only", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	h, reg := newHandler(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			m := h.WithTags(map[string]string{"worker": string(rune('a' + i%2))})
			for range 1000 {
				m.Counter("temporal_c").Inc(1)
				m.Timer("temporal_t").Record(time.Millisecond)
				m.Gauge("temporal_g").Update(1)
			}
		})
		wg.Go(func() { _, _ = reg.Gather() })
	}
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == "temporal_c_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	if sum != 8000 {
		t.Fatalf("temporal_c_total summed %v, want 8000", sum)
	}
}
