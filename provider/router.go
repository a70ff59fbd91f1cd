package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"chorus"
	"chorus/activities"
)

// Router is an activities.Tracker over several providers.
type Router struct {
	routes map[string]activities.Tracker
}

// NewRouter routes each provider name to its tracker. Names must be
// non-empty and trackers non-nil.
func NewRouter(routes map[string]activities.Tracker) (*Router, error) {
	r := &Router{routes: make(map[string]activities.Tracker, len(routes))}
	for name, t := range routes {
		switch {
		case strings.TrimSpace(name) == "":
			return nil, fmt.Errorf("provider router: %w: provider: name must not be empty", chorus.ErrInvalid)
		case t == nil:
			return nil, fmt.Errorf("provider router: %w: provider %q: tracker must not be nil", chorus.ErrInvalid, name)
		}
		r.routes[name] = t
	}
	return r, nil
}

// Providers lists the routed provider names, sorted.
func (r *Router) Providers() []string {
	names := make([]string, 0, len(r.routes))
	for n := range r.routes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (r *Router) route(op string, key chorus.TaskKey) (activities.Tracker, error) {
	t, ok := r.routes[key.Provider]
	if !ok {
		return nil, fmt.Errorf("%s %s: %w: key: provider %q is not configured (have %s)", op, key, chorus.ErrInvalid,
			key.Provider, strings.Join(r.Providers(), ", "))
	}
	return t, nil
}

// Claim claims the task on its provider.
func (r *Router) Claim(ctx context.Context, key chorus.TaskKey, agentID string) (int64, error) {
	t, err := r.route("claim", key)
	if err != nil {
		return 0, err
	}
	return t.Claim(ctx, key, agentID)
}

// Release gives the task back on its provider.
func (r *Router) Release(ctx context.Context, key chorus.TaskKey, fence int64) error {
	t, err := r.route("release", key)
	if err != nil {
		return err
	}
	return t.Release(ctx, key, fence)
}

// Start marks the task working on its provider.
func (r *Router) Start(ctx context.Context, key chorus.TaskKey, fence int64) error {
	t, err := r.route("start", key)
	if err != nil {
		return err
	}
	return t.Start(ctx, key, fence)
}

// Complete records the result on the task's provider.
func (r *Router) Complete(ctx context.Context, key chorus.TaskKey, fence int64, res chorus.Result) error {
	t, err := r.route("complete", key)
	if err != nil {
		return err
	}
	return t.Complete(ctx, key, fence, res)
}

// Fail records a failure on the task's provider.
func (r *Router) Fail(ctx context.Context, key chorus.TaskKey, fence int64, reason string) error {
	t, err := r.route("fail", key)
	if err != nil {
		return err
	}
	return t.Fail(ctx, key, fence, reason)
}

// Cancel cancels the task on its provider.
func (r *Router) Cancel(ctx context.Context, key chorus.TaskKey, reason string) error {
	t, err := r.route("cancel", key)
	if err != nil {
		return err
	}
	return t.Cancel(ctx, key, reason)
}
