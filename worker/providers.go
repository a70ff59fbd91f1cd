package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"chorus"
	"chorus/activities"
	"chorus/config"
	"chorus/intake"
	"chorus/provider"
	"chorus/provider/board"
	"chorus/provider/gitea"
	"chorus/provider/github"
)

// forges are the issue trackers configured under providers: (nil when
// off).
type forges struct {
	github *github.Tracker
	gitea  *gitea.Tracker
}

// newForges builds the configured github and gitea trackers; redact is
// applied to every comment they post.
func newForges(cfg config.Providers, getenv func(string) string, redact func(string) string, logger *slog.Logger) (forges, error) {
	var f forges
	if c := cfg.GitHub; c.Enabled() {
		gc := github.DefaultConfig()
		if c.URL != "" {
			gc.BaseURL = c.URL
		}
		gc.TokenEnv, gc.TokenFile, gc.Repositories, gc.Assignee = c.TokenEnv, c.TokenFile, c.Repositories, c.Assignee
		gc.WebhookSecretEnv, gc.WebhookSecretFile = c.WebhookSecretEnv, c.WebhookSecretFile
		setLabels(c, &gc.Label, &gc.InProgressLabel, &gc.CompletedLabel, &gc.FailedLabel, &gc.PollInterval)
		gc.Getenv, gc.Redact, gc.Logger = getenv, redact, logger.With("component", "github")
		t, err := github.New(gc)
		if err != nil {
			return f, fmt.Errorf("config: providers.github: %w", err)
		}
		f.github = t
	}
	if c := cfg.Gitea; c.Enabled() {
		gc := gitea.DefaultConfig()
		gc.BaseURL, gc.TokenEnv, gc.TokenFile, gc.Repositories, gc.Assignee = c.URL, c.TokenEnv, c.TokenFile, c.Repositories, c.Assignee
		gc.WebhookSecretEnv, gc.WebhookSecretFile = c.WebhookSecretEnv, c.WebhookSecretFile
		setLabels(c, &gc.Label, &gc.InProgressLabel, &gc.CompletedLabel, &gc.FailedLabel, &gc.PollInterval)
		gc.Getenv, gc.Redact, gc.Logger = getenv, redact, logger.With("component", "gitea")
		t, err := gitea.New(gc)
		if err != nil {
			return f, fmt.Errorf("config: providers.gitea: %w", err)
		}
		f.gitea = t
	}
	return f, nil
}

// setLabels overrides the provider defaults with what the section sets.
func setLabels(c config.Forge, label, inProgress, completed, failed *string, poll *time.Duration) {
	for _, o := range []struct {
		dst *string
		v   string
	}{{label, c.Label}, {inProgress, c.InProgressLabel}, {completed, c.CompletedLabel}, {failed, c.FailedLabel}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	if c.PollInterval != 0 {
		*poll = time.Duration(c.PollInterval)
	}
}

// router is the tracker of the task workflow's provider activities: the
// board for board keys, the forges for theirs.
func (f forges) router(b activities.Tracker) (*provider.Router, error) {
	routes := map[string]activities.Tracker{board.ProviderName: b}
	if f.github != nil {
		routes[github.ProviderName] = f.github
	}
	if f.gitea != nil {
		routes[gitea.ProviderName] = f.gitea
	}
	return provider.NewRouter(routes)
}

// startTask adapts intake.Starter to the webhooks' and pollers' start
// function; starting a task twice is a no-op (workflow ID = task key).
func startTask(s *intake.Starter) func(context.Context, chorus.Task) error {
	return func(ctx context.Context, t chorus.Task) error {
		_, err := s.Start(ctx, t)
		return err
	}
}

// forgeIntake is the issue trackers' intake, webhooks and polling, in one
// place so that it can be gated on leadership: it registers POST
// /webhooks/github and POST /webhooks/gitea on mux for each forge that has
// a webhook secret, and returns the function that runs one Poller per
// forge until ctx is done. start receives every startable task.
func forgeIntake(mux *http.ServeMux, f forges, start func(context.Context, chorus.Task) error, logger *slog.Logger) (run func(context.Context) error, err error) {
	type source struct {
		name     string
		lister   provider.Lister
		interval time.Duration
		webhook  func(func(context.Context, chorus.Task) error) (http.Handler, error)
		noSecret error
	}
	var sources []source
	if f.github != nil {
		sources = append(sources, source{github.ProviderName, f.github, f.github.PollInterval(), f.github.Webhook, github.ErrNoWebhookSecret})
	}
	if f.gitea != nil {
		sources = append(sources, source{gitea.ProviderName, f.gitea, f.gitea.PollInterval(), f.gitea.Webhook, gitea.ErrNoWebhookSecret})
	}
	var pollers []*provider.Poller
	for _, s := range sources {
		h, err := s.webhook(start)
		switch {
		case errors.Is(err, s.noSecret):
			logger.Info("no webhook secret; polling only", "provider", s.name)
		case err != nil:
			return nil, err
		default:
			mux.Handle("POST /webhooks/"+s.name, h)
		}
		pc := provider.DefaultPollerConfig()
		pc.Name, pc.Tasks, pc.Start, pc.Interval, pc.Logger = s.name, s.lister, start, s.interval, logger.With("component", "intake", "provider", s.name)
		p, err := provider.NewPoller(pc)
		if err != nil {
			return nil, err
		}
		pollers = append(pollers, p)
	}
	return func(ctx context.Context) error {
		errs := make(chan error, len(pollers))
		for _, p := range pollers {
			go func() { errs <- p.Run(ctx) }()
		}
		var all []error
		for range pollers {
			all = append(all, <-errs)
		}
		return errors.Join(all...)
	}, nil
}
