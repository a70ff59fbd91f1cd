//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"chorus"
)

// waitPeers waits until the worker at opsURL lists at least the given
// agents in its registry.
func (c *cluster) waitPeers(ctx context.Context, opsURL string, agents ...string) {
	c.t.Helper()
	for {
		out, _, _ := c.starterCmd(ctx, "peers", "--worker", opsURL, "--json")
		all := true
		for _, a := range agents {
			all = all && strings.Contains(out, `"agent_id":"`+a+`"`) || all && strings.Contains(out, `"agent_id": "`+a+`"`)
		}
		if all {
			return
		}
		if ctx.Err() != nil {
			c.t.Fatalf("%s never listed %v: %s", opsURL, agents, out)
		}
		waitTick()
	}
}

// TestDeadAgentTaskMovesToAnother runs three agents: the dev node (a
// developer) and two testers. A task for a tester goes to the best-scored
// tester; that worker is killed mid-execution, and the task is placed on
// the other tester under a new fencing token and completes exactly once.
func TestDeadAgentTaskMovesToAnother(t *testing.T) {
	c := startCluster(t, "--role", "developer")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	nodes := map[string]*node{}
	ops := map[string]string{}
	for _, id := range []string{"qa1", "qa2"} {
		port := freePort(t)
		ops[id] = "http://127.0.0.1:" + strconv.Itoa(port)
		nodes[id] = c.start([]string{"--temporal", c.temporal, "--agent-id", id, "--board", c.opsURL, "--role", "tester",
			"--data-dir", t.TempDir(), "--ops-addr", "127.0.0.1:" + strconv.Itoa(port), "--log-format", "json",
			"--mdns=false", "--availability-interval", "1s", "--heartbeat-timeout", "5s"})
	}
	// Whichever worker runs the workflow task selects from its registry:
	// every worker must know both testers.
	c.waitPeers(ctx, c.opsURL, "qa1", "qa2")
	c.waitPeers(ctx, ops["qa1"], "qa2")
	c.waitPeers(ctx, ops["qa2"], "qa1")

	s, code := c.submit(ctx, "--title", "needs a tester", "--role", "tester",
		"--body", "```sh\necho start\nsleep 12\necho done > out.txt\n```")
	if code != 0 {
		t.Fatalf("submit exit %d %+v", code, s)
	}
	label := "chorus.task=" + s.TaskKey
	for len(containers(t, label)) == 0 {
		if ctx.Err() != nil {
			t.Fatal("no sandbox container appeared")
		}
		waitTick()
	}
	first := c.status(ctx, s.TaskKey)
	victim := first.AgentID
	survivor := map[string]string{"qa1": "qa2", "qa2": "qa1"}[victim]
	if survivor == "" {
		t.Fatalf("the task went to %q, want a tester; status %+v", victim, first)
	}
	nodes[victim].kill()
	// The killed worker never comes back to reap its sandbox container,
	// so the test removes it, as its restart would.
	t.Cleanup(func() {
		if ids := containers(t, "chorus.agent="+victim); len(ids) > 0 {
			if out, err := exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).CombinedOutput(); err != nil {
				t.Errorf("docker rm: %v: %s", err, out)
			}
		}
	})

	st := c.waitStatus(ctx, s.TaskKey, "completed", func(st statusOutput) bool { return chorus.TaskState(st.State).Terminal() })
	if st.State != "completed" || st.AgentID != survivor || st.Assignee != survivor {
		t.Fatalf("after killing %s: %+v", victim, st)
	}
	if st.Fence <= first.Fence || st.Placement != 2 {
		t.Fatalf("fence %d after %d, placement %d: want a new claim on a second placement", st.Fence, first.Fence, st.Placement)
	}
	if n := completions(st); n != 1 {
		t.Fatalf("%d completions on the board, want exactly 1", n)
	}
	if n := c.runs(ctx, s.TaskKey); n != 1 {
		t.Fatalf("%d workflow runs, want 1", n)
	}
	// The dev node (a developer) scored below both testers.
	for _, sc := range st.Scores {
		if sc.AgentID == victim {
			t.Fatalf("the dead agent was a candidate of the second selection: %+v", st.Scores)
		}
	}
	c.recordHistory(ctx, s.WorkflowID, "replaced_after_death")
}

// roomMessage is one message of GET /api/v1/rooms/{issue}.
type roomMessage struct {
	From    string `json:"from"`
	Own     bool   `json:"own"`
	Message struct {
		Kind    string `json:"kind"`
		AgentID string `json:"agent_id"`
		Text    string `json:"text"`
	} `json:"message"`
}

// roomMessages reads a worker's copy of an issue room (none when the
// worker has not joined it).
func roomMessages(t *testing.T, opsURL string, issue int) []roomMessage {
	t.Helper()
	var reply struct {
		Messages []roomMessage `json:"messages"`
	}
	if code := getJSON(t, opsURL+"/api/v1/rooms/"+strconv.Itoa(issue), &reply); code != 200 && code != 404 {
		t.Fatalf("room %d on %s: HTTP %d", issue, opsURL, code)
	}
	return reply.Messages
}

func issueOf(t *testing.T, key string) int {
	t.Helper()
	k, err := chorus.ParseTaskKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return k.Number
}
