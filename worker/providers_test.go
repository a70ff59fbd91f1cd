package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"chorus"
	"chorus/config"
	"chorus/provider/board"
	"chorus/provider/gitea/giteatest"
	"chorus/provider/github/githubtest"
)

// TestForgeIntake wires both forges from a config section: the router
// sends github and gitea keys to them, the webhook routes start a labelled
// issue, and the pollers start the rest.
func TestForgeIntake(t *testing.T) {
	gh := githubtest.NewServer()
	defer gh.Close()
	gh.AddToken("ghp_worker_test_token_000000000000", "bot")
	gh.AddRepo("acme/api")
	ghIssue := gh.CreateIssue("acme/api", githubtest.NewIssue{Title: "from github", Labels: []string{"chorus-task"}})
	gt := giteatest.NewServer()
	defer gt.Close()
	gt.AddToken("gitea_worker_test_token_0000000000", "bot")
	gt.AddRepo("ops/infra")
	gt.CreateIssue("ops/infra", giteatest.NewIssue{Title: "from gitea", Labels: []string{"chorus-task"}})

	env := map[string]string{"GH": "ghp_worker_test_token_000000000000", "GT": "gitea_worker_test_token_0000000000", "GH_HOOK": "s3cret"}
	cfg := config.Providers{
		GitHub: config.Forge{URL: gh.URL(), TokenEnv: "GH", Repositories: []string{"acme/api"}, WebhookSecretEnv: "GH_HOOK", PollInterval: config.Duration(time.Hour)},
		Gitea:  config.Forge{URL: gt.URL(), TokenEnv: "GT", Repositories: []string{"ops/infra"}, PollInterval: config.Duration(time.Second)},
	}
	f, err := newForges(cfg, func(k string) string { return env[k] }, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.router(nil); err == nil {
		t.Fatal("router accepted a nil board")
	}
	b, err := board.Open(filepath.Join(t.TempDir(), "board.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r, err := f.router(b)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fence, err := r.Claim(ctx, chorus.TaskKey{Provider: "github", Repository: "acme/api", Number: ghIssue}, "agent-a")
	if err != nil {
		t.Fatalf("claim through the router: %v", err)
	}
	if err := r.Release(ctx, chorus.TaskKey{Provider: "github", Repository: "acme/api", Number: ghIssue}, fence); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Claim(ctx, chorus.TaskKey{Provider: "jira", Repository: "x", Number: 1}, "agent-a"); !errors.Is(err, chorus.ErrInvalid) {
		t.Fatalf("unknown provider: %v", err)
	}
	started := make(chan string, 16)
	start := func(_ context.Context, task chorus.Task) error {
		select {
		case started <- task.Key().String():
		default: // the test has seen enough; later polls only repeat
		}
		return nil
	}
	mux := http.NewServeMux()
	run, err := forgeIntake(mux, f, start, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := gh.Deliver(context.Background(), githubtest.Delivery{URL: srv.URL + "/webhooks/github", Secret: "s3cret", Event: "issues", Action: "labeled",
		Repository: "acme/api", Number: ghIssue, Label: "chorus-task"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("github webhook: %s", resp.Status)
	}
	// No secret for gitea: no route, polling only.
	if resp, err := http.Post(srv.URL+"/webhooks/gitea", "application/json", nil); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("gitea webhook without a secret: %v %v", resp.Status, err)
	}

	if k := <-started; k != "task/github/acme/api/1" {
		t.Fatalf("webhook started %s", k)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx) }()
	seen := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for !seen["task/github/acme/api/1"] || !seen["task/gitea/ops/infra/1"] {
		select {
		case k := <-started:
			seen[k] = true
		case <-timeout:
			t.Fatalf("pollers started %v, want both issues", seen)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
