package board_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"chorus"
	"chorus/provider/board"
)

// An agent takes a task off the board: it adds the task, claims it (a
// second agent loses the race), works on it with the fence the claim
// returned, and completes it.
func Example() {
	dir, err := os.MkdirTemp("", "board-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b, err := board.Open(filepath.Join(dir, "board.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()

	task, created, err := b.Add(ctx, chorus.Task{Title: "Fix flaky test", Repository: "acme/web", Priority: 5})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.Key(), task.State, task.Type, created)

	fence, err := b.Claim(ctx, task.Key(), "agent-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("agent-1 holds fence", fence)

	_, err = b.Claim(ctx, task.Key(), "agent-2")
	fmt.Println("agent-2 already claimed:", errors.Is(err, chorus.ErrAlreadyClaimed))

	if err := b.Start(ctx, task.Key(), fence); err != nil {
		log.Fatal(err)
	}
	if err := b.Complete(ctx, task.Key(), fence, chorus.Result{Success: true, Message: "fixed"}); err != nil {
		log.Fatal(err)
	}
	done, err := b.Get(ctx, task.Key())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(done.State, done.Assignee, done.Result.Message)
	// Output:
	// task/board/acme/web/1 open bug_fix true
	// agent-1 holds fence 1
	// agent-2 already claimed: true
	// completed agent-1 fixed
}
