//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// containers lists the ids of containers (running or not) with a label.
func containers(t *testing.T, label string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(out))
}

func completions(s statusOutput) int {
	n := 0
	for _, e := range s.Events {
		if e.Kind == "completed" {
			n++
		}
	}
	return n
}

func TestSubmitRunsInSandbox(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	body := "Write a report.\n\n```sh\nmkdir -p out\necho hello > out/report.txt\nid -u\necho done\n```\n"
	s, code := c.submit(ctx, "--title", "make a report", "--body", body, "--repo", "demo", "--priority", "7", "--wait")
	if code != 0 {
		t.Fatalf("submit exit %d: %+v", code, s)
	}
	if s.Status != "completed" || s.Result == nil || !s.Result.Success {
		t.Fatalf("submit = %+v", s)
	}
	if !strings.HasPrefix(s.TaskKey, "task/board/demo/") || s.WorkflowID != s.TaskKey || s.RunID == "" {
		t.Fatalf("ids: %+v", s)
	}
	r := s.Result
	if r.ExecutionType != "scripted" || r.ExitCode != 0 || r.DurationMS <= 0 {
		t.Fatalf("result = %+v", r)
	}
	if !slices.Equal(r.FilesGenerated, []string{"out/report.txt"}) {
		t.Fatalf("files_generated = %q", r.FilesGenerated)
	}
	if !slices.Equal(r.CommandsExecuted, []string{"mkdir -p out", "echo hello > out/report.txt", "id -u", "echo done"}) {
		t.Fatalf("commands_executed = %q", r.CommandsExecuted)
	}
	if !strings.Contains(r.OutputTail, "65534") || !strings.HasSuffix(strings.TrimSpace(r.OutputTail), "done") {
		t.Fatalf("output_tail = %q (want the non-root uid and the last line)", r.OutputTail)
	}
	c.recordHistory(ctx, s.WorkflowID, "completed")

	// Submitting the same task again returns the same task and run.
	again, code := c.submit(ctx, "--title", "make a report", "--body", body, "--repo", "demo", "--priority", "7")
	if code != 0 || again.Created || again.TaskKey != s.TaskKey || again.RunID != s.RunID {
		t.Fatalf("second submit = %+v (exit %d), want the existing run %s", again, code, s.RunID)
	}
	if n := c.runs(ctx, s.TaskKey); n != 1 {
		t.Fatalf("%d runs of %s, want 1", n, s.TaskKey)
	}

	// The history is visible through the UI's HTTP API.
	var list struct {
		Executions []struct {
			Execution struct {
				WorkflowID string `json:"workflowId"`
			} `json:"execution"`
		} `json:"executions"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		found := false
		if getJSON(t, c.uiURL+"/api/v1/namespaces/default/workflows", &list) == 200 {
			for _, e := range list.Executions {
				found = found || e.Execution.WorkflowID == s.TaskKey
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow %s not listed by the UI API: %+v", s.TaskKey, list)
		}
		waitTick()
	}

	// The node's audit log holds the lifecycle and verifies.
	out, errOut, code := c.starterCmd(ctx, "audit", "verify", "--data-dir", c.dataDir)
	if code != 0 {
		t.Fatalf("audit verify: exit %d: %s %s", code, out, errOut)
	}
	out, errOut, code = c.starterCmd(ctx, "audit", "query", "--data-dir", c.dataDir, "--json")
	for _, typ := range []string{"task_claimed", "task_progress", "task_completed"} {
		if code != 0 || !strings.Contains(out, `"`+typ+`"`) || !strings.Contains(out, s.TaskKey) {
			t.Fatalf("audit query lacks %s for %s: exit %d: %s %s", typ, s.TaskKey, code, out, errOut)
		}
	}

	// BACKBEAT followed the task through its phases on this worker: a
	// status claim for each state a script task passes (claimed and
	// planning claim "planning"; the AI rung's planning phase is not
	// taken by a script task).
	claims := func() []string {
		resp, err := http.Get(c.opsURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		metrics, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var missing []string
		for _, state := range []string{"planning", "executing", "reviewing", "completed"} {
			re := regexp.MustCompile(`(?m)^chorus_backbeat_status_claims_total\{state="` + state + `"\} [1-9][0-9]*$`)
			if !re.Match(metrics) {
				missing = append(missing, state)
			}
		}
		return missing
	}
	// The claims are published a moment after the state changes.
	for deadline := time.Now().Add(10 * time.Second); ; waitTick() {
		missing := claims()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status claim in /metrics for %v", missing)
		}
	}

	// The board lists it as completed.
	out, _, code = c.starterCmd(ctx, "list", "--json", "--state", "completed")
	var items []struct {
		TaskKey string `json:"task_key"`
		State   string `json:"state"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &items) != nil || len(items) != 1 || items[0].TaskKey != s.TaskKey {
		t.Fatalf("list = %s (exit %d)", out, code)
	}
}

// runs counts the workflow runs with an id.
func (c *cluster) runs(ctx context.Context, id string) int {
	c.t.Helper()
	resp, err := c.client().ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", Query: "WorkflowId = '" + id + "'"})
	if err != nil {
		c.t.Fatalf("list workflows: %v", err)
	}
	n := 0
	for _, e := range resp.GetExecutions() {
		if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED || e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			n++
		}
	}
	return n
}

func TestFailuresAreReported(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	s, code := c.submit(ctx, "--title", "broken build", "--body", "```sh\necho building\nexit 3\n```", "--wait")
	if code != 1 || s.Status != "failed" || s.Result == nil || s.Result.Success || s.Result.ExitCode != 3 || !strings.Contains(s.Result.OutputTail, "building") {
		t.Fatalf("failing script: exit %d, %+v", code, s)
	}
	c.recordHistory(ctx, s.WorkflowID, "failed_script")
	if st := c.status(ctx, s.TaskKey); st.State != "failed" {
		t.Fatalf("board state = %s, want failed", st.State)
	}

	s, code = c.submit(ctx, "--title", "just talk", "--body", "no commands here", "--wait")
	if code != 1 || s.Status != "failed" || !strings.Contains(s.Error, "no runnable content") {
		t.Fatalf("no runnable content: exit %d, %+v", code, s)
	}

	// Bad input: one clear line and a non-zero exit.
	_, errOut, code := c.starterCmd(ctx, "submit", "--title", "x", "--priority", "11")
	if code == 0 || !strings.Contains(errOut, "priority") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("bad priority: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = c.starterCmd(ctx, "status", "nonsense")
	if code == 0 || !strings.Contains(errOut, "task key") {
		t.Fatalf("bad key: exit %d, stderr %q", code, errOut)
	}
}

func TestSandboxLimitsHold(t *testing.T) {
	c := startCluster(t, "--task-timeout", "5s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	body := "```sh\ntouch /etc/x 2>&1 || echo readonly-root\nnc -w 2 1.1.1.1 80 </dev/null 2>&1 || echo no-network\nid -u\nsleep 30\n```"
	s, code := c.submit(ctx, "--title", "hostile", "--body", body, "--wait")
	if code != 1 || s.Result == nil {
		t.Fatalf("exit %d, %+v", code, s)
	}
	for _, want := range []string{"readonly-root", "no-network", "65534"} {
		if !strings.Contains(s.Result.OutputTail, want) {
			t.Errorf("output lacks %q: %q", want, s.Result.OutputTail)
		}
	}
	if !strings.Contains(s.Result.Message, "timed out after 5s") {
		t.Fatalf("message = %q, want the timeout", s.Result.Message)
	}
}

func TestCancelKillsTheSandbox(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, code := c.submit(ctx, "--title", "long job", "--body", "```sh\necho started\nsleep 300\n```")
	if code != 0 {
		t.Fatalf("submit exit %d: %+v", code, s)
	}
	c.waitStatus(ctx, s.TaskKey, "working", func(st statusOutput) bool { return st.State == "working" })
	label := "chorus.task=" + s.TaskKey
	for len(containers(t, label)) == 0 {
		if ctx.Err() != nil {
			t.Fatal("no sandbox container appeared")
		}
		waitTick()
	}
	out, errOut, code := c.starterCmd(ctx, "cancel", s.TaskKey, "--json")
	if code != 0 || !strings.Contains(out, `"cancelled"`) {
		t.Fatalf("cancel: exit %d, %s %s", code, out, errOut)
	}
	st := c.waitStatus(ctx, s.TaskKey, "cancelled", func(st statusOutput) bool { return st.State == "cancelled" })
	if st.WorkflowStatus != "canceled" {
		t.Fatalf("workflow status = %q", st.WorkflowStatus)
	}
	for len(containers(t, label)) != 0 {
		if ctx.Err() != nil {
			t.Fatalf("container still there after cancel: %v", containers(t, label))
		}
		waitTick()
	}
	c.recordHistory(ctx, s.WorkflowID, "cancelled")
}

func TestKillAndRestart(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A task that finished before the kill must survive it.
	first, code := c.submit(ctx, "--title", "before the kill", "--body", "```sh\necho early\n```", "--wait")
	if code != 0 {
		t.Fatalf("first task: exit %d %+v", code, first)
	}
	s, code := c.submit(ctx, "--title", "survive a kill", "--body", "```sh\necho start\nsleep 6\necho finished > out.txt\n```")
	if code != 0 {
		t.Fatalf("submit exit %d", code)
	}
	label := "chorus.task=" + s.TaskKey
	for len(containers(t, label)) == 0 {
		if ctx.Err() != nil {
			t.Fatal("no sandbox container appeared")
		}
		waitTick()
	}
	c.dev.kill()
	c.dev = c.start(c.dev.args)

	st := c.waitStatus(ctx, s.TaskKey, "completed", func(st statusOutput) bool { return st.State == "completed" || st.State == "failed" })
	if st.State != "completed" || st.Status != "completed" {
		t.Fatalf("after restart: %+v", st)
	}
	if n := completions(st); n != 1 {
		t.Fatalf("%d completions on the board, want exactly 1", n)
	}
	if n := c.runs(ctx, s.TaskKey); n != 1 {
		t.Fatalf("%d workflow runs, want 1", n)
	}
	if st := c.status(ctx, first.TaskKey); st.State != "completed" {
		t.Fatalf("task submitted before the kill: %+v", st)
	}
	// The orphan container of the killed worker is gone (reaped or removed).
	for len(containers(t, label)) != 0 {
		if ctx.Err() != nil {
			t.Fatalf("orphan container left: %v", containers(t, label))
		}
		waitTick()
	}
	c.recordHistory(ctx, s.WorkflowID, "killed_and_retried")
}

func TestSecondWorkerJoins(t *testing.T) {
	// The dev node runs no agent, so only the joining worker can take work.
	c := startCluster(t, "--no-agent")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	op := freePort(t)
	b := c.start([]string{"--temporal", c.temporal, "--agent-id", "b", "--board", c.opsURL,
		"--data-dir", t.TempDir(), "--ops-addr", "127.0.0.1:" + itoa(op), "--log-format", "json",
		"--mdns=false", "--availability-interval", "1s", "--role", "tester"})
	s, code := c.submit(ctx, "--title", "for b", "--body", "```sh\necho from b\n```", "--wait")
	if code != 0 || s.AgentID != "b" || !strings.Contains(s.Result.OutputTail, "from b") {
		t.Fatalf("exit %d, %+v", code, s)
	}
	// The joining worker found the dev node's gossip node by itself (through
	// the board's worker) and the dev node knows it from its broadcasts.
	for {
		out, errOut, code := c.starterCmd(ctx, "peers", "--worker", c.opsURL, "--json")
		var p struct {
			Peers []struct {
				AgentID  string `json:"agent_id"`
				Role     string `json:"role"`
				MaxTasks int    `json:"max_tasks"`
				Status   string `json:"status"`
			} `json:"peers"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
			t.Fatalf("peers: exit %d: %s %s", code, out, errOut)
		}
		if len(p.Peers) == 1 && p.Peers[0].AgentID == "b" && p.Peers[0].Role == "tester" && p.Peers[0].MaxTasks == 1 && p.Peers[0].Status != "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the dev node never listed worker b: %s", out)
		}
		waitTick()
	}

	// Licensing: a worker without --license refuses to start, naming the
	// license, though the dev node's authority is right there.
	joining := func(id string) []string {
		return []string{"--temporal", c.temporal, "--agent-id", id, "--board", c.opsURL, "--data-dir", t.TempDir(),
			"--ops-addr", "127.0.0.1:" + itoa(freePort(t)), "--log-format", "json", "--mdns=false"}
	}
	out, err := exec.CommandContext(ctx, c.worker, joining("nolicense")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no license: pass --license") {
		t.Fatalf("a worker without a license: %v: %s", err, out)
	}
	// One worker more than b's license has seats starts, takes no work,
	// and says why.
	license := b.args[slices.Index(b.args, "--license")+1]
	extra := c.launch(append(joining("c"), "--license", license))
	type check struct {
		Name    string `json:"name"`
		Healthy bool   `json:"healthy"`
		Message string `json:"message"`
	}
	for {
		var checks []check
		if resp, err := http.Get(extra.opsURL + "/health/checks"); err == nil {
			json.NewDecoder(resp.Body).Decode(&checks)
			resp.Body.Close()
		}
		i := slices.IndexFunc(checks, func(ch check) bool { return ch.Name == "license" })
		if i >= 0 && !checks[i].Healthy && strings.Contains(checks[i].Message, "no free seat") && strings.Contains(checks[i].Message, license) {
			break
		}
		select {
		case <-extra.exited:
			t.Fatalf("the extra worker exited:\n%s", extra.output())
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("the extra worker never said it has no seat: %+v\n%s", checks, extra.output())
		}
		waitTick()
	}
	if !strings.Contains(extra.output(), "no free seat") {
		t.Fatalf("the extra worker's log does not say it has no seat:\n%s", extra.output())
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestWarmPoolServesTasks(t *testing.T) {
	c := startCluster(t, "--warm-pool", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	after := time.Now()
	for i := range 2 {
		c.waitCheck(ctx, "warm_pool", after)
		out, errOut, code := c.starterCmd(ctx, "submit", "--json", "--wait", "--title", "warm "+strconv.Itoa(i), "--body", "```sh\nid -u > uid.txt\ncat uid.txt\n```")
		var r struct {
			Status string `json:"status"`
			Result struct {
				WarmStart      bool     `json:"warm_start"`
				OutputTail     string   `json:"output_tail"`
				FilesGenerated []string `json:"files_generated"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
			t.Fatalf("submit %d: exit %d %v: %s %s", i, code, err, out, errOut)
		}
		after = time.Now()
		if r.Status != "completed" || !r.Result.WarmStart || r.Result.OutputTail != "65534" || !slices.Equal(r.Result.FilesGenerated, []string{"uid.txt"}) {
			t.Fatalf("task %d: %+v", i, r)
		}
	}
}

// waitCheck waits until the dev node's health check name has passed in a
// run that started after the given time.
func (c *cluster) waitCheck(ctx context.Context, name string, after time.Time) {
	c.t.Helper()
	for {
		var checks []struct {
			Name    string    `json:"name"`
			Healthy bool      `json:"healthy"`
			Runs    int       `json:"runs"`
			LastRun time.Time `json:"last_run"`
		}
		getJSON(c.t, c.opsURL+"/health/checks", &checks)
		for _, ch := range checks {
			if ch.Name == name && ch.Healthy && ch.LastRun.After(after) {
				return
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("check %s never passed: %+v", name, checks)
		default:
		}
		waitTick()
	}
}

func TestTaskAllowListOpensOneHost(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "fetched through the allow-list\n")
	}))
	defer origin.Close()
	host := strings.TrimPrefix(origin.URL, "http://")
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	body := "```sh\np=${HTTP_PROXY#http://}\nprintf 'GET http://" + host + "/ HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${p%:*} ${p##*:}\nprintf 'GET http://example.com/ HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${p%:*} ${p##*:} | head -1\n```"
	s, code := c.submit(ctx, "--title", "fetch", "--body", body, "--allow-host", host, "--wait")
	if code != 0 || !strings.Contains(s.Result.OutputTail, "fetched through the allow-list") || !strings.Contains(s.Result.OutputTail, "403") {
		t.Fatalf("exit %d, %+v", code, s.Result)
	}
	_, errOut, code := c.starterCmd(ctx, "submit", "--title", "bad", "--allow-host", "http://x")
	if code == 0 || !strings.Contains(errOut, "allow_hosts[0]") {
		t.Fatalf("bad allow host: exit %d, %q", code, errOut)
	}
}

func TestPeersAnswerHelpRequests(t *testing.T) {
	// Two agents of one role with the same expertise; whichever claims the
	// urgent task asks for help, and the other one answers.
	c := startCluster(t, "--no-agent")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dirs := map[string]string{}
	nodes := map[string]*node{}
	for _, id := range []string{"b", "c"} {
		dirs[id] = t.TempDir()
		nodes[id] = c.start([]string{"--temporal", c.temporal, "--agent-id", id, "--board", c.opsURL,
			"--data-dir", dirs[id], "--ops-addr", "127.0.0.1:" + itoa(freePort(t)), "--log-format", "json",
			"--mdns=false", "--availability-interval", "1s", "--expertise", "go", "--help-window", "5s"})
	}
	// Both agents are in the dev node's registry, so the mesh is there.
	for {
		out, _, _ := c.starterCmd(ctx, "peers", "--worker", c.opsURL, "--json")
		if strings.Count(out, `"agent_id"`) >= 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("agents never joined: %s", out)
		}
		waitTick()
	}
	s, code := c.submit(ctx, "--title", "urgent", "--priority", "9", "--expertise", "go", "--body", "```sh\necho urgent\n```", "--wait")
	if code != 0 || s.Status != "completed" {
		t.Fatalf("exit %d, %+v", code, s)
	}
	out, errOut, code := c.starterCmd(ctx, "status", s.TaskKey, "--json")
	var st struct {
		AgentID string `json:"agent_id"`
		Helpers []struct {
			AgentID string `json:"agent_id"`
			Role    string `json:"role"`
		} `json:"helpers"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: exit %d: %s %s", code, out, errOut)
	}
	other := map[string]string{"b": "c", "c": "b"}[st.AgentID]
	if len(st.Helpers) != 1 || st.Helpers[0].AgentID != other || st.Helpers[0].Role != "developer" {
		t.Fatalf("agent %s, helpers %+v, want %s", st.AgentID, st.Helpers, other)
	}
	c.recordHistory(ctx, s.WorkflowID, "collaboration")

	// The claimer seeded the task's HMMM room at claim time and reflected
	// the offer into it; the helper joined the room when it offered and
	// heard the reflection.
	issue := issueOf(t, s.TaskKey)
	mine := roomMessages(t, nodes[st.AgentID].opsURL, issue)
	if len(mine) < 2 || mine[0].Message.Kind != "seed" || !mine[0].Own || mine[1].Message.Kind != "offer" || !strings.Contains(mine[1].Message.Text, other) {
		t.Fatalf("claimer's room = %+v, want the seed then the offer of %s", mine, other)
	}
	for {
		theirs := roomMessages(t, nodes[other].opsURL, issue)
		if slices.ContainsFunc(theirs, func(m roomMessage) bool {
			return m.Message.Kind == "offer" && !m.Own && m.Message.AgentID == st.AgentID && strings.Contains(m.Message.Text, other)
		}) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("helper's room = %+v, want the claimer's reflection of its offer", theirs)
		}
		waitTick()
	}

	// Each agent's audit log holds the other's arrival and capabilities.
	for id, dir := range dirs {
		out, errOut, code := c.starterCmd(ctx, "audit", "query", "--data-dir", dir, "--json")
		if code != 0 || !strings.Contains(out, `"peer_joined"`) || !strings.Contains(out, `"capability_broadcast"`) ||
			!strings.Contains(out, `"agent_id": "`+other+`"`) && id == st.AgentID {
			t.Fatalf("audit of %s: exit %d: %s %s", id, code, out, errOut)
		}
	}

	// When the helper stops, the claimer records that it left (after
	// three silent broadcast intervals).
	nodes[other].stop()
	for {
		out, _, _ := c.starterCmd(ctx, "audit", "query", "--data-dir", dirs[st.AgentID], "--type", "peer_left", "--json")
		if strings.Contains(out, `"peer_left"`) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no peer_left in %s's audit log after %s stopped", st.AgentID, other)
		}
		waitTick()
	}
}
