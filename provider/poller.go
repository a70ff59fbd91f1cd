package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"chorus"
)

// Lister lists a provider's open tasks (intake.Lister's shape).
type Lister interface {
	ListOpen(ctx context.Context, limit int) ([]chorus.Task, error)
}

// PollerConfig configures a Poller.
type PollerConfig struct {
	// Name names the provider in logs.
	Name string
	// Tasks lists the open tasks.
	Tasks Lister
	// Start starts one task's workflow; it must be idempotent per task.
	Start func(context.Context, chorus.Task) error
	// Interval is the time between polls.
	Interval time.Duration
	// Limit caps the tasks taken from one poll.
	Limit int
	// Logger receives failed polls; nil discards.
	Logger *slog.Logger
}

// DefaultPollerConfig returns the tunables' defaults; Name, Tasks and
// Start must be set.
func DefaultPollerConfig() PollerConfig {
	return PollerConfig{
		// Interval: SPEC section 2, polling every 30 s as the webhooks'
		// fallback.
		Interval: 30 * time.Second,
		// Limit: more open tasks than this in one poll wait for the
		// next one; the workflows queue them anyway.
		Limit: 1000,
	}
}

// Validate names the bad field.
func (c PollerConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, fmt.Errorf("%w: name: must not be empty", chorus.ErrInvalid))
	}
	if c.Tasks == nil {
		errs = append(errs, fmt.Errorf("%w: tasks: must not be nil", chorus.ErrInvalid))
	}
	if c.Start == nil {
		errs = append(errs, fmt.Errorf("%w: start: must not be nil", chorus.ErrInvalid))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("%w: interval: must be positive, got %s", chorus.ErrInvalid, c.Interval))
	}
	if c.Limit < 1 {
		errs = append(errs, fmt.Errorf("%w: limit: must be at least 1, got %d", chorus.ErrInvalid, c.Limit))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("poller: %w", err)
	}
	return nil
}

// Poller starts the open tasks of one provider, again every interval.
type Poller struct {
	cfg PollerConfig
}

// NewPoller validates cfg.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Poller{cfg: cfg}, nil
}

// Poll lists the open tasks once and starts each; it returns how many it
// started and every error met (a failed start does not stop the others).
func (p *Poller) Poll(ctx context.Context) (int, error) {
	tasks, err := p.cfg.Tasks.ListOpen(ctx, p.cfg.Limit)
	if err != nil {
		return 0, fmt.Errorf("poll %s: %w", p.cfg.Name, err)
	}
	var errs []error
	started := 0
	for _, t := range tasks {
		if err := p.cfg.Start(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("poll %s: start %s: %w", p.cfg.Name, t.Key(), err))
			continue
		}
		started++
	}
	return started, errors.Join(errs...)
}

// Run polls at once and then every interval until ctx is done; it returns
// nil then. Failed polls are logged and retried next interval.
func (p *Poller) Run(ctx context.Context) error {
	ticker := time.NewTicker(p.cfg.Interval)
	defer ticker.Stop()
	for {
		n, err := p.Poll(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			p.cfg.Logger.Warn("poll failed", "provider", p.cfg.Name, "started", n, "error", err)
		case n > 0:
			p.cfg.Logger.Debug("poll started tasks", "provider", p.cfg.Name, "started", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}
