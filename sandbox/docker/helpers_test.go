package docker_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"chorus/sandbox"
	"chorus/sandbox/docker"
)

// requireDocker skips the test when the Docker daemon is unreachable, except
// on CI (CI=true), where a missing daemon is a failure.
func requireDocker(t testing.TB) {
	t.Helper()
	r, err := docker.New(docker.Config{AgentID: "probe", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("new runner: %v", err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Ping(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("docker is required on CI: %v", err)
		}
		t.Skipf("docker unavailable: %v", err)
	}
}

// sandboxImage holds the result of building docker.DefaultImage once per test
// binary.
var sandboxImage struct {
	once sync.Once
	err  error
}

// newRunner returns a Runner with a fresh agent id, after making sure the
// daemon is reachable and the sandbox image exists. Containers left with
// that agent id are removed when the test ends.
func newRunner(t *testing.T) (*docker.Runner, string) {
	t.Helper()
	return newPoolRunner(t, docker.PoolConfig{})
}

// newPoolRunner is newRunner with a warm pool configured (KeepWarm is not
// started; see keepWarm).
func newPoolRunner(t *testing.T, pool docker.PoolConfig) (*docker.Runner, string) {
	t.Helper()
	agent := newAgent(t)
	return newRunnerFor(t, agent, pool), agent
}

// newAgent returns a fresh agent id, after making sure the daemon is
// reachable and the sandbox image exists.
func newAgent(t *testing.T) string {
	t.Helper()
	requireDocker(t)
	sandboxImage.once.Do(func() {
		r, err := docker.New(docker.Config{AgentID: "image", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			sandboxImage.err = err
			return
		}
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, sandboxImage.err = r.EnsureImage(ctx, docker.DefaultImage, "", nil)
	})
	if sandboxImage.err != nil {
		t.Fatalf("ensure image %s: %v", docker.DefaultImage, sandboxImage.err)
	}
	return "test-" + strings.ToLower(rand.Text()[:10])
}

// newRunnerFor returns a Runner for agent with the given pool. When the
// test ends, the background removals must have succeeded (Close reports
// them) and containers left with the agent id are removed.
func newRunnerFor(t *testing.T, agent string, pool docker.PoolConfig) *docker.Runner {
	t.Helper()
	r, err := docker.New(docker.Config{
		AgentID: agent,
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Pool:    pool,
	})
	if err != nil {
		t.Fatalf("new runner: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Removals first: Reap racing a removal in flight gets a conflict.
		if err := r.WaitRemoved(ctx); err != nil {
			t.Errorf("wait for removals: %v", err)
		}
		if _, err := r.Reap(ctx); err != nil {
			t.Errorf("reap: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r
}

// dockerClient returns a raw client, for checking what the Runner did the
// way a user of `docker inspect` would.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// containersLabelled lists the containers, running or not, carrying label
// key=value.
func containersLabelled(t *testing.T, cli *client.Client, key, value string) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", key+"="+value)),
	})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	return list
}

// workspace returns an empty host directory writable by the sandbox user.
func workspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// spec returns a Spec for the sandbox image running argv with a short
// timeout.
func spec(t *testing.T, argv ...string) sandbox.Spec {
	return sandbox.Spec{
		Image:     docker.DefaultImage,
		Command:   argv,
		Workspace: workspace(t),
		Timeout:   30 * time.Second,
	}
}

// testContext returns a context ending with the test or after d.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// rand8 returns 8 random characters for unique names.
func rand8() string { return rand.Text()[:8] }

func imageRemoveOptions() image.RemoveOptions { return image.RemoveOptions{PruneChildren: true} }

func networkInspectOptions() network.InspectOptions { return network.InspectOptions{} }
