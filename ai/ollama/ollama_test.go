package ollama_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chorus"
	"chorus/ai"
	"chorus/ai/ollama"
)

// tiny retries fast enough that no test waits noticeably.
var tiny = ai.RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond}

const testKey = "ollama-secret-key-4242"

// call is one request as the fake server saw it.
type call struct {
	Path   string
	Header http.Header
	Body   map[string]any
}

// fake is an Ollama server: each request is recorded and answered by
// handle, which gets the 1-based attempt number.
type fake struct {
	*httptest.Server
	mu    sync.Mutex
	calls []call
}

func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, attempt int)) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("request body is not JSON: %v", err)
		}
		f.mu.Lock()
		f.calls = append(f.calls, call{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		n := len(f.calls)
		f.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/api/chat" {
			t.Errorf("request %s %s, want POST /api/chat", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		handle(w, r, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fake) call(i int) call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[i]
}

func newClient(t *testing.T, endpoint string, mod func(*ollama.Config)) *ollama.Client {
	t.Helper()
	cfg := ollama.DefaultConfig()
	cfg.Endpoint = endpoint
	cfg.Model = "llama3.1:8b"
	cfg.Retry = tiny
	if mod != nil {
		mod(&cfg)
	}
	c, err := ollama.New(cfg, nil, func(k string) string {
		if k == "OLLAMA_KEY" {
			return testKey
		}
		return ""
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

const okReply = `{"model":"llama3.1:8b","created_at":"2025-03-01T12:00:00.000000Z","message":{"role":"assistant","content":"Hello there."},"done":true,"done_reason":"stop","total_duration":5000000,"load_duration":100,"prompt_eval_count":26,"prompt_eval_duration":100,"eval_count":7,"eval_duration":100}`

func hello() ai.Request {
	return ai.Request{Messages: []ai.Message{{Role: ai.RoleSystem, Content: "Be brief."}, {Role: ai.RoleUser, Content: "Hi"}}}
}

func TestChat(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, okReply) })
	c := newClient(t, f.URL, nil)
	temp := 0.2
	req := hello()
	req.Temperature = &temp
	req.MaxTokens = 64

	got, err := c.Chat(context.Background(), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	want := ai.Response{Model: "llama3.1:8b", Content: "Hello there.", PromptTokens: 26, CompletionTokens: 7, FinishReason: "stop"}
	if got != want {
		t.Errorf("Chat = %+v, want %+v", got, want)
	}
	if got.TotalTokens() != 33 {
		t.Errorf("TotalTokens = %d, want 33", got.TotalTokens())
	}

	sent := f.call(0)
	wantBody := `{"messages":[{"content":"Be brief.","role":"system"},{"content":"Hi","role":"user"}],"model":"llama3.1:8b","options":{"num_predict":64,"temperature":0.2},"stream":false}`
	if b, _ := json.Marshal(sent.Body); string(b) != wantBody {
		t.Errorf("request body\n%s\nwant\n%s", b, wantBody)
	}
	if h := sent.Header.Get("Authorization"); h != "" {
		t.Errorf("Authorization %q sent with no key configured", h)
	}
}

func TestChatJSONMode(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, 200, `{"model":"llama3.1:8b","created_at":"2025-03-01T12:00:00Z","message":{"role":"assistant","content":"{\"ok\":true}"},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":4}`)
	})
	req := hello()
	req.JSON = true
	got, err := newClient(t, f.URL, nil).Chat(context.Background(), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if got.Content != `{"ok":true}` {
		t.Errorf("Content = %q", got.Content)
	}
	body := f.call(0).Body
	if body["format"] != "json" {
		t.Errorf(`format = %v, want "json"`, body["format"])
	}
	if _, ok := body["options"]; ok {
		t.Errorf("options sent with no temperature or max tokens: %v", body["options"])
	}
}

// streamLines writes each piece and flushes it on its own, as Ollama does.
func streamLines(t *testing.T, w http.ResponseWriter, pieces ...string) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	fl, ok := w.(http.Flusher)
	if !ok {
		t.Fatal("response writer cannot flush")
	}
	for _, p := range pieces {
		io.WriteString(w, p)
		fl.Flush()
	}
}

func TestChatStream(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		streamLines(t, w,
			`{"model":"llama3.1:8b","created_at":"2025-03-01T12:00:00Z","message":{"role":"assistant","content":"Hel"},"done":false}`+"\n",
			`{"model":"llama3.1:8b","created_at":"2025-03-01T12:00:01Z","message":{"role":"assistant","con`,
			`tent":"lo "},"done":false}`+"\n",
			`{"model":"llama3.1:8b","created_at":"2025-03-01T12:00:02Z","message":{"role":"assistant","content":"there."},"done":false}`+"\n",
			`{"model":"llama3.1:8b","created_at":"2025-03-01T12:00:03Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"length","total_duration":1,"prompt_eval_count":26,"eval_count":3}`+"\n",
		)
	})
	req := hello()
	req.Stream = true
	got, err := newClient(t, f.URL, nil).Chat(context.Background(), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	want := ai.Response{Model: "llama3.1:8b", Content: "Hello there.", PromptTokens: 26, CompletionTokens: 3, FinishReason: "length"}
	if got != want {
		t.Errorf("Chat = %+v, want %+v", got, want)
	}
	if f.call(0).Body["stream"] != true {
		t.Errorf("stream = %v, want true", f.call(0).Body["stream"])
	}
}

func TestChatStreamFailures(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  error
		text  string
	}{
		{
			name: "error line",
			lines: []string{
				`{"model":"llama3.1:8b","created_at":"2025-03-01T12:00:00Z","message":{"role":"assistant","content":"Hel"},"done":false}` + "\n",
				`{"error":"an error was encountered while running the model: unexpected EOF"}` + "\n",
			},
			want: ai.ErrServer,
			text: "an error was encountered while running the model",
		},
		{
			name:  "ends before done",
			lines: []string{`{"model":"llama3.1:8b","created_at":"2025-03-01T12:00:00Z","message":{"role":"assistant","content":"Hel"},"done":false}` + "\n"},
			want:  ai.ErrMalformedReply,
			text:  "before a done message",
		},
		{
			name:  "not JSON",
			lines: []string{"event: message\n", "data: {}\n"},
			want:  ai.ErrMalformedReply,
			text:  "not a JSON object",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { streamLines(t, w, tt.lines...) })
			req := hello()
			req.Stream = true
			_, err := newClient(t, f.URL, func(c *ollama.Config) { c.Retry.MaxAttempts = 1 }).Chat(context.Background(), req)
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.text) {
				t.Fatalf("Chat error = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			assertNames(t, err, f.URL)
		})
	}
}

// assertNames checks that err names the model and the endpoint.
func assertNames(t *testing.T, err error, endpoint string) {
	t.Helper()
	if msg := err.Error(); !strings.Contains(msg, `"llama3.1:8b"`) || !strings.Contains(msg, endpoint) {
		t.Errorf("error %q does not name the model and endpoint %s", msg, endpoint)
	}
}

func TestChatErrors(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        error
		attempts    int
		text        string
	}{
		{"model not found", 404, "application/json", `{"error":"model \"llama3.1:8b\" not found, try pulling it first"}`, ai.ErrModelNotFound, 1, "try pulling it first"},
		{"bad request", 400, "application/json", `{"error":"invalid options"}`, ai.ErrBadRequest, 1, "invalid options"},
		{"unauthorized", 401, "application/json", `{"error":"unauthorized"}`, ai.ErrUnauthorized, 1, "HTTP 401"},
		{"server error retried", 500, "application/json", `{"error":"llama runner process has terminated"}`, ai.ErrServer, 3, "after 3 attempts"},
		{"bad gateway page retried", 502, "text/html", `<html><body>Bad Gateway</body></html>`, ai.ErrServer, 3, "Bad Gateway"},
		{"rate limited retried", 429, "application/json", `{"error":"too many requests"}`, ai.ErrRateLimited, 3, "too many requests"},
		{"HTML page", 200, "text/html; charset=utf-8", `<!DOCTYPE html><html><title>Welcome to nginx!</title></html>`, ai.ErrMalformedReply, 1, "HTML page"},
		{"HTML page without content type", 200, "", `<!DOCTYPE html><html><title>Welcome to nginx!</title></html>`, ai.ErrMalformedReply, 1, "Welcome to nginx"},
		{"JSON of another shape", 200, "application/json", `{"status":"ok"}`, ai.ErrMalformedReply, 1, "no message"},
		{"error with status 200", 200, "application/json", `{"error":"out of memory"}`, ai.ErrServer, 3, "out of memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				} else {
					w.Header()["Content-Type"] = nil
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := newClient(t, f.URL, nil).Chat(context.Background(), hello())
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.text) {
				t.Fatalf("Chat error = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			t.Log(err)
			if got := f.attempts(); got != tt.attempts {
				t.Errorf("%d attempts, want %d", got, tt.attempts)
			}
			assertNames(t, err, f.URL)
		})
	}
}

func TestRetryAfterThenSuccess(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, attempt int) {
		if attempt == 1 {
			w.Header().Set("Retry-After", "0")
			reply(w, 429, `{"error":"server busy, please try again"}`)
			return
		}
		reply(w, 200, okReply)
	})
	var logs bytes.Buffer
	c := newClient(t, f.URL, func(c *ollama.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	got, err := c.Chat(context.Background(), hello())
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if got.Content != "Hello there." || f.attempts() != 2 {
		t.Errorf("Chat = %q after %d attempts, want the reply after 2", got.Content, f.attempts())
	}
	if !strings.Contains(logs.String(), "ai chat retry") || !strings.Contains(logs.String(), "rate limited") {
		t.Errorf("retry not logged: %s", logs.String())
	}
}

func TestRetryAfterBeyondPolicyStops(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Retry-After", "3600")
		reply(w, 503, `{"error":"overloaded"}`)
	})
	_, err := newClient(t, f.URL, nil).Chat(context.Background(), hello())
	if !errors.Is(err, ai.ErrServer) || !strings.Contains(fmt.Sprint(err), "retry after 1h0m0s") {
		t.Fatalf("Chat error = %v, want a server error quoting Retry-After", err)
	}
	if f.attempts() != 1 {
		t.Errorf("%d attempts, want 1: retrying before Retry-After ignores the server", f.attempts())
	}
}

// closedURL returns the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestUnreachable(t *testing.T) {
	u := closedURL(t)
	_, err := newClient(t, u, nil).Chat(context.Background(), hello())
	if !errors.Is(err, ai.ErrUnreachable) {
		t.Fatalf("Chat error = %v, want ErrUnreachable", err)
	}
	assertNames(t, err, u)
	if !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("connection errors were not retried: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { <-r.Context().Done() })
	c := newClient(t, f.URL, func(c *ollama.Config) { c.Timeout = 50 * time.Millisecond })
	_, err := c.Chat(context.Background(), hello())
	if !errors.Is(err, ai.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no reply within 50ms") {
		t.Fatalf("Chat error = %v, want ErrUnreachable and DeadlineExceeded after 50ms", err)
	}
}

func TestCancelStopsRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, 503, `{"error":"loading model"}`)
		cancel()
	})
	// A wait of an hour: only the cancellation can end Chat in time.
	c := newClient(t, f.URL, func(c *ollama.Config) { c.Retry = ai.RetryPolicy{MaxAttempts: 5, Initial: time.Hour, Max: time.Hour} })
	done := make(chan error, 1)
	go func() {
		_, err := c.Chat(ctx, hello())
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Chat error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Chat kept waiting after its context was cancelled")
	}
	if f.attempts() != 1 {
		t.Errorf("%d attempts, want 1", f.attempts())
	}
}

func TestAPIKey(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, 403, `{"error":"key `+testKey+` is not allowed"}`)
	})
	var logs bytes.Buffer
	c := newClient(t, f.URL, func(c *ollama.Config) {
		c.APIKeyEnv = "OLLAMA_KEY"
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	_, err := c.Chat(context.Background(), hello())
	if !errors.Is(err, ai.ErrUnauthorized) {
		t.Fatalf("Chat error = %v, want ErrUnauthorized", err)
	}
	if got := f.call(0).Header.Get("Authorization"); got != "Bearer "+testKey {
		t.Errorf("Authorization = %q, want the bearer key", got)
	}
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("client", "client", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("client", "client", c)
	for _, out := range []string{err.Error(), logs.String(), c.String(), c.GoString(), fmt.Sprintf("%v %+v %#v %s %q %x %d", c, c, c, c, c, c, c), fmt.Sprintf("%v %+v %#v", *c, *c, *c)} {
		if strings.Contains(out, testKey) {
			t.Errorf("key shown: %s", out)
		}
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("error %q lost the redaction marker", err)
	}
	if !strings.Contains(c.String(), "[REDACTED]") || !strings.Contains(logs.String(), "[REDACTED]") {
		t.Errorf("client description does not say a key is set: %s / %s", c, logs.String())
	}
}

func TestEndpointForms(t *testing.T) {
	for _, suffix := range []string{"", "/", "/api", "/api/"} {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, okReply) })
		if _, err := newClient(t, f.URL+suffix, nil).Chat(context.Background(), hello()); err != nil {
			t.Errorf("endpoint %q: %v", f.URL+suffix, err)
		}
	}
}

func TestConcurrentChats(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, okReply) })
	c := newClient(t, f.URL, nil)
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			req := hello()
			req.Stream = i%2 == 0
			if _, err := c.Chat(context.Background(), req); err != nil {
				t.Error(err)
				failures.Add(1)
			}
		})
	}
	wg.Wait()
	if f.attempts() != 8 || failures.Load() != 0 {
		t.Errorf("%d requests with %d failures, want 8 and 0", f.attempts(), failures.Load())
	}
}

func TestRequestRefusedBeforeSending(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, okReply) })
	c := newClient(t, f.URL, nil)
	for _, req := range []ai.Request{
		{},
		{Messages: []ai.Message{{Role: "tool", Content: "x"}}},
		{Messages: []ai.Message{{Role: ai.RoleUser, Content: "x"}}, MaxTokens: -1},
	} {
		if _, err := c.Chat(context.Background(), req); !errors.Is(err, ai.ErrBadRequest) {
			t.Errorf("Chat(%+v) error = %v, want ErrBadRequest", req, err)
		}
	}
	if f.attempts() != 0 {
		t.Errorf("%d bad requests reached the server", f.attempts())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg   ollama.Config
		field string
	}{
		{ollama.Config{Endpoint: "localhost:11434"}, "endpoint"},
		{ollama.Config{Endpoint: "http://h", APIKeyEnv: "A", APIKeyFile: "/k"}, "api_key_file"},
		{ollama.Config{Endpoint: "http://h", APIKeyEnv: "not a name"}, "api_key_env"},
		{ollama.Config{Endpoint: "http://h", Timeout: -time.Second}, "timeout"},
		{ollama.Config{Endpoint: "http://h", Retry: ai.RetryPolicy{MaxAttempts: -1}}, "retry.max_attempts"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(fmt.Sprint(err), tt.field) {
			t.Errorf("Validate(%+v) = %v, want an invalid error naming %s", tt.cfg, err, tt.field)
		}
		if _, err := ollama.New(tt.cfg, nil, nil); !errors.Is(err, chorus.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want the validation error", tt.cfg, err)
		}
	}
	if _, err := ollama.New(ollama.Config{Endpoint: "http://h", APIKeyEnv: "UNSET_KEY"}, nil, func(string) string { return "" }); !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), "UNSET_KEY") {
		t.Errorf("New with an unset key variable = %v, want an error naming it", err)
	}
}
