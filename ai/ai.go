package ai

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"chorus"
	"chorus/ai/internal/chat"
	"chorus/ai/ollama"
	"chorus/ai/openai"
	"chorus/secret"
)

type (
	// Message is one turn of a conversation; Role is RoleSystem, RoleUser
	// or RoleAssistant.
	Message = chat.Message
	// Request is one chat call. Model overrides the client's model when
	// set; MaxTokens 0 and a nil Temperature leave those to the server;
	// JSON asks for a single JSON object as the reply; Stream uses the
	// provider's streaming wire format (the reply is still returned whole).
	Request = chat.Request
	// Response is a complete reply with the server's token counts.
	Response = chat.Response
	// RetryPolicy bounds the retries of one call: MaxAttempts tries in all,
	// waits doubling from Initial up to Max, with jitter. Zero fields take
	// the defaults of DefaultRetryPolicy. Retry-After is honoured on 429 and
	// 503; one longer than Max ends the retries at once.
	RetryPolicy = chat.RetryPolicy
)

// Message roles.
const (
	RoleSystem    = chat.RoleSystem
	RoleUser      = chat.RoleUser
	RoleAssistant = chat.RoleAssistant
)

// Providers accepted in Model.Provider.
const (
	ProviderOllama = "ollama"
	ProviderOpenAI = "openai"
)

// DefaultTimeout bounds one Chat call when Model.Timeout is zero.
const DefaultTimeout = 120 * time.Second

// Sentinel errors. Errors from Chat wrap exactly one; the message names the
// model and the endpoint.
var (
	// ErrUnreachable: no HTTP reply (refused, DNS, reset) or none within
	// the model's Timeout. Retried.
	ErrUnreachable = chat.ErrUnreachable
	// ErrModelNotFound: the server does not know the model, or Select was
	// asked for a model that is not configured. Not retried.
	ErrModelNotFound = chat.ErrModelNotFound
	// ErrMalformedReply: the reply is not the provider's wire format (an
	// HTML page from a wrong endpoint, no choices, invalid JSON, a
	// truncated stream). Not retried.
	ErrMalformedReply = chat.ErrMalformedReply
	// ErrRateLimited: HTTP 429. Retried, honouring Retry-After.
	ErrRateLimited = chat.ErrRateLimited
	// ErrUnauthorized: HTTP 401 or 403. Not retried.
	ErrUnauthorized = chat.ErrUnauthorized
	// ErrServer: HTTP 5xx or an error reported inside a reply. Retried.
	ErrServer = chat.ErrServer
	// ErrBadRequest: any other 4xx, or a request refused before sending
	// (no messages, unknown role). Not retried.
	ErrBadRequest = chat.ErrBadRequest
)

// DefaultRetryPolicy returns 3 attempts with waits from 500 ms to 5 s.
func DefaultRetryPolicy() RetryPolicy { return chat.DefaultRetryPolicy() }

// Client sends chat requests to one model. *ollama.Client and
// *openai.Client implement it.
type Client interface {
	Chat(ctx context.Context, req Request) (Response, error)
}

var (
	_ Client = (*ollama.Client)(nil)
	_ Client = (*openai.Client)(nil)
)

// Model is one LLM the agent may call: the agent YAML's models entry plus
// the tunables that have no YAML form.
type Model struct {
	// Name is the model as the provider knows it ("llama3.1:8b",
	// "gpt-4o-mini"); it is also how a task names the model.
	Name string
	// Provider is ProviderOllama or ProviderOpenAI.
	Provider string
	// Endpoint is the server's base URL.
	Endpoint string
	// APIKeyEnv names the environment variable holding the API key;
	// APIKeyFile is the path of a file holding it. At most one is set;
	// with neither, no key is sent.
	APIKeyEnv  string
	APIKeyFile string
	// Timeout bounds one Chat call, retries included; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Roles lists the agent roles this model is preferred for.
	Roles []string
	// Retry bounds retries; the zero value means DefaultRetryPolicy.
	Retry RetryPolicy
	// Logger receives a warning per retry (never the key); nil discards.
	Logger *slog.Logger
	// Metrics, when set, measures the client's calls (metrics.go).
	Metrics *Metrics
}

// Validate checks m and reports every problem, each naming its field and
// wrapping chorus.ErrInvalid.
func (m Model) Validate() error {
	var errs []error
	bad := func(err error) {
		errs = append(errs, fmt.Errorf("model %q: %w", m.Name, err))
	}
	if strings.TrimSpace(m.Name) == "" {
		bad(fmt.Errorf("%w: name: must not be empty", chorus.ErrInvalid))
	}
	if m.Provider != ProviderOllama && m.Provider != ProviderOpenAI {
		bad(fmt.Errorf("%w: provider: must be %s or %s, got %q", chorus.ErrInvalid, ProviderOllama, ProviderOpenAI, m.Provider))
	}
	if _, err := chat.ParseEndpoint(m.Endpoint); err != nil {
		bad(err)
	}
	if err := secret.CheckSource("api_key_env", m.APIKeyEnv, "api_key_file", m.APIKeyFile); err != nil {
		bad(err)
	}
	if m.Timeout < 0 {
		bad(fmt.Errorf("%w: timeout: must not be negative, got %s", chorus.ErrInvalid, m.Timeout))
	}
	for i, r := range m.Roles {
		if strings.TrimSpace(r) == "" {
			bad(fmt.Errorf("%w: roles[%d]: must not be empty", chorus.ErrInvalid, i))
		}
	}
	if err := m.Retry.Validate(); err != nil {
		bad(err)
	}
	return errors.Join(errs...)
}

// New builds the client for m.Provider. The API key, if m names one, is
// read now through getenv (os.Getenv when nil) or from the file; hc sends
// the requests (a plain http.Client when nil).
func New(m Model, hc *http.Client, getenv func(string) string) (Client, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	timeout := m.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	switch m.Provider {
	case ProviderOllama:
		c, err := ollama.New(ollama.Config{
			Endpoint: m.Endpoint, Model: m.Name, APIKeyEnv: m.APIKeyEnv, APIKeyFile: m.APIKeyFile,
			Timeout: timeout, Retry: m.Retry, Logger: m.Logger,
		}, hc, getenv)
		if err != nil {
			return nil, fmt.Errorf("model %q: %w", m.Name, err)
		}
		return m.instrument(c), nil
	default: // ProviderOpenAI; Validate refused anything else.
		c, err := openai.New(openai.Config{
			Endpoint: m.Endpoint, Model: m.Name, APIKeyEnv: m.APIKeyEnv, APIKeyFile: m.APIKeyFile,
			Timeout: timeout, Retry: m.Retry, Logger: m.Logger,
		}, hc, getenv)
		if err != nil {
			return nil, fmt.Errorf("model %q: %w", m.Name, err)
		}
		return m.instrument(c), nil
	}
}

// instrument wraps c in m.Metrics, when set.
func (m Model) instrument(c Client) Client {
	if m.Metrics == nil {
		return c
	}
	return m.Metrics.instrument(c, m.Name, m.Provider)
}

// Select orders models for a task: the model named by the task first (an
// error wrapping ErrModelNotFound if no model has that name), then the
// models whose Roles include role, then the rest, each group in
// configuration order. The first is the primary, the rest are alternates
// for the fallback ladder. With no models and no name it returns none.
func Select(models []Model, role, named string) ([]Model, error) {
	out := make([]Model, 0, len(models))
	taken := make([]bool, len(models))
	if named != "" {
		i := slices.IndexFunc(models, func(m Model) bool { return m.Name == named })
		if i < 0 {
			names := make([]string, len(models))
			for j, m := range models {
				names[j] = m.Name
			}
			return nil, fmt.Errorf("select model %q: %w: the configured models are %q", named, ErrModelNotFound, names)
		}
		out, taken[i] = append(out, models[i]), true
	}
	if role != "" {
		for i, m := range models {
			if !taken[i] && slices.Contains(m.Roles, role) {
				out, taken[i] = append(out, m), true
			}
		}
	}
	for i, m := range models {
		if !taken[i] {
			out = append(out, m)
		}
	}
	return out, nil
}
