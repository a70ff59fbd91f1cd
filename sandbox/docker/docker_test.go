package docker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"chorus/sandbox"
	"chorus/sandbox/docker"
)

func TestNewNamesBadField(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	image := sandbox.Spec{Image: docker.DefaultImage}
	cases := map[string]docker.Config{
		"AgentID":                                {Logger: logger},
		"Logger":                                 {AgentID: "a"},
		"Pool.Size":                              {AgentID: "a", Logger: logger, Pool: docker.PoolConfig{Size: -1}},
		"Pool.Dir":                               {AgentID: "a", Logger: logger, Pool: docker.PoolConfig{Size: 1, Spec: image}},
		"Pool.Spec: invalid sandbox spec: image": {AgentID: "a", Logger: logger, Pool: docker.PoolConfig{Size: 1, Dir: "/p"}},
		"Pool.Spec: invalid sandbox spec: memory": {AgentID: "a", Logger: logger,
			Pool: docker.PoolConfig{Size: 1, Dir: "/p", Spec: sandbox.Spec{Image: "i", MemoryBytes: 1}}},
		"Pool.Spec: invalid sandbox spec: user": {AgentID: "a", Logger: logger,
			Pool: docker.PoolConfig{Size: 1, Dir: "/p", Spec: sandbox.Spec{Image: "i", User: "00:0"}}},
	}
	for field, cfg := range cases {
		if _, err := docker.New(cfg); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s missing: got %v, want an error naming it", field, err)
		}
	}
}

func TestPingReportsUnreachableDaemon(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no.sock"))
	r, err := docker.New(docker.Config{AgentID: "a", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Ping(testContext(t, 5*time.Second))
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("ping = %v, want an unreachable error", err)
	}
}

func TestRunRejectsInvalidSpecWithoutDaemon(t *testing.T) {
	// New does not contact the daemon and Run validates first, so this
	// works without Docker.
	r, err := docker.New(docker.Config{AgentID: "a", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ok := sandbox.Spec{Image: docker.DefaultImage, Command: []string{"true"}, Workspace: t.TempDir()}
	cases := map[string]func(*sandbox.Spec){
		"command:":       func(s *sandbox.Spec) { s.Command = nil },
		"user: root":     func(s *sandbox.Spec) { s.User = "root:root" },
		"user: uid 0":    func(s *sandbox.Spec) { s.User = "0:65534" },
		"user: uid 00":   func(s *sandbox.Spec) { s.User = "00" },
		"memory: 1 byte": func(s *sandbox.Spec) { s.MemoryBytes = 1 },
	}
	for name, mutate := range cases {
		s := ok
		mutate(&s)
		field, _, _ := strings.Cut(name, " ")
		_, err := r.Run(t.Context(), s)
		if !errors.Is(err, sandbox.ErrInvalidSpec) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want ErrInvalidSpec naming %s", name, err, field)
		}
	}
}

func TestRunEchoStreamsOutputAndSharesWorkspace(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	s := spec(t, "sh", "-c", "echo hello from the sandbox; echo oops >&2; echo made here > result.txt")
	s.OutputPath = filepath.Join(t.TempDir(), "output.log")
	var chunks bytes.Buffer
	s.OnOutput = func(p []byte) { chunks.Write(p) }

	res, err := r.Run(testContext(t, time.Minute), s)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.ExitCode != 0 || res.TimedOut || res.OOMKilled {
		t.Fatalf("result = %+v, want a clean exit", res)
	}
	// stdout and stderr are separate pipes: their relative order is not
	// kept, each stream's is.
	want := []string{"hello from the sandbox\noops\n", "oops\nhello from the sandbox\n"}
	if !slices.Contains(want, res.OutputTail) || res.OutputBytes != int64(len(want[0])) {
		t.Errorf("tail = %q (%d bytes), want stdout and stderr lines", res.OutputTail, res.OutputBytes)
	}
	if file, err := os.ReadFile(s.OutputPath); err != nil || string(file) != res.OutputTail {
		t.Errorf("output file = %q, %v; want %q", file, err, res.OutputTail)
	}
	if chunks.String() != res.OutputTail {
		t.Errorf("OnOutput saw %q, want %q", chunks.String(), res.OutputTail)
	}
	if got, err := os.ReadFile(filepath.Join(s.Workspace, "result.txt")); err != nil || string(got) != "made here\n" {
		t.Errorf("workspace file = %q, %v; want it written by the command", got, err)
	}
	if res.ContainerID == "" || res.Duration <= 0 {
		t.Errorf("result = %+v, want a container id and a duration", res)
	}
	if err := r.WaitRemoved(testContext(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = dockerClient(t).ContainerInspect(testContext(t, 10*time.Second), res.ContainerID)
	if !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect after run: %v, want the container removed", err)
	}
}

func TestRunKeepsOnlyTheTail(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	s := spec(t, "sh", "-c", "seq 1 2000; echo last line")
	s.TailBytes = 32
	res, err := r.Run(testContext(t, time.Minute), s)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(res.OutputTail) != 32 || !strings.HasSuffix(res.OutputTail, "2000\nlast line\n") {
		t.Errorf("tail = %q, want the last 32 bytes", res.OutputTail)
	}
	if res.OutputBytes < 8000 {
		t.Errorf("output bytes = %d, want the full count", res.OutputBytes)
	}
}

func TestRunReturnsNonZeroExitAsResult(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	res, err := r.Run(testContext(t, time.Minute), spec(t, "sh", "-c", "echo failing; exit 3"))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.ExitCode != 3 || res.TimedOut || !strings.Contains(res.OutputTail, "failing") {
		t.Fatalf("result = %+v, want exit code 3 with its output", res)
	}
}

func TestRunMissingImageIsClear(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	s := spec(t, "true")
	s.Image = "chorus-sandbox-absent:0"
	_, err := r.Run(testContext(t, time.Minute), s)
	if !errors.Is(err, docker.ErrImageNotFound) || !strings.Contains(err.Error(), s.Image) ||
		!strings.Contains(err.Error(), "built locally") {
		t.Fatalf("run = %v, want ErrImageNotFound naming the image and saying it is built locally", err)
	}
}

// waitForOutput returns an OnOutput hook and a channel closed once the
// output contains marker.
func waitForOutput(marker string) (func([]byte), <-chan struct{}) {
	seen := make(chan struct{})
	var buf []byte
	return func(p []byte) {
		buf = append(buf, p...)
		if bytes.Contains(buf, []byte(marker)) {
			select {
			case <-seen:
			default:
				close(seen)
			}
		}
	}, seen
}

func TestRunContainerIsLockedDown(t *testing.T) {
	t.Parallel()
	r, agent := newRunner(t)
	cli := dockerClient(t)
	s := spec(t, "sh", "-c", "echo ready; sleep 30")
	s.Labels = map[string]string{"chorus.test": agent, docker.LabelAgent: "spoofed"}
	s.MemoryBytes = 64 << 20
	s.NanoCPUs = 500_000_000
	s.PidsLimit = 50
	hook, ready := waitForOutput("ready")
	s.OnOutput = hook

	ctx, cancel := context.WithCancel(testContext(t, time.Minute))
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, s)
		done <- err
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run ended before the command was ready: %v", err)
	case <-ctx.Done():
		t.Fatal("command never became ready")
	}

	list := containersLabelled(t, cli, "chorus.test", agent)
	if len(list) != 1 {
		t.Fatalf("found %d containers with the test label, want 1", len(list))
	}
	info, err := cli.ContainerInspect(ctx, list[0].ID)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	checkLockedDown(t, info, s, agent, s.Workspace)
	cancel()
	<-done
}

// checkLockedDown checks, as docker inspect shows them, the isolation
// properties of a running container made for spec s (or a pool template)
// by the runner of agent, with workspace mounted at /workspace.
func checkLockedDown(t *testing.T, info container.InspectResponse, s sandbox.Spec, agent, workspace string) {
	t.Helper()
	hc := info.HostConfig
	checks := []struct {
		what string
		ok   bool
	}{
		{"network mode none", hc.NetworkMode == "none"},
		{"read-only root", hc.ReadonlyRootfs},
		{"all capabilities dropped", slices.Equal(hc.CapDrop, []string{"ALL"}) && len(hc.CapAdd) == 0},
		{"no-new-privileges", slices.Contains(hc.SecurityOpt, "no-new-privileges")},
		{"not privileged", !hc.Privileged},
		{"user 65534", info.Config.User == "65534:65534"},
		{"memory limit", hc.Memory == s.MemoryBytes && hc.MemorySwap == s.MemoryBytes},
		{"cpu limit", hc.NanoCPUs == s.NanoCPUs},
		{"pids limit", hc.PidsLimit != nil && *hc.PidsLimit == s.PidsLimit},
		{"tmpfs /tmp noexec", strings.Contains(hc.Tmpfs["/tmp"], "noexec")},
		{"no log copy", hc.LogConfig.Type == "none"},
		{"agent label not spoofable", info.Config.Labels[docker.LabelAgent] == agent},
		{"managed label", info.Config.Labels[docker.LabelManaged] == "true"},
		{"caller label kept", info.Config.Labels["chorus.test"] == agent},
		{"working dir", info.Config.WorkingDir == "/workspace"},
		{"running", info.State != nil && info.State.Running},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("container is not locked down: %s", c.what)
		}
	}
	var workspaceMounted bool
	for _, m := range info.Mounts {
		if m.Destination == "/workspace" && m.Source == workspace && m.RW {
			workspaceMounted = true
		}
	}
	if !workspaceMounted || len(info.Mounts) != 1 {
		t.Errorf("mounts = %+v, want only %s read-write at /workspace", info.Mounts, workspace)
	}
}

func TestRunCancelKillsAndRemovesContainer(t *testing.T) {
	t.Parallel()
	r, agent := newRunner(t)
	s := spec(t, "sh", "-c", "echo ready; sleep 60")
	s.Labels = map[string]string{"chorus.test": agent}
	hook, ready := waitForOutput("ready")
	s.OnOutput = hook

	ctx, cancel := context.WithCancel(testContext(t, time.Minute))
	defer cancel()
	type outcome struct {
		res sandbox.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := r.Run(ctx, s)
		done <- outcome{res, err}
	}()
	select {
	case <-ready:
	case o := <-done:
		t.Fatalf("run ended before the command was ready: %v", o.err)
	}
	cancelled := time.Now()
	cancel()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	if !errors.Is(o.err, context.Canceled) {
		t.Errorf("run = %v, want context.Canceled", o.err)
	}
	if o.res.TimedOut {
		t.Error("cancellation reported as a timeout")
	}
	if took := time.Since(cancelled); took > 10*time.Second {
		t.Errorf("run took %s to return after cancellation", took)
	}
	if err := r.WaitRemoved(testContext(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if left := containersLabelled(t, dockerClient(t), "chorus.test", agent); len(left) != 0 {
		t.Errorf("%d containers left after cancellation, want 0", len(left))
	}
}

func TestRunTimeoutKillsContainer(t *testing.T) {
	t.Parallel()
	r, agent := newRunner(t)
	s := spec(t, "sleep", "60")
	s.Timeout = 2 * time.Second
	s.Labels = map[string]string{"chorus.test": agent}
	start := time.Now()
	res, err := r.Run(testContext(t, time.Minute), s)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !res.TimedOut || res.ExitCode != 137 {
		t.Errorf("result = %+v, want TimedOut with SIGKILL's exit code 137", res)
	}
	if took > 8*time.Second {
		t.Errorf("run took %s with a 2s timeout", took)
	}
	if err := r.WaitRemoved(testContext(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if left := containersLabelled(t, dockerClient(t), "chorus.test", agent); len(left) != 0 {
		t.Errorf("%d containers left after timeout, want 0", len(left))
	}
}

func TestRunReportsUsage(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	s := spec(t, "sh", "-c", "while :; do :; done")
	s.Timeout = 3 * time.Second
	res, err := r.Run(testContext(t, time.Minute), s)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !res.TimedOut {
		t.Fatalf("result = %+v, want the busy loop timed out", res)
	}
	// The daemon samples once a second, so at least the first second of
	// a CPU-bound loop is seen.
	if res.Usage.CPUTimeMS < 300 || res.Usage.PeakMemoryBytes <= 0 {
		t.Errorf("usage = %+v, want CPU time and peak memory of a 3s busy loop", res.Usage)
	}
}

func TestRunContainsHostileCommands(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	cases := []struct {
		name   string
		script string
		limit  func(*sandbox.Spec)
		check  func(t *testing.T, res sandbox.Result)
	}{{
		name:   "only loopback",
		script: "ip -o link",
		check: func(t *testing.T, res sandbox.Result) {
			links := strings.Split(strings.TrimSpace(res.OutputTail), "\n")
			if res.ExitCode != 0 || len(links) != 1 || !strings.Contains(links[0], ": lo:") {
				t.Errorf("ip link = %q (exit %d), want only lo", res.OutputTail, res.ExitCode)
			}
		},
	}, {
		name:   "network unreachable",
		script: "nc -w 2 1.1.1.1 80 </dev/null",
		check: func(t *testing.T, res sandbox.Result) {
			if res.ExitCode == 0 || !strings.Contains(res.OutputTail, "unreachable") {
				t.Errorf("nc = %q (exit %d), want network unreachable", res.OutputTail, res.ExitCode)
			}
		},
	}, {
		name:   "read-only root",
		script: "touch /etc/x",
		check: func(t *testing.T, res sandbox.Result) {
			if res.ExitCode == 0 || !strings.Contains(res.OutputTail, "Read-only file system") {
				t.Errorf("touch /etc/x = %q (exit %d), want read-only", res.OutputTail, res.ExitCode)
			}
		},
	}, {
		name:   "tmp is not executable",
		script: "cp /bin/busybox /tmp/bb && /tmp/bb true",
		check: func(t *testing.T, res sandbox.Result) {
			if res.ExitCode == 0 || !strings.Contains(res.OutputTail, "Permission denied") {
				t.Errorf("exec from /tmp = %q (exit %d), want permission denied", res.OutputTail, res.ExitCode)
			}
		},
	}, {
		name:   "runs as nobody without privileges",
		script: "id -u; id -g; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status",
		check: func(t *testing.T, res sandbox.Result) {
			want := regexp.MustCompile(`^65534\n65534\nNoNewPrivs:\s+1\nCapEff:\s+0+\n$|^65534\n65534\nCapEff:\s+0+\nNoNewPrivs:\s+1\n$`)
			if !want.MatchString(res.OutputTail) {
				t.Errorf("identity = %q, want uid/gid 65534, no capabilities, no_new_privs", res.OutputTail)
			}
		},
	}, {
		name: "memory bomb is killed",
		// awk doubles a string until the 32 MiB limit stops it.
		script: `awk 'BEGIN { s = "0123456789abcdef"; while (1) s = s s }'`,
		limit:  func(s *sandbox.Spec) { s.MemoryBytes = 32 << 20 },
		check: func(t *testing.T, res sandbox.Result) {
			if !res.OOMKilled || res.ExitCode != 137 {
				t.Errorf("result = %+v, want OOMKilled with exit code 137", res)
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := spec(t, "sh", "-c", c.script)
			if c.limit != nil {
				c.limit(&s)
			}
			res, err := r.Run(testContext(t, time.Minute), s)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if res.TimedOut {
				t.Fatalf("result = %+v, timed out", res)
			}
			c.check(t, res)
		})
	}
}

func TestRunContainsForkBomb(t *testing.T) {
	t.Parallel()
	r, agent := newRunner(t)
	s := spec(t, "sh", "-c", "b() { b | b & }; b; sleep 5")
	s.PidsLimit = 32
	s.Timeout = 15 * time.Second
	s.TailBytes = 1 << 16
	s.Labels = map[string]string{"chorus.test": agent}
	hook, limited := waitForOutput("can't fork")
	s.OnOutput = hook

	hostForked := make(chan error, 1)
	go func() {
		<-limited
		// While the bomb is at its limit, the host can still start
		// processes.
		hostForked <- exec.Command("true").Run()
	}()
	start := time.Now()
	res, err := r.Run(testContext(t, time.Minute), s)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if took := time.Since(start); took > s.Timeout+10*time.Second {
		t.Errorf("run took %s, want it bounded by the %s timeout", took, s.Timeout)
	}
	if !strings.Contains(res.OutputTail, "can't fork") {
		t.Fatalf("output = %q, want forks refused by the pids limit", res.OutputTail)
	}
	if err := <-hostForked; err != nil {
		t.Errorf("host could not start a process during the fork bomb: %v", err)
	}
	if err := r.WaitRemoved(testContext(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if left := containersLabelled(t, dockerClient(t), "chorus.test", agent); len(left) != 0 {
		t.Errorf("%d containers left after the fork bomb, want 0", len(left))
	}
}

func TestReapRemovesOrphans(t *testing.T) {
	t.Parallel()
	r, agent := newRunner(t)
	cli := dockerClient(t)
	ctx := testContext(t, time.Minute)
	create := func(labels map[string]string) string {
		t.Helper()
		c, err := cli.ContainerCreate(ctx,
			&container.Config{Image: docker.DefaultImage, Cmd: []string{"sleep", "60"}, Labels: labels},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cli.ContainerRemove(cctx, c.ID, container.RemoveOptions{Force: true})
		})
		return c.ID
	}
	running := create(map[string]string{docker.LabelAgent: agent})
	if err := cli.ContainerStart(ctx, running, container.StartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	create(map[string]string{docker.LabelAgent: agent}) // created, never started
	other := create(map[string]string{docker.LabelAgent: agent + "-other"})

	n, err := r.Reap(ctx)
	if err != nil || n != 2 {
		t.Fatalf("reap = %d, %v; want 2 removed", n, err)
	}
	if left := containersLabelled(t, cli, docker.LabelAgent, agent); len(left) != 0 {
		t.Errorf("%d containers of the agent left after reap, want 0", len(left))
	}
	if _, err := cli.ContainerInspect(ctx, other); err != nil {
		t.Errorf("another agent's container was touched: %v", err)
	}
	if n, err := r.Reap(ctx); err != nil || n != 0 {
		t.Errorf("second reap = %d, %v; want 0", n, err)
	}
}

func TestEnsureImageIsIdempotent(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t) // builds DefaultImage if missing
	built, err := r.EnsureImage(testContext(t, time.Minute), docker.DefaultImage, "", nil)
	if err != nil || built {
		t.Fatalf("ensure existing image = %v, %v; want no build", built, err)
	}
}

func TestEnsureImageBuildsUsableImage(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	cli := dockerClient(t)
	ctx := testContext(t, 3*time.Minute)
	tag := "chorus-sandbox-test:" + strings.ToLower(t.Name()[:4]) + strings.ToLower(rand8())
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.ImageRemove(cctx, tag, imageRemoveOptions()); err != nil {
			t.Errorf("remove test image: %v", err)
		}
	})

	var progress bytes.Buffer
	built, err := r.EnsureImage(ctx, tag, "", &progress)
	if err != nil || !built {
		t.Fatalf("ensure new image = %v, %v; want a build", built, err)
	}
	if !strings.Contains(progress.String(), "Step") {
		t.Errorf("progress = %q, want build steps", progress.String())
	}
	s := spec(t, "sh", "-c", "grep -c . /etc/passwd; ls -ld /tmp /workspace; echo $PATH; test -L /bin/sh")
	s.Image = tag
	res, err := r.Run(ctx, s)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run on built image = %+v, %v", res, err)
	}
	for _, want := range []string{"drwxrwxrwt", "/tmp", "/workspace", "/bin\n"} {
		if !strings.Contains(res.OutputTail, want) {
			t.Errorf("image layout = %q, want %q in it", res.OutputTail, want)
		}
	}
	if built, err := r.EnsureImage(ctx, tag, "", nil); err != nil || built {
		t.Errorf("second ensure = %v, %v; want no build", built, err)
	}
}

func TestEnsureImageNeedsStaticBusybox(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	ctx := testContext(t, time.Minute)
	missing := "chorus-sandbox-absent:" + strings.ToLower(rand8())
	cases := map[string]string{
		filepath.Join(t.TempDir(), "busybox"): "install busybox-static",
		"/bin/ls":                             "dynamically linked",
		notELF(t):                             "not an ELF",
	}
	for path, want := range cases {
		built, err := r.EnsureImage(ctx, missing, path, nil)
		if built || err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("busybox %s: got %v, %v; want an error saying %q", path, built, err, want)
		}
	}
}

// notELF returns the path of a file that is not an executable.
func notELF(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
