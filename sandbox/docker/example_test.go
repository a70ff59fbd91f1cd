package docker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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

// A worker that runs many short tasks keeps a warm pool: runs whose spec
// matches the pool's template skip creating and starting a container.
// Compiled, not run: it needs a Docker daemon.
func ExampleRunner_KeepWarm() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	data, err := os.MkdirTemp("", "agent-data")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(data)

	// Every task runs with these limits; the pool's containers have them.
	limits := sandbox.Spec{Image: docker.DefaultImage, MemoryBytes: 256 << 20, Timeout: time.Minute}
	r, err := docker.New(docker.Config{
		AgentID: "agent-1",
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, nil)),
		// The pool directory is on the workspaces' file system.
		Pool: docker.PoolConfig{Size: 2, Dir: filepath.Join(data, "pool"), Spec: limits},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	if _, err := r.Reap(ctx); err != nil {
		fmt.Println(err)
		return
	}
	pool := make(chan error, 1)
	go func() { pool <- r.KeepWarm(ctx) }()
	defer func() {
		stop()
		if err := <-pool; err != nil {
			fmt.Println(err)
		}
	}()

	ws := filepath.Join(data, "task-1")
	if err := os.Mkdir(ws, 0o777); err != nil {
		fmt.Println(err)
		return
	}
	if err := os.Chmod(ws, 0o777); err != nil {
		fmt.Println(err)
		return
	}
	spec := limits
	spec.Command = []string{"sh", "-c", "echo built > artifact.txt"}
	spec.Workspace = ws
	res, err := r.Run(ctx, spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Warm unless the pool was still filling.
	fmt.Printf("exit %d, warm %t\n", res.ExitCode, res.Warm)
}
