package docker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"chorus/sandbox"
	"chorus/sandbox/docker"
)

// This example needs a Docker daemon, so it is compiled but not run by go
// test; the tests in docker_test.go exercise the same calls.
func ExampleRunner_Run() {
	ctx := context.Background()
	r, err := docker.New(docker.Config{
		AgentID: "agent-1",
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	// At start-up: check the daemon, remove what a crash left behind,
	// build the image if this machine has never had it.
	if err := r.Ping(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := r.Reap(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := r.EnsureImage(ctx, docker.DefaultImage, "", os.Stderr); err != nil {
		fmt.Println(err)
		return
	}

	ws, err := os.MkdirTemp("", "workspace")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(ws)
	// The sandbox user (uid 65534) must be able to write the workspace.
	if err := os.Chmod(ws, 0o777); err != nil {
		fmt.Println(err)
		return
	}

	res, err := r.Run(ctx, sandbox.Spec{
		Image:     docker.DefaultImage,
		Command:   []string{"sh", "-c", "echo hello > greeting.txt; cat greeting.txt"},
		Workspace: ws,
		Timeout:   time.Minute,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("exit %d: %s", res.ExitCode, res.OutputTail)
}
