package intake_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
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

func TestOrderTakesPriorityScoreAgeAndBlocking(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	mk := func(n, prio int, age time.Duration, deps ...string) chorus.Task {
		return chorus.Task{Provider: "board", Repository: "r", Number: n, Title: "t", Priority: prio, CreatedAt: t0.Add(-age), Dependencies: deps}
	}
	tasks := []chorus.Task{
		mk(1, 5, time.Hour),
		mk(2, 9, 0),
		mk(3, 5, 2*time.Hour),
		mk(4, 5, 2*time.Hour, "task/board/r/5"), // 4 waits for 5
		mk(5, 5, 2*time.Hour),
		mk(6, 5, 3*time.Hour), // oldest, but no agent is good at it
	}
	score := func(t chorus.Task) float64 {
		if t.Number == 6 {
			return 0.2
		}
		return 0.8
	}
	var got []int
	for _, t := range intake.Order(tasks, score) {
		got = append(got, t.Number)
	}
	// 2: highest priority; then among priority 5 by score (6 last), age
	// (3, 4, 5 before 1), and 5 before its peers of the same age because
	// 4 waits for it.
	if want := []int{2, 5, 3, 4, 1, 6}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
}
