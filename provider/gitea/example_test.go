package gitea_test

import (
	"context"
	"fmt"
	"log"

	"chorus"
	"chorus/provider/gitea"
	"chorus/provider/gitea/giteatest"
)

// The gitea provider against a fake Gitea server: claim, complete, and the
// issue ends closed with the completed label.
func Example() {
	srv := giteatest.NewServer()
	defer srv.Close()
	srv.AddToken("gitea-token", "chorus-bot")
	srv.AddRepo("ops/infra")
	n := srv.CreateIssue("ops/infra", giteatest.NewIssue{Title: "Rotate the TLS certificates", Labels: []string{"chorus-task", "role:ops"}})

	cfg := gitea.DefaultConfig()
	cfg.BaseURL = srv.URL()
	cfg.TokenEnv = "GITEA_TOKEN"
	cfg.Getenv = func(string) string { return "gitea-token" }
	cfg.Repositories = []string{"ops/infra"}
	tr, err := gitea.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	key := chorus.TaskKey{Provider: gitea.ProviderName, Repository: "ops/infra", Number: n}
	fence, err := tr.Claim(ctx, key, "agent-1")
	if err != nil {
		log.Fatal(err)
	}
	if err := tr.Complete(ctx, key, fence, chorus.Result{Success: true, Message: "rotated"}); err != nil {
		log.Fatal(err)
	}
	task, err := tr.Get(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	is, _ := srv.Issue("ops/infra", n)
	fmt.Println(task.State, task.Role, task.Result.Message, is.Open, is.Labels)
	// Output:
	// completed ops rotated false [chorus-task role:ops completed]
}
