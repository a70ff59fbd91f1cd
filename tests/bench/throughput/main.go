// Command throughput measures what the task workflow adds over Temporal
// itself. In one process against one embedded Temporal server it pushes N
// tasks through the full task workflow (real board, real activities, a
// sandbox runner that returns at once) and N bare workflows running the same
// number of no-op activities, and prints one JSON object:
//
//	{tasks, tasks_per_sec, raw_workflows_per_sec, ratio, p50_ms, p99_ms, ...}
//
// The kinds alternate over several rounds and the rates are medians, so a
// change in the machine's load during the run hits both.
// ratio = tasks_per_sec / raw_workflows_per_sec; the goal is >= 0.8.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"chorus"
	"chorus/activities"
	"chorus/devserver"
	"chorus/intake"
	"chorus/provider/board"
	"chorus/sandbox"
	"chorus/selection"
	"chorus/workflows"
)

type report struct {
	Tasks              int       `json:"tasks"`
	Concurrency        int       `json:"concurrency"`
	TasksPerSec        float64   `json:"tasks_per_sec"`
	RawWorkflowsPerSec float64   `json:"raw_workflows_per_sec"`
	Ratio              float64   `json:"ratio"`
	P50MS              float64   `json:"p50_ms"`
	P99MS              float64   `json:"p99_ms"`
	RawP50MS           float64   `json:"raw_p50_ms"`
	RawP99MS           float64   `json:"raw_p99_ms"`
	ActivitiesPerTask  int       `json:"activities_per_workflow"`
	Rounds             int       `json:"rounds"`
	RoundRatios        []float64 `json:"round_ratios"`
}

func main() {
	n := flag.Int("n", 200, "tasks (and bare workflows) to run")
	conc := flag.Int("c", 20, "concurrent starters")
	warm := flag.Int("warmup", 20, "warm-up workflows of each kind, not measured")
	rounds := flag.Int("rounds", 5, "measured rounds of each kind, alternated; rates are medians")
	flag.Parse()
	if err := run(*n, *conc, *warm, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "throughput:", err)
		os.Exit(1)
	}
}

// activitiesPerTask is how many activities one successful task runs:
// Identify, Claim, MarkWorking, Execute, Complete.
const activitiesPerTask = 5

func run(n, conc, warm, rounds int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "chorus-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)

	port, err := freePort()
	if err != nil {
		return err
	}
	cfg := devserver.DefaultConfig()
	cfg.DataDir, cfg.FrontendPort, cfg.UIPort, cfg.Logger = dir, port, -1, quiet
	srv, err := devserver.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Stop()
	b, err := board.Open(filepath.Join(dir, "board.db"))
	if err != nil {
		return err
	}
	defer b.Close()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr(), Logger: sdklog.NewStructuredLogger(quiet)})
	if err != nil {
		return err
	}
	defer c.Close()

	agent := activities.AgentInfo{ID: "bench", Role: "developer", MaxTasks: 100, TaskQueue: activities.AgentQueue("bench"), ExecutionTimeout: time.Minute, HeartbeatTimeout: 30 * time.Second, QueueTimeout: time.Minute}
	shared := worker.New(c, workflows.TaskQueue, worker.Options{})
	shared.RegisterWorkflowWithOptions(workflows.TaskWorkflow, workflow.RegisterOptions{Name: workflows.TaskWorkflowName})
	shared.RegisterActivity(&activities.Agent{Info: agent})
	shared.RegisterActivity(&activities.Provider{Tasks: b})
	// Selection scores the one agent there is, as a lone worker's
	// registry would offer it.
	shared.RegisterActivity(&activities.Selector{Peers: onlyAgent{agent}})
	ctl := worker.New(c, activities.AgentControlQueue(agent.ID), worker.Options{})
	ctl.RegisterActivity(&activities.Agent{Info: agent})
	own := worker.New(c, agent.TaskQueue, worker.Options{})
	own.RegisterActivity(&activities.Executor{Runner: noopRunner{}, DataDir: dir, Limits: sandbox.Spec{Image: "none"}})
	const rawQueue = "bench-raw"
	raw := worker.New(c, rawQueue, worker.Options{})
	raw.RegisterWorkflowWithOptions(bareWorkflow, workflow.RegisterOptions{Name: "Bare"})
	raw.RegisterActivityWithOptions(noop, activityName("Noop"))
	for _, w := range []worker.Worker{shared, ctl, own, raw} {
		if err := w.Start(); err != nil {
			return err
		}
		defer w.Stop()
	}

	starter := &intake.Starter{Client: c}
	seq := 0
	var mu sync.Mutex
	task := func(ctx context.Context) error {
		mu.Lock()
		seq++
		i := seq
		mu.Unlock()
		t, _, err := b.Add(ctx, chorus.Task{Repository: "bench", Title: fmt.Sprintf("bench task %d", i), Description: "```sh\ntrue\n```"})
		if err != nil {
			return err
		}
		r, err := starter.Start(ctx, t)
		if err != nil {
			return err
		}
		var st workflows.TaskStatus
		if err := r.Get(ctx, &st); err != nil {
			return err
		}
		if st.Status != workflows.StatusCompleted {
			return fmt.Errorf("task %s ended %s: %s", st.Key, st.Status, st.Error)
		}
		return nil
	}
	bare := func(ctx context.Context) error {
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: rawQueue}, "Bare")
		if err != nil {
			return err
		}
		return r.Get(ctx, nil)
	}

	for _, f := range []func(context.Context) error{task, bare} {
		if _, _, err := drive(ctx, warm, conc, f); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	// Alternate the measured rounds so drift in the machine's load hits
	// both kinds; report medians.
	var rep report
	rep.Tasks, rep.Concurrency, rep.ActivitiesPerTask, rep.Rounds = n, conc, activitiesPerTask, rounds
	var rawRates, taskRates []float64
	var rawLat, taskLat []time.Duration
	for r := 0; r < rounds; r++ {
		rate, lat, err := drive(ctx, n, conc, bare)
		if err != nil {
			return fmt.Errorf("bare workflows: %w", err)
		}
		rawRates, rawLat = append(rawRates, rate), append(rawLat, lat...)
		rate, lat, err = drive(ctx, n, conc, task)
		if err != nil {
			return fmt.Errorf("tasks: %w", err)
		}
		taskRates, taskLat = append(taskRates, rate), append(taskLat, lat...)
		fmt.Fprintf(os.Stderr, "round %d: raw %.1f/s, tasks %.1f/s\n", r+1, rawRates[r], taskRates[r])
	}
	var ratios []float64
	for i := range taskRates {
		ratios = append(ratios, taskRates[i]/rawRates[i])
	}
	rep.TasksPerSec, rep.RawWorkflowsPerSec = round(median(taskRates)), round(median(rawRates))
	// The ratio is the median of each round's ratio: the two kinds in one
	// round ran back to back, so slow drift of the machine cancels out.
	rep.Ratio = round(median(ratios))
	rep.RoundRatios = ratios
	for i := range rep.RoundRatios {
		rep.RoundRatios[i] = round(rep.RoundRatios[i])
	}
	rep.P50MS, rep.P99MS = pct(taskLat, 50), pct(taskLat, 99)
	rep.RawP50MS, rep.RawP99MS = pct(rawLat, 50), pct(rawLat, 99)
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(rep)
}

// drive runs f n times on conc goroutines and returns runs per second and
// each run's latency.
func drive(ctx context.Context, n, conc int, f func(context.Context) error) (float64, []time.Duration, error) {
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	var mu sync.Mutex
	var lat []time.Duration
	var errs []error
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				t0 := time.Now()
				err := f(ctx)
				mu.Lock()
				lat = append(lat, time.Since(t0))
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return float64(n) / elapsed.Seconds(), lat, errors.Join(errs...)
}

func bareWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	for range activitiesPerTask {
		if err := workflow.ExecuteActivity(ctx, "Noop").Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func noop(context.Context) error { return nil }

// onlyAgent is a registry holding one idle agent.
type onlyAgent struct{ a activities.AgentInfo }

func (o onlyAgent) Candidates() []selection.Candidate {
	return []selection.Candidate{{AgentID: o.a.ID, Role: o.a.Role, MaxTasks: o.a.MaxTasks, Performance: selection.DefaultPerformance}}
}

func activityName(n string) activity.RegisterOptions { return activity.RegisterOptions{Name: n} }

// noopRunner is the no-op executor: the sandbox returns success at once.
type noopRunner struct{}

func (noopRunner) Run(context.Context, sandbox.Spec) (sandbox.Result, error) {
	return sandbox.Result{ExitCode: 0}, nil
}

func pct(d []time.Duration, p int) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return round(float64(s[i].Microseconds()) / 1000)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func round(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
