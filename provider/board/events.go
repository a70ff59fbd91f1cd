package board

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"chorus"
)

// Event is one entry in a task's history. Every transition appends one in
// the same transaction as the change it records.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Agent  string    `json:"agent,omitempty"`
	Fence  int64     `json:"fence,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Event kinds.
const (
	EventCreated   = "created"
	EventClaimed   = "claimed"
	EventStarted   = "started"
	EventCompleted = "completed"
	EventFailed    = "failed"
	EventCancelled = "cancelled"
	EventReleased  = "released"
)

// eventKind is the kind of the event recording a transition into state s
// (other than a claim).
func eventKind(s chorus.TaskState) string {
	switch s {
	case chorus.StateOpen:
		return EventReleased
	case chorus.StateWorking:
		return EventStarted
	case chorus.StateCompleted:
		return EventCompleted
	case chorus.StateFailed:
		return EventFailed
	case chorus.StateCancelled:
		return EventCancelled
	}
	return string(s)
}

// appendEvent records e for the task key inside tx.
func appendEvent(ctx context.Context, tx *sql.Tx, key chorus.TaskKey, e Event) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO events (repository, number, at, kind, agent, fence, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		key.Repository, key.Number, formatTime(e.At), e.Kind, e.Agent, e.Fence, e.Detail)
	if err != nil {
		return fmt.Errorf("append %s event: %w", e.Kind, err)
	}
	return nil
}

// Events returns the task's history, oldest first.
func (b *Board) Events(ctx context.Context, key chorus.TaskKey) ([]Event, error) {
	if err := b.exists(ctx, key); err != nil {
		return nil, fmt.Errorf("events of %s: %w", key, err)
	}
	rows, err := b.r.QueryContext(ctx, `SELECT at, kind, agent, fence, detail FROM events
		WHERE repository = ? AND number = ? ORDER BY id`, key.Repository, key.Number)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", key, err)
	}
	defer rows.Close()
	events := []Event{}
	for rows.Next() {
		var (
			e  Event
			at string
		)
		if err := rows.Scan(&at, &e.Kind, &e.Agent, &e.Fence, &e.Detail); err != nil {
			return nil, fmt.Errorf("events of %s: %w", key, err)
		}
		if e.At, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("events of %s: %w", key, err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events of %s: %w", key, err)
	}
	return events, nil
}

// Completions returns how many times the task has been completed: 0 or 1
// on a correct board, which is what a test of exactly-once completion
// checks.
func (b *Board) Completions(ctx context.Context, key chorus.TaskKey) (int, error) {
	if err := b.exists(ctx, key); err != nil {
		return 0, fmt.Errorf("completions of %s: %w", key, err)
	}
	var n int
	if err := b.r.QueryRowContext(ctx, `SELECT count(*) FROM events
		WHERE repository = ? AND number = ? AND kind = ?`,
		key.Repository, key.Number, EventCompleted).Scan(&n); err != nil {
		return 0, fmt.Errorf("completions of %s: %w", key, err)
	}
	return n, nil
}

// exists returns nil if the task is on the board and chorus.ErrNotFound if
// not. Tasks are never deleted, so the answer stays true.
func (b *Board) exists(ctx context.Context, key chorus.TaskKey) error {
	if err := checkKey(key); err != nil {
		return err
	}
	var found bool
	err := b.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM tasks WHERE repository = ? AND number = ?)`,
		key.Repository, key.Number).Scan(&found)
	if err != nil {
		return err
	}
	if !found {
		return chorus.ErrNotFound
	}
	return nil
}
