package gitea_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus"
	"chorus/provider/gitea"
	"chorus/provider/gitea/giteatest"
)

func TestWebhook(t *testing.T) {
	s := newFake(t)
	task := s.CreateIssue(repo, giteatest.NewIssue{Title: "t", Labels: []string{"chorus-task", "role:ops"}})
	plain := s.CreateIssue(repo, giteatest.NewIssue{Title: "plain"})
	tr := newTracker(t, s, func(c *gitea.Config) {
		c.WebhookSecretFile = writeFile(t, "hook-secret\n")
	})
	var mu sync.Mutex
	var started []chorus.Task
	h, err := tr.Webhook(func(_ context.Context, task chorus.Task) error {
		mu.Lock()
		defer mu.Unlock()
		started = append(started, task)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	tests := []struct {
		name   string
		d      giteatest.Delivery
		status int
	}{
		{"label added", giteatest.Delivery{Secret: "hook-secret", Event: "issues", EventType: "issue_label", Action: "label_updated", Repository: repo, Number: task}, http.StatusAccepted},
		{"opened", giteatest.Delivery{Secret: "hook-secret", Event: "issues", Action: "opened", Repository: repo, Number: task}, http.StatusAccepted},
		{"not a task", giteatest.Delivery{Secret: "hook-secret", Event: "issues", Action: "opened", Repository: repo, Number: plain}, http.StatusNoContent},
		{"closed", giteatest.Delivery{Secret: "hook-secret", Event: "issues", Action: "closed", Repository: repo, Number: task}, http.StatusNoContent},
		{"comment event", giteatest.Delivery{Secret: "hook-secret", Event: "issue_comment", Action: "created", Repository: repo, Number: task}, http.StatusNoContent},
		{"wrong secret", giteatest.Delivery{Secret: "nope", Event: "issues", Action: "opened", Repository: repo, Number: task}, http.StatusUnauthorized},
		{"unsigned", giteatest.Delivery{Event: "issues", Action: "opened", Repository: repo, Number: task}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		tt.d.URL = srv.URL
		resp, err := s.Deliver(context.Background(), tt.d)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %s, want %d", tt.name, resp.Status, tt.status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(started) != 2 || started[0].Key().String() != "task/gitea/acme/api/1" || started[0].Role != "ops" {
		t.Fatalf("started = %+v", started)
	}
	if _, err := newTracker(t, s).Webhook(func(context.Context, chorus.Task) error { return nil }); !errors.Is(err, gitea.ErrNoWebhookSecret) {
		t.Fatalf("no secret: %v", err)
	}
}

func TestRateLimitAndErrors(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, giteatest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	tr := newTracker(t, s)
	ctx := context.Background()
	s.Inject(giteatest.Fault{Route: giteatest.RouteCreateComment, RetryAfter: time.Second})
	start := time.Now()
	fence, err := tr.Claim(ctx, key(n), "agent-a")
	if err != nil || time.Since(start) < time.Second {
		t.Fatalf("claim through a 429: %v after %s", err, time.Since(start))
	}
	s.Inject(giteatest.Fault{Route: giteatest.RouteGetIssue, Status: http.StatusServiceUnavailable, Times: 2})
	if err := tr.Start(ctx, key(n), fence); err != nil {
		t.Fatalf("start through 503s: %v", err)
	}
	s.Inject(giteatest.Fault{Route: giteatest.RouteListIssues, RateLimit: true, ResetAfter: time.Hour})
	if _, err := tr.ListOpen(ctx, 0); err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("a long limit: %v", err)
	}
	if _, err := tr.Get(ctx, key(42)); !errors.Is(err, chorus.ErrNotFound) || !strings.Contains(err.Error(), "The target couldn't be found.") {
		t.Fatalf("missing issue: %v", err)
	}
	s.Inject(giteatest.Fault{Route: giteatest.RouteCreateComment, Status: http.StatusUnprocessableEntity})
	if err := tr.Complete(ctx, key(n), fence, chorus.Result{Success: true}); !errors.Is(err, chorus.ErrInvalid) {
		t.Fatalf("422: %v", err)
	}
	if err := tr.Complete(ctx, key(n), fence, chorus.Result{Success: true}); err != nil {
		t.Fatal(err)
	}
	is, _ := s.Issue(repo, n)
	if is.Open || !slices.Contains(is.Labels, "completed") {
		t.Fatalf("issue after completion: open=%v labels=%v", is.Open, is.Labels)
	}
}

func TestPaginationByPageAndLimit(t *testing.T) {
	s := newFake(t)
	for range 120 {
		s.CreateIssue(repo, giteatest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	}
	open, err := newTracker(t, s).ListOpen(context.Background(), 0)
	if err != nil || len(open) != 120 {
		t.Fatalf("ListOpen = %d, %v", len(open), err)
	}
	if got := s.Requests(giteatest.RouteListIssues); got != 3 {
		t.Fatalf("list requests = %d, want 3 pages of 50", got)
	}
	if open[0].Number != 1 || open[119].Number != 120 {
		t.Fatalf("order: first %d last %d", open[0].Number, open[119].Number)
	}
}
