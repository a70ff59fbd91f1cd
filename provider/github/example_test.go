package github_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"chorus"
	"chorus/provider/github"
	"chorus/provider/github/githubtest"
)

// An agent takes a task from a GitHub issue: the issue carries the task
// label, the claim wins (a second agent loses), and completion posts the
// result, swaps the labels and closes the issue. The fake stands in for
// api.github.com.
func Example() {
	api := githubtest.NewServer()
	defer api.Close()
	api.AddToken("ghp_exampletoken", "chorus-bot")
	api.AddRepo("acme/web")
	n := api.CreateIssue("acme/web", githubtest.NewIssue{Title: "Fix the login bug", Labels: []string{"chorus-task", "priority:8"}})

	cfg := github.DefaultConfig()
	cfg.BaseURL = api.URL()
	cfg.TokenEnv = "GITHUB_TOKEN"
	cfg.Getenv = func(string) string { return "ghp_exampletoken" }
	cfg.Repositories = []string{"acme/web"}
	tr, err := github.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	open, err := tr.ListOpen(ctx, 10)
	if err != nil {
		log.Fatal(err)
	}
	task := open[0]
	fmt.Println(task.Key(), task.Priority, task.Type)

	fence, err := tr.Claim(ctx, task.Key(), "agent-1")
	if err != nil {
		log.Fatal(err)
	}
	_, err = tr.Claim(ctx, task.Key(), "agent-2")
	fmt.Println("agent-2 already claimed:", errors.Is(err, chorus.ErrAlreadyClaimed))

	if err := tr.Start(ctx, task.Key(), fence); err != nil {
		log.Fatal(err)
	}
	if err := tr.Complete(ctx, task.Key(), fence, chorus.Result{Success: true, Message: "fixed"}); err != nil {
		log.Fatal(err)
	}
	is, _ := api.Issue("acme/web", n)
	fmt.Println("open:", is.Open, "labels:", is.Labels)
	// Output:
	// task/github/acme/web/1 8 bug_fix
	// agent-2 already claimed: true
	// open: false labels: [chorus-task priority:8 completed]
}
