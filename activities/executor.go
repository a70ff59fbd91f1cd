package activities

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"

	"chorus"
	"chorus/sandbox"
)

// ExecuteInput is one execution request (SPEC section 4).
type ExecuteInput struct {
	Key         string        `json:"key"`
	AgentID     string        `json:"agent_id"`
	AgentRole   string        `json:"agent_role"`
	Repository  string        `json:"repository"`
	Title       string        `json:"title"`
	Description string        `json:"description"`
	Timeout     time.Duration `json:"timeout"`
	// AllowHosts is the task's network policy (empty: no network).
	AllowHosts []string `json:"allow_hosts,omitempty"`
	// Placement counts the agents the task was placed on; it keeps the
	// workspaces and logs of a re-placed task apart.
	Placement int `json:"placement,omitempty"`
}

// attemptName names an attempt's workspace and log: attempt-N, or
// p<placement>-attempt-N after the task was placed again.
func attemptName(ctx context.Context, in ExecuteInput) string {
	attempt := activity.GetInfo(ctx).Attempt
	if in.Placement > 1 {
		return fmt.Sprintf("p%d-attempt-%d", in.Placement, attempt)
	}
	return fmt.Sprintf("attempt-%d", attempt)
}

// Progress is the heartbeat detail of a running execution.
type Progress struct {
	Phase       string `json:"phase"`
	OutputBytes int64  `json:"output_bytes"`
	ElapsedMS   int64  `json:"elapsed_ms"`
}

// Executor runs the scripted rung: the shell block of the task, in the
// sandbox, in a fresh workspace per attempt.
type Executor struct {
	Runner  sandbox.Runner
	DataDir string
	// Limits holds the image and resource limits every run gets; its
	// Command, Workspace and Env are ignored.
	Limits sandbox.Spec
	// HeartbeatInterval defaults to 2 s.
	HeartbeatInterval time.Duration
	// Unlabelled leaves the per-task label (chorus.task=<key>) off the
	// containers, so the runner's warm pool, whose containers are created
	// before their task is known, can serve them.
	Unlabelled bool
	Logger     *slog.Logger
	// Metrics, when set, counts executions and heartbeats.
	Metrics *Metrics
}

var scriptBlock = regexp.MustCompile("(?ms)^[ \t]*```[ \t]*(sh|bash|shell)[ \t]*\r?\n(.*?)^[ \t]*```")

// ExtractScript returns the concatenated ```sh (or bash, shell) blocks of a
// task description, or "" when there is none.
func ExtractScript(description string) string {
	var parts []string
	for _, m := range scriptBlock.FindAllStringSubmatch(description, -1) {
		if s := strings.TrimSpace(m[2]); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "\n")
}

// Commands lists the command lines of a script: non-empty, non-comment.
func Commands(script string) []string {
	var out []string
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// pathFor maps a task key to a directory name.
func pathFor(key string) string { return unsafeChars.ReplaceAllString(key, "_") }

// Execute runs the task's script in the sandbox. A command that fails is a
// Result with Success false, not an error; a task with no script is the
// non-retryable ErrTypeNoRunnableContent; sandbox failures are retried.
func (e *Executor) Execute(ctx context.Context, in ExecuteInput) (chorus.Result, error) {
	done := e.Metrics.execution(chorus.ExecScripted)
	r, err := e.execute(ctx, in)
	done(r, err)
	return r, err
}

func (e *Executor) execute(ctx context.Context, in ExecuteInput) (chorus.Result, error) {
	script := ExtractScript(in.Description)
	if script == "" {
		return chorus.Result{}, classify(fmt.Errorf("%w: the task description holds no ```sh block to run", chorus.ErrNoRunnableContent))
	}
	name := attemptName(ctx, in)
	dir := filepath.Join(e.DataDir, "work", pathFor(in.Key), name)
	if err := os.RemoveAll(dir); err != nil {
		return chorus.Result{}, fmt.Errorf("clear workspace: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return chorus.Result{}, fmt.Errorf("create workspace: %w", err)
	}
	// The sandbox user is not root; the workspace must be writable by it.
	if err := os.Chmod(dir, 0o777); err != nil {
		return chorus.Result{}, fmt.Errorf("open workspace: %w", err)
	}
	logDir := filepath.Join(e.DataDir, "output", pathFor(in.Key))
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return chorus.Result{}, fmt.Errorf("create output dir: %w", err)
	}
	logPath := filepath.Join(logDir, name+".log")

	spec := e.Limits
	spec.Command = []string{"/bin/sh", "-e", "-c", script}
	spec.Workspace = dir
	spec.OutputPath = logPath
	spec.Env = []string{
		"TASK_ID=" + in.Key,
		"REPOSITORY=" + in.Repository,
		"AGENT_ID=" + in.AgentID,
		"AGENT_ROLE=" + in.AgentRole,
		"HOME=/workspace",
	}
	if in.Timeout > 0 {
		spec.Timeout = in.Timeout
	}
	spec.Labels = taskLabels(in.Key, e.Unlabelled)
	spec.AllowHosts = in.AllowHosts
	var outBytes atomic.Int64
	spec.OnOutput = func(b []byte) { outBytes.Add(int64(len(b))) }

	start := time.Now()
	stop := e.heartbeat(ctx, start, &outBytes)
	res, err := e.Runner.Run(ctx, spec)
	stop()
	if err != nil {
		return chorus.Result{}, fmt.Errorf("sandbox run: %w", err)
	}
	files, err := listFiles(dir)
	if err != nil {
		return chorus.Result{}, fmt.Errorf("list workspace: %w", err)
	}
	r := chorus.Result{
		Success:          res.ExitCode == 0 && !res.TimedOut,
		ExecutionType:    chorus.ExecScripted,
		DurationMS:       res.Duration.Milliseconds(),
		CommandsExecuted: Commands(script),
		FilesGenerated:   files,
		ExitCode:         res.ExitCode,
		OutputTail:       lastLines(res.OutputTail, 40),
		OutputRef:        logPath,
		AgentID:          in.AgentID,
		ResourceUsage:    chorus.ResourceUsage{CPUTimeMS: res.Usage.CPUTimeMS, PeakMemoryBytes: res.Usage.PeakMemoryBytes},
		WarmStart:        res.Warm,
	}
	switch {
	case res.TimedOut:
		r.Message = fmt.Sprintf("timed out after %s", spec.Timeout)
	case res.OOMKilled:
		r.Message = fmt.Sprintf("killed: memory limit exceeded (exit code %d)", res.ExitCode)
	case res.ExitCode != 0:
		r.Message = fmt.Sprintf("script failed with exit code %d", res.ExitCode)
	default:
		r.Message = fmt.Sprintf("script ran %d commands successfully", len(r.CommandsExecuted))
	}
	return r, nil
}

// LabelTask is the container label naming the task a sandbox runs for.
const LabelTask = "chorus.task"

func taskLabels(key string, unlabelled bool) map[string]string {
	if unlabelled {
		return nil
	}
	return map[string]string{LabelTask: key}
}

// heartbeat records progress until the returned stop is called. Heartbeats
// also deliver cancellation to ctx.
func (e *Executor) heartbeat(ctx context.Context, start time.Time, out *atomic.Int64) (stop func()) {
	interval := e.HeartbeatInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	beat := func() {
		e.Metrics.event(heartbeat)
		activity.RecordHeartbeat(ctx, Progress{Phase: "executing", OutputBytes: out.Load(), ElapsedMS: time.Since(start).Milliseconds()})
	}
	// No beat at start: a heartbeat is a server round trip and a history
	// update, and short executions finish well inside the first interval.
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// listFiles returns the regular files under dir, relative and sorted.
func listFiles(dir string) ([]string, error) {
	files := []string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// lastLines keeps at most n trailing lines of s.
func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
