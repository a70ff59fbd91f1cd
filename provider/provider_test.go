package provider_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chorus"
	"chorus/activities"
	"chorus/provider"
)

// recorder is a Tracker that records the calls it gets.
type recorder struct {
	name  string
	calls []string
}

func (r *recorder) note(op string, k chorus.TaskKey) { r.calls = append(r.calls, op+" "+k.String()) }
func (r *recorder) Claim(_ context.Context, k chorus.TaskKey, _ string) (int64, error) {
	r.note("claim", k)
	return 7, nil
}
func (r *recorder) Release(_ context.Context, k chorus.TaskKey, _ int64) error {
	r.note("release", k)
	return nil
}
func (r *recorder) Start(_ context.Context, k chorus.TaskKey, _ int64) error {
	r.note("start", k)
	return nil
}
func (r *recorder) Complete(_ context.Context, k chorus.TaskKey, _ int64, _ chorus.Result) error {
	r.note("complete", k)
	return nil
}
func (r *recorder) Fail(_ context.Context, k chorus.TaskKey, _ int64, _ string) error {
	r.note("fail", k)
	return nil
}
func (r *recorder) Cancel(_ context.Context, k chorus.TaskKey, _ string) error {
	r.note("cancel", k)
	return nil
}

func TestRouterDispatchesOnProvider(t *testing.T) {
	gh, gt := &recorder{name: "github"}, &recorder{name: "gitea"}
	r, err := provider.NewRouter(map[string]activities.Tracker{"github": gh, "gitea": gt})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k1 := chorus.TaskKey{Provider: "github", Repository: "a/b", Number: 1}
	k2 := chorus.TaskKey{Provider: "gitea", Repository: "c/d", Number: 2}
	ops := []func(chorus.TaskKey) error{
		func(k chorus.TaskKey) error { _, err := r.Claim(ctx, k, "x"); return err },
		func(k chorus.TaskKey) error { return r.Start(ctx, k, 1) },
		func(k chorus.TaskKey) error { return r.Complete(ctx, k, 1, chorus.Result{}) },
		func(k chorus.TaskKey) error { return r.Fail(ctx, k, 1, "r") },
		func(k chorus.TaskKey) error { return r.Release(ctx, k, 1) },
		func(k chorus.TaskKey) error { return r.Cancel(ctx, k, "r") },
	}
	for _, op := range ops {
		if err := op(k1); err != nil {
			t.Fatal(err)
		}
		if err := op(k2); err != nil {
			t.Fatal(err)
		}
		if err := op(chorus.TaskKey{Provider: "jira", Repository: "x", Number: 1}); !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), `provider "jira" is not configured (have gitea, github)`) {
			t.Fatalf("unrouted key: %v", err)
		}
	}
	if len(gh.calls) != 6 || len(gt.calls) != 6 || !strings.HasSuffix(gh.calls[0], "task/github/a/b/1") || !strings.HasSuffix(gt.calls[5], "task/gitea/c/d/2") {
		t.Fatalf("github got %v, gitea got %v", gh.calls, gt.calls)
	}
	if _, err := provider.NewRouter(map[string]activities.Tracker{"": gh}); !errors.Is(err, chorus.ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
}

type flakyList struct{ n atomic.Int32 }

func (l *flakyList) ListOpen(context.Context, int) ([]chorus.Task, error) {
	if l.n.Add(1) == 1 {
		return nil, errors.New("github is down")
	}
	return []chorus.Task{{Provider: "github", Repository: "a/b", Number: 1}, {Provider: "github", Repository: "a/b", Number: 2}}, nil
}

func TestPollerKeepsPolling(t *testing.T) {
	l := &flakyList{}
	starts := make(chan string, 64)
	cfg := provider.DefaultPollerConfig()
	cfg.Name, cfg.Tasks, cfg.Interval = "github", l, 10*time.Millisecond
	cfg.Start = func(_ context.Context, task chorus.Task) error {
		select {
		case starts <- task.Key().String():
		default:
		}
		if task.Number == 1 {
			return errors.New("temporal refused")
		}
		return nil
	}
	p, err := provider.NewPoller(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// The first poll fails; the second starts both tasks, the failing
	// start not stopping the other.
	got := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case k := <-starts:
			got[k] = true
		case <-timeout:
			t.Fatalf("started %v", got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n, err := p.Poll(context.Background()); n != 1 || err == nil || !strings.Contains(err.Error(), "temporal refused") {
		t.Fatalf("Poll = %d, %v", n, err)
	}
}

func TestPollerConfigValidate(t *testing.T) {
	err := provider.PollerConfig{}.Validate()
	for _, field := range []string{"name", "tasks", "start", "interval", "limit"} {
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate of the zero config does not name %s: %v", field, err)
		}
	}
	if !errors.Is(err, chorus.ErrInvalid) {
		t.Error("not chorus.ErrInvalid")
	}
}
