package openai_test

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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus"
	"chorus/ai"
	"chorus/ai/openai"
)

// tiny retries fast enough that no test waits noticeably.
var tiny = ai.RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond}

const testKey = "sk-proj-TESTKEY0123456789abcdefXYZ"

// call is one request as the fake server saw it.
type call struct {
	Path   string
	Header http.Header
	Body   map[string]any
}

// fake is an OpenAI-compatible server: each request is recorded and
// answered by handle, which gets the 1-based attempt number.
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
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			t.Errorf("request %s %s, want POST /v1/chat/completions", r.Method, r.URL.Path)
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

func getenv(k string) string {
	if k == "OPENAI_API_KEY" {
		return testKey
	}
	return ""
}

// newClient builds a client with the test key from OPENAI_API_KEY, unless
// mod clears APIKeyEnv.
func newClient(t *testing.T, endpoint string, mod func(*openai.Config)) *openai.Client {
	t.Helper()
	cfg := openai.DefaultConfig()
	cfg.Endpoint = endpoint
	cfg.Model = "gpt-4o-mini"
	cfg.APIKeyEnv = "OPENAI_API_KEY"
	cfg.Retry = tiny
	if mod != nil {
		mod(&cfg)
	}
	c, err := openai.New(cfg, nil, getenv)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

const okReply = `{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [
    {
      "index": 0,
      "message": {"role": "assistant", "content": "Hello there.", "refusal": null},
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
  "system_fingerprint": "fp_44709d6fcb"
}`

func hello() ai.Request {
	return ai.Request{Messages: []ai.Message{{Role: ai.RoleSystem, Content: "Be brief."}, {Role: ai.RoleUser, Content: "Hi"}}}
}

func TestChat(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, okReply) })
	temp := 0.0
	req := hello()
	req.Temperature = &temp
	req.MaxTokens = 100

	got, err := newClient(t, f.URL, nil).Chat(context.Background(), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	want := ai.Response{Model: "gpt-4o-mini-2024-07-18", Content: "Hello there.", PromptTokens: 19, CompletionTokens: 10, FinishReason: "stop"}
	if got != want {
		t.Errorf("Chat = %+v, want %+v", got, want)
	}
	if got.TotalTokens() != 29 {
		t.Errorf("TotalTokens = %d, want 29", got.TotalTokens())
	}
	sent := f.call(0)
	wantBody := `{"max_tokens":100,"messages":[{"content":"Be brief.","role":"system"},{"content":"Hi","role":"user"}],"model":"gpt-4o-mini","stream":false,"temperature":0}`
	if b, _ := json.Marshal(sent.Body); string(b) != wantBody {
		t.Errorf("request body\n%s\nwant\n%s", b, wantBody)
	}
	if got := sent.Header.Get("Authorization"); got != "Bearer "+testKey {
		t.Errorf("Authorization = %q, want the bearer key", got)
	}
}

func TestNoKeyNoHeader(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, okReply) })
	c := newClient(t, f.URL, func(c *openai.Config) { c.APIKeyEnv = "" })
	if _, err := c.Chat(context.Background(), hello()); err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if h, ok := f.call(0).Header["Authorization"]; ok {
		t.Errorf("Authorization %q sent with no key configured", h)
	}
}

func TestKeyFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, okReply) })
	c := newClient(t, f.URL, func(c *openai.Config) { c.APIKeyEnv, c.APIKeyFile = "", path })
	if _, err := c.Chat(context.Background(), hello()); err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if got := f.call(0).Header.Get("Authorization"); got != "Bearer "+testKey {
		t.Errorf("Authorization = %q, want the key from the file", got)
	}
}

func TestJSONMode(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, okReply) })
	req := hello()
	req.JSON = true
	if _, err := newClient(t, f.URL, nil).Chat(context.Background(), req); err != nil {
		t.Fatalf("Chat: %v", err)
	}
	body := f.call(0).Body
	if rf, _ := json.Marshal(body["response_format"]); string(rf) != `{"type":"json_object"}` {
		t.Errorf("response_format = %s, want json_object", rf)
	}
	for _, absent := range []string{"stream_options", "max_tokens", "temperature"} {
		if v, ok := body[absent]; ok {
			t.Errorf("%s = %v sent, want it absent", absent, v)
		}
	}
}

// sse writes each event and flushes it on its own, as OpenAI does.
func sse(t *testing.T, w http.ResponseWriter, pieces ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	fl, ok := w.(http.Flusher)
	if !ok {
		t.Fatal("response writer cannot flush")
	}
	for _, p := range pieces {
		io.WriteString(w, p)
		fl.Flush()
	}
}

func chunk(delta, finish string) string {
	fr := "null"
	if finish != "" {
		fr = `"` + finish + `"`
	}
	return `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":` + fr + `}],"usage":null}` + "\n\n"
}

func TestChatStream(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		sse(t, w,
			": keep-alive\n\n",
			chunk(`{"role":"assistant","content":"","refusal":null}`, ""),
			chunk(`{"content":"Hel"}`, ""),
			// One event split across two writes.
			`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"con`,
			`tent":"lo "},"finish_reason":null}],"usage":null}`+"\n\n",
			chunk(`{"content":"there."}`, ""),
			chunk(`{}`, "stop"),
			`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":4,"total_tokens":23}}`+"\n\n",
			"data: [DONE]\n\n",
		)
	})
	req := hello()
	req.Stream = true
	req.JSON = true
	got, err := newClient(t, f.URL, nil).Chat(context.Background(), req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	want := ai.Response{Model: "gpt-4o-mini-2024-07-18", Content: "Hello there.", PromptTokens: 19, CompletionTokens: 4, FinishReason: "stop"}
	if got != want {
		t.Errorf("Chat = %+v, want %+v", got, want)
	}
	body := f.call(0).Body
	if body["stream"] != true {
		t.Errorf("stream = %v, want true", body["stream"])
	}
	if so, _ := json.Marshal(body["stream_options"]); string(so) != `{"include_usage":true}` {
		t.Errorf("stream_options = %s, want include_usage", so)
	}
	if rf, _ := json.Marshal(body["response_format"]); string(rf) != `{"type":"json_object"}` {
		t.Errorf("response_format = %s, want json_object", rf)
	}
}

func TestChatStreamFailures(t *testing.T) {
	tests := []struct {
		name   string
		events []string
		want   error
		text   string
	}{
		{"no [DONE]", []string{chunk(`{"content":"Hel"}`, "")}, ai.ErrMalformedReply, "without data: [DONE]"},
		{"error event", []string{chunk(`{"content":"Hel"}`, ""), `data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","code":null}}` + "\n\n"}, ai.ErrServer, "server had an error"},
		{"chunk not JSON", []string{"data: <html>\n\n"}, ai.ErrMalformedReply, "not a JSON chunk"},
		{"plain JSON instead of events", []string{okReply}, ai.ErrMalformedReply, "without data: [DONE]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { sse(t, w, tt.events...) })
			req := hello()
			req.Stream = true
			_, err := newClient(t, f.URL, func(c *openai.Config) { c.Retry.MaxAttempts = 1 }).Chat(context.Background(), req)
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.text) {
				t.Fatalf("Chat error = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			assertNames(t, err, f.URL)
		})
	}
}

// assertNames checks that err names the model and the endpoint and not
// the key.
func assertNames(t *testing.T, err error, endpoint string) {
	t.Helper()
	msg := err.Error()
	if !strings.Contains(msg, `"gpt-4o-mini"`) || !strings.Contains(msg, endpoint) {
		t.Errorf("error %q does not name the model and endpoint %s", msg, endpoint)
	}
	if strings.Contains(msg, testKey) {
		t.Errorf("error shows the key: %s", msg)
	}
}

func errBody(message, typ, code string) string {
	return fmt.Sprintf(`{"error":{"message":%q,"type":%q,"param":null,"code":%s}}`, message, typ, code)
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
		{"unauthorized quoting the key", 401, "application/json",
			errBody("Incorrect API key provided: "+testKey+". You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", `"invalid_api_key"`),
			ai.ErrUnauthorized, 1, "Incorrect API key provided: [REDACTED]"},
		{"model not found", 404, "application/json",
			errBody("The model `gpt-9` does not exist or you do not have access to it.", "invalid_request_error", `"model_not_found"`),
			ai.ErrModelNotFound, 1, "does not exist"},
		{"model not found code on 400", 400, "application/json",
			errBody("The model `gpt-9` does not exist.", "invalid_request_error", `"model_not_found"`),
			ai.ErrModelNotFound, 1, "code model_not_found"},
		{"bad request not retried", 400, "application/json",
			errBody("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", "invalid_request_error", "null"),
			ai.ErrBadRequest, 1, "must contain the word 'json'"},
		{"rate limited retried", 429, "application/json",
			errBody("Rate limit reached for gpt-4o-mini on tokens per min (TPM).", "tokens", `"rate_limit_exceeded"`),
			ai.ErrRateLimited, 3, "after 3 attempts"},
		{"server error retried", 500, "application/json",
			errBody("The server had an error while processing your request. Sorry about that!", "server_error", "null"),
			ai.ErrServer, 3, "server had an error"},
		{"overloaded retried", 503, "application/json",
			errBody("The engine is currently overloaded, please try again later.", "server_error", "null"),
			ai.ErrServer, 3, "overloaded"},
		{"HTML page", 200, "text/html", `<!doctype html><html><head><title>Grafana</title></head></html>`,
			ai.ErrMalformedReply, 1, "HTML page"},
		{"HTML 404 page", 404, "text/html", `<html><body><h1>404 Not Found</h1></body></html>`,
			ai.ErrModelNotFound, 1, "not an OpenAI error object (is the endpoint right?)"},
		{"missing choices", 200, "application/json", `{"id":"x","object":"chat.completion","model":"gpt-4o-mini","choices":[]}`,
			ai.ErrMalformedReply, 1, "no choices"},
		{"invalid JSON", 200, "application/json", `{"id":"x","object":"chat.comp`,
			ai.ErrMalformedReply, 1, "not a chat completion"},
		{"Ollama native reply", 200, "application/json", `{"model":"llama3","message":{"role":"assistant","content":"hi"},"done":true}`,
			ai.ErrMalformedReply, 1, "no choices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				w.Header().Set("Content-Type", tt.contentType)
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
	for _, retryAfter := range []string{"0", time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat)} {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, attempt int) {
			if attempt < 3 {
				w.Header().Set("Retry-After", retryAfter)
				reply(w, 429, errBody("Rate limit reached for requests", "requests", `"rate_limit_exceeded"`))
				return
			}
			reply(w, 200, okReply)
		})
		got, err := newClient(t, f.URL, nil).Chat(context.Background(), hello())
		if err != nil {
			t.Fatalf("Retry-After %q: %v", retryAfter, err)
		}
		if got.Content != "Hello there." || f.attempts() != 3 {
			t.Errorf("Retry-After %q: %q after %d attempts, want the reply after 3", retryAfter, got.Content, f.attempts())
		}
	}
}

func TestRetryAfterBeyondPolicyStops(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Retry-After", "20")
		reply(w, 429, errBody("Rate limit reached", "requests", `"rate_limit_exceeded"`))
	})
	_, err := newClient(t, f.URL, nil).Chat(context.Background(), hello())
	if !errors.Is(err, ai.ErrRateLimited) || !strings.Contains(fmt.Sprint(err), "retry after 20s") {
		t.Fatalf("Chat error = %v, want ErrRateLimited quoting Retry-After", err)
	}
	if f.attempts() != 1 {
		t.Errorf("%d attempts, want 1: retrying before Retry-After ignores the server", f.attempts())
	}
}

func TestRetryLogsNeverShowKey(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, attempt int) {
		if attempt == 1 {
			reply(w, 502, "upstream rejected key "+testKey)
			return
		}
		reply(w, 200, okReply)
	})
	var logs bytes.Buffer
	c := newClient(t, f.URL, func(c *openai.Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	if _, err := c.Chat(context.Background(), hello()); err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"ai chat retry"`) || !strings.Contains(logs.String(), "upstream rejected key [REDACTED]") {
		t.Errorf("retry not logged with the reply redacted: %s", logs.String())
	}
	if strings.Contains(logs.String(), testKey) {
		t.Errorf("log shows the key: %s", logs.String())
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	_, err = newClient(t, u, nil).Chat(context.Background(), hello())
	if !errors.Is(err, ai.ErrUnreachable) {
		t.Fatalf("Chat error = %v, want ErrUnreachable", err)
	}
	assertNames(t, err, u)
}

func TestCancelStopsRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Retry-After", "1")
		reply(w, 429, errBody("Rate limit reached", "requests", `"rate_limit_exceeded"`))
		cancel()
	})
	// Waits of an hour: only the cancellation can end Chat in time.
	c := newClient(t, f.URL, func(c *openai.Config) { c.Retry = ai.RetryPolicy{MaxAttempts: 5, Initial: time.Hour, Max: time.Hour} })
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

func TestEndpointForms(t *testing.T) {
	for _, suffix := range []string{"", "/", "/v1", "/v1/"} {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, okReply) })
		if _, err := newClient(t, f.URL+suffix, nil).Chat(context.Background(), hello()); err != nil {
			t.Errorf("endpoint %q: %v", f.URL+suffix, err)
		}
	}
}

func TestRedaction(t *testing.T) {
	c := newClient(t, "https://api.openai.com/v1", nil)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("client", "client", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("client", slog.Any("client", c))
	outputs := map[string]string{
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", c),
		"%#v":      fmt.Sprintf("%#v", c),
		"%s":       fmt.Sprintf("%s", c),
		"%q":       fmt.Sprintf("%q", c),
		"%x":       fmt.Sprintf("%x", c),
		"%d":       fmt.Sprintf("%d", c),
		"value %v": fmt.Sprintf("%v %+v %#v", *c, *c, *c),
		"String":   c.String(),
		"GoString": c.GoString(),
		"slog":     logs.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, testKey) {
			t.Errorf("%s shows the key: %s", name, out)
		}
	}
	for _, name := range []string{"%v", "%+v", "%#v", "slog"} {
		if !strings.Contains(outputs[name], "[REDACTED]") || !strings.Contains(outputs[name], "api.openai.com") {
			t.Errorf("%s = %s, want the endpoint and [REDACTED]", name, outputs[name])
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg   openai.Config
		field string
	}{
		{openai.Config{Endpoint: "api.openai.com"}, "endpoint"},
		{openai.Config{Endpoint: "https://h", APIKeyEnv: "A", APIKeyFile: "/k"}, "api_key_file"},
		{openai.Config{Endpoint: "https://h", APIKeyEnv: "$KEY"}, "api_key_env"},
		{openai.Config{Endpoint: "https://h", Timeout: -time.Second}, "timeout"},
		{openai.Config{Endpoint: "https://h", Retry: ai.RetryPolicy{Initial: time.Second, Max: time.Millisecond}}, "retry.max"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(fmt.Sprint(err), tt.field) {
			t.Errorf("Validate(%+v) = %v, want an invalid error naming %s", tt.cfg, err, tt.field)
		}
	}
	_, err := openai.New(openai.Config{Endpoint: "https://h", APIKeyEnv: "MISSING_KEY"}, nil, getenv)
	if !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(fmt.Sprint(err), "MISSING_KEY") {
		t.Errorf("New with an unset key variable = %v, want an error naming it", err)
	}
}
