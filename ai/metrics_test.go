package ai_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/ai"
	"chorus/ops/opstest"
)

// TestMetricsOfChatCalls talks to an OpenAI-compatible server speaking
// the real wire format: one good reply, then the model is gone (404).
func TestMetricsOfChatCalls(t *testing.T) {
	gone := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if gone {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"message":"The model m does not exist","type":"invalid_request_error","code":"model_not_found"}}`)
			return
		}
		fmt.Fprint(w, `{"id":"1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}`)
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m, err := ai.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "KEY" {
			return testKey
		}
		return ""
	}
	c, err := ai.New(ai.Model{Name: "m", Provider: ai.ProviderOpenAI, Endpoint: srv.URL, APIKeyEnv: "KEY", Metrics: m}, srv.Client(), getenv)
	if err != nil {
		t.Fatal(err)
	}
	// Before any call the model's series exist at zero.
	if v := opstest.Value(t, reg, "chorus_ai_requests_total", "model", "m", "provider", "openai", "result", "ok"); v != 0 {
		t.Fatalf("requests before a call: %v", v)
	}
	req := ai.Request{Messages: []ai.Message{{Role: ai.RoleUser, Content: "hi"}}}
	if _, err := c.Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	gone = true
	if _, err := c.Chat(context.Background(), req); err == nil {
		t.Fatal("chat with a missing model succeeded")
	}
	for _, w := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"chorus_ai_requests_total", []string{"model", "m", "result", "ok"}, 1},
		{"chorus_ai_requests_total", []string{"model", "m", "result", "model_not_found"}, 1},
		{"chorus_ai_tokens_total", []string{"model", "m", "kind", "prompt"}, 12},
		{"chorus_ai_tokens_total", []string{"model", "m", "kind", "completion"}, 3},
		{"chorus_ai_request_duration_seconds", []string{"model", "m", "provider", "openai"}, 2},
		{"chorus_ai_requests_in_flight", []string{"model", "m"}, 0},
		{"chorus_ai_reply_bytes", nil, 1},
	} {
		if got := opstest.Value(t, reg, w.name, w.labels...); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	// The instrumented client still never shows its key.
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("client", "client", c)
	for _, out := range []string{fmt.Sprintf("%v|%+v|%#v|%s", c, c, c, c), logs.String()} {
		if strings.Contains(out, testKey) || !strings.Contains(out, "[REDACTED]") {
			t.Errorf("instrumented client shows the key or hides that one is set: %s", out)
		}
	}
}
