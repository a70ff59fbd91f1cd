package forge

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"chorus"
	"chorus/secret"
)

// Settings are the configuration fields github and gitea share; Problems
// checks them the same way for both.
type Settings struct {
	BaseURL           string
	TokenEnv          string
	TokenFile         string
	Repositories      []string
	Label             string
	InProgressLabel   string
	CompletedLabel    string
	FailedLabel       string
	Assignee          string
	PollInterval      time.Duration
	ClaimSettle       time.Duration
	WebhookSecretEnv  string
	WebhookSecretFile string
	MaxWebhookBody    int64
	Retry             RetryPolicy
}

var repoPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$`)

// Limits enforced by Problems.
const (
	// MinPollInterval keeps a poller from spending a forge's rate limit.
	MinPollInterval = time.Second
	// MaxClaimSettle bounds the claim confirmation wait, which every
	// winning claim pays.
	MaxClaimSettle = 10 * time.Second
	// MaxWebhookBodyLimit is GitHub's own cap on a delivery (25 MB).
	MaxWebhookBodyLimit = 25 << 20
)

// Problems returns every problem, each naming its field (the YAML names
// of config's providers section) and wrapping chorus.ErrInvalid.
func (s Settings) Problems() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", chorus.ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(s.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("url", "must be an http(s) URL without query, got %q", s.BaseURL)
	}
	if s.TokenEnv == "" && s.TokenFile == "" {
		bad("token_env", "set token_env or token_file (the token is never given in the file or on the command line)")
	}
	if err := secret.CheckSource("token_env", s.TokenEnv, "token_file", s.TokenFile); err != nil {
		errs = append(errs, err)
	}
	if err := secret.CheckSource("webhook_secret_env", s.WebhookSecretEnv, "webhook_secret_file", s.WebhookSecretFile); err != nil {
		errs = append(errs, err)
	}
	if len(s.Repositories) == 0 {
		bad("repositories", "must name at least one owner/name repository")
	}
	seen := map[string]int{}
	for i, r := range s.Repositories {
		field := fmt.Sprintf("repositories[%d]", i)
		if !repoPattern.MatchString(r) {
			bad(field, "must be owner/name of [A-Za-z0-9._-], got %q", r)
			continue
		}
		if first, dup := seen[strings.ToLower(r)]; dup {
			bad(field, "duplicate repository %q (also repositories[%d])", r, first)
		}
		seen[strings.ToLower(r)] = i
	}
	labels := map[string]string{}
	for _, l := range []struct{ field, value string }{
		{"label", s.Label}, {"in_progress_label", s.InProgressLabel},
		{"completed_label", s.CompletedLabel}, {"failed_label", s.FailedLabel},
	} {
		switch other, dup := labels[l.value]; {
		case strings.TrimSpace(l.value) == "" || strings.ContainsAny(l.value, ",\n"):
			bad(l.field, "must be a label name without commas, got %q", l.value)
		case dup:
			bad(l.field, "must differ from %s (both are %q)", other, l.value)
		default:
			labels[l.value] = l.field
		}
	}
	if s.Assignee != "" && strings.ContainsAny(s.Assignee, " /\n\t") {
		bad("assignee", "must be a login, got %q", s.Assignee)
	}
	if s.PollInterval < MinPollInterval {
		bad("poll_interval", "must be at least %s, got %s", MinPollInterval, s.PollInterval)
	}
	if s.ClaimSettle < 0 || s.ClaimSettle > MaxClaimSettle {
		bad("claim_settle", "must be between 0 and %s, got %s", MaxClaimSettle, s.ClaimSettle)
	}
	if s.MaxWebhookBody <= 0 || s.MaxWebhookBody > MaxWebhookBodyLimit {
		bad("max_webhook_body", "must be between 1 and %d bytes, got %d", MaxWebhookBodyLimit, s.MaxWebhookBody)
	}
	if err := s.Retry.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// Validate joins Problems.
func (s Settings) Validate() error { return errors.Join(s.Problems()...) }
