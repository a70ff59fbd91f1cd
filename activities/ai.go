package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"chorus"
	"chorus/ai"
	"chorus/budget"
	"chorus/sandbox"
)

// AIInput asks one model to do the task.
type AIInput struct {
	ExecuteInput
	Model string `json:"model"`
}

// Chatter is what the AI rung needs from a model client.
type Chatter interface {
	Chat(ctx context.Context, req ai.Request) (ai.Response, error)
}

// AI is the AI rung: a model proposes shell commands, they run in the
// sandbox against a copy of the task's repository, the output goes back to
// the model, until it says it is done, or a step, token or time budget
// stops it before the next call.
type AI struct {
	// Models maps a model name to its client.
	Models map[string]Chatter
	Runner sandbox.Runner
	// DataDir holds workspaces, baselines, transcripts and artifacts.
	DataDir string
	// Limits is the sandbox template, as for Executor.
	Limits sandbox.Spec
	// Budget bounds one task; Daily, when set, bounds the agent's day.
	Budget budget.Limits
	Daily  *budget.Daily
	// Repositories maps a task's repository to a local directory copied
	// into the workspace (the sandbox has no network to clone it).
	Repositories map[string]string
	// Unlabelled: see Executor.Unlabelled.
	Unlabelled bool
	// Redact, when set, is applied to every transcript entry before it is
	// written (the SHHH redactor in the worker).
	Redact func(string) string
	Logger *slog.Logger
	// Metrics, when set, counts the rung's runs, steps, corrections and
	// budget stops.
	Metrics *Metrics
	// now is time.Now unless a test sets it.
	now func() time.Time
}

// reply is the structured answer the model must give.
type reply struct {
	Commands []string `json:"commands"`
	Done     bool     `json:"done"`
	Summary  string   `json:"summary"`
}

const maxFeedbackBytes = 4000

// ExecuteAI runs the agent loop with one model.
func (a *AI) ExecuteAI(ctx context.Context, in AIInput) (chorus.Result, error) {
	done := a.Metrics.execution(chorus.ExecAI)
	r, err := a.executeAI(ctx, in)
	done(r, err)
	a.Metrics.aiRun(r, err)
	return r, err
}

func (a *AI) executeAI(ctx context.Context, in AIInput) (chorus.Result, error) {
	client, ok := a.Models[in.Model]
	if !ok {
		return chorus.Result{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("model %q is not configured on agent %s", in.Model, in.AgentID), ErrTypeModelUnavailable, nil)
	}
	now := a.now
	if now == nil {
		now = time.Now
	}
	name := attemptName(ctx, in.ExecuteInput)
	key := pathFor(in.Key)
	ws := filepath.Join(a.DataDir, "work", key, "ai-"+name)
	base := filepath.Join(a.DataDir, "vcs", key, name)
	transcriptPath := filepath.Join(a.DataDir, "transcripts", key, name+".jsonl")
	for _, d := range []string{ws, base} {
		if err := os.RemoveAll(d); err != nil {
			return chorus.Result{}, fmt.Errorf("clear %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(transcriptPath), 0o755); err != nil {
		return chorus.Result{}, fmt.Errorf("transcript dir: %w", err)
	}
	if src, ok := a.Repositories[in.Repository]; ok {
		if err := copyTree(src, ws); err != nil {
			return chorus.Result{}, fmt.Errorf("copy repository %s: %w", in.Repository, err)
		}
	}
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return chorus.Result{}, fmt.Errorf("create workspace: %w", err)
	}
	// The baseline for the diff lives outside the workspace, where the
	// sandboxed commands cannot touch it.
	if err := copyTree(ws, base); err != nil {
		return chorus.Result{}, fmt.Errorf("baseline: %w", err)
	}
	if err := openForSandbox(ws); err != nil {
		return chorus.Result{}, err
	}
	tf, err := os.Create(transcriptPath)
	if err != nil {
		return chorus.Result{}, fmt.Errorf("transcript: %w", err)
	}
	defer tf.Close()
	logT := func(kind string, v any) {
		b, err := json.Marshal(transcriptEntry{At: now().UTC(), Kind: kind, Data: v})
		if err != nil {
			return
		}
		line := string(b)
		if a.Redact != nil {
			line = a.Redact(line)
		}
		_, _ = io.WriteString(tf, line+"\n")
	}

	listing, _ := listFiles(ws)
	if len(listing) > 200 {
		listing = append(listing[:200], "...")
	}
	msgs := []ai.Message{
		{Role: "system", Content: systemPrompt(in)},
		{Role: "user", Content: fmt.Sprintf("Task %s (%s): %s\n\n%s\n\nFiles in /workspace:\n%s", in.Key, chorus.DetectTaskType(in.Title, in.Description), in.Title, in.Description, strings.Join(listing, "\n"))},
	}
	for _, m := range msgs {
		logT("message", m)
	}

	tb := budget.NewTask(a.Budget, now)
	res := chorus.Result{ExecutionType: chorus.ExecAI, Model: in.Model, AgentID: in.AgentID, TranscriptRef: transcriptPath, CommandsExecuted: []string{}}
	start := now()
	corrected := false
	lastExit := -1
	var done bool
	var summary string
	for step := 1; ; step++ {
		activity.RecordHeartbeat(ctx, Progress{Phase: fmt.Sprintf("ai step %d", step), ElapsedMS: now().Sub(start).Milliseconds()})
		maxTokens, err := tb.Check()
		if err == nil && a.Daily != nil {
			var left int
			if left, err = a.Daily.Check(); err == nil && left > 0 && (maxTokens == 0 || left < maxTokens) {
				maxTokens = left
			}
		}
		if err != nil {
			logT("stop", err.Error())
			return chorus.Result{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBudgetExhausted, err)
		}
		resp, err := client.Chat(ctx, ai.Request{Model: in.Model, Messages: msgs, MaxTokens: maxTokens, JSON: true})
		if err != nil {
			logT("error", err.Error())
			return chorus.Result{}, classifyAI(err)
		}
		a.Metrics.event(aiStep)
		tb.Charge(resp.TotalTokens())
		if a.Daily != nil {
			if err := a.Daily.Charge(resp.TotalTokens()); err != nil {
				a.Logger.Warn("recording daily budget failed", "error", err)
			}
		}
		res.TokensUsed += resp.TotalTokens()
		logT("reply", transcriptReply{Model: resp.Model, Content: resp.Content, PromptTokens: resp.PromptTokens, CompletionTokens: resp.CompletionTokens})
		msgs = append(msgs, ai.Message{Role: "assistant", Content: resp.Content})

		var r reply
		if err := decodeReply(resp.Content, &r); err != nil {
			if corrected {
				return chorus.Result{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("model %s: unusable reply after a correction: %v", in.Model, err), ErrTypeModelGarbage, nil)
			}
			corrected = true
			a.Metrics.event(aiCorrection)
			msgs = append(msgs, ai.Message{Role: "user", Content: "Your reply was not usable: " + err.Error() + `. Reply with one JSON object only: {"commands": ["..."], "done": false, "summary": "..."}`})
			logT("message", msgs[len(msgs)-1])
			continue
		}
		summary = r.Summary
		if len(r.Commands) > 0 {
			out, err := a.run(ctx, in, ws, r.Commands, &res)
			if err != nil {
				return chorus.Result{}, err
			}
			lastExit = res.ExitCode
			feedback := fmt.Sprintf("exit code %d\n%s", res.ExitCode, clip(out, maxFeedbackBytes))
			msgs = append(msgs, ai.Message{Role: "user", Content: feedback})
			logT("message", msgs[len(msgs)-1])
		}
		if r.Done {
			done = true
			break
		}
	}

	files, err := listFiles(ws)
	if err != nil {
		return chorus.Result{}, fmt.Errorf("list workspace: %w", err)
	}
	res.FilesGenerated = files
	res.DurationMS = now().Sub(start).Milliseconds()
	if diff, err := a.diff(in.Key, name, base, ws); err != nil {
		a.Logger.Warn("workspace diff failed", "key", in.Key, "error", err)
	} else if diff != "" {
		res.Artifacts = map[string]string{"diff": diff}
	}
	res.Success = done && lastExit <= 0
	switch {
	case res.Success:
		res.Message = "ai: " + firstLine(summary, "done")
	default:
		res.Message = fmt.Sprintf("ai: the model finished but its last commands failed with exit code %d", lastExit)
	}
	return res, nil
}

// run executes one step's commands in the sandbox and adds them to res.
func (a *AI) run(ctx context.Context, in AIInput, ws string, cmds []string, res *chorus.Result) (string, error) {
	spec := a.Limits
	spec.Command = []string{"/bin/sh", "-e", "-c", strings.Join(cmds, "\n")}
	spec.Workspace = ws
	spec.Env = []string{"TASK_ID=" + in.Key, "REPOSITORY=" + in.Repository, "AGENT_ID=" + in.AgentID, "AGENT_ROLE=" + in.AgentRole, "HOME=/workspace"}
	spec.Labels = taskLabels(in.Key, a.Unlabelled)
	spec.AllowHosts = in.AllowHosts
	out, err := a.Runner.Run(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("sandbox run: %w", err)
	}
	res.CommandsExecuted = append(res.CommandsExecuted, cmds...)
	res.ExitCode = out.ExitCode
	res.OutputTail = lastLines(out.OutputTail, 40)
	res.ResourceUsage.CPUTimeMS += out.Usage.CPUTimeMS
	res.ResourceUsage.PeakMemoryBytes = max(res.ResourceUsage.PeakMemoryBytes, out.Usage.PeakMemoryBytes)
	if out.TimedOut {
		return out.OutputTail + "\n(timed out)", nil
	}
	return out.OutputTail, nil
}

// diff writes the workspace's changes against the baseline as a unified
// diff artifact and returns its path ("" when nothing changed).
func (a *AI) diff(key, name, base, ws string) (string, error) {
	cmd := exec.Command("git", "diff", "--no-index", "--no-color", "--binary", base, ws)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return "", fmt.Errorf("git diff: %w", err)
	}
	if len(out) == 0 {
		return "", nil
	}
	text := strings.NewReplacer("a"+base+"/", "a/", "b"+ws+"/", "b/", "a"+base, "a", "b"+ws, "b").Replace(string(out))
	path := filepath.Join(a.DataDir, "artifacts", pathFor(key), name+".diff")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(text), 0o644)
}

type transcriptReply struct {
	Model            string `json:"model"`
	Content          string `json:"content"`
	PromptTokens     int    `json:"prompt_tokens"`
	CompletionTokens int    `json:"completion_tokens"`
}

type transcriptEntry struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	Data any       `json:"data"`
}

func systemPrompt(in AIInput) string {
	role := in.AgentRole
	if role == "" {
		role = "developer"
	}
	return fmt.Sprintf(`You are a %s agent in chorus. You work in a sandbox: a busybox shell, no network, working directory /workspace, which holds repository %q.
Reply with ONE JSON object and nothing else: {"commands": ["shell command", ...], "done": false, "summary": "one line"}.
The commands run with /bin/sh -e in /workspace; you get their exit code and output back. Use non-interactive commands only.
When the task is complete, reply with "done": true (with any final commands) and a summary.`, role, in.Repository)
}

// decodeReply accepts the JSON object alone or inside a ``` fence.
func decodeReply(s string, r *reply) error {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "```") {
		s = strings.TrimPrefix(s, "```json")
		s = strings.TrimPrefix(s, "```")
		s = strings.TrimSuffix(strings.TrimSpace(s), "```")
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return fmt.Errorf("not a JSON object with commands, done and summary: %v", err)
	}
	if len(r.Commands) == 0 && !r.Done {
		return errors.New("no commands and not done")
	}
	for _, c := range r.Commands {
		if strings.TrimSpace(c) == "" {
			return errors.New("an empty command")
		}
	}
	return nil
}

// classifyAI maps client errors to the ladder's error types.
func classifyAI(err error) error {
	switch {
	case errors.Is(err, ai.ErrModelNotFound), errors.Is(err, ai.ErrUnauthorized), errors.Is(err, ai.ErrBadRequest):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeModelUnavailable, err)
	case errors.Is(err, ai.ErrMalformedReply):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeModelGarbage, err)
	}
	// Unreachable, rate limited, server errors: Temporal retries the rung.
	return err
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

func firstLine(s, def string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return def
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// copyTree copies a directory (regular files, dirs, symlinks), skipping .git.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
		return nil
	})
}

// openForSandbox makes the workspace writable by the sandbox's non-root
// user.
func openForSandbox(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		mode := fs.FileMode(0o666)
		if d.IsDir() {
			mode = 0o777
		} else if info, err := d.Info(); err == nil && info.Mode()&0o111 != 0 {
			mode = 0o777
		}
		return os.Chmod(p, mode)
	})
}
