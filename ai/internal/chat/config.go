package chat

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"chorus"
	"chorus/secret"
)

// Config describes one model behind one endpoint; the provider packages
// alias it.
type Config struct {
	// Endpoint is the server's base URL; a trailing API prefix (/api for
	// Ollama, /v1 for OpenAI) is accepted.
	Endpoint string
	// Model is used when Request.Model is empty.
	Model string
	// APIKeyEnv names the environment variable holding the API key;
	// APIKeyFile is the path of a file holding it. Set at most one; with
	// neither, no Authorization header is sent.
	APIKeyEnv  string
	APIKeyFile string
	// Timeout bounds one Chat call, retries included; zero means the
	// provider's default.
	Timeout time.Duration
	// Retry bounds the retries of one call.
	Retry RetryPolicy
	// Logger receives a warning per retry; nil discards.
	Logger *slog.Logger
}

// Validate checks the configuration and names the bad fields.
func (c Config) Validate() error {
	var errs []error
	if _, err := ParseEndpoint(c.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if err := secret.CheckSource("api_key_env", c.APIKeyEnv, "api_key_file", c.APIKeyFile); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%w: timeout: must not be negative, got %s", chorus.ErrInvalid, c.Timeout))
	}
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Wire describes a provider's endpoint layout.
type Wire struct {
	// Provider names the wire format in errors and logs ("ollama").
	Provider string
	// Prefix is the API prefix ("api", "v1") and Path the chat path below
	// it ("chat", "chat/completions").
	Prefix, Path string
	// DefaultTimeout applies when Config.Timeout is zero.
	DefaultTimeout time.Duration
	// Classify: see Caller.Classify.
	Classify func(status int, body []byte) error
}

// NewCaller validates cfg, reads the API key (through getenv) and returns
// the Caller posting to the provider's chat URL under cfg.Endpoint.
func NewCaller(w Wire, cfg Config, hc *http.Client, getenv func(string) string) (*Caller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", w.Provider, err)
	}
	key, err := secret.Load("api_key_env", cfg.APIKeyEnv, "api_key_file", cfg.APIKeyFile, getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.Provider, err)
	}
	u, _ := ParseEndpoint(cfg.Endpoint)
	endpoint := u.Redacted()
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	path := strings.Split(w.Path, "/")
	if !strings.HasSuffix(u.Path, "/"+w.Prefix) {
		path = append([]string{w.Prefix}, path...)
	}
	u = u.JoinPath(path...)
	if cfg.Timeout == 0 {
		cfg.Timeout = w.DefaultTimeout
	}
	return &Caller{
		Provider: w.Provider,
		Endpoint: endpoint,
		URL:      u.String(),
		HTTP:     hc,
		Key:      key,
		Retry:    cfg.Retry,
		Timeout:  cfg.Timeout,
		Logger:   cfg.Logger,
		Classify: w.Classify,
	}, nil
}
