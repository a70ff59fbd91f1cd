package github_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus"
	"chorus/provider/github"
	"chorus/provider/github/githubtest"
)

const (
	token = "ghp_testtokentesttokentesttoken0001"
	repo  = "acme/api"
	login = "chorus-bot"
)

func newFake(t *testing.T) *githubtest.Server {
	t.Helper()
	s := githubtest.NewServer()
	t.Cleanup(s.Close)
	s.AddToken(token, login)
	s.AddRepo(repo)
	return s
}

func newTracker(t *testing.T, s *githubtest.Server, mod ...func(*github.Config)) *github.Tracker {
	t.Helper()
	cfg := github.DefaultConfig()
	cfg.BaseURL = s.URL()
	cfg.TokenEnv = "GITHUB_TOKEN"
	cfg.Getenv = func(k string) string {
		if k == "GITHUB_TOKEN" {
			return token
		}
		return ""
	}
	cfg.Repositories = []string{repo}
	cfg.ClaimSettle = time.Millisecond
	cfg.Retry.Initial = time.Millisecond
	cfg.Retry.Max = 10 * time.Millisecond
	for _, m := range mod {
		m(&cfg)
	}
	tr, err := github.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func key(n int) chorus.TaskKey {
	return chorus.TaskKey{Provider: "github", Repository: repo, Number: n}
}

func markers(t *testing.T, s *githubtest.Server, n int, op string) int {
	t.Helper()
	cs, err := s.Comments(repo, n)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, c := range cs {
		if strings.Contains(c.Body, `<!-- chorus {"op":"`+op+`"`) {
			count++
		}
	}
	return count
}

func TestLifecycle(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, githubtest.NewIssue{Title: "Fix the flaky test", Body: "depends on #7\n```sh\necho hi\n```", Labels: []string{"chorus-task", "priority:7", "role:tester"}})
	tr := newTracker(t, s)
	ctx := context.Background()

	open, err := tr.ListOpen(ctx, 0)
	if err != nil || len(open) != 1 {
		t.Fatalf("ListOpen = %v, %v", open, err)
	}
	if got := open[0]; got.Priority != 7 || got.Role != "tester" || got.Type != chorus.TypeBugFix || len(got.Dependencies) != 1 || got.Dependencies[0] != "task/github/acme/api/7" {
		t.Fatalf("task = %+v", got)
	}
	fence, err := tr.Claim(ctx, key(n), "agent-a")
	if err != nil {
		t.Fatal(err)
	}
	again, err := tr.Claim(ctx, key(n), "agent-a")
	if err != nil || again != fence {
		t.Fatalf("re-claim = %d, %v; want %d", again, err, fence)
	}
	if _, err := tr.Claim(ctx, key(n), "agent-b"); !errors.Is(err, chorus.ErrAlreadyClaimed) {
		t.Fatalf("second claimer: %v", err)
	}
	is, _ := s.Issue(repo, n)
	if !slices.Contains(is.Labels, "in-progress") || !slices.Contains(is.Assignees, login) {
		t.Fatalf("claimed issue labels %v assignees %v", is.Labels, is.Assignees)
	}
	if open, _ := tr.ListOpen(ctx, 0); len(open) != 0 {
		t.Fatalf("claimed task still listed: %v", open)
	}
	if err := tr.Start(ctx, key(n), fence); err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(ctx, key(n), fence); err != nil {
		t.Fatal(err)
	}
	res := chorus.Result{Success: true, Message: "fixed it", ExecutionType: chorus.ExecScripted, DurationMS: 1500, OutputTail: "hi\n"}
	for range 2 {
		if err := tr.Complete(ctx, key(n), fence, res); err != nil {
			t.Fatal(err)
		}
	}
	is, _ = s.Issue(repo, n)
	if is.Open || is.StateReason != "completed" || !slices.Contains(is.Labels, "completed") || slices.Contains(is.Labels, "in-progress") {
		t.Fatalf("completed issue: open=%v reason=%q labels=%v", is.Open, is.StateReason, is.Labels)
	}
	for op, want := range map[string]int{"claim": 1, "start": 1, "complete": 1} {
		if got := markers(t, s, n, op); got != want {
			t.Errorf("%s comments = %d, want %d", op, got, want)
		}
	}
	got, err := tr.Get(ctx, key(n))
	if err != nil {
		t.Fatal(err)
	}
	if got.State != chorus.StateCompleted || got.Assignee != "agent-a" || got.Fence != fence || got.Result == nil || got.Result.Message != "fixed it" {
		t.Fatalf("Get = %+v", got)
	}
}

func TestClaimConflictExactlyOneWinner(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	s.Interleave(2, 5*time.Second, func(body string) bool { return strings.Contains(body, `"op":"claim"`) })
	a, b := newTracker(t, s), newTracker(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	fences := make([]int64, 2)
	for i, tr := range []*github.Tracker{a, b} {
		wg.Go(func() { fences[i], errs[i] = tr.Claim(context.Background(), key(n), []string{"agent-a", "agent-b"}[i]) })
	}
	wg.Wait()
	if s.Interleaved() != 1 {
		t.Fatalf("the claims did not interleave (%d)", s.Interleaved())
	}
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, chorus.ErrAlreadyClaimed):
		default:
			t.Fatalf("claimer %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("winners = %d (%v)", won, errs)
	}
	if got := markers(t, s, n, "claim"); got != 1 {
		t.Fatalf("claim comments left = %d, want 1 (the loser's is deleted)", got)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := github.DefaultConfig()
	ok.TokenEnv, ok.Repositories = "GITHUB_TOKEN", []string{"acme/api"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		mutate func(*github.Config)
		want   string
	}{
		{func(c *github.Config) { c.TokenEnv = "" }, "token_env: set token_env or token_file"},
		{func(c *github.Config) { c.TokenFile = "/t" }, "token_file: set only one of token_env and token_file"},
		{func(c *github.Config) { c.BaseURL = "ftp://x" }, `url: must be an http(s) URL without query, got "ftp://x"`},
		{func(c *github.Config) { c.Repositories = nil }, "repositories: must name at least one"},
		{func(c *github.Config) { c.Repositories = []string{"acme"} }, `repositories[0]: must be owner/name`},
		{func(c *github.Config) { c.CompletedLabel = "in-progress" }, "completed_label: must differ from in_progress_label"},
		{func(c *github.Config) { c.Label = "" }, "label: must be a label name"},
		{func(c *github.Config) { c.PollInterval = time.Millisecond }, "poll_interval: must be at least 1s"},
		{func(c *github.Config) { c.ClaimSettle = time.Minute }, "claim_settle: must be between 0 and 10s"},
		{func(c *github.Config) { c.WebhookSecretEnv = "A B" }, "webhook_secret_env: must be an environment variable name"},
		{func(c *github.Config) { c.Retry.MaxAttempts = 0 }, "retry.max_attempts"},
	}
	for _, tt := range tests {
		c := ok
		tt.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, chorus.ErrInvalid) {
			t.Errorf("Validate = %v, want %q", err, tt.want)
		}
		if _, err := github.New(c); err == nil {
			t.Errorf("New accepted a config Validate refuses (%s)", tt.want)
		}
	}
	c := ok
	c.Getenv = func(string) string { return "" }
	if _, err := github.New(c); err == nil || !strings.Contains(err.Error(), "token_env: environment variable GITHUB_TOKEN is empty or unset") {
		t.Errorf("unset token: %v", err)
	}
}
