package board_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"chorus"
	"chorus/provider/board"
)

// step is one call in a lifecycle scenario and the error it must return
// (nil, or a sentinel checked with errors.Is).
type step struct {
	desc string
	do   func(ctx context.Context, p api, k chorus.TaskKey) error
	want error
}

func (s step) wants(err error) step { s.want = err; return s }

// claim claims as agent and checks the fence returned when it succeeds.
func claim(agent string, wantFence int64) step {
	return step{desc: fmt.Sprintf("claim by %q", agent), do: func(ctx context.Context, p api, k chorus.TaskKey) error {
		fence, err := p.Claim(ctx, k, agent)
		if err == nil && fence != wantFence {
			return fmt.Errorf("claim returned fence %d, want %d", fence, wantFence)
		}
		return err
	}}
}

func start(fence int64) step {
	return step{desc: fmt.Sprintf("start with fence %d", fence), do: func(ctx context.Context, p api, k chorus.TaskKey) error {
		return p.Start(ctx, k, fence)
	}}
}

func complete(fence int64, message string) step {
	return step{desc: fmt.Sprintf("complete with fence %d", fence), do: func(ctx context.Context, p api, k chorus.TaskKey) error {
		return p.Complete(ctx, k, fence, chorus.Result{Success: true, Message: message, ExecutionType: chorus.ExecMock})
	}}
}

func fail(fence int64, reason string) step {
	return step{desc: fmt.Sprintf("fail with fence %d", fence), do: func(ctx context.Context, p api, k chorus.TaskKey) error {
		return p.Fail(ctx, k, fence, reason)
	}}
}

func cancel(reason string) step {
	return step{desc: "cancel", do: func(ctx context.Context, p api, k chorus.TaskKey) error {
		return p.Cancel(ctx, k, reason)
	}}
}

func release(fence int64) step {
	return step{desc: fmt.Sprintf("release with fence %d", fence), do: func(ctx context.Context, p api, k chorus.TaskKey) error {
		return p.Release(ctx, k, fence)
	}}
}

func TestLifecycle(t *testing.T) {
	tests := []struct {
		name            string
		steps           []step
		wantState       chorus.TaskState
		wantAssignee    string
		wantFence       int64
		wantError       string
		wantResult      string // Result.Message; "" means no result
		wantCompletions int
		wantEvents      []string // kind/agent/fence
	}{
		{
			name:            "claim start complete, repeats are no-ops",
			steps:           []step{claim("a", 1), start(1), start(1), complete(1, "first"), complete(1, "second")},
			wantState:       chorus.StateCompleted,
			wantAssignee:    "a",
			wantFence:       1,
			wantResult:      "first",
			wantCompletions: 1,
			wantEvents:      []string{"created//0", "claimed/a/1", "started/a/1", "completed/a/1"},
		},
		{
			name:            "complete straight from claimed",
			steps:           []step{claim("a", 1), complete(1, "done")},
			wantState:       chorus.StateCompleted,
			wantAssignee:    "a",
			wantFence:       1,
			wantResult:      "done",
			wantCompletions: 1,
			wantEvents:      []string{"created//0", "claimed/a/1", "completed/a/1"},
		},
		{
			name:         "re-claim by the holder keeps the fence",
			steps:        []step{claim("a", 1), claim("a", 1), start(1), claim("a", 1)},
			wantState:    chorus.StateWorking,
			wantAssignee: "a",
			wantFence:    1,
			wantEvents:   []string{"created//0", "claimed/a/1", "started/a/1"},
		},
		{
			name: "another agent cannot claim a held task",
			steps: []step{
				claim("a", 1), claim("b", 0).wants(chorus.ErrAlreadyClaimed),
				start(1), claim("b", 0).wants(chorus.ErrAlreadyClaimed),
			},
			wantState:    chorus.StateWorking,
			wantAssignee: "a",
			wantFence:    1,
			wantEvents:   []string{"created//0", "claimed/a/1", "started/a/1"},
		},
		{
			name: "release fences the old holder out",
			steps: []step{
				claim("a", 1), start(1), release(1), release(1),
				start(1).wants(chorus.ErrFenced),
				claim("b", 2),
				start(1).wants(chorus.ErrFenced),
				complete(1, "stale").wants(chorus.ErrFenced),
				fail(1, "stale").wants(chorus.ErrFenced),
				release(1).wants(chorus.ErrFenced),
				complete(2, "fresh"),
				complete(1, "stale").wants(chorus.ErrFenced),
			},
			wantState:       chorus.StateCompleted,
			wantAssignee:    "b",
			wantFence:       2,
			wantResult:      "fresh",
			wantCompletions: 1,
			wantEvents:      []string{"created//0", "claimed/a/1", "started/a/1", "released/a/1", "claimed/b/2", "completed/b/2"},
		},
		{
			name: "fence that was never issued",
			steps: []step{
				claim("a", 1),
				start(2).wants(chorus.ErrFenced),
				complete(7, "x").wants(chorus.ErrFenced),
				release(2).wants(chorus.ErrFenced),
			},
			wantState:    chorus.StateClaimed,
			wantAssignee: "a",
			wantFence:    1,
			wantEvents:   []string{"created//0", "claimed/a/1"},
		},
		{
			name: "fences must be positive",
			steps: []step{
				claim("a", 1),
				start(0).wants(chorus.ErrInvalid),
				complete(0, "x").wants(chorus.ErrInvalid),
				release(0).wants(chorus.ErrInvalid),
				fail(-1, "x").wants(chorus.ErrInvalid),
			},
			wantState:    chorus.StateClaimed,
			wantAssignee: "a",
			wantFence:    1,
			wantEvents:   []string{"created//0", "claimed/a/1"},
		},
		{
			name: "holder fails; failed is final",
			steps: []step{
				claim("a", 1), start(1), fail(1, "boom"), fail(1, "again"),
				complete(1, "x").wants(chorus.ErrInvalid),
				start(1).wants(chorus.ErrInvalid),
				fail(0, "operator"),
				cancel("x").wants(chorus.ErrInvalid),
				claim("a", 0).wants(chorus.ErrInvalid),
			},
			wantState:    chorus.StateFailed,
			wantAssignee: "a",
			wantFence:    1,
			wantError:    "boom",
			wantEvents:   []string{"created//0", "claimed/a/1", "started/a/1", "failed/a/1"},
		},
		{
			name: "operator fail fences the holder out",
			steps: []step{
				claim("a", 1), start(1), fail(0, "stuck"),
				complete(1, "late").wants(chorus.ErrFenced),
				fail(1, "late").wants(chorus.ErrFenced),
				fail(0, "again"),
			},
			wantState:    chorus.StateFailed,
			wantAssignee: "a",
			wantFence:    2,
			wantError:    "stuck",
			wantEvents:   []string{"created//0", "claimed/a/1", "started/a/1", "failed//2"},
		},
		{
			name:       "operator fails an open task",
			steps:      []step{fail(0, "bad task"), claim("a", 0).wants(chorus.ErrInvalid)},
			wantState:  chorus.StateFailed,
			wantFence:  1,
			wantError:  "bad task",
			wantEvents: []string{"created//0", "failed//1"},
		},
		{
			name: "cancel fences the holder out",
			steps: []step{
				claim("a", 1), cancel("duplicate"), cancel("again"),
				complete(1, "late").wants(chorus.ErrFenced),
				claim("b", 0).wants(chorus.ErrInvalid),
				fail(0, "x").wants(chorus.ErrInvalid),
			},
			wantState:    chorus.StateCancelled,
			wantAssignee: "a",
			wantFence:    2,
			wantError:    "duplicate",
			wantEvents:   []string{"created//0", "claimed/a/1", "cancelled//2"},
		},
		{
			name: "completed is final",
			steps: []step{
				claim("a", 1), complete(1, "done"),
				cancel("x").wants(chorus.ErrInvalid),
				fail(0, "x").wants(chorus.ErrInvalid),
				fail(1, "x").wants(chorus.ErrInvalid),
				release(1).wants(chorus.ErrInvalid),
				start(1).wants(chorus.ErrInvalid),
				claim("a", 0).wants(chorus.ErrInvalid),
				claim("b", 0).wants(chorus.ErrInvalid),
			},
			wantState:       chorus.StateCompleted,
			wantAssignee:    "a",
			wantFence:       1,
			wantResult:      "done",
			wantCompletions: 1,
			wantEvents:      []string{"created//0", "claimed/a/1", "completed/a/1"},
		},
		{
			name:       "claim needs an agent and fail a reason",
			steps:      []step{claim(" ", 0).wants(chorus.ErrInvalid), claim("a", 1), fail(1, "").wants(chorus.ErrInvalid), fail(0, "").wants(chorus.ErrInvalid)},
			wantState:  chorus.StateClaimed,
			wantFence:  1,
			wantEvents: []string{"created//0", "claimed/a/1"},
			// The claim by "a" holds.
			wantAssignee: "a",
		},
	}
	backends(t, func(t *testing.T, p api) {
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				task := mustAdd(t, p, chorus.Task{Title: tt.name})
				key := task.Key()
				for i, s := range tt.steps {
					err := s.do(ctx, p, key)
					if !errors.Is(err, s.want) { // errors.Is(err, nil) means err == nil
						t.Fatalf("step %d (%s): err = %v, want %v", i, s.desc, err, s.want)
					}
				}
				got, err := p.Get(ctx, key)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if got.State != tt.wantState || got.Assignee != tt.wantAssignee || got.Fence != tt.wantFence || got.Error != tt.wantError {
					t.Errorf("task is state=%s assignee=%q fence=%d error=%q, want state=%s assignee=%q fence=%d error=%q",
						got.State, got.Assignee, got.Fence, got.Error, tt.wantState, tt.wantAssignee, tt.wantFence, tt.wantError)
				}
				switch {
				case tt.wantResult == "" && got.Result != nil:
					t.Errorf("result = %+v, want none", got.Result)
				case tt.wantResult != "" && (got.Result == nil || got.Result.Message != tt.wantResult):
					t.Errorf("result = %+v, want message %q", got.Result, tt.wantResult)
				}
				n, err := p.Completions(ctx, key)
				if err != nil {
					t.Fatalf("Completions: %v", err)
				}
				if n != tt.wantCompletions {
					t.Errorf("Completions = %d, want %d", n, tt.wantCompletions)
				}
				events, err := p.Events(ctx, key)
				if err != nil {
					t.Fatalf("Events: %v", err)
				}
				var kinds []string
				for _, e := range events {
					kinds = append(kinds, fmt.Sprintf("%s/%s/%d", e.Kind, e.Agent, e.Fence))
					if e.At.Before(task.CreatedAt) {
						t.Errorf("event %s at %v is before the task was created (%v)", e.Kind, e.At, task.CreatedAt)
					}
				}
				if !reflect.DeepEqual(kinds, tt.wantEvents) {
					t.Errorf("events = %q, want %q", kinds, tt.wantEvents)
				}
			})
		}
	})
}

func TestAlreadyClaimedNamesHolder(t *testing.T) {
	backends(t, func(t *testing.T, p api) {
		ctx := context.Background()
		key := mustAdd(t, p, chorus.Task{Title: "contested"}).Key()
		if _, err := p.Claim(ctx, key, "agent-holder"); err != nil {
			t.Fatalf("Claim: %v", err)
		}
		_, err := p.Claim(ctx, key, "agent-late")
		if !errors.Is(err, chorus.ErrAlreadyClaimed) {
			t.Fatalf("second Claim: err = %v, want ErrAlreadyClaimed", err)
		}
		if !strings.Contains(err.Error(), "agent-holder") {
			t.Errorf("error %q does not name the holder", err)
		}
	})
}

func TestOperationsOnMissingTask(t *testing.T) {
	backends(t, func(t *testing.T, p api) {
		ctx := context.Background()
		missing := chorus.TaskKey{Provider: board.ProviderName, Repository: "acme/web", Number: 3}
		ops := []struct {
			name string
			do   func() error
		}{
			{"get", func() error { _, err := p.Get(ctx, missing); return err }},
			{"claim", func() error { _, err := p.Claim(ctx, missing, "a"); return err }},
			{"start", func() error { return p.Start(ctx, missing, 1) }},
			{"complete", func() error { return p.Complete(ctx, missing, 1, chorus.Result{}) }},
			{"fail", func() error { return p.Fail(ctx, missing, 1, "x") }},
			{"operator fail", func() error { return p.Fail(ctx, missing, 0, "x") }},
			{"cancel", func() error { return p.Cancel(ctx, missing, "x") }},
			{"release", func() error { return p.Release(ctx, missing, 1) }},
			{"events", func() error { _, err := p.Events(ctx, missing); return err }},
			{"completions", func() error { _, err := p.Completions(ctx, missing); return err }},
		}
		for _, op := range ops {
			t.Run(op.name, func(t *testing.T) {
				if err := op.do(); !errors.Is(err, chorus.ErrNotFound) {
					t.Errorf("err = %v, want ErrNotFound", err)
				}
			})
		}
	})
}

// TestConcurrentClaim races many agents for one task through two Boards
// opened on the same file (as two processes would) and through HTTP
// clients of each: exactly one claim wins.
func TestConcurrentClaim(t *testing.T) {
	ctx := context.Background()
	b1, path := openBoard(t)
	b2, err := board.Open(path)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	t.Cleanup(func() { b2.Close() })
	claimers := []api{b1, b2, serve(t, b1), serve(t, b2)}

	const rounds = 5
	const agentsPerClaimer = 4
	for round := range rounds {
		key := mustAdd(t, b1, chorus.Task{Title: fmt.Sprintf("race %d", round)}).Key()
		type outcome struct {
			agent string
			fence int64
			err   error
		}
		var (
			wg       sync.WaitGroup
			ready    = make(chan struct{})
			outcomes = make(chan outcome, len(claimers)*agentsPerClaimer)
		)
		for i, c := range claimers {
			for j := range agentsPerClaimer {
				agent := fmt.Sprintf("agent-%d-%d", i, j)
				wg.Go(func() {
					<-ready
					fence, err := c.Claim(ctx, key, agent)
					outcomes <- outcome{agent, fence, err}
				})
			}
		}
		close(ready)
		wg.Wait()
		close(outcomes)

		var winners []outcome
		for o := range outcomes {
			switch {
			case o.err == nil:
				winners = append(winners, o)
			case !errors.Is(o.err, chorus.ErrAlreadyClaimed):
				t.Errorf("round %d: %s: err = %v, want nil or ErrAlreadyClaimed", round, o.agent, o.err)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d claims won (%+v), want exactly 1", round, len(winners), winners)
		}
		w := winners[0]
		if w.fence != 1 {
			t.Errorf("round %d: winner's fence = %d, want 1", round, w.fence)
		}
		// Both handles agree on the holder.
		for i, b := range []*board.Board{b1, b2} {
			got, err := b.Get(ctx, key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.State != chorus.StateClaimed || got.Assignee != w.agent || got.Fence != 1 {
				t.Errorf("round %d: board %d sees state=%s assignee=%q fence=%d, want claimed by %q with fence 1",
					round, i+1, got.State, got.Assignee, got.Fence, w.agent)
			}
		}
		events, err := b2.Events(ctx, key)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		if len(events) != 2 || events[1].Kind != board.EventClaimed || events[1].Agent != w.agent {
			t.Errorf("round %d: events = %+v, want created then one claim by %q", round, events, w.agent)
		}
	}
}

// TestConcurrentCompleteOnce completes one task from many goroutines with
// the holder's fence through both handles: every call succeeds (completion
// is idempotent) and the task is completed exactly once.
func TestConcurrentCompleteOnce(t *testing.T) {
	ctx := context.Background()
	b1, path := openBoard(t)
	b2, err := board.Open(path)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	t.Cleanup(func() { b2.Close() })
	key := mustAdd(t, b1, chorus.Task{Title: "finish me"}).Key()
	fence, err := b1.Claim(ctx, key, "agent-a")
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		b := []*board.Board{b1, b2}[i%2]
		wg.Go(func() {
			errs <- b.Complete(ctx, key, fence, chorus.Result{Success: true, Message: fmt.Sprint(i)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Complete: %v", err)
		}
	}
	n, err := b2.Completions(ctx, key)
	if err != nil {
		t.Fatalf("Completions: %v", err)
	}
	if n != 1 {
		t.Errorf("Completions = %d, want 1", n)
	}
}
