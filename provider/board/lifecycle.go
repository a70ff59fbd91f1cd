package board

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"chorus"
)

// Claim gives the task to agentID and returns the fencing token the agent
// passes to every later write. The claim is one conditional UPDATE, so of
// several agents racing for a task (in any number of processes) exactly one
// wins.
//
// Claiming again by the agent that holds the task is idempotent: it returns
// the current fence without incrementing it. Otherwise Claim fails with
// chorus.ErrNotFound when there is no such task, chorus.ErrAlreadyClaimed
// (naming the holder) when another agent holds it, and chorus.ErrInvalid when
// the task is terminal.
func (b *Board) Claim(ctx context.Context, key chorus.TaskKey, agentID string) (fence int64, err error) {
	if err := checkKey(key); err != nil {
		return 0, fmt.Errorf("claim %s: %w", key, err)
	}
	if strings.TrimSpace(agentID) == "" {
		return 0, fmt.Errorf("claim %s: %w: agent_id: must not be empty", key, chorus.ErrInvalid)
	}
	err = b.write(ctx, func(tx *sql.Tx) error {
		at := now()
		// SET expressions see the row as it was, so every CASE tests
		// the old state: an open task is claimed and its fence
		// incremented; a task the agent already holds is left as is.
		err := tx.QueryRowContext(ctx, `UPDATE tasks SET
				fence      = CASE WHEN state = 'open' THEN fence + 1 ELSE fence END,
				updated_at = CASE WHEN state = 'open' THEN :at ELSE updated_at END,
				state      = CASE WHEN state = 'open' THEN 'claimed' ELSE state END,
				assignee   = :agent
			WHERE repository = :repo AND number = :number
			  AND (state = 'open' OR (state IN ('claimed', 'working') AND assignee = :agent))
			RETURNING fence`,
			sql.Named("at", formatTime(at)), sql.Named("agent", agentID),
			sql.Named("repo", key.Repository), sql.Named("number", key.Number),
		).Scan(&fence)
		if errors.Is(err, sql.ErrNoRows) {
			cur, err := load(ctx, tx, key)
			switch {
			case err != nil:
				return err
			case cur.state.Terminal():
				return fmt.Errorf("%w: state: task is %s", chorus.ErrInvalid, cur.state)
			default:
				return fmt.Errorf("%w by %q", chorus.ErrAlreadyClaimed, cur.assignee)
			}
		}
		if err != nil {
			return err
		}
		// Each fence is handed out once, so a claimed event for this
		// fence exists exactly when this was a re-claim; the unique
		// index turns that case into a no-op.
		_, err = tx.ExecContext(ctx, `INSERT INTO events (repository, number, at, kind, agent, fence, detail)
			VALUES (?, ?, ?, ?, ?, ?, '')
			ON CONFLICT DO NOTHING`,
			key.Repository, key.Number, formatTime(at), EventClaimed, agentID, fence)
		if err != nil {
			return fmt.Errorf("append event: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("claim %s: %w", key, err)
	}
	return fence, nil
}

// Start moves a claimed task to working. Starting again with the same fence
// is a no-op; a fence that is no longer current fails with chorus.ErrFenced.
func (b *Board) Start(ctx context.Context, key chorus.TaskKey, fence int64) error {
	return b.holderWrite(ctx, "start", key, fence, chorus.StateWorking, func(tx *sql.Tx, e *Event) error {
		return tx.QueryRowContext(ctx, `UPDATE tasks SET state = 'working', updated_at = ?
			WHERE repository = ? AND number = ? AND state = 'claimed' AND fence = ?
			RETURNING assignee`,
			formatTime(e.At), key.Repository, key.Number, fence).Scan(&e.Agent)
	})
}

// Complete moves the task the fence holder is working on (claimed or
// working) to completed and stores r. Completing again with the same fence
// returns nil and keeps the result stored first. A fence that is no longer
// current (the task was released, claimed again, cancelled or failed by an
// operator) fails with chorus.ErrFenced; a task the same holder already
// failed fails with chorus.ErrInvalid.
func (b *Board) Complete(ctx context.Context, key chorus.TaskKey, fence int64, r chorus.Result) error {
	result, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("complete %s: encode result: %w", key, err)
	}
	return b.holderWrite(ctx, "complete", key, fence, chorus.StateCompleted, func(tx *sql.Tx, e *Event) error {
		e.Detail = fmt.Sprintf("success=%t exit_code=%d", r.Success, r.ExitCode)
		return tx.QueryRowContext(ctx, `UPDATE tasks SET state = 'completed', result = ?, updated_at = ?
			WHERE repository = ? AND number = ? AND state IN ('claimed', 'working') AND fence = ?
			RETURNING assignee`,
			string(result), formatTime(e.At), key.Repository, key.Number, fence).Scan(&e.Agent)
	})
}

// Fail moves the task to failed and records reason as its error.
//
// With a positive fence it is the holder's write: failing again with the
// same fence is a no-op, a fence that is no longer current fails with
// chorus.ErrFenced and a task the holder completed fails with
// chorus.ErrInvalid. Fence 0 is an operator action: it fails any task that is
// not terminal, increments the fence so the holder (if any) is fenced out,
// and is a no-op on a task that has already failed.
func (b *Board) Fail(ctx context.Context, key chorus.TaskKey, fence int64, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("fail %s: %w: reason: must not be empty", key, chorus.ErrInvalid)
	}
	if fence == 0 {
		return b.operatorWrite(ctx, "fail", key, chorus.StateFailed, reason)
	}
	return b.holderWrite(ctx, "fail", key, fence, chorus.StateFailed, func(tx *sql.Tx, e *Event) error {
		e.Detail = reason
		return tx.QueryRowContext(ctx, `UPDATE tasks SET state = 'failed', error = ?, updated_at = ?
			WHERE repository = ? AND number = ? AND state IN ('claimed', 'working') AND fence = ?
			RETURNING assignee`,
			reason, formatTime(e.At), key.Repository, key.Number, fence).Scan(&e.Agent)
	})
}

// Cancel moves a task that is not terminal to cancelled, records reason as
// its error and increments the fence so the holder (if any) is fenced out.
// Cancelling a cancelled task is a no-op; cancelling a task that completed
// or failed fails with chorus.ErrInvalid.
func (b *Board) Cancel(ctx context.Context, key chorus.TaskKey, reason string) error {
	return b.operatorWrite(ctx, "cancel", key, chorus.StateCancelled, reason)
}

// Release hands a claimed or working task back: it becomes open with no
// assignee, and keeps its fence, so the releasing agent's fence is no longer
// current and the next claim gets a higher one. Releasing again with the
// same fence is a no-op.
func (b *Board) Release(ctx context.Context, key chorus.TaskKey, fence int64) error {
	return b.holderWrite(ctx, "release", key, fence, chorus.StateOpen, func(tx *sql.Tx, e *Event) error {
		if err := tx.QueryRowContext(ctx, `UPDATE tasks SET state = 'open', assignee = '', updated_at = ?
			WHERE repository = ? AND number = ? AND state IN ('claimed', 'working') AND fence = ?
			RETURNING fence`,
			formatTime(e.At), key.Repository, key.Number, fence).Scan(new(int64)); err != nil {
			return err
		}
		// The assignee is gone from the task; the claim event for this
		// fence still names the agent that released it. (The outer
		// SELECT always yields a row: sql.ErrNoRows here would read as
		// "not released".)
		if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT agent FROM events
			WHERE repository = ? AND number = ? AND kind = ? AND fence = ?), '')`,
			key.Repository, key.Number, EventClaimed, fence).Scan(&e.Agent); err != nil {
			return fmt.Errorf("find releasing agent: %w", err)
		}
		return nil
	})
}

// holderWrite runs a transition made by the agent holding fence. update is
// the conditional UPDATE that applies it: it returns sql.ErrNoRows when the
// task is not in a state the transition starts from with that fence, and
// fills in the event's agent (and detail). When the update applied, the
// event is appended; when it did not, the task is read to tell a repeated
// write (the task is already in state done with this fence: nil) from a
// stale fence or a wrong state.
func (b *Board) holderWrite(ctx context.Context, op string, key chorus.TaskKey, fence int64, done chorus.TaskState,
	update func(tx *sql.Tx, e *Event) error) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if fence <= 0 {
		return fmt.Errorf("%s %s: %w: fence: %d must be positive", op, key, chorus.ErrInvalid, fence)
	}
	err := b.write(ctx, func(tx *sql.Tx) error {
		e := Event{At: now(), Kind: eventKind(done), Fence: fence}
		err := update(tx, &e)
		if errors.Is(err, sql.ErrNoRows) {
			cur, err := load(ctx, tx, key)
			if err != nil {
				return err
			}
			return cur.refuse(fence, done)
		}
		if err != nil {
			return err
		}
		return appendEvent(ctx, tx, key, e)
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil
}

// operatorWrite moves a task that is not terminal to the terminal state done
// without a fence check, records reason as its error and increments the
// fence. It is a no-op on a task already in state done.
func (b *Board) operatorWrite(ctx context.Context, op string, key chorus.TaskKey, done chorus.TaskState, reason string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	err := b.write(ctx, func(tx *sql.Tx) error {
		e := Event{At: now(), Kind: eventKind(done), Detail: reason}
		err := tx.QueryRowContext(ctx, `UPDATE tasks SET state = ?, error = ?, fence = fence + 1, updated_at = ?
			WHERE repository = ? AND number = ? AND state IN ('open', 'claimed', 'working')
			RETURNING fence`,
			string(done), reason, formatTime(e.At), key.Repository, key.Number).Scan(&e.Fence)
		if errors.Is(err, sql.ErrNoRows) {
			cur, err := load(ctx, tx, key)
			switch {
			case err != nil:
				return err
			case cur.state == done:
				return nil
			default:
				return fmt.Errorf("%w: state: task is %s", chorus.ErrInvalid, cur.state)
			}
		}
		if err != nil {
			return err
		}
		return appendEvent(ctx, tx, key, e)
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil
}

// current is the part of a task a refused transition is explained by.
type current struct {
	state    chorus.TaskState
	assignee string
	fence    int64
}

// load reads the task's state inside tx; a missing task is
// chorus.ErrNotFound.
func load(ctx context.Context, tx *sql.Tx, key chorus.TaskKey) (current, error) {
	var (
		c     current
		state string
	)
	err := tx.QueryRowContext(ctx, `SELECT state, assignee, fence FROM tasks WHERE repository = ? AND number = ?`,
		key.Repository, key.Number).Scan(&state, &c.assignee, &c.fence)
	if errors.Is(err, sql.ErrNoRows) {
		return current{}, chorus.ErrNotFound
	}
	if err != nil {
		return current{}, fmt.Errorf("read task: %w", err)
	}
	c.state = chorus.TaskState(state)
	return c, nil
}

// refuse explains why a holder's transition to done with fence did not
// apply to the task c, or returns nil when it had already been applied.
func (c current) refuse(fence int64, done chorus.TaskState) error {
	switch {
	case c.fence != fence:
		return fmt.Errorf("%w: fence %d is not current (task is %s with fence %d)", chorus.ErrFenced, fence, c.state, c.fence)
	case c.state == done:
		return nil
	case c.state.Terminal():
		return fmt.Errorf("%w: state: task is %s", chorus.ErrInvalid, c.state)
	case c.state == chorus.StateOpen:
		return fmt.Errorf("%w: fence %d was released (task is open)", chorus.ErrFenced, fence)
	default:
		return fmt.Errorf("%w: state: cannot go from %s to %s", chorus.ErrInvalid, c.state, done)
	}
}
