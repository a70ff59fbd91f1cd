package provider_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"chorus"
	"chorus/activities"
	"chorus/provider"
	"chorus/provider/board"
)

// A Router sends each call to the provider the key names; a key of a
// provider that is not configured is refused.
func ExampleRouter() {
	dir, err := os.MkdirTemp("", "router-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b, err := board.Open(filepath.Join(dir, "board.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	r, err := provider.NewRouter(map[string]activities.Tracker{board.ProviderName: b})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	task, _, err := b.Add(ctx, chorus.Task{Title: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fence, err := r.Claim(ctx, task.Key(), "agent-1")
	fmt.Println(fence, err)
	_, err = r.Claim(ctx, chorus.TaskKey{Provider: "github", Repository: "acme/api", Number: 1}, "agent-1")
	fmt.Println(errors.Is(err, chorus.ErrInvalid), err)
	// Output:
	// 1 <nil>
	// true claim task/github/acme/api/1: invalid: key: provider "github" is not configured (have board)
}

type fixedList []chorus.Task

func (l fixedList) ListOpen(context.Context, int) ([]chorus.Task, error) { return l, nil }

// A Poller hands every open task to the start function; Run does this
// every interval.
func ExamplePoller() {
	cfg := provider.DefaultPollerConfig()
	cfg.Name = "github"
	cfg.Tasks = fixedList{{Provider: "github", Repository: "acme/api", Number: 3}, {Provider: "github", Repository: "acme/api", Number: 4}}
	cfg.Start = func(_ context.Context, t chorus.Task) error {
		fmt.Println("start", t.Key())
		return nil
	}
	p, err := provider.NewPoller(cfg)
	if err != nil {
		log.Fatal(err)
	}
	n, err := p.Poll(context.Background())
	fmt.Println(n, err)
	// Output:
	// start task/github/acme/api/3
	// start task/github/acme/api/4
	// 2 <nil>
}
