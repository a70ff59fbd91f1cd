package ai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/ops"
)

// Results of a chat call (result label): the sentinel its error wraps.
var results = []struct {
	label string
	err   error
}{
	{"unreachable", ErrUnreachable},
	{"model_not_found", ErrModelNotFound},
	{"malformed_reply", ErrMalformedReply},
	{"rate_limited", ErrRateLimited},
	{"unauthorized", ErrUnauthorized},
	{"server_error", ErrServer},
	{"bad_request", ErrBadRequest},
	{"cancelled", context.Canceled},
	{"cancelled", context.DeadlineExceeded},
}

// Metrics are the chorus_ai_* metrics of the chat clients: calls, their
// latency, tokens and reply sizes, by model and provider (the configured
// models, so the labels are bounded). Build one per registry with
// NewMetrics and set it on every Model; New then returns an instrumented
// client.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	inFlight *prometheus.GaugeVec
	reply    prometheus.Histogram
}

// NewMetrics registers the clients' metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryAI, Name: "requests_total",
			Help: "Chat calls to a model, retries included, by model, provider and result (ok, unreachable, model_not_found, malformed_reply, rate_limited, unauthorized, server_error, bad_request, cancelled, error)."},
			[]string{"model", "provider", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryAI, Name: "request_duration_seconds",
			Help: "How long a chat call took, retries included, by model and provider.", Buckets: ops.DurationBuckets()},
			[]string{"model", "provider"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryAI, Name: "tokens_total",
			Help: "Tokens the servers counted, by model, provider and kind (prompt, completion)."},
			[]string{"model", "provider", "kind"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryAI, Name: "requests_in_flight",
			Help: "Chat calls in progress, by model and provider."}, []string{"model", "provider"}),
		reply: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ops.Namespace, Subsystem: ops.CategoryAI, Name: "reply_bytes",
			Help: "Size of the content of successful replies.", Buckets: ops.SizeBuckets()}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.tokens, m.inFlight, m.reply} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register ai metrics: %w", err)
		}
	}
	return m, nil
}

// instrumented measures the calls of one model's client.
type instrumented struct {
	Client
	m               *Metrics
	model, provider string
}

func (m *Metrics) instrument(c Client, model, provider string) Client {
	m.duration.WithLabelValues(model, provider)
	m.inFlight.WithLabelValues(model, provider)
	for _, kind := range []string{"prompt", "completion"} {
		m.tokens.WithLabelValues(model, provider, kind)
	}
	for _, r := range results {
		m.requests.WithLabelValues(model, provider, r.label)
	}
	m.requests.WithLabelValues(model, provider, "ok")
	m.requests.WithLabelValues(model, provider, "error")
	return &instrumented{Client: c, m: m, model: model, provider: provider}
}

func (c *instrumented) Chat(ctx context.Context, req Request) (Response, error) {
	model := c.model
	g := c.m.inFlight.WithLabelValues(model, c.provider)
	g.Inc()
	start := time.Now()
	resp, err := c.Client.Chat(ctx, req)
	g.Dec()
	c.m.duration.WithLabelValues(model, c.provider).Observe(time.Since(start).Seconds())
	c.m.requests.WithLabelValues(model, c.provider, resultOf(err)).Inc()
	if err == nil {
		c.m.tokens.WithLabelValues(model, c.provider, "prompt").Add(float64(resp.PromptTokens))
		c.m.tokens.WithLabelValues(model, c.provider, "completion").Add(float64(resp.CompletionTokens))
		c.m.reply.Observe(float64(len(resp.Content)))
	}
	return resp, err
}

func resultOf(err error) string {
	if err == nil {
		return "ok"
	}
	for _, r := range results {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "error"
}

// The wrapper prints and logs as the client it wraps, which never shows
// its key.

func (c *instrumented) String() string   { return fmt.Sprint(c.Client) }
func (c *instrumented) GoString() string { return c.String() }
func (c *instrumented) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, c.String())
}
func (c *instrumented) LogValue() slog.Value {
	if v, ok := c.Client.(slog.LogValuer); ok {
		return v.LogValue()
	}
	return slog.StringValue(c.String())
}
