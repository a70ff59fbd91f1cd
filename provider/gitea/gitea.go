package gitea

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
	"chorus/provider/internal/forge"
	"chorus/secret"
)

// ProviderName is the Provider of every task from Gitea.
const ProviderName = "gitea"

// RetryPolicy bounds the retries of one REST call; see DefaultConfig. It
// is the same policy the github provider uses.
type RetryPolicy = forge.RetryPolicy

// Config configures a Tracker. Secrets are never fields: only the name of
// the environment variable or the path of the file holding them.
type Config struct {
	// BaseURL is the Gitea server (https://gitea.example.com); the API
	// is under /api/v1 of it. There is no default.
	BaseURL string
	// TokenEnv names the environment variable holding the token;
	// TokenFile is a file holding it. Exactly one is set.
	TokenEnv  string
	TokenFile string
	// Repositories are the "owner/name" repositories tasks come from.
	Repositories []string
	// Label marks an issue as a task.
	Label string
	// InProgressLabel, CompletedLabel and FailedLabel show a task's
	// state on the issue.
	InProgressLabel string
	CompletedLabel  string
	FailedLabel     string
	// Assignee is the login a claim assigns; empty means the token's own
	// user.
	Assignee string
	// PollInterval is how often a Poller lists open tasks.
	PollInterval time.Duration
	// ClaimSettle is how long a claim that appears to have won waits
	// before it reads the comments once more to confirm.
	ClaimSettle time.Duration
	// WebhookSecretEnv or WebhookSecretFile hold the webhook secret;
	// with neither, Webhook refuses to build a handler.
	WebhookSecretEnv  string
	WebhookSecretFile string
	// MaxWebhookBody bounds a webhook delivery.
	MaxWebhookBody int64
	Retry          RetryPolicy
	// HTTPClient sends the requests; nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// Redact is applied to the free text of every comment (result
	// messages, output, failure reasons); nil posts them unchanged.
	Redact func(string) string
	// Logger receives retries and clean-up warnings, never the token;
	// nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration used where nothing is given.
// BaseURL, Repositories and the token source must still be set.
func DefaultConfig() Config {
	return Config{
		// Label: SPEC section 2.
		Label: "chorus-task",
		// InProgressLabel, CompletedLabel: SPEC section 2.
		InProgressLabel: "in-progress",
		CompletedLabel:  "completed",
		// FailedLabel: a failed task stays open for a human, out of
		// the agents' way.
		FailedLabel: "failed",
		// PollInterval: SPEC section 2; ~120 list calls an hour per
		// repository.
		PollInterval: 30 * time.Second,
		// ClaimSettle: comment IDs come from the database's sequence
		// before the write commits, so a racing claim with a smaller
		// ID can become visible a moment late; a second read a second
		// later sees it. A claim is rare next to the work it starts.
		ClaimSettle: time.Second,
		// MaxWebhookBody: issue deliveries are a few KiB; this leaves
		// room for long issue bodies.
		MaxWebhookBody: 1 << 20,
		// Retry: see forge.DefaultRetryPolicy; a call stays inside a
		// 30 s activity timeout.
		Retry: forge.DefaultRetryPolicy(),
	}
}

func (c Config) settings() forge.Settings {
	return forge.Settings{
		BaseURL: c.BaseURL, TokenEnv: c.TokenEnv, TokenFile: c.TokenFile, Repositories: c.Repositories,
		Label: c.Label, InProgressLabel: c.InProgressLabel, CompletedLabel: c.CompletedLabel, FailedLabel: c.FailedLabel,
		Assignee: c.Assignee, PollInterval: c.PollInterval, ClaimSettle: c.ClaimSettle,
		WebhookSecretEnv: c.WebhookSecretEnv, WebhookSecretFile: c.WebhookSecretFile,
		MaxWebhookBody: c.MaxWebhookBody, Retry: c.Retry,
	}
}

// Validate reports every problem, each naming its field and wrapping
// chorus.ErrInvalid.
func (c Config) Validate() error {
	if err := c.settings().Validate(); err != nil {
		return fmt.Errorf("gitea: %w", err)
	}
	return nil
}

// Tracker is the gitea task provider: it implements activities.Tracker,
// intake.Lister and Get over Gitea issues. It is safe for concurrent use.
type Tracker struct {
	t       *forge.Tracker
	cfg     Config
	token   secret.Secret
	webhook secret.Secret
}

// New validates cfg, reads the token (and the webhook secret, if
// configured) and returns the Tracker. It makes no request: the token's
// login is read on first use.
func New(cfg Config) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	token, err := secret.Load("token_env", cfg.TokenEnv, "token_file", cfg.TokenFile, cfg.Getenv)
	if err != nil {
		return nil, fmt.Errorf("gitea: %w", err)
	}
	secret, err := secret.Load("webhook_secret_env", cfg.WebhookSecretEnv, "webhook_secret_file", cfg.WebhookSecretFile, cfg.Getenv)
	if err != nil {
		return nil, fmt.Errorf("gitea: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Repositories = slices.Clone(cfg.Repositories)
	tr, err := newTransport(cfg, token)
	if err != nil {
		return nil, fmt.Errorf("gitea: %w", err)
	}
	t := forge.NewTracker(&api{t: tr}, forge.Options{
		Provider: ProviderName, Repositories: cfg.Repositories,
		Label: cfg.Label, InProgressLabel: cfg.InProgressLabel, CompletedLabel: cfg.CompletedLabel, FailedLabel: cfg.FailedLabel,
		Assignee: cfg.Assignee, ClaimSettle: cfg.ClaimSettle, Redact: cfg.Redact, Logger: cfg.Logger,
	})
	return &Tracker{t: t, cfg: cfg, token: token, webhook: secret}, nil
}

// Claim claims the issue for agentID: a claim comment, verified by reading
// the comments again (the earliest claim since the task was last open
// wins), then the assignee and the in-progress label. It returns the
// fencing token, the ID of the winning claim comment. A lost race is
// chorus.ErrAlreadyClaimed; the loser's comment is deleted.
func (t *Tracker) Claim(ctx context.Context, key chorus.TaskKey, agentID string) (int64, error) {
	return t.t.Claim(ctx, key, agentID)
}

// Release gives the task back (comment, label and assignee removed).
func (t *Tracker) Release(ctx context.Context, key chorus.TaskKey, fence int64) error {
	return t.t.Release(ctx, key, fence)
}

// Start records that the holder started working (a comment).
func (t *Tracker) Start(ctx context.Context, key chorus.TaskKey, fence int64) error {
	return t.t.Start(ctx, key, fence)
}

// Complete posts the result comment, swaps in-progress for completed and
// closes the issue. It is idempotent per fence.
func (t *Tracker) Complete(ctx context.Context, key chorus.TaskKey, fence int64, r chorus.Result) error {
	return t.t.Complete(ctx, key, fence, r)
}

// Fail posts the reason, swaps in-progress for the failed label and
// unassigns; the issue stays open. Fence 0 is an operator's failure.
func (t *Tracker) Fail(ctx context.Context, key chorus.TaskKey, fence int64, reason string) error {
	return t.t.Fail(ctx, key, fence, reason)
}

// Cancel closes the issue and fences the holder out.
func (t *Tracker) Cancel(ctx context.Context, key chorus.TaskKey, reason string) error {
	return t.t.Cancel(ctx, key, reason)
}

// Get returns the task as its issue and comment log say.
func (t *Tracker) Get(ctx context.Context, key chorus.TaskKey) (chorus.Task, error) {
	return t.t.Get(ctx, key)
}

// ListOpen lists the open, unclaimed tasks of every repository, highest
// priority first.
func (t *Tracker) ListOpen(ctx context.Context, limit int) ([]chorus.Task, error) {
	return t.t.ListOpen(ctx, limit)
}

// Login returns the login of the token's user (one request, then cached).
func (t *Tracker) Login(ctx context.Context) (string, error) { return t.t.Login(ctx) }

// PollInterval is the configured polling interval.
func (t *Tracker) PollInterval() time.Duration { return t.cfg.PollInterval }

// String describes the tracker without its secrets.
func (t *Tracker) String() string {
	return fmt.Sprintf("gitea tracker %s [%s] label %q", t.cfg.BaseURL, strings.Join(t.cfg.Repositories, " "), t.cfg.Label)
}

// LogValue logs the tracker without its secrets.
func (t *Tracker) LogValue() slog.Value {
	return slog.GroupValue(slog.String("provider", ProviderName), slog.String("url", t.cfg.BaseURL),
		slog.Any("repositories", t.cfg.Repositories), slog.String("label", t.cfg.Label))
}

// ErrNoWebhookSecret is returned by Webhook when no secret is configured:
// an unsigned hook would let anyone start tasks.
var ErrNoWebhookSecret = errors.New("gitea: no webhook secret configured (webhook_secret_env or webhook_secret_file)")
