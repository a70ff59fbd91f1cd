package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"chorus"
	"chorus/activities"
	"chorus/intake"
	"chorus/provider/board"
	"chorus/selection"
	"chorus/workflows"
)

// submitOutput is the JSON printed by submit (the contract of --json).
type submitOutput struct {
	TaskKey    string         `json:"task_key"`
	WorkflowID string         `json:"workflow_id"`
	RunID      string         `json:"run_id"`
	Status     string         `json:"status"`
	Created    bool           `json:"created"`
	AgentID    string         `json:"agent_id,omitempty"`
	Error      string         `json:"error,omitempty"`
	Result     *chorus.Result `json:"result,omitempty"`
}

func cmdSubmit(e *env, args []string) error {
	fs := e.flags("submit", "--title T [flags]", "Adds a task to the board and starts its workflow. Submitting the same open task again\nreturns the existing task and run. The task body may hold a ```sh block: its commands run\nin the sandbox.")
	var t chorus.Task
	var expertise, allow string
	var wait bool
	var timeout time.Duration
	fs.StringVar(&t.Title, "title", "", "task title (required)")
	fs.StringVar(&t.Description, "body", "", "task body; a fenced ```sh block in it is executed")
	fs.StringVar(&t.Repository, "repo", "default", "repository the task belongs to")
	fs.IntVar(&t.Priority, "priority", 5, "priority 0..10")
	fs.StringVar(&t.Role, "role", "", "required role")
	fs.StringVar(&expertise, "expertise", "", "required expertise, comma separated")
	fs.StringVar(&t.Model, "model", "", "model the AI rung tries first (default: chosen by the agent's role)")
	fs.StringVar(&allow, "allow-host", "", "hosts the task's sandbox may reach through the egress proxy, comma separated (host, host:port, *.domain); default: no network")
	fs.BoolVar(&wait, "wait", false, "wait for the task to finish; exit 1 unless it completed")
	fs.DurationVar(&timeout, "timeout", 0, "with --wait: give up waiting after this long (0 = no limit)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fail("submit: unexpected argument %q", pos[0])
	}
	if strings.TrimSpace(t.Title) == "" {
		return fail("submit: --title is required")
	}
	for _, x := range strings.Split(expertise, ",") {
		if x = strings.TrimSpace(x); x != "" {
			t.Expertise = append(t.Expertise, x)
		}
	}
	for _, h := range strings.Split(allow, ",") {
		if h = strings.TrimSpace(h); h != "" {
			t.AllowHosts = append(t.AllowHosts, h)
		}
	}
	if err := t.Validate(); err != nil {
		return fail("submit: %v", err)
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	task, created, err := e.board().Add(e.ctx, t)
	if err != nil {
		return fmt.Errorf("add task to board at %s: %w", e.boardURL, err)
	}
	run, err := (&intake.Starter{Client: c}).Start(e.ctx, task)
	if err != nil {
		return err
	}
	out := submitOutput{TaskKey: task.Key().String(), WorkflowID: run.GetID(), RunID: run.GetRunID(), Status: workflows.StatusPending, Created: created}
	if !wait {
		if st, err := queryStatus(e.ctx, c, out.WorkflowID); err == nil {
			out.Status = st.Status
		}
		return e.printSubmit(out)
	}
	ctx := e.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if !e.json {
		fmt.Fprintf(e.stderr, "submitted %s, waiting for it to finish...\n", out.TaskKey)
	}
	var st workflows.TaskStatus
	err = run.Get(ctx, &st)
	switch {
	case err == nil:
		out.Status, out.AgentID, out.Error, out.Result = st.Status, st.AgentID, st.Error, st.Result
	case temporal.IsCanceledError(err):
		out.Status, out.Error = workflows.StatusCancelled, "cancelled"
	case ctx.Err() != nil:
		return fail("submit: gave up waiting for %s: %v", out.TaskKey, ctx.Err())
	default:
		out.Status, out.Error = workflows.StatusFailed, oneLine(err)
	}
	if err := e.printSubmit(out); err != nil {
		return err
	}
	if out.Status != workflows.StatusCompleted {
		return &exitError{code: 1}
	}
	return nil
}

func (e *env) printSubmit(o submitOutput) error {
	if e.json {
		return e.printJSON(o)
	}
	fmt.Fprintf(e.stdout, "%s  %s", o.TaskKey, o.Status)
	if o.AgentID != "" {
		fmt.Fprintf(e.stdout, "  agent %s", o.AgentID)
	}
	if !o.Created {
		fmt.Fprint(e.stdout, "  (already submitted)")
	}
	fmt.Fprintln(e.stdout)
	if o.Result != nil {
		fmt.Fprintf(e.stdout, "%s (%s, exit %d, %d ms)\n", o.Result.Message, o.Result.ExecutionType, o.Result.ExitCode, o.Result.DurationMS)
		if len(o.Result.FilesGenerated) > 0 {
			fmt.Fprintf(e.stdout, "files: %s\n", strings.Join(o.Result.FilesGenerated, ", "))
		}
		if o.Result.OutputTail != "" {
			fmt.Fprintf(e.stdout, "--- output (tail) ---\n%s\n", o.Result.OutputTail)
		}
	} else if o.Error != "" {
		fmt.Fprintf(e.stdout, "error: %s\n", o.Error)
	}
	return nil
}

// listItem is one row of list --json.
type listItem struct {
	TaskKey   string           `json:"task_key"`
	Title     string           `json:"title"`
	State     chorus.TaskState `json:"state"`
	Assignee  string           `json:"assignee,omitempty"`
	Priority  int              `json:"priority"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
}

func cmdList(e *env, args []string) error {
	fs := e.flags("list", "[flags]", "Lists tasks on the board, highest priority first.")
	var state, repo string
	var limit int
	fs.StringVar(&state, "state", "", "only tasks in these states, comma separated (open,claimed,working,completed,failed,cancelled)")
	fs.StringVar(&repo, "repo", "", "only tasks of this repository")
	fs.IntVar(&limit, "limit", 100, "at most this many tasks")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fail("list: unexpected argument %q", pos[0])
	}
	f := board.Filter{Repository: repo, Limit: limit}
	for _, s := range strings.Split(state, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if !chorus.TaskState(s).Valid() {
				return fail("list: --state: unknown state %q", s)
			}
			f.States = append(f.States, chorus.TaskState(s))
		}
	}
	tasks, err := e.board().List(e.ctx, f)
	if err != nil {
		return fmt.Errorf("list tasks from %s: %w", e.boardURL, err)
	}
	items := make([]listItem, 0, len(tasks))
	for _, t := range tasks {
		items = append(items, listItem{TaskKey: t.Key().String(), Title: t.Title, State: t.State, Assignee: t.Assignee, Priority: t.Priority, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt})
	}
	if e.json {
		return e.printJSON(items)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSTATE\tPRIO\tASSIGNEE\tTITLE")
	for _, i := range items {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", i.TaskKey, i.State, i.Priority, i.Assignee, i.Title)
	}
	return tw.Flush()
}

// statusOutput is status --json.
type statusOutput struct {
	TaskKey        string                 `json:"task_key"`
	Title          string                 `json:"title"`
	State          chorus.TaskState       `json:"state"`
	Assignee       string                 `json:"assignee,omitempty"`
	Fence          int64                  `json:"fence,omitempty"`
	WorkflowID     string                 `json:"workflow_id,omitempty"`
	RunID          string                 `json:"run_id,omitempty"`
	WorkflowStatus string                 `json:"workflow_status,omitempty"`
	Status         string                 `json:"status"`
	AgentID        string                 `json:"agent_id,omitempty"`
	Error          string                 `json:"error,omitempty"`
	Progress       *activities.Progress   `json:"progress,omitempty"`
	Helpers        []activities.HelpOffer `json:"helpers,omitempty"`
	// Placement counts the agents the task was placed on; Scores are the
	// candidates of the latest selection, best first; Escalated says the
	// task found no qualified agent for too long and was handed to humans.
	Placement int                   `json:"placement,omitempty"`
	Scores    []selection.Breakdown `json:"scores,omitempty"`
	Escalated bool                  `json:"escalated,omitempty"`
	Result    *chorus.Result        `json:"result,omitempty"`
	Events    []board.Event         `json:"events,omitempty"`
}

func cmdStatus(e *env, args []string) error {
	fs := e.flags("status", "KEY [flags]", "Shows one task: its board state and history, its workflow and its result.\nKEY is task/board/<repo>/<number>.")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	key, err := keyArg("status", pos)
	if err != nil {
		return err
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	out, err := describe(e.ctx, c, e.board(), key)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(out)
	}
	fmt.Fprintf(e.stdout, "%s  %s\nstate: %s", out.TaskKey, out.Title, out.State)
	if out.Assignee != "" {
		fmt.Fprintf(e.stdout, " (agent %s, fence %d)", out.Assignee, out.Fence)
	}
	fmt.Fprintf(e.stdout, "\nworkflow: %s %s (%s)\n", out.WorkflowID, out.WorkflowStatus, out.Status)
	if out.Progress != nil {
		fmt.Fprintf(e.stdout, "progress: %s, %d bytes of output after %s\n", out.Progress.Phase, out.Progress.OutputBytes, time.Duration(out.Progress.ElapsedMS)*time.Millisecond)
	}
	if out.Error != "" {
		fmt.Fprintf(e.stdout, "error: %s\n", out.Error)
	}
	if out.Result != nil {
		fmt.Fprintf(e.stdout, "result: %s (%s, exit %d, %d ms)\n", out.Result.Message, out.Result.ExecutionType, out.Result.ExitCode, out.Result.DurationMS)
	}
	for _, h := range out.Helpers {
		fmt.Fprintf(e.stdout, "helper: %s (%s, %s)\n", h.AgentID, h.Role, strings.Join(h.Expertise, ","))
	}
	if out.Escalated {
		fmt.Fprintln(e.stdout, "escalated: no agent qualified in time; waiting for one (see starter escalations)")
	}
	for _, sc := range out.Scores {
		fmt.Fprintf(e.stdout, "candidate: %-16s score %.2f (role %.1f, expertise %.2f, availability %.2f, performance %.2f)%s\n",
			sc.AgentID, sc.Score, sc.Role, sc.Expertise, sc.Availability, sc.Performance, map[bool]string{true: "", false: " not qualified"}[sc.Qualified])
	}
	for _, ev := range out.Events {
		fmt.Fprintf(e.stdout, "  %s  %-10s %s %s\n", ev.At.Local().Format("15:04:05"), ev.Kind, ev.Agent, ev.Detail)
	}
	return nil
}

func keyArg(cmd string, args []string) (chorus.TaskKey, error) {
	if len(args) != 1 {
		return chorus.TaskKey{}, fail("%s: want exactly one task key (task/board/<repo>/<number>)", cmd)
	}
	k, err := chorus.ParseTaskKey(args[0])
	if err != nil {
		return k, fail("%s: %v", cmd, err)
	}
	return k, nil
}

// describe joins the board's view and the workflow's view of a task.
func describe(ctx context.Context, c client.Client, b *board.Client, key chorus.TaskKey) (statusOutput, error) {
	t, err := b.Get(ctx, key)
	if err != nil {
		if errors.Is(err, chorus.ErrNotFound) {
			return statusOutput{}, fail("no task %s on the board", key)
		}
		return statusOutput{}, err
	}
	out := statusOutput{TaskKey: key.String(), Title: t.Title, State: t.State, Assignee: t.Assignee, Fence: t.Fence, Status: string(t.State), Error: t.Error, Result: t.Result}
	if evs, err := b.Events(ctx, key); err == nil {
		out.Events = evs
	}
	d, err := c.DescribeWorkflowExecution(ctx, key.String(), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		out.Status = "not started"
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("describe workflow %s: %w", key, err)
	}
	info := d.GetWorkflowExecutionInfo()
	out.WorkflowID, out.RunID = info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()
	out.WorkflowStatus = strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
	for _, pa := range d.GetPendingActivities() {
		if pa.GetActivityType().GetName() == "Execute" && pa.GetHeartbeatDetails() != nil {
			// Heartbeats are throttled by the SDK, so the output size is as of
			// the last one sent; the elapsed time is computed here.
			var p activities.Progress
			if err := client.NewValue(pa.GetHeartbeatDetails()).Get(&p); err == nil {
				if started := pa.GetLastStartedTime(); started != nil {
					p.ElapsedMS = time.Since(started.AsTime()).Milliseconds()
				}
				out.Progress = &p
			}
		}
	}
	var st workflows.TaskStatus
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		st, err = queryStatus(ctx, c, key.String())
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		err = c.GetWorkflow(ctx, out.WorkflowID, out.RunID).Get(ctx, &st)
	default:
		// Cancelled, terminated or failed runs: the board has the
		// task's own word for it.
		if !t.State.Terminal() {
			out.Status = out.WorkflowStatus
		}
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("workflow status of %s: %w", key, err)
	}
	out.Status, out.AgentID, out.Helpers = st.Status, st.AgentID, st.Helpers
	out.Placement, out.Scores, out.Escalated = st.Placement, st.Scores, st.Escalated
	if st.Error != "" {
		out.Error = st.Error
	}
	if st.Result != nil {
		out.Result = st.Result
	}
	return out, nil
}

func queryStatus(ctx context.Context, c client.Client, id string) (workflows.TaskStatus, error) {
	var st workflows.TaskStatus
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

func cmdWatch(e *env, args []string) error {
	fs := e.flags("watch", "[KEY] [flags]", "Follows tasks live: prints a line whenever a task changes state. With KEY, follows that task\n(with execution progress) and exits when it finishes: 0 when completed, 1 otherwise.")
	var interval time.Duration
	fs.DurationVar(&interval, "interval", time.Second, "poll interval")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fail("watch: at most one task key")
	}
	b := e.board()
	var one *chorus.TaskKey
	var c client.Client
	if len(pos) == 1 {
		k, err := keyArg("watch", pos)
		if err != nil {
			return err
		}
		one = &k
		if c, err = e.dial(); err != nil {
			return err
		}
		defer c.Close()
	}
	seen := map[string]string{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var lines []string
		var done, completed bool
		if one != nil {
			out, err := describe(e.ctx, c, b, *one)
			if err != nil {
				return err
			}
			line := fmt.Sprintf("%s %s", out.TaskKey, out.Status)
			if out.AgentID != "" {
				line += " agent " + out.AgentID
			}
			if out.Progress != nil {
				line += fmt.Sprintf(" (%d bytes output, %s)", out.Progress.OutputBytes, (time.Duration(out.Progress.ElapsedMS) * time.Millisecond).Round(time.Second))
			}
			if line != seen[out.TaskKey] {
				seen[out.TaskKey] = line
				lines = append(lines, line)
			}
			done = out.State.Terminal() && out.WorkflowStatus != "running"
			completed = out.State == chorus.StateCompleted
		} else {
			tasks, err := b.List(e.ctx, board.Filter{Limit: 1000})
			if err != nil {
				return fmt.Errorf("list tasks from %s: %w", e.boardURL, err)
			}
			for _, t := range tasks {
				k := t.Key().String()
				s := string(t.State) + " " + t.Assignee
				if seen[k] != s {
					seen[k] = s
					line := fmt.Sprintf("%s %s", k, t.State)
					if t.Assignee != "" {
						line += " agent " + t.Assignee
					}
					lines = append(lines, line+"  "+t.Title)
				}
			}
			slices.Sort(lines)
		}
		for _, l := range lines {
			if e.json {
				if err := e.printJSON(watchEvent{At: time.Now().UTC(), Event: l}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(e.stdout, "%s  %s\n", time.Now().Format("15:04:05"), l)
			}
		}
		if done {
			if completed {
				return nil
			}
			return &exitError{code: 1}
		}
		select {
		case <-e.ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// watchEvent is one line of watch --json.
type watchEvent struct {
	At    time.Time `json:"at"`
	Event string    `json:"event"`
}

// cancelOutput is cancel --json.
type cancelOutput struct {
	TaskKey string `json:"task_key"`
	Status  string `json:"status"`
}

func cmdCancel(e *env, args []string) error {
	fs := e.flags("cancel", "KEY [flags]", "Cancels a task's workflow: a running sandbox is killed and the task is marked cancelled.")
	var wait bool
	fs.BoolVar(&wait, "wait", true, "wait until the workflow has ended")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	key, err := keyArg("cancel", pos)
	if err != nil {
		return err
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CancelWorkflow(e.ctx, key.String(), ""); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fail("cancel: no running workflow for %s", key)
		}
		return fmt.Errorf("cancel %s: %w", key, err)
	}
	status := "cancel requested"
	if wait {
		err := c.GetWorkflow(e.ctx, key.String(), "").Get(e.ctx, nil)
		switch {
		case temporal.IsCanceledError(err):
			status = "cancelled"
		case err == nil:
			status = "completed before the cancellation took effect"
		default:
			status = "ended: " + oneLine(err)
		}
	}
	if e.json {
		return e.printJSON(cancelOutput{TaskKey: key.String(), Status: status})
	}
	fmt.Fprintf(e.stdout, "%s %s\n", key, status)
	return nil
}
