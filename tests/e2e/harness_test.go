//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"google.golang.org/protobuf/encoding/protojson"

	historypb "go.temporal.io/api/history/v1"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds worker and starter once per test binary.
func binaries(t *testing.T) (worker, starter string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "chorus-e2e-bin-")
		if buildErr != nil {
			return
		}
		for _, cmd := range []string{"worker", "starter"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "chorus/"+cmd).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "worker"), filepath.Join(binDir, "starter")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// node is one running worker process.
type node struct {
	t       *testing.T
	cmd     *exec.Cmd
	args    []string
	log     *bytes.Buffer
	opsURL  string
	exited  chan struct{}
	logPath string
}

// cluster is a dev worker and the addresses to reach it.
type cluster struct {
	t        *testing.T
	dataDir  string
	temporal string
	uiURL    string
	opsURL   string
	starter  string
	worker   string
	dev      *node
}

// devArgs are the worker flags of a dev node on free ports.
func startCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	w, s := binaries(t)
	c := &cluster{t: t, dataDir: t.TempDir(), starter: s, worker: w}
	tp, up, op := freePort(t), freePort(t), freePort(t)
	c.temporal = fmt.Sprintf("127.0.0.1:%d", tp)
	c.uiURL = fmt.Sprintf("http://127.0.0.1:%d", up)
	c.opsURL = fmt.Sprintf("http://127.0.0.1:%d", op)
	args := append([]string{"--dev", "--data-dir", c.dataDir,
		"--temporal-port", fmt.Sprint(tp), "--ui-port", fmt.Sprint(up), "--ops-addr", fmt.Sprintf("127.0.0.1:%d", op),
		"--agent-id", "a-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), "--heartbeat-timeout", "5s", "--sweep-interval", "1s", "--log-format", "json",
		// Tests never multicast from the root namespace; workers find
		// each other through the board's worker instead.
		"--mdns=false", "--availability-interval", "1s"}, extra...)
	c.dev = c.start(args)
	return c
}

// start runs a worker with args and waits until it is ready.
func (c *cluster) start(args []string) *node {
	c.t.Helper()
	n := c.launch(args)
	n.waitReady(3 * time.Minute)
	return n
}

// launch runs a worker with args. A worker joining the dev node gets a
// license of its own from the dev node's authority.
func (c *cluster) launch(args []string) *node {
	c.t.Helper()
	if !slices.Contains(args, "--dev") && !slices.Contains(args, "--license") {
		args = append(args, "--license", c.issueLicense())
	}
	n := &node{t: c.t, args: args, log: &bytes.Buffer{}, exited: make(chan struct{})}
	for i, a := range args {
		if a == "--ops-addr" {
			n.opsURL = "http://" + args[i+1]
		}
	}
	n.cmd = exec.Command(c.worker, args...)
	n.cmd.Stdout = &syncWriter{b: n.log}
	n.cmd.Stderr = n.cmd.Stdout
	if err := n.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.exited) }()
	c.t.Cleanup(func() {
		n.stop()
		if c.t.Failed() {
			c.t.Logf("worker %v log:\n%s", args, n.output())
		}
	})
	return n
}

// issueLicense issues a one-seat license for cluster "dev" from the dev
// node's authority (on its ops port), as an operator would.
func (c *cluster) issueLicense() string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, errOut, code := c.starterCmd(ctx, "license", "issue", "--cluster", "dev", "--license-server", c.opsURL+"/license",
		"--admin-token-file", filepath.Join(c.dataDir, "license", "admin.token"))
	if code != 0 {
		c.t.Fatalf("license issue: exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

func (n *node) output() string {
	return n.cmd.Stdout.(*syncWriter).String()
}

func (n *node) waitReady(timeout time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			n.t.Fatalf("worker exited before it was ready:\n%s", n.output())
		default:
		}
		resp, err := http.Get(n.opsURL + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		waitTick()
	}
	n.t.Fatalf("worker not ready after %s:\n%s", timeout, n.output())
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
	}
}

// kill sends SIGKILL: no cleanup at all.
func (n *node) kill() {
	n.cmd.Process.Kill()
	<-n.exited
}

// waitTick paces polling loops that wait on a condition with a deadline.
func waitTick() { <-time.After(200 * time.Millisecond) }

// starter runs the starter CLI against the cluster.
func (c *cluster) starterCmd(ctx context.Context, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.CommandContext(ctx, c.starter, append(args, "--temporal", c.temporal, "--board", c.opsURL)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("starter %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// submitOutput mirrors starter submit --json.
type submitOutput struct {
	TaskKey    string `json:"task_key"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Status     string `json:"status"`
	Created    bool   `json:"created"`
	AgentID    string `json:"agent_id"`
	Error      string `json:"error"`
	Result     *struct {
		Success          bool     `json:"success"`
		Message          string   `json:"message"`
		ExecutionType    string   `json:"execution_type"`
		DurationMS       int64    `json:"duration_ms"`
		CommandsExecuted []string `json:"commands_executed"`
		FilesGenerated   []string `json:"files_generated"`
		ExitCode         int      `json:"exit_code"`
		OutputTail       string   `json:"output_tail"`
		OutputRef        string   `json:"output_ref"`
	} `json:"result"`
}

func (c *cluster) submit(ctx context.Context, args ...string) (submitOutput, int) {
	c.t.Helper()
	out, errOut, code := c.starterCmd(ctx, append([]string{"submit", "--json"}, args...)...)
	var s submitOutput
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		c.t.Fatalf("submit output is not JSON (%v): %q stderr %q", err, out, errOut)
	}
	return s, code
}

// statusOutput mirrors the parts of starter status --json the tests read.
type statusOutput struct {
	TaskKey        string `json:"task_key"`
	State          string `json:"state"`
	Status         string `json:"status"`
	WorkflowStatus string `json:"workflow_status"`
	AgentID        string `json:"agent_id"`
	Assignee       string `json:"assignee"`
	Fence          int64  `json:"fence"`
	Placement      int    `json:"placement"`
	Scores         []struct {
		AgentID string  `json:"agent_id"`
		Score   float64 `json:"score"`
	} `json:"scores"`
	Events []struct {
		Kind string `json:"kind"`
	} `json:"events"`
}

func (c *cluster) status(ctx context.Context, key string) statusOutput {
	c.t.Helper()
	out, errOut, code := c.starterCmd(ctx, "status", key, "--json")
	if code != 0 {
		c.t.Fatalf("status %s: exit %d: %s", key, code, errOut)
	}
	var s statusOutput
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		c.t.Fatalf("status output: %v: %q", err, out)
	}
	return s
}

// waitStatus polls until cond holds.
func (c *cluster) waitStatus(ctx context.Context, key string, what string, cond func(statusOutput) bool) statusOutput {
	c.t.Helper()
	for {
		s := c.status(ctx, key)
		if cond(s) {
			return s
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("%s: gave up waiting for %s; last status %+v", key, what, s)
		default:
		}
		waitTick()
	}
}

func (c *cluster) client() client.Client {
	c.t.Helper()
	cl, err := client.Dial(client.Options{HostPort: c.temporal, Logger: log.NewStructuredLogger(discard())})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// recordHistory writes the workflow's history to workflows/testdata when
// CHORUS_RECORD_HISTORY is set.
func (c *cluster) recordHistory(ctx context.Context, workflowID, name string) {
	if os.Getenv("CHORUS_RECORD_HISTORY") == "" {
		return
	}
	c.t.Helper()
	cl := c.client()
	it := cl.GetWorkflowHistory(ctx, workflowID, "", false, 0)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			c.t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		c.t.Fatal(err)
	}
	path := filepath.Join("..", "..", "workflows", "testdata", name+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("recorded %s", path)
}

type syncWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}
