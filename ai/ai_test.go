package ai_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/ai"
	"chorus/ai/ollama"
	"chorus/ai/openai"
)

func names(ms []ai.Model) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func TestSelect(t *testing.T) {
	models := []ai.Model{
		{Name: "general"},
		{Name: "coder-a", Roles: []string{"developer"}},
		{Name: "reviewer", Roles: []string{"reviewer"}},
		{Name: "coder-b", Roles: []string{"tester", "developer"}},
		{Name: "spare"},
	}
	tests := []struct {
		name, role, named string
		want              []string
	}{
		{"role first, config order kept", "developer", "", []string{"coder-a", "coder-b", "general", "reviewer", "spare"}},
		{"unknown role keeps config order", "designer", "", []string{"general", "coder-a", "reviewer", "coder-b", "spare"}},
		{"no role keeps config order", "", "", []string{"general", "coder-a", "reviewer", "coder-b", "spare"}},
		{"named model is primary, then role", "developer", "spare", []string{"spare", "coder-a", "coder-b", "general", "reviewer"}},
		{"named model also matching the role is not repeated", "developer", "coder-b", []string{"coder-b", "coder-a", "general", "reviewer", "spare"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ai.Select(models, tt.role, tt.named)
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if !slices.Equal(names(got), tt.want) {
				t.Errorf("Select(%q, %q) = %v, want %v", tt.role, tt.named, names(got), tt.want)
			}
		})
	}

	_, err := ai.Select(models, "developer", "gpt-9")
	if !errors.Is(err, ai.ErrModelNotFound) || !strings.Contains(err.Error(), `"gpt-9"`) {
		t.Errorf("Select of an unknown model = %v, want ErrModelNotFound naming it", err)
	}
	if got, err := ai.Select(nil, "developer", ""); err != nil || len(got) != 0 {
		t.Errorf("Select with no models = %v, %v; want none", got, err)
	}
	before := names(models)
	ai.Select(models, "reviewer", "spare")
	if !slices.Equal(names(models), before) {
		t.Errorf("Select reordered its input: %v", names(models))
	}
}

func TestModelValidate(t *testing.T) {
	ok := ai.Model{Name: "llama3.1:8b", Provider: ai.ProviderOllama, Endpoint: "http://localhost:11434"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid model: %v", err)
	}
	tests := []struct {
		mod   func(*ai.Model)
		field string
	}{
		{func(m *ai.Model) { m.Name = " " }, "name"},
		{func(m *ai.Model) { m.Provider = "anthropic" }, "provider"},
		{func(m *ai.Model) { m.Provider = "" }, "provider"},
		{func(m *ai.Model) { m.Endpoint = "" }, "endpoint"},
		{func(m *ai.Model) { m.Endpoint = "unix:///run/ollama.sock" }, "endpoint"},
		{func(m *ai.Model) { m.APIKeyEnv = "OPENAI-KEY" }, "api_key_env"},
		{func(m *ai.Model) { m.APIKeyEnv, m.APIKeyFile = "KEY", "/run/key" }, "api_key_file"},
		{func(m *ai.Model) { m.Timeout = -time.Second }, "timeout"},
		{func(m *ai.Model) { m.Roles = []string{"developer", ""} }, "roles[1]"},
		{func(m *ai.Model) { m.Retry.MaxAttempts = -2 }, "retry.max_attempts"},
	}
	for _, tt := range tests {
		m := ok
		tt.mod(&m)
		err := m.Validate()
		if !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(fmt.Sprint(err), tt.field+":") {
			t.Errorf("Validate(%+v) = %v, want an invalid error naming %s", m, err, tt.field)
		}
		if _, err := ai.New(m, nil, nil); !errors.Is(err, chorus.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want the validation error", m, err)
		}
	}
	bad := ai.Model{Provider: "x"}
	if err := bad.Validate(); strings.Count(err.Error(), "\n") < 2 {
		t.Errorf("Validate reports only some problems: %v", err)
	}
}

func TestNewPicksProvider(t *testing.T) {
	tests := []struct {
		provider string
		want     any
	}{
		{ai.ProviderOllama, (*ollama.Client)(nil)},
		{ai.ProviderOpenAI, (*openai.Client)(nil)},
	}
	for _, tt := range tests {
		c, err := ai.New(ai.Model{Name: "m", Provider: tt.provider, Endpoint: "http://localhost:1"}, nil, nil)
		if err != nil {
			t.Fatalf("New(%s): %v", tt.provider, err)
		}
		if fmt.Sprintf("%T", c) != fmt.Sprintf("%T", tt.want) {
			t.Errorf("New(%s) = %T, want %T", tt.provider, c, tt.want)
		}
	}
}

const testKey = "sk-live-DO-NOT-PRINT-5150"

func TestNewReadsKey(t *testing.T) {
	auth := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	}))
	defer srv.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "OPENAI_API_KEY" {
			return testKey
		}
		return ""
	}
	req := ai.Request{Messages: []ai.Message{{Role: ai.RoleUser, Content: "hi"}}}
	for _, m := range []ai.Model{
		{Name: "m", Provider: ai.ProviderOpenAI, Endpoint: srv.URL, APIKeyEnv: "OPENAI_API_KEY"},
		{Name: "m", Provider: ai.ProviderOpenAI, Endpoint: srv.URL, APIKeyFile: keyFile},
	} {
		c, err := ai.New(m, srv.Client(), getenv)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if _, err := c.Chat(context.Background(), req); err != nil {
			t.Fatalf("Chat: %v", err)
		}
		if got := <-auth; got != "Bearer "+testKey {
			t.Errorf("Authorization = %q, want the configured key", got)
		}
		var logs strings.Builder
		slog.New(slog.NewTextHandler(&logs, nil)).Info("client", "client", c)
		for _, out := range []string{fmt.Sprintf("%v|%+v|%#v|%s", c, c, c, c), logs.String()} {
			if strings.Contains(out, testKey) || !strings.Contains(out, "[REDACTED]") {
				t.Errorf("client shows the key or hides that one is set: %s", out)
			}
		}
	}

	_, err := ai.New(ai.Model{Name: "m", Provider: ai.ProviderOpenAI, Endpoint: srv.URL, APIKeyEnv: "UNSET"}, nil, getenv)
	if !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), "UNSET") {
		t.Errorf("New with an unset key variable = %v, want an error naming the variable", err)
	}
}
