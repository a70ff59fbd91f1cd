package github_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/provider/github"
	"chorus/provider/github/githubtest"
)

func TestRateLimits(t *testing.T) {
	tests := []struct {
		name    string
		fault   githubtest.Fault
		minWait time.Duration
	}{
		{"primary 403 until x-ratelimit-reset", githubtest.Fault{Route: githubtest.RouteGetIssue, RateLimit: true, ResetAfter: time.Second}, time.Second},
		{"primary 429", githubtest.Fault{Route: githubtest.RouteGetIssue, Status: http.StatusTooManyRequests, RateLimit: true, ResetAfter: time.Second}, time.Second},
		{"secondary retry-after", githubtest.Fault{Route: githubtest.RouteCreateComment, RetryAfter: time.Second}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			n := s.CreateIssue(repo, githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
			tr := newTracker(t, s)
			s.Inject(tt.fault)
			start := time.Now()
			if _, err := tr.Claim(context.Background(), key(n), "agent-a"); err != nil {
				t.Fatalf("claim through a rate limit: %v", err)
			}
			if d := time.Since(start); d < tt.minWait {
				t.Fatalf("claimed after %s: the limit was not waited out", d)
			}
			if got := markers(t, s, n, "claim"); got != 1 {
				t.Fatalf("claim comments = %d, want 1", got)
			}
		})
	}
	t.Run("a reset beyond max_wait fails at once", func(t *testing.T) {
		s := newFake(t)
		n := s.CreateIssue(repo, githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
		tr := newTracker(t, s)
		s.Inject(githubtest.Fault{Route: githubtest.RouteGetIssue, RateLimit: true, ResetAfter: time.Hour})
		start := time.Now()
		_, err := tr.Claim(context.Background(), key(n), "agent-a")
		if err == nil || !strings.Contains(err.Error(), "rate limited for 1h0m") || !strings.Contains(err.Error(), "API rate limit exceeded") {
			t.Fatalf("claim = %v", err)
		}
		if !strings.Contains(err.Error(), "claim acme/api#1") {
			t.Errorf("error does not name the operation, repository and issue: %v", err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("held for %s", time.Since(start))
		}
	})
}

func TestErrorsMapToSentinels(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	plain := s.CreateIssue(repo, githubtest.NewIssue{Title: "not a task"})
	pr := s.CreateIssue(repo, githubtest.NewIssue{Title: "a pull request", Labels: []string{"chorus-task"}, IsPull: true})
	tr := newTracker(t, s)
	ctx := context.Background()
	if _, err := tr.Claim(ctx, key(99), "a"); !errors.Is(err, chorus.ErrNotFound) || !strings.Contains(err.Error(), "404 Not Found") {
		t.Errorf("missing issue: %v", err)
	}
	if _, err := tr.Claim(ctx, key(pr), "a"); !errors.Is(err, chorus.ErrNotFound) {
		t.Errorf("pull request: %v", err)
	}
	if _, err := tr.Claim(ctx, key(plain), "a"); !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), `no "chorus-task" label`) {
		t.Errorf("unlabelled issue: %v", err)
	}
	if _, err := tr.Claim(ctx, chorus.TaskKey{Provider: "github", Repository: "other/repo", Number: 1}, "a"); !errors.Is(err, chorus.ErrInvalid) {
		t.Errorf("unconfigured repository: %v", err)
	}
	if _, err := tr.Claim(ctx, chorus.TaskKey{Provider: "gitea", Repository: repo, Number: n}, "a"); !errors.Is(err, chorus.ErrInvalid) {
		t.Errorf("another provider's key: %v", err)
	}
	s.Inject(githubtest.Fault{Route: githubtest.RouteCreateComment, Status: http.StatusUnprocessableEntity})
	if _, err := tr.Claim(ctx, key(n), "a"); !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), "Validation Failed") {
		t.Errorf("422: %v", err)
	}
	bad := newTracker(t, s, func(c *github.Config) { c.Getenv = func(string) string { return "ghp_wrongwrongwrongwrongwrongwrong" } })
	if _, err := bad.Claim(ctx, key(n), "a"); err == nil || !strings.Contains(err.Error(), "401 Bad credentials") || strings.Contains(err.Error(), "ghp_wrong") {
		t.Errorf("bad token: %v", err)
	}
}

// A 5xx on posting a comment is not resent by the transport (the comment
// may exist); the activity's retry finds it instead of posting another.
func TestLostAnswerIsNotPostedTwice(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	tr := newTracker(t, s)
	ctx := context.Background()
	s.Inject(githubtest.Fault{Route: githubtest.RouteGetIssue, Status: http.StatusBadGateway, Times: 2})
	fence, err := tr.Claim(ctx, key(n), "agent-a")
	if err != nil {
		t.Fatalf("claim through 502s on reads: %v", err)
	}
	s.Inject(githubtest.Fault{Route: githubtest.RouteCreateComment, Status: http.StatusInternalServerError})
	if err := tr.Complete(ctx, key(n), fence, chorus.Result{Success: true}); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("complete with a failing POST: %v", err)
	}
	if got := s.Requests(githubtest.RouteCreateComment); got != 2 {
		t.Fatalf("comment POSTs = %d, want 2 (claim, one failed result): no blind resend", got)
	}
	for range 2 {
		if err := tr.Complete(ctx, key(n), fence, chorus.Result{Success: true}); err != nil {
			t.Fatal(err)
		}
	}
	if got := markers(t, s, n, "complete"); got != 1 {
		t.Fatalf("result comments = %d, want 1", got)
	}
}

func TestFencing(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	tr := newTracker(t, s)
	ctx := context.Background()
	f1, err := tr.Claim(ctx, key(n), "agent-a")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Release(ctx, key(n), f1); err != nil {
		t.Fatal(err)
	}
	if err := tr.Release(ctx, key(n), f1); err != nil {
		t.Fatalf("release again: %v", err)
	}
	is, _ := s.Issue(repo, n)
	if slices.Contains(is.Labels, "in-progress") || len(is.Assignees) != 0 {
		t.Fatalf("released issue: labels %v assignees %v", is.Labels, is.Assignees)
	}
	f2, err := tr.Claim(ctx, key(n), "agent-b")
	if err != nil || f2 <= f1 {
		t.Fatalf("claim after release = %d, %v; want a fence above %d", f2, err, f1)
	}
	for _, op := range []func() error{
		func() error { return tr.Start(ctx, key(n), f1) },
		func() error { return tr.Complete(ctx, key(n), f1, chorus.Result{}) },
		func() error { return tr.Fail(ctx, key(n), f1, "late") },
	} {
		if err := op(); !errors.Is(err, chorus.ErrFenced) {
			t.Errorf("write with the old fence: %v", err)
		}
	}
	if err := tr.Cancel(ctx, key(n), "operator says stop"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Complete(ctx, key(n), f2, chorus.Result{}); !errors.Is(err, chorus.ErrFenced) {
		t.Errorf("complete after cancel: %v", err)
	}
	if err := tr.Cancel(ctx, key(n), "again"); err != nil {
		t.Errorf("cancel again: %v", err)
	}
	got, _ := tr.Get(ctx, key(n))
	is, _ = s.Issue(repo, n)
	if got.State != chorus.StateCancelled || got.Error != "operator says stop" || is.Open || is.StateReason != "not_planned" {
		t.Fatalf("after cancel: task %s %q, issue open=%v reason %q", got.State, got.Error, is.Open, is.StateReason)
	}
	if _, err := tr.Claim(ctx, key(n), "agent-c"); !errors.Is(err, chorus.ErrInvalid) {
		t.Errorf("claim a cancelled task: %v", err)
	}
}

func TestClosedByHumanFencesTheHolder(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	tr := newTracker(t, s)
	ctx := context.Background()
	fence, err := tr.Claim(ctx, key(n), "agent-a")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetOpen(repo, n, false); err != nil {
		t.Fatal(err)
	}
	if err := tr.Complete(ctx, key(n), fence, chorus.Result{}); !errors.Is(err, chorus.ErrFenced) {
		t.Fatalf("complete a closed issue: %v", err)
	}
	if got, _ := tr.Get(ctx, key(n)); got.State != chorus.StateCancelled {
		t.Fatalf("state = %s", got.State)
	}
}

func TestFailLeavesTheIssueOpenForAHuman(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	tr := newTracker(t, s, func(c *github.Config) {
		c.Redact = func(s string) string { return strings.ReplaceAll(s, "hunter2", "[REDACTED]") }
	})
	ctx := context.Background()
	fence, _ := tr.Claim(ctx, key(n), "agent-a")
	if err := tr.Fail(ctx, key(n), fence, "password hunter2 rejected"); err != nil {
		t.Fatal(err)
	}
	is, _ := s.Issue(repo, n)
	if !is.Open || !slices.Contains(is.Labels, "failed") || slices.Contains(is.Labels, "in-progress") || len(is.Assignees) != 0 {
		t.Fatalf("failed issue: open=%v labels=%v assignees=%v", is.Open, is.Labels, is.Assignees)
	}
	cs, _ := s.Comments(repo, n)
	for _, c := range cs {
		if strings.Contains(c.Body, "hunter2") {
			t.Fatalf("a secret reached the issue: %s", c.Body)
		}
	}
	if open, _ := tr.ListOpen(ctx, 0); len(open) != 0 {
		t.Fatalf("a failed task is listed open: %v", open)
	}
}

func TestPagination(t *testing.T) {
	s := newFake(t)
	for i := range 230 {
		labels := []string{"chorus-task"}
		if i%10 == 0 {
			labels = append(labels, "priority:9")
		}
		s.CreateIssue(repo, githubtest.NewIssue{Title: fmt.Sprint("t", i), Labels: labels})
	}
	s.CreateIssue(repo, githubtest.NewIssue{Title: "not a task"})
	tr := newTracker(t, s)
	ctx := context.Background()
	open, err := tr.ListOpen(ctx, 0)
	if err != nil || len(open) != 230 {
		t.Fatalf("ListOpen = %d tasks, %v; want 230 over 3 pages", len(open), err)
	}
	if open[0].Priority != 9 || open[22].Priority != 9 || open[23].Priority != 0 {
		t.Fatalf("not ordered by priority: %d %d %d", open[0].Priority, open[22].Priority, open[23].Priority)
	}
	if got := s.Requests(githubtest.RouteListIssues); got != 3 {
		t.Fatalf("list requests = %d, want 3 pages of 100", got)
	}
	// An issue with more comments than one page: the claim is found on
	// the second page.
	n := 1
	for i := range 150 {
		if _, err := s.AddComment(repo, n, "octocat", fmt.Sprint("comment ", i)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := tr.Claim(ctx, key(n), "agent-a")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := tr.Claim(ctx, key(n), "agent-b"); !errors.Is(err, chorus.ErrAlreadyClaimed) {
		t.Fatalf("a claim on page 2 was missed: %d, %v", again, err)
	}
	if got, err := tr.Get(ctx, key(n)); err != nil || got.Fence != f || got.Assignee != "agent-a" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func TestSecretsStayOut(t *testing.T) {
	s := newFake(t)
	var logs bytes.Buffer
	tr := newTracker(t, s, func(c *github.Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	s.Inject(githubtest.Fault{Status: http.StatusBadGateway, Times: 2})
	if _, err := tr.ListOpen(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	slog.New(slog.NewTextHandler(&logs, nil)).Info("tracker", "t", tr)
	for what, text := range map[string]string{"logs": logs.String(), "formats": fmt.Sprintf("%v %+v %s", tr, tr, tr)} {
		if strings.Contains(text, token) {
			t.Errorf("the token appears in the %s: %s", what, text)
		}
	}
	if !strings.Contains(logs.String(), "forge request retried") || !strings.Contains(logs.String(), "acme/api") {
		t.Errorf("logs = %s", logs.String())
	}
}
