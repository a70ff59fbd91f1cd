package gitea_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus"
	"chorus/provider/gitea"
	"chorus/provider/gitea/giteatest"
)

const (
	token = "gitea_testtoken_0123456789abcdef0123"
	repo  = "acme/api"
	login = "chorus-bot"
)

func newFake(t *testing.T) *giteatest.Server {
	t.Helper()
	s := giteatest.NewServer()
	t.Cleanup(s.Close)
	s.AddToken(token, login)
	s.AddRepo(repo)
	return s
}

func newTracker(t *testing.T, s *giteatest.Server, mod ...func(*gitea.Config)) *gitea.Tracker {
	t.Helper()
	cfg := gitea.DefaultConfig()
	cfg.BaseURL = s.URL()
	cfg.TokenEnv = "GITEA_TOKEN"
	cfg.Getenv = func(k string) string {
		if k == "GITEA_TOKEN" {
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
	tr, err := gitea.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func key(n int) chorus.TaskKey { return chorus.TaskKey{Provider: "gitea", Repository: repo, Number: n} }

func markers(t *testing.T, s *giteatest.Server, n int, op string) int {
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
	n := s.CreateIssue(repo, giteatest.NewIssue{Title: "Document the API", Body: "Blocked by #2 and acme/web#9", Labels: []string{"chorus-task", "expertise:go", "expertise:sql"}})
	tr := newTracker(t, s)
	ctx := context.Background()

	open, err := tr.ListOpen(ctx, 0)
	if err != nil || len(open) != 1 {
		t.Fatalf("ListOpen = %v, %v", open, err)
	}
	if got := open[0]; !slices.Equal(got.Expertise, []string{"go", "sql"}) || got.Type != chorus.TypeDocs ||
		!slices.Equal(got.Dependencies, []string{"task/gitea/acme/api/2", "task/gitea/acme/web/9"}) {
		t.Fatalf("task = %+v", got)
	}
	fence, err := tr.Claim(ctx, key(n), "agent-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Claim(ctx, key(n), "agent-b"); !errors.Is(err, chorus.ErrAlreadyClaimed) {
		t.Fatalf("second claimer: %v", err)
	}
	is, _ := s.Issue(repo, n)
	if !slices.Contains(is.Labels, "in-progress") || !slices.Contains(is.Assignees, login) {
		t.Fatalf("claimed issue labels %v assignees %v", is.Labels, is.Assignees)
	}
	if err := tr.Start(ctx, key(n), fence); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := tr.Complete(ctx, key(n), fence, chorus.Result{Success: true, Message: "documented"}); err != nil {
			t.Fatal(err)
		}
	}
	is, _ = s.Issue(repo, n)
	if is.Open || !slices.Contains(is.Labels, "completed") || slices.Contains(is.Labels, "in-progress") {
		t.Fatalf("completed issue: open=%v labels=%v", is.Open, is.Labels)
	}
	if got := markers(t, s, n, "complete"); got != 1 {
		t.Fatalf("result comments = %d, want 1", got)
	}
	got, err := tr.Get(ctx, key(n))
	if err != nil || got.State != chorus.StateCompleted || got.Result == nil || got.Result.Message != "documented" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func TestClaimConflictExactlyOneWinner(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, giteatest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	s.Interleave(3, 5*time.Second, func(body string) bool { return strings.Contains(body, `"op":"claim"`) })
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		tr := newTracker(t, s)
		wg.Go(func() { _, errs[i] = tr.Claim(context.Background(), key(n), []string{"a", "b", "c"}[i]) })
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
	if won != 1 || markers(t, s, n, "claim") != 1 {
		t.Fatalf("winners = %d, claim comments = %d (%v)", won, markers(t, s, n, "claim"), errs)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
