package providertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"chorus"
	"chorus/activities"
)

// Provider is what the harness drives: the task workflow's Tracker and the
// intake's open-task list.
type Provider interface {
	activities.Tracker
	ListOpen(ctx context.Context, limit int) ([]chorus.Task, error)
}

// Race describes one race.
type Race struct {
	// Open returns the provider worker i uses: the same value for all, or
	// one client (one connection) per worker, as separate agents have.
	Open func(worker int) Provider
	// Tasks are the race's tasks, all open when Run starts.
	Tasks []chorus.TaskKey
	// Completions reports, from the provider's own store, how many times
	// a task was completed (board events, result comments).
	Completions func(ctx context.Context, key chorus.TaskKey) (int, error)
	// Workers is how many agents race; at least 3 (default 4).
	Workers int
	// ReleaseEvery makes every n-th task (by index) be released once by
	// its first winner, so it is claimed again with a new fence; 0 means
	// 5, negative disables it.
	ReleaseEvery int
	// MinAttempts is the fewest claim attempts the race must make in
	// total for it to mean anything (default 200).
	MinAttempts int
	// Timeout bounds the race (default 2 minutes).
	Timeout time.Duration
}

// Report counts what happened.
type Report struct {
	Attempts int // claim calls
	Lost     int // claims refused with chorus.ErrAlreadyClaimed
	Finished int // claims refused because the task was already done
	Wins     int // successful claims
	Releases int // wins given back on purpose
}

// Run races the workers and fails t on any violation: two holders of one
// task at once, a fence handed out twice or not growing, a stale fence
// accepted after a release, a task completed zero or several times, or an
// open task left over.
func Run(t testing.TB, r Race) Report {
	t.Helper()
	if r.Workers == 0 {
		r.Workers = 4
	}
	if r.Workers < 3 {
		t.Fatalf("providertest: Workers = %d, the race needs at least 3", r.Workers)
	}
	if r.ReleaseEvery == 0 {
		r.ReleaseEvery = 5
	}
	if r.MinAttempts == 0 {
		r.MinAttempts = 200
	}
	if r.Timeout == 0 {
		r.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
	defer cancel()

	b := &book{tasks: map[chorus.TaskKey]*ledger{}}
	for i, k := range r.Tasks {
		b.tasks[k] = &ledger{release: r.ReleaseEvery > 0 && i%r.ReleaseEvery == 0}
	}
	var wg sync.WaitGroup
	errs := make([]error, r.Workers)
	start := &barrier{n: r.Workers}
	for w := range r.Workers {
		p := r.Open(w)
		wg.Go(func() {
			if errs[w] = b.work(ctx, p, fmt.Sprintf("agent-%d", w), start); errs[w] != nil {
				// The others would wait for this one at the barrier.
				cancel()
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", w, err)
		}
	}
	for _, v := range b.violations {
		t.Error(v)
	}

	// Every task done once, from the workers' view and the provider's.
	for _, k := range r.Tasks {
		l := b.tasks[k]
		if l.completed != 1 {
			t.Errorf("%s: completed %d times by the workers, want 1", k, l.completed)
		}
		n, err := r.Completions(ctx, k)
		if err != nil {
			t.Errorf("%s: completions: %v", k, err)
		} else if n != 1 {
			t.Errorf("%s: the provider recorded %d completions, want 1", k, n)
		}
		if l.release && l.releases != 1 {
			t.Errorf("%s: released %d times, want 1", k, l.releases)
		}
	}
	left, err := r.Open(0).ListOpen(ctx, 0)
	if err != nil {
		t.Errorf("final list: %v", err)
	}
	for _, task := range left {
		if _, ours := b.tasks[task.Key()]; ours {
			t.Errorf("%s is still open after the race", task.Key())
		}
	}
	rep := b.report
	if rep.Attempts < r.MinAttempts {
		t.Errorf("only %d claim attempts; the race needs at least %d to mean anything", rep.Attempts, r.MinAttempts)
	}
	if rep.Lost == 0 {
		t.Errorf("no claim lost a race in %d attempts: the workers never contended", rep.Attempts)
	}
	t.Logf("race: %d workers, %d tasks: %d claim attempts, %d wins, %d lost races, %d on finished tasks, %d releases",
		r.Workers, len(r.Tasks), rep.Attempts, rep.Wins, rep.Lost, rep.Finished, rep.Releases)
	return rep
}

// book is the harness's own record of the race, under one mutex.
type book struct {
	mu         sync.Mutex
	tasks      map[chorus.TaskKey]*ledger
	report     Report
	violations []string
}

type ledger struct {
	release   bool // release the first win
	releases  int
	holder    string // agent holding the task now, "" when none
	fences    []int64
	completed int
}

func (b *book) count(f func(*Report)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.report)
}

// won records a successful claim; it returns whether this win should be
// released.
func (b *book) won(k chorus.TaskKey, agent string, fence int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.report.Wins++
	l := b.tasks[k]
	if l.holder != "" {
		b.violations = append(b.violations, fmt.Sprintf("%s: %s won a claim while %s held the task", k, agent, l.holder))
	}
	if n := len(l.fences); n > 0 && fence <= l.fences[n-1] {
		b.violations = append(b.violations, fmt.Sprintf("%s: fence %d handed out after %v", k, fence, l.fences))
	}
	l.holder = agent
	l.fences = append(l.fences, fence)
	if l.release && l.releases == 0 {
		l.releases++
		b.report.Releases++
		// The harness lets go first: once the provider records the
		// release, another agent may win at once.
		l.holder = ""
		return true
	}
	return false
}

func (b *book) completed(k chorus.TaskKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.tasks[k]
	l.completed++
	l.holder = ""
}

func (b *book) violate(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.violations = append(b.violations, fmt.Sprintf(format, args...))
}

// work is one agent. First, in lockstep with the other workers, it tries
// every task of its first list: all workers claim the same task at the
// same moment, exactly one wins and runs it (or releases it), the others
// lose and go on to the next. Then it runs free: list, claim down the list
// until one is won, run it, and list again until nothing of the race is
// open (released tasks are taken again here).
func (b *book) work(ctx context.Context, p Provider, agent string, start *barrier) error {
	if err := start.wait(ctx); err != nil {
		return fmt.Errorf("waiting for the other workers: %w", err)
	}
	first, err := b.list(ctx, p)
	if err != nil {
		return err
	}
	if err := start.wait(ctx); err != nil {
		return fmt.Errorf("waiting for the other workers: %w", err)
	}
	for _, task := range first {
		k := task.Key()
		if err := start.wait(ctx); err != nil {
			return fmt.Errorf("waiting for the other workers at %s: %w", k, err)
		}
		fence, won, err := b.claim(ctx, p, agent, k)
		if err != nil {
			return err
		}
		// Every claim is answered before the winner goes on, so the
		// losers lose to a claim, not to a finished task.
		if err := start.wait(ctx); err != nil {
			return fmt.Errorf("waiting for the other claims of %s: %w", k, err)
		}
		if won {
			if err := b.run(ctx, p, agent, k, fence); err != nil {
				return err
			}
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("race did not finish: %w", err)
		}
		open, err := b.list(ctx, p)
		if err != nil {
			return err
		}
		if len(open) == 0 {
			return nil
		}
		for _, task := range open {
			ran, err := b.try(ctx, p, agent, task.Key())
			if err != nil {
				return err
			}
			if ran {
				break
			}
		}
	}
}

// list returns the race's open tasks.
func (b *book) list(ctx context.Context, p Provider) ([]chorus.Task, error) {
	open, err := p.ListOpen(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("list open: %w", err)
	}
	return slices.DeleteFunc(open, func(t chorus.Task) bool { _, ours := b.tasks[t.Key()]; return !ours }), nil
}

// try claims k and runs it when won; ran reports a win.
func (b *book) try(ctx context.Context, p Provider, agent string, k chorus.TaskKey) (ran bool, err error) {
	fence, won, err := b.claim(ctx, p, agent, k)
	if err != nil || !won {
		return false, err
	}
	return true, b.run(ctx, p, agent, k, fence)
}

// claim claims k; a lost race or a finished task is no error.
func (b *book) claim(ctx context.Context, p Provider, agent string, k chorus.TaskKey) (fence int64, won bool, err error) {
	b.count(func(r *Report) { r.Attempts++ })
	fence, err = p.Claim(ctx, k, agent)
	switch {
	case errors.Is(err, chorus.ErrAlreadyClaimed):
		b.count(func(r *Report) { r.Lost++ })
		return 0, false, nil
	case errors.Is(err, chorus.ErrInvalid):
		// Completed since the list was read.
		b.count(func(r *Report) { r.Finished++ })
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("claim %s: %w", k, err)
	}
	return fence, true, nil
}

// run releases a won task (when the race says so, then checks that the
// released fence is refused) or starts and completes it.
func (b *book) run(ctx context.Context, p Provider, agent string, k chorus.TaskKey, fence int64) error {
	if b.won(k, agent, fence) {
		if err := p.Release(ctx, k, fence); err != nil {
			return fmt.Errorf("release %s: %w", k, err)
		}
		if err := p.Complete(ctx, k, fence, chorus.Result{Success: true, AgentID: agent}); !errors.Is(err, chorus.ErrFenced) {
			b.violate("%s: completing with released fence %d: got %v, want chorus.ErrFenced", k, fence, err)
		}
		return nil
	}
	if err := p.Start(ctx, k, fence); err != nil {
		return fmt.Errorf("start %s: %w", k, err)
	}
	res := chorus.Result{Success: true, Message: "done by " + agent, AgentID: agent, ExecutionType: chorus.ExecScripted}
	if err := p.Complete(ctx, k, fence, res); err != nil {
		return fmt.Errorf("complete %s: %w", k, err)
	}
	b.completed(k)
	return nil
}

// barrier releases its n parties together, again and again.
type barrier struct {
	mu      sync.Mutex
	n       int
	waiting int
	ch      chan struct{}
}

func (b *barrier) wait(ctx context.Context) error {
	b.mu.Lock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	ch := b.ch
	b.waiting++
	if b.waiting == b.n {
		close(ch)
		b.ch, b.waiting = nil, 0
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
