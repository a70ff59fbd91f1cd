// Command sandbox measures how long a trivial command (`true`) takes from
// start to exit in the sandbox, three ways, against the local Docker
// daemon:
//
//   - runner_cold: docker.Runner.Run creating a container for the run;
//   - warm_pool: docker.Runner.Run served by the runner's warm pool;
//   - docker_cli: `docker run --rm` exec'd with the same image and the same
//     isolation flags.
//
// The kinds are interleaved (their order rotates every round) and each
// run starts from a quiet daemon: the pool is full again and the
// background removals of earlier runs are done, so a warm run measures a
// warm start, not a refill. It prints one JSON object with medians, p90s
// and cold_ratio = runner_cold / docker_cli, warm_ratio = warm_pool /
// docker_cli.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"chorus/sandbox"
	"chorus/sandbox/docker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox bench:", err)
		os.Exit(1)
	}
}

// report is the JSON the command prints. Times are milliseconds.
type report struct {
	N             int     `json:"n"`
	PoolSize      int     `json:"pool_size"`
	RunnerColdMS  float64 `json:"runner_cold_ms"`
	WarmPoolMS    float64 `json:"warm_pool_ms"`
	DockerCLIMS   float64 `json:"docker_cli_ms"`
	ColdRatio     float64 `json:"cold_ratio"`
	WarmRatio     float64 `json:"warm_ratio"`
	RunnerColdP90 float64 `json:"runner_cold_p90_ms"`
	WarmPoolP90   float64 `json:"warm_pool_p90_ms"`
	DockerCLIP90  float64 `json:"docker_cli_p90_ms"`
	RunnerColdMin float64 `json:"runner_cold_min_ms"`
	WarmPoolMin   float64 `json:"warm_pool_min_ms"`
	DockerCLIMin  float64 `json:"docker_cli_min_ms"`
	// GoalsMet is cold_ratio <= 1 and warm_ratio <= 0.25.
	GoalsMet bool `json:"goals_met"`
}

// kind is one way of running the command; it returns the time from the
// start of the call to the command's exit being known.
type kind struct {
	name string
	run  func(context.Context) (time.Duration, error)
	took []time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	flags := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	flags.SetOutput(stderr)
	n := flags.Int("n", 15, "measured runs of each kind")
	warmup := flags.Int("warmup", 2, "unmeasured runs of each kind before the measured ones")
	poolSize := flags.Int("pool", 1, "warm pool size")
	image := flags.String("image", docker.DefaultImage, "sandbox image (built from busybox-static when it is the default and missing)")
	busybox := flags.String("busybox", "", "static busybox for building the default image (default "+docker.DefaultBusyboxPath+")")
	verbose := flags.Bool("v", false, "log the runners' debug events to stderr")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *warmup < 0 || *poolSize < 1 {
		return errors.New("need -n >= 1, -warmup >= 0 and -pool >= 1")
	}

	root, err := os.MkdirTemp("", "chorus-bench-sandbox-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(root)) }()
	// The workspace and the pool share a file system, as the pool needs.
	ws := filepath.Join(root, "workspace")
	if err := os.Mkdir(ws, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(ws, 0o777); err != nil {
		return err
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	agent := "bench-" + strings.ToLower(rand.Text()[:8])
	// Limits are the sandbox defaults, spelled out so that the CLI run
	// gets the same ones.
	spec := sandbox.Spec{Image: *image, Command: []string{"true"}, Workspace: ws, Timeout: time.Minute}.WithDefaults()

	cold, err := docker.New(docker.Config{AgentID: agent + "-cold", Logger: logger.With("runner", "cold")})
	if err != nil {
		return err
	}
	warm, err := docker.New(docker.Config{
		AgentID: agent + "-warm",
		Logger:  logger.With("runner", "warm"),
		Pool:    docker.PoolConfig{Size: *poolSize, Dir: filepath.Join(root, "pool"), Spec: spec},
	})
	if err != nil {
		return errors.Join(err, cold.Close())
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, r := range []*docker.Runner{cold, warm} {
			err = errors.Join(err, r.WaitRemoved(cctx))
			_, reapErr := r.Reap(cctx)
			err = errors.Join(err, reapErr, r.Close())
		}
	}()
	if err := cold.Ping(ctx); err != nil {
		return err
	}
	if *image == docker.DefaultImage {
		if _, err := cold.EnsureImage(ctx, *image, *busybox, stderr); err != nil {
			return err
		}
	}

	poolCtx, stopPool := context.WithCancel(ctx)
	poolDone := make(chan error, 1)
	go func() { poolDone <- warm.KeepWarm(poolCtx) }()
	defer func() {
		stopPool()
		err = errors.Join(err, <-poolDone)
	}()

	kinds := []*kind{
		{name: "runner_cold", run: func(ctx context.Context) (time.Duration, error) {
			return timeRun(ctx, cold, spec, false)
		}},
		{name: "warm_pool", run: func(ctx context.Context) (time.Duration, error) {
			return timeRun(ctx, warm, spec, true)
		}},
		{name: "docker_cli", run: func(ctx context.Context) (time.Duration, error) {
			return timeCLI(ctx, cliArgs(spec, agent+"-cold"))
		}},
	}
	// quiet waits until nothing of an earlier run is still in flight.
	quiet := func() error {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return errors.Join(warm.WaitWarm(wctx, *poolSize), cold.WaitRemoved(wctx), warm.WaitRemoved(wctx))
	}
	for round := range *warmup + *n {
		for i := range kinds {
			k := kinds[(round+i)%len(kinds)]
			if err := quiet(); err != nil {
				return err
			}
			d, err := k.run(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			if round >= *warmup {
				k.took = append(k.took, d)
			}
		}
	}

	rep := report{N: *n, PoolSize: *poolSize}
	rep.RunnerColdMS, rep.RunnerColdP90, rep.RunnerColdMin = summarize(kinds[0].took)
	rep.WarmPoolMS, rep.WarmPoolP90, rep.WarmPoolMin = summarize(kinds[1].took)
	rep.DockerCLIMS, rep.DockerCLIP90, rep.DockerCLIMin = summarize(kinds[2].took)
	rep.ColdRatio = round3(rep.RunnerColdMS / rep.DockerCLIMS)
	rep.WarmRatio = round3(rep.WarmPoolMS / rep.DockerCLIMS)
	rep.GoalsMet = rep.ColdRatio <= 1 && rep.WarmRatio <= 0.25
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// timeRun times one Run and checks that it succeeded the expected way.
func timeRun(ctx context.Context, r *docker.Runner, spec sandbox.Spec, wantWarm bool) (time.Duration, error) {
	start := time.Now()
	res, err := r.Run(ctx, spec)
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	if res.ExitCode != 0 {
		return 0, fmt.Errorf("exit code %d: %s", res.ExitCode, res.OutputTail)
	}
	if res.Warm != wantWarm {
		return 0, fmt.Errorf("run served warm=%t, want %t", res.Warm, wantWarm)
	}
	return took, nil
}

// cliArgs returns the `docker run` arguments giving the container the
// isolation docker.Runner gives it (see the sandbox/docker package
// documentation), with the agent label so that Reap finds leftovers.
func cliArgs(spec sandbox.Spec, agent string) []string {
	return slices.Concat([]string{
		"run", "--rm",
		"--network", "none",
		"--read-only",
		"--cap-drop", "ALL",
		"--security-opt", "no-new-privileges",
		"--user", spec.User,
		"--memory", strconv.FormatInt(spec.MemoryBytes, 10),
		"--memory-swap", strconv.FormatInt(spec.MemoryBytes, 10),
		"--cpus", strconv.FormatFloat(float64(spec.NanoCPUs)/1e9, 'f', -1, 64),
		"--pids-limit", strconv.FormatInt(spec.PidsLimit, 10),
		"--tmpfs", "/tmp:rw,noexec,nosuid,size=64m",
		"--mount", "type=bind,source=" + spec.Workspace + ",target=/workspace",
		"--workdir", "/workspace",
		"--log-driver", "none",
		"--label", docker.LabelAgent + "=" + agent,
		"--label", docker.LabelManaged + "=true",
		spec.Image,
	}, spec.Command)
}

// timeCLI times one `docker` invocation, which must succeed.
func timeCLI(ctx context.Context, args []string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return took, nil
}

// summarize returns the median, the p90 (nearest rank) and the minimum of
// ds in milliseconds.
func summarize(ds []time.Duration) (median, p90, low float64) {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	slices.Sort(ms)
	n := len(ms)
	median = ms[n/2]
	if n%2 == 0 {
		median = (ms[n/2-1] + ms[n/2]) / 2
	}
	p90 = ms[int(math.Ceil(0.9*float64(n)))-1]
	return round3(median), round3(p90), round3(ms[0])
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
