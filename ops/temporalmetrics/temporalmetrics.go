package temporalmetrics

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"chorus/ops"
)

type kind int

const (
	counterKind kind = iota
	gaugeKind
	timerKind
)

func (k kind) String() string {
	return [...]string{"counter", "gauge", "timer"}[k]
}

// Handler implements client.MetricsHandler over a Prometheus registry.
type Handler struct {
	set  *set
	tags map[string]string
	// key identifies tags: the sorted k=v pairs.
	key string
}

var _ client.MetricsHandler = (*Handler)(nil)

// New registers the SDK's metrics on reg and returns the root handler,
// without tags. Register it once per registry.
func New(reg prometheus.Registerer) (*Handler, error) {
	s := &set{buckets: ops.LatencyBuckets(), families: map[string]*family{}}
	if err := reg.Register(s); err != nil {
		return nil, fmt.Errorf("register temporal sdk metrics: %w", err)
	}
	return &Handler{set: s, tags: map[string]string{}}, nil
}

// WithTags returns a handler whose metrics carry h's tags overridden and
// extended by tags. A tag with an empty value removes that tag.
func (h *Handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	for k, v := range tags {
		k = sanitize(k)
		if v == "" {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	return &Handler{set: h.set, tags: merged, key: tagKey(merged)}
}

// Counter returns the counter name with h's tags.
func (h *Handler) Counter(name string) client.MetricsCounter {
	s := h.set.series(name, counterKind, h)
	if s == nil {
		return nop{}
	}
	return (*counter)(s)
}

// Gauge returns the gauge name with h's tags.
func (h *Handler) Gauge(name string) client.MetricsGauge {
	s := h.set.series(name, gaugeKind, h)
	if s == nil {
		return nop{}
	}
	return (*gauge)(s)
}

// Timer returns the timer name with h's tags, exported as a histogram of
// seconds.
func (h *Handler) Timer(name string) client.MetricsTimer {
	s := h.set.series(name, timerKind, h)
	if s == nil {
		return nop{}
	}
	return &timer{s: s, buckets: h.set.buckets}
}

// Dropped counts the uses of a metric name as another kind than its first
// use; those observations are dropped.
func (h *Handler) Dropped() int64 { return h.set.dropped.Load() }

// set holds every series the SDK has created; it is the Collector.
type set struct {
	buckets []float64
	dropped atomic.Int64

	mu       sync.Mutex
	families map[string]*family
}

type family struct {
	kind   kind
	name   string // the exported name
	help   string
	series map[string]*series // by tag key
}

// series is one label set. value holds a counter's count or a gauge's
// float64 bits; mu guards the histogram fields of a timer.
type series struct {
	tags  map[string]string
	value atomic.Uint64

	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; len(buckets)+1 with +Inf
	sum    float64
	n      uint64
}

func (s *set) series(name string, k kind, h *Handler) *series {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.families[name]
	if !ok {
		f = &family{kind: k, name: exportedName(name, k), series: map[string]*series{},
			help: fmt.Sprintf("Temporal SDK %s %s.", k, name)}
		s.families[name] = f
	}
	if f.kind != k {
		s.dropped.Add(1)
		return nil
	}
	se, ok := f.series[h.key]
	if !ok {
		se = &series{tags: h.tags}
		if k == timerKind {
			se.counts = make([]uint64, len(s.buckets)+1)
		}
		f.series[h.key] = se
	}
	return se
}

// Describe sends nothing: the families are only known as the SDK creates
// them, which makes this an unchecked collector.
func (s *set) Describe(chan<- *prometheus.Desc) {}

// Collect exports every series, each family with the union of its tag keys.
func (s *set) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.families {
		if len(f.series) == 0 {
			continue
		}
		keys := map[string]bool{}
		for _, se := range f.series {
			for k := range se.tags {
				keys[k] = true
			}
		}
		labels := slices.Sorted(maps.Keys(keys))
		desc := prometheus.NewDesc(f.name, f.help, labels, nil)
		for _, se := range f.series {
			values := make([]string, len(labels))
			for i, l := range labels {
				values[i] = se.tags[l]
			}
			var m prometheus.Metric
			var err error
			switch f.kind {
			case counterKind:
				m, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, float64(se.value.Load()), values...)
			case gaugeKind:
				m, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, math.Float64frombits(se.value.Load()), values...)
			case timerKind:
				m, err = se.histogram(desc, s.buckets, values)
			}
			if err != nil {
				m = prometheus.NewInvalidMetric(desc, err)
			}
			ch <- m
		}
	}
}

func (se *series) histogram(desc *prometheus.Desc, buckets []float64, values []string) (prometheus.Metric, error) {
	se.mu.Lock()
	defer se.mu.Unlock()
	cum := make(map[float64]uint64, len(buckets))
	var acc uint64
	for i, b := range buckets {
		acc += se.counts[i]
		cum[b] = acc
	}
	return prometheus.NewConstHistogram(desc, se.n, se.sum, cum, values...)
}

type counter series

func (c *counter) Inc(d int64) {
	if d > 0 { // a Prometheus counter never goes down
		c.value.Add(uint64(d))
	}
}

type gauge series

func (g *gauge) Update(v float64) { g.value.Store(math.Float64bits(v)) }

type timer struct {
	s       *series
	buckets []float64
}

func (t *timer) Record(d time.Duration) {
	v := d.Seconds()
	i := sort.SearchFloat64s(t.buckets, v) // first bucket with bound >= v
	t.s.mu.Lock()
	t.s.counts[i]++
	t.s.sum += v
	t.s.n++
	t.s.mu.Unlock()
}

type nop struct{}

func (nop) Inc(int64)            {}
func (nop) Update(float64)       {}
func (nop) Record(time.Duration) {}

// exportedName follows the Prometheus conventions: counters end in _total,
// timers are histograms in seconds.
func exportedName(name string, k kind) string {
	name = sanitize(name)
	switch k {
	case counterKind:
		if !strings.HasSuffix(name, "_total") {
			name += "_total"
		}
	case timerKind:
		if !strings.HasSuffix(name, "_seconds") {
			name += "_seconds"
		}
	}
	return name
}

// sanitize maps a name onto [a-zA-Z_][a-zA-Z0-9_]*.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

func tagKey(tags map[string]string) string {
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(tags[k])
		sb.WriteByte(0)
	}
	return sb.String()
}
