package devserver_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"chorus/devserver"
)

const taskQueue = "devserver-test"

type greetInput struct{ Name string }

type greetOutput struct{ Greeting string }

// greeter holds the test activity.
type greeter struct{}

func (*greeter) Greet(_ context.Context, in greetInput) (greetOutput, error) {
	return greetOutput{Greeting: "hello, " + in.Name}, nil
}

func greetWorkflow(ctx workflow.Context, in greetInput) (greetOutput, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var g *greeter
	var out greetOutput
	err := workflow.ExecuteActivity(ctx, g.Greet, in).Get(ctx, &out)
	return out, err
}

func TestRunWorkflowAndRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()

	logs := &recordingHandler{}
	cfg := testConfig(t)
	cfg.Logger = slog.New(logs)
	t.Cleanup(func() {
		if t.Failed() {
			for _, msg := range logs.messages() {
				t.Logf("server log: %s", msg)
			}
		}
	})

	// A new data dir, stopped at once: the services are still starting their
	// system workers, which is when they complain the most while stopping.
	start := time.Now()
	s, err := devserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("first start took %v", time.Since(start))
	t.Cleanup(func() { _ = s.Stop() }) // Stop is idempotent; this covers early failures
	stopQuietly(t, s, logs)
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	s, err = devserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start on the new file: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.FrontendPort)); s.FrontendAddr() != want {
		t.Errorf("FrontendAddr() = %q, want %q", s.FrontendAddr(), want)
	}
	wantUI := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.UIPort))
	if !uiBuiltIn {
		wantUI = ""
	}
	if s.UIURL() != wantUI {
		t.Errorf("UIURL() = %q, want %q", s.UIURL(), wantUI)
	}

	c := dial(t, s.FrontendAddr())
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(greetWorkflow)
	w.RegisterActivity(&greeter{})
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)

	wfID := "greet-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wfID, TaskQueue: taskQueue}, greetWorkflow, greetInput{Name: "chorus"})
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	var out greetOutput
	if err := run.Get(ctx, &out); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if out.Greeting != "hello, chorus" {
		t.Errorf("workflow returned %q, want %q", out.Greeting, "hello, chorus")
	}

	// The UI's HTTP API lists the workflow (visibility may lag a little).
	if uiBuiltIn {
		body := waitForBody(ctx, t, s.UIURL()+"/api/v1/namespaces/default/workflows", wfID)
		if !strings.Contains(body, wfID) {
			t.Fatalf("UI workflow list never contained %s; last body: %.500s", wfID, body)
		}
	}

	w.Stop()
	c.Close()
	stopQuietly(t, s, logs)
	for _, msg := range logs.messages() {
		if strings.Contains(msg, "HTTP API port") {
			t.Errorf("logged %q; the HTTP API warning should be dropped", msg)
		}
	}

	// Same directory and ports: the completed run is still there.
	start = time.Now()
	s2, err := devserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("restart took %v", time.Since(start))
	t.Cleanup(func() { _ = s2.Stop() })
	c2 := dial(t, s2.FrontendAddr())
	desc, err := c2.DescribeWorkflowExecution(ctx, wfID, run.GetRunID())
	c2.Close()
	if err != nil {
		t.Fatalf("DescribeWorkflowExecution after restart: %v", err)
	}
	if got := desc.GetWorkflowExecutionInfo().GetStatus(); got != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("status after restart = %v, want COMPLETED", got)
	}
	stopQuietly(t, s2, logs)
}

// stopQuietly stops s and checks that the server logged nothing meanwhile.
func stopQuietly(t *testing.T, s *devserver.Server, logs *recordingHandler) {
	t.Helper()
	before := len(logs.messages())
	start := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("stop took %v", time.Since(start))
	if during := logs.messages()[before:]; len(during) != 0 {
		t.Errorf("Stop logged %d records, want none; first: %q", len(during), during[0])
	}
}

func TestStartPortInUse(t *testing.T) {
	fields := []string{"frontend"}
	if uiBuiltIn {
		fields = append(fields, "ui")
	}
	for _, field := range fields {
		t.Run(field, func(t *testing.T) {
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			port := busy.Addr().(*net.TCPAddr).Port

			cfg := testConfig(t)
			if field == "frontend" {
				cfg.FrontendPort = port
			} else {
				cfg.UIPort = port
			}
			s, err := devserver.Start(t.Context(), cfg)
			if err == nil {
				_ = s.Stop()
				t.Fatalf("Start with busy %s port %d succeeded", field, port)
			}
			msg := err.Error()
			if !strings.Contains(msg, field+" port "+strconv.Itoa(port)) || !strings.Contains(msg, "in use") {
				t.Errorf("error %q does not name the busy %s port %d", msg, field, port)
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("errors.Is(err, EADDRINUSE) = false for %v", err)
			}
			if _, err := os.Stat(filepath.Join(cfg.DataDir, "temporal.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("database exists after a refused start (stat error %v)", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	valid := devserver.DefaultConfig()
	valid.DataDir = "/tmp/chorus"
	valid.Logger = slog.New(slog.DiscardHandler)

	tests := []struct {
		name    string
		change  func(*devserver.Config)
		wantErr string // substring; "" means valid
	}{
		{"defaults", func(*devserver.Config) {}, ""},
		{"ui disabled", func(c *devserver.Config) { c.UIPort = devserver.UIDisabled }, ""},
		{"wildcard host", func(c *devserver.Config) { c.Host = "0.0.0.0" }, ""},
		{"extra namespaces", func(c *devserver.Config) { c.ExtraNamespaces = []string{"a", "b"} }, ""},
		{"no data dir", func(c *devserver.Config) { c.DataDir = "" }, "devserver: data_dir: required"},
		{"data dir with query", func(c *devserver.Config) { c.DataDir = "/tmp/x?mode=memory" }, "data_dir"},
		{"host name", func(c *devserver.Config) { c.Host = "localhost" }, "devserver: host:"},
		{"frontend port too big", func(c *devserver.Config) { c.FrontendPort = 70000 }, "devserver: frontend_port: 70000 out of range"},
		{"frontend port zero", func(c *devserver.Config) { c.FrontendPort = 0 }, "devserver: frontend_port: 0 out of range"},
		{"ui port zero", func(c *devserver.Config) { c.UIPort = 0 }, "devserver: ui_port: 0 out of range"},
		{"ui port -2", func(c *devserver.Config) { c.UIPort = -2 }, "devserver: ui_port: -2 out of range"},
		{"ui port equals frontend", func(c *devserver.Config) { c.UIPort = c.FrontendPort }, "devserver: ui_port: 7233"},
		{"no namespace", func(c *devserver.Config) { c.Namespace = "" }, "devserver: namespace: required"},
		{"empty extra namespace", func(c *devserver.Config) { c.ExtraNamespaces = []string{""} }, "extra_namespaces[0]"},
		{"duplicate namespace", func(c *devserver.Config) { c.ExtraNamespaces = []string{"default"} }, "extra_namespaces[0]"},
		{"no logger", func(c *devserver.Config) { c.Logger = nil }, "devserver: logger: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}

	t.Run("invalid config is refused by Start", func(t *testing.T) {
		cfg := valid
		cfg.FrontendPort = 70000
		if _, err := devserver.Start(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "frontend_port") {
			t.Errorf("Start() error = %v, want the frontend_port error", err)
		}
	})
}

// testConfig is a valid Config on free loopback ports in a fresh directory.
func testConfig(t *testing.T) devserver.Config {
	t.Helper()
	ports := freePorts(t, 2)
	cfg := devserver.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.FrontendPort = ports[0]
	cfg.UIPort = ports[1]
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// freePorts returns n distinct ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func dial(t *testing.T, hostPort string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  hostPort,
		Namespace: "default",
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", hostPort, err)
	}
	return c
}

// waitForBody polls url until the response body contains want or ctx ends,
// and returns the last body read.
func waitForBody(ctx context.Context, t *testing.T, url, want string) string {
	t.Helper()
	var body string
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = resp.Status + " " + string(b)
			if resp.StatusCode == http.StatusOK && strings.Contains(body, want) {
				return body
			}
		}
		select {
		case <-ctx.Done():
			return body
		case <-tick.C:
		}
	}
}

// recordingHandler keeps the level and message of every record.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

// WithAttrs and WithGroup drop the attributes: only levels and messages are checked.
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	msgs := make([]string, 0, len(h.records))
	for _, r := range h.records {
		msgs = append(msgs, r.Message)
	}
	return msgs
}
