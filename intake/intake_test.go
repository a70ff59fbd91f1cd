package intake_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"chorus"
	"chorus/devserver"
	"chorus/election"
	"chorus/intake"
)

// TestStartCarriesTheAdminTerm starts task workflows on a real (embedded)
// Temporal server, as an admin's intake does: the admin's term is in the
// workflow's memo, a second start is the same run, and once a newer term
// has been seen the deposed admin starts nothing.
func TestStartCarriesTheAdminTerm(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cfg := devserver.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.FrontendPort = freePort(t)
	cfg.UIPort = devserver.UIDisabled
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := devserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendAddr(), Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	fence := &election.Fence{}
	fence.Observe(7)
	s := &intake.Starter{Client: c, TaskQueue: "intake-test", Term: 7, Fence: fence}
	task := chorus.Task{Provider: "board", Repository: "demo", Number: 1, Title: "t"}
	run, err := s.Start(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	field, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[intake.MemoAdminTerm]
	if !ok {
		t.Fatalf("memo %v has no %s", desc.GetWorkflowExecutionInfo().GetMemo(), intake.MemoAdminTerm)
	}
	if got := string(field.GetData()); got != "7" {
		t.Errorf("memo %s = %s, want 7", intake.MemoAdminTerm, got)
	}
	again, err := s.Start(ctx, task)
	if err != nil || again.GetRunID() != run.GetRunID() {
		t.Errorf("second start = %v, %v; want the same run %s", again, err, run.GetRunID())
	}

	// A newer admin was elected: the old one's start is refused.
	fence.Observe(8)
	task.Number = 2
	if _, err := s.Start(ctx, task); !errors.Is(err, election.ErrStaleTerm) {
		t.Fatalf("start under a stale term: %v", err)
	}
	if _, err := c.DescribeWorkflowExecution(ctx, task.Key().String(), ""); err == nil {
		t.Error("the deposed admin's workflow exists")
	}
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
