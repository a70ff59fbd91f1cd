package docker_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"chorus/sandbox"
	"chorus/sandbox/docker"
)

// keepWarm runs r.KeepWarm until stop is called or the test ends, and
// waits until n containers are ready. stop returns KeepWarm's error.
func keepWarm(t *testing.T, r *docker.Runner, n int) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.KeepWarm(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("keep warm: %v", err)
		}
	})
	if err := r.WaitWarm(testContext(t, 2*time.Minute), n); err != nil {
		t.Fatal(err)
	}
	return stop
}

// poolOf returns a pool of size containers made from template, with a
// directory on the same file system as the tests' workspaces.
func poolOf(t *testing.T, size int, template sandbox.Spec) docker.PoolConfig {
	return docker.PoolConfig{Size: size, Dir: t.TempDir(), Spec: template}
}

// idleContainers returns the ids of the agent's containers; while nothing
// runs, those are the idle pool containers.
func idleContainers(t *testing.T, agent string) []string {
	t.Helper()
	var ids []string
	for _, c := range containersLabelled(t, dockerClient(t), docker.LabelAgent, agent) {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

// requireRemoved waits for the runner's background removals and checks
// that the containers are gone.
func requireRemoved(t *testing.T, r *docker.Runner, ids ...string) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	if err := r.WaitRemoved(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := dockerClient(t).ContainerInspect(ctx, id); !cerrdefs.IsNotFound(err) {
			t.Errorf("inspect %s after its run: %v, want it removed", id, err)
		}
	}
}

// tree describes every file and directory under dir: mode and content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		if d.Type().IsRegular() {
			body, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			desc += " " + string(body)
		}
		files[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// probe prints what a command can observe of its sandbox (except the host
// name, which is the container's id), then changes the workspace and
// exits 3.
const probe = `
env | grep -v '^HOSTNAME=' | sort
id
grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs|Seccomp):' /proc/self/status
for f in /proc/$$/fd/*; do echo "fd ${f##*/} $(readlink "$f" | sed 's/:.*//') $(grep flags /proc/$$/fdinfo/${f##*/})"; done
echo to stderr >&2
exec 2>&1 # stdout and stderr are separate pipes: keep the order below
tr '\0' ' ' < /proc/1/cmdline; echo
echo "pid $$"
pwd; umask; ulimit -a
ip -o link | awk '{print $2}'
awk '$2 == "/" || $2 == "/workspace" || $2 == "/tmp" { split($4, o, ","); print $2, $3, o[1] }' /proc/self/mounts | sort
cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max 2>/dev/null
ls -lna . | awk 'NR > 1 { print $1, $3, $4, $NF }'
cat input.txt
echo changed >> input.txt
mkdir out && echo made > out/new.txt
chmod 600 sub/keep.txt
exit 3
`

func TestWarmRunMatchesColdRun(t *testing.T) {
	t.Parallel()
	cold, _ := newRunner(t)
	warm, _ := newPoolRunner(t, poolOf(t, 1, sandbox.Spec{Image: docker.DefaultImage}))
	keepWarm(t, warm, 1)

	run := func(r *docker.Runner) (sandbox.Result, map[string]string) {
		t.Helper()
		s := spec(t, "sh", "-c", probe)
		s.Env = []string{`QUOTED=it's "quoted" $HOME \n`, "EMPTY=", "HOME=/workspace", "PATH=/bin:/usr/bin"}
		// Writable by the sandbox user whatever the umask.
		input, sub := filepath.Join(s.Workspace, "input.txt"), filepath.Join(s.Workspace, "sub")
		keep := filepath.Join(sub, "keep.txt")
		err := errors.Join(os.WriteFile(input, []byte("given\n"), 0o666), os.Mkdir(sub, 0o777),
			os.WriteFile(keep, []byte("kept\n"), 0o666), os.Chmod(input, 0o666), os.Chmod(sub, 0o777))
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Run(testContext(t, time.Minute), s)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		return res, tree(t, s.Workspace)
	}
	coldRes, coldFiles := run(cold)
	warmRes, warmFiles := run(warm)

	if coldRes.Warm || !warmRes.Warm {
		t.Fatalf("warm = %t (cold runner), %t (pool runner); want false, true", coldRes.Warm, warmRes.Warm)
	}
	if coldRes.ExitCode != 3 || warmRes.ExitCode != 3 || coldRes.TimedOut || warmRes.TimedOut || coldRes.OOMKilled || warmRes.OOMKilled {
		t.Errorf("results = %+v (cold), %+v (warm); want exit code 3 for both", coldRes, warmRes)
	}
	// stdout and stderr are separate pipes: the probe's one line to
	// stderr may arrive anywhere.
	const stderrLine = "to stderr\n"
	coldOut, warmOut := coldRes.OutputTail, warmRes.OutputTail
	if !strings.Contains(coldOut, stderrLine) || !strings.Contains(warmOut, stderrLine) {
		t.Errorf("stderr missing from the output: %q (cold), %q (warm)", coldOut, warmOut)
	}
	coldOut, warmOut = strings.Replace(coldOut, stderrLine, "", 1), strings.Replace(warmOut, stderrLine, "", 1)
	if coldOut != warmOut || coldRes.OutputBytes != warmRes.OutputBytes {
		t.Errorf("outputs differ:\n--- cold\n%s\n--- warm\n%s", coldOut, warmOut)
	}
	for _, want := range []string{"QUOTED=it's \"quoted\" $HOME \\n\n", "uid=65534", "NoNewPrivs:\t1", "pid 1\n", "/workspace\n", "given\n"} {
		if !strings.Contains(warmOut, want) {
			t.Errorf("warm output lacks %q:\n%s", want, warmOut)
		}
	}
	if len(coldFiles) != len(warmFiles) {
		t.Errorf("workspaces differ: %v (cold), %v (warm)", coldFiles, warmFiles)
	}
	for name, desc := range coldFiles {
		if warmFiles[name] != desc {
			t.Errorf("workspace %s = %q after the warm run, %q after the cold one", name, warmFiles[name], desc)
		}
	}
	if warmFiles["out/new.txt"] != "-rw-r--r-- made\n" || warmFiles["input.txt"] != "-rw-rw-rw- given\nchanged\n" ||
		warmFiles["sub/keep.txt"] != "-rw-r--r-- kept\n" {
		t.Errorf("warm workspace = %v, want the command's changes", warmFiles)
	}
	requireRemoved(t, warm, warmRes.ContainerID)

	// A command that is not a shell sees the environment of a cold
	// container too, without the waiting shell's variables.
	if err := warm.WaitWarm(testContext(t, time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	env := func(r *docker.Runner, wantWarm bool) []string {
		t.Helper()
		s := spec(t, "env")
		s.Env = []string{"HOME=/workspace", "EXTRA=1"}
		res, err := r.Run(testContext(t, time.Minute), s)
		if err != nil || res.ExitCode != 0 || res.Warm != wantWarm {
			t.Fatalf("env: %+v, %v; want warm %t", res, err, wantWarm)
		}
		lines := slices.DeleteFunc(strings.Split(res.OutputTail, "\n"), func(l string) bool {
			return strings.HasPrefix(l, "HOSTNAME=")
		})
		slices.Sort(lines)
		return lines
	}
	if coldEnv, warmEnv := env(cold, false), env(warm, true); !slices.Equal(coldEnv, warmEnv) {
		t.Errorf("environment = %q (warm), want %q as in a cold container", warmEnv, coldEnv)
	}
}

func TestPoolContainerIsLockedDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	agent := newAgent(t)
	template := sandbox.Spec{
		Image:       docker.DefaultImage,
		MemoryBytes: 64 << 20,
		NanoCPUs:    500_000_000,
		PidsLimit:   50,
		Labels:      map[string]string{"chorus.test": agent, docker.LabelAgent: "spoofed"},
	}
	r := newRunnerFor(t, agent, docker.PoolConfig{Size: 1, Dir: dir, Spec: template})
	keepWarm(t, r, 1)
	cli := dockerClient(t)

	ids := idleContainers(t, agent)
	if len(ids) != 1 {
		t.Fatalf("found %d containers of the agent, want the 1 pool container", len(ids))
	}
	info, err := cli.ContainerInspect(testContext(t, 10*time.Second), ids[0])
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	ws := info.Mounts[0].Source
	if !strings.HasPrefix(ws, filepath.Join(dir, agent)+string(filepath.Separator)) {
		t.Errorf("workspace mount source %s is not a slot under %s", ws, dir)
	}
	checkLockedDown(t, info, template.WithDefaults(), agent, ws)

	// A run with the same limits and a subset of the labels is served by
	// that container, locked down the same way.
	s := spec(t, "sh", "-c", "id -u; id -g; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | sort; ip -o link | wc -l; touch /etc/x 2>&1")
	s.MemoryBytes, s.NanoCPUs, s.PidsLimit = template.MemoryBytes, template.NanoCPUs, template.PidsLimit
	s.Labels = map[string]string{"chorus.test": agent}
	res, err := r.Run(testContext(t, time.Minute), s)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !res.Warm || res.ContainerID != ids[0] {
		t.Fatalf("run served by %s (warm %t), want the pool container %s", res.ContainerID, res.Warm, ids[0])
	}
	want := "65534\n65534\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n1\ntouch: /etc/x: Read-only file system\n"
	if res.OutputTail != want || res.ExitCode != 1 {
		t.Errorf("output = %q (exit %d), want %q (exit 1)", res.OutputTail, res.ExitCode, want)
	}
}

func TestPoolRunsColdUnlessSpecMatches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	agent := newAgent(t)
	template := sandbox.Spec{Image: docker.DefaultImage, Labels: map[string]string{"chorus.test": agent, "chorus.extra": "x"}}
	r := newRunnerFor(t, agent, docker.PoolConfig{Size: 1, Dir: dir, Spec: template})
	keepWarm(t, r, 1)
	idle := idleContainers(t, agent)
	if len(idle) != 1 {
		t.Fatalf("agent has containers %v, want the 1 pool container", idle)
	}

	alias := "chorus-sandbox-alias:" + strings.ToLower(rand8())
	cli := dockerClient(t)
	if err := cli.ImageTag(testContext(t, 10*time.Second), docker.DefaultImage, alias); err != nil {
		t.Fatalf("tag image: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.ImageRemove(ctx, alias, imageRemoveOptions()); err != nil {
			t.Errorf("remove image alias: %v", err)
		}
	})

	cold := map[string]func(*sandbox.Spec){
		"other image":        func(s *sandbox.Spec) { s.Image = alias },
		"other memory limit": func(s *sandbox.Spec) { s.MemoryBytes = 64 << 20 },
		"other cpu limit":    func(s *sandbox.Spec) { s.NanoCPUs = 500_000_000 },
		"other pids limit":   func(s *sandbox.Spec) { s.PidsLimit = 50 },
		"other user":         func(s *sandbox.Spec) { s.User = "1000:1000" },
		"label not pooled":   func(s *sandbox.Spec) { s.Labels = map[string]string{"chorus.task": "t-1"} },
		"label value":        func(s *sandbox.Spec) { s.Labels = map[string]string{"chorus.extra": "y"} },
		"env not exportable": func(s *sandbox.Spec) { s.Env = []string{"NOT-A-NAME=1"} },
	}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		cold["workspace on another file system"] = func(s *sandbox.Spec) {
			ws, err := os.MkdirTemp("/dev/shm", "chorus-test-")
			if err != nil {
				t.Fatalf("workspace on /dev/shm: %v", err)
			}
			t.Cleanup(func() { os.RemoveAll(ws) })
			if err := os.Chmod(ws, 0o777); err != nil {
				t.Fatal(err)
			}
			s.Workspace = ws
		}
	}
	for name, mutate := range cold {
		s := spec(t, "sh", "-c", "echo ran > ran.txt")
		mutate(&s)
		res, err := r.Run(testContext(t, time.Minute), s)
		if err != nil {
			t.Fatalf("%s: run: %v", name, err)
		}
		if res.Warm || res.ExitCode != 0 {
			t.Errorf("%s: result = %+v, want a cold run exiting 0", name, res)
		}
		if got, err := os.ReadFile(filepath.Join(s.Workspace, "ran.txt")); err != nil || string(got) != "ran\n" {
			t.Errorf("%s: workspace file = %q, %v", name, got, err)
		}
	}

	// The idle container was left alone, and a matching spec (a subset of
	// the labels; the runner's own labels are overridden anyway) gets it.
	s := spec(t, "true")
	s.Labels = map[string]string{"chorus.extra": "x", docker.LabelAgent: "spoofed"}
	res, err := r.Run(testContext(t, time.Minute), s)
	if err != nil {
		t.Fatalf("matching run: %v", err)
	}
	if !res.Warm || res.ContainerID != idle[0] {
		t.Errorf("matching run served by %s (warm %t), want the idle container %s", res.ContainerID, res.Warm, idle[0])
	}
}

func TestPoolRefillsAfterUse(t *testing.T) {
	t.Parallel()
	r, agent := newPoolRunner(t, poolOf(t, 2, sandbox.Spec{Image: docker.DefaultImage}))
	keepWarm(t, r, 2)
	seen := map[string]bool{}
	for i := range 4 {
		before := idleContainers(t, agent)
		res, err := r.Run(testContext(t, time.Minute), spec(t, "echo", "run", fmt.Sprint(i)))
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if !res.Warm || res.OutputTail != fmt.Sprintf("run %d\n", i) {
			t.Fatalf("run %d = %+v, want a warm run printing its argument", i, res)
		}
		if seen[res.ContainerID] || !slices.Contains(before, res.ContainerID) {
			t.Fatalf("run %d served by %s; want one of the idle %v, never used before", i, res.ContainerID, before)
		}
		seen[res.ContainerID] = true
		if err := r.WaitWarm(testContext(t, time.Minute), 2); err != nil {
			t.Fatalf("pool did not refill after run %d: %v", i, err)
		}
		requireRemoved(t, r, res.ContainerID)
		if after := idleContainers(t, agent); len(after) != 2 || slices.Contains(after, res.ContainerID) {
			t.Fatalf("after run %d the agent has containers %v, want 2 idle ones without the used %s", i, after, res.ContainerID)
		}
	}
}

func TestWarmRunTimeoutAndCancelKill(t *testing.T) {
	t.Parallel()
	r, _ := newPoolRunner(t, poolOf(t, 1, sandbox.Spec{Image: docker.DefaultImage}))
	keepWarm(t, r, 1)

	s := spec(t, "sleep", "60")
	s.Timeout = 2 * time.Second
	start := time.Now()
	res, err := r.Run(testContext(t, time.Minute), s)
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("run took %s with a 2s timeout", took)
	}
	if err != nil || !res.Warm || !res.TimedOut || res.ExitCode != 137 {
		t.Errorf("run = %+v, %v; want a warm run timed out with SIGKILL's exit code 137", res, err)
	}
	requireRemoved(t, r, res.ContainerID)

	if err := r.WaitWarm(testContext(t, time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	s = spec(t, "sh", "-c", "echo kept > kept.txt; echo ready; sleep 60")
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
		t.Fatalf("run ended before the command was ready: %+v, %v", o.res, o.err)
	}
	cancelled := time.Now()
	cancel()
	o := <-done
	if took := time.Since(cancelled); took > 10*time.Second {
		t.Errorf("run took %s to return after cancellation", took)
	}
	if !errors.Is(o.err, context.Canceled) || !o.res.Warm || o.res.TimedOut {
		t.Errorf("run = %+v, %v; want a warm run ended by context.Canceled", o.res, o.err)
	}
	if got, err := os.ReadFile(filepath.Join(s.Workspace, "kept.txt")); err != nil || string(got) != "kept\n" {
		t.Errorf("workspace file after cancel = %q, %v; want it back in the workspace", got, err)
	}
	requireRemoved(t, r, o.res.ContainerID)
}

func TestWarmRunReportsOOMAndUsage(t *testing.T) {
	t.Parallel()
	template := sandbox.Spec{Image: docker.DefaultImage, MemoryBytes: 32 << 20}
	r, _ := newPoolRunner(t, poolOf(t, 1, template))
	keepWarm(t, r, 1)

	s := spec(t, "awk", `BEGIN { s = "0123456789abcdef"; while (1) s = s s }`)
	s.MemoryBytes = template.MemoryBytes
	res, err := r.Run(testContext(t, time.Minute), s)
	if err != nil || !res.Warm || !res.OOMKilled || res.ExitCode != 137 {
		t.Errorf("memory bomb = %+v, %v; want a warm run OOMKilled with exit code 137", res, err)
	}

	if err := r.WaitWarm(testContext(t, time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	s = spec(t, "sh", "-c", "while :; do :; done")
	s.MemoryBytes = template.MemoryBytes
	s.Timeout = 3 * time.Second
	res, err = r.Run(testContext(t, time.Minute), s)
	if err != nil || !res.Warm || !res.TimedOut {
		t.Fatalf("busy loop = %+v, %v; want a warm run timed out", res, err)
	}
	if res.Usage.CPUTimeMS < 300 || res.Usage.PeakMemoryBytes <= 0 {
		t.Errorf("usage = %+v, want CPU time and peak memory of a 3s busy loop", res.Usage)
	}
}

func TestKeepWarmExitRemovesIdleContainers(t *testing.T) {
	t.Parallel()
	pool := poolOf(t, 2, sandbox.Spec{Image: docker.DefaultImage})
	r, agent := newPoolRunner(t, pool)
	stop := keepWarm(t, r, 2)
	if ids := idleContainers(t, agent); len(ids) != 2 {
		t.Fatalf("agent has containers %v, want the 2 pool containers", ids)
	}
	if err := stop(); err != nil {
		t.Fatalf("keep warm returned %v, want a clean exit", err)
	}
	if ids := idleContainers(t, agent); len(ids) != 0 {
		t.Errorf("containers %v left after KeepWarm returned", ids)
	}
	if slots, err := os.ReadDir(filepath.Join(pool.Dir, agent)); err != nil || len(slots) != 0 {
		t.Errorf("pool directory holds %v (%v) after KeepWarm returned, want nothing", slots, err)
	}
	res, err := r.Run(testContext(t, time.Minute), spec(t, "true"))
	if err != nil || res.Warm {
		t.Errorf("run after KeepWarm returned = %+v, %v; want a cold run", res, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := r.WaitWarm(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitWarm with no KeepWarm = %v, want the deadline", err)
	}
}

// The environment of TestHelperPoolProcess, set by
// TestReapRemovesPoolContainersOfCrashedRunner.
const (
	helperAgentEnv = "CHORUS_TEST_POOL_AGENT"
	helperDirEnv   = "CHORUS_TEST_POOL_DIR"
)

func TestReapRemovesPoolContainersOfCrashedRunner(t *testing.T) {
	t.Parallel()
	pool := poolOf(t, 2, sandbox.Spec{Image: docker.DefaultImage})
	r, agent := newPoolRunner(t, pool)

	// A process fills its pool and is killed: its containers and slots
	// are orphans.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPoolProcess$")
	cmd.Env = append(os.Environ(), helperAgentEnv+"="+agent, helperDirEnv+"="+pool.Dir)
	cmd.Stderr = t.Output()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	for lines.Scan() && lines.Text() != "pool ready" {
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	orphans := idleContainers(t, agent)
	if len(orphans) != 2 {
		t.Fatalf("the killed process left containers %v, want its 2 pool containers", orphans)
	}
	oldSlots, err := os.ReadDir(filepath.Join(pool.Dir, agent))
	if err != nil || len(oldSlots) != 2 {
		t.Fatalf("the killed process left slots %v (%v), want 2", oldSlots, err)
	}

	// The restarted process reaps them, and its KeepWarm clears the slots.
	n, err := r.Reap(testContext(t, time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("reap = %d, %v; want the 2 orphans removed", n, err)
	}
	if left := idleContainers(t, agent); len(left) != 0 {
		t.Fatalf("containers %v left after reap", left)
	}
	keepWarm(t, r, 2)
	slots, err := os.ReadDir(filepath.Join(pool.Dir, agent))
	if err != nil || len(slots) != 2 {
		t.Fatalf("slots after restart = %v (%v), want the 2 new ones", slots, err)
	}
	for _, old := range oldSlots {
		for _, s := range slots {
			if s.Name() == old.Name() {
				t.Errorf("slot %s of the killed process is still there", old.Name())
			}
		}
	}
}

// TestHelperPoolProcess is the process TestReapRemovesPoolContainersOfCrashedRunner
// kills: it fills a pool, says so, and waits to be killed.
func TestHelperPoolProcess(t *testing.T) {
	agent := os.Getenv(helperAgentEnv)
	if agent == "" {
		t.Skip("run by TestReapRemovesPoolContainersOfCrashedRunner")
	}
	r, err := docker.New(docker.Config{
		AgentID: agent,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Pool:    docker.PoolConfig{Size: 2, Dir: os.Getenv(helperDirEnv), Spec: sandbox.Spec{Image: docker.DefaultImage}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go r.KeepWarm(t.Context())
	if err := r.WaitWarm(testContext(t, 2*time.Minute), 2); err != nil {
		t.Fatal(err)
	}
	fmt.Println("pool ready")
	<-t.Context().Done() // until killed
}
