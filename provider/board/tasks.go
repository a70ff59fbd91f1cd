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

// Filter selects tasks for List. The zero Filter lists up to DefaultLimit
// tasks in any state from every repository.
type Filter struct {
	// States keeps tasks in any of these states; empty keeps all.
	States []chorus.TaskState
	// Repository keeps tasks of this repository; empty keeps all.
	Repository string
	// Limit caps the number of tasks returned; 0 means DefaultLimit.
	Limit int
}

const (
	// DefaultLimit is the page size of a List with Filter.Limit 0.
	DefaultLimit = 100
	// MaxLimit is the largest Filter.Limit accepted; a bigger page would
	// make one HTTP response unreasonably large.
	MaxLimit = 1000
)

// Validate reports a filter List would refuse, naming the field.
func (f Filter) Validate() error {
	for _, s := range f.States {
		if !s.Valid() {
			return fmt.Errorf("%w: state: unknown state %q", chorus.ErrInvalid, s)
		}
	}
	if f.Repository != "" {
		if err := (chorus.Task{Title: "-", Repository: f.Repository}).Validate(); err != nil {
			return err
		}
	}
	if f.Limit < 0 || f.Limit > MaxLimit {
		return fmt.Errorf("%w: limit: %d is outside 0..%d", chorus.ErrInvalid, f.Limit, MaxLimit)
	}
	return nil
}

// taskColumns is the column list scanTask reads, in order.
const taskColumns = `repository, number, title, description, state, labels, assignee,
	priority, role, expertise, type, project_id, fence, created_at, updated_at, result, error, allow_hosts, model`

// Add stores t as a new open task and returns it as stored.
//
// The board assigns Provider ("board"), Number (the next in the repository),
// State (open), CreatedAt and UpdatedAt; whatever t holds in those fields,
// and in Assignee, Fence, Result and Error, is ignored. Repository defaults
// to DefaultRepository and Type to chorus.DetectTaskType. A Provider other
// than "" or "board" is refused.
//
// Submission is idempotent: when a task (in any state, finished ones too)
// already has the same repository, title and description, Add returns that
// task and created=false instead of adding another, so the same task is
// never run twice. To run the same work again, submit it with a different
// title or description.
func (b *Board) Add(ctx context.Context, t chorus.Task) (task chorus.Task, created bool, err error) {
	if t.Provider != "" && t.Provider != ProviderName {
		return chorus.Task{}, false, fmt.Errorf("add task: %w: provider: %q is not %q", chorus.ErrInvalid, t.Provider, ProviderName)
	}
	if t.Repository == "" {
		t.Repository = DefaultRepository
	}
	if err := t.Validate(); err != nil {
		return chorus.Task{}, false, fmt.Errorf("add task: %w", err)
	}
	if t.Type == "" {
		t.Type = chorus.DetectTaskType(t.Title, t.Description)
	}
	at := now()
	task = chorus.Task{
		Provider:    ProviderName,
		Repository:  t.Repository,
		Title:       t.Title,
		Description: t.Description,
		State:       chorus.StateOpen,
		Labels:      t.Labels,
		Priority:    t.Priority,
		Role:        t.Role,
		Expertise:   t.Expertise,
		Type:        t.Type,
		ProjectID:   t.ProjectID,
		AllowHosts:  t.AllowHosts,
		Model:       t.Model,
		CreatedAt:   at,
		UpdatedAt:   at,
	}
	labels, err := encodeList(task.Labels)
	if err != nil {
		return chorus.Task{}, false, fmt.Errorf("add task: labels: %w", err)
	}
	expertise, err := encodeList(task.Expertise)
	if err != nil {
		return chorus.Task{}, false, fmt.Errorf("add task: expertise: %w", err)
	}
	allowHosts, err := encodeList(task.AllowHosts)
	if err != nil {
		return chorus.Task{}, false, fmt.Errorf("add task: allow_hosts: %w", err)
	}
	err = b.write(ctx, func(tx *sql.Tx) error {
		existing, err := scanTask(tx.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks
			WHERE repository = ? AND title = ? AND description = ?
			ORDER BY number LIMIT 1`,
			task.Repository, task.Title, task.Description))
		switch {
		case err == nil:
			task = existing
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("find submission: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO sequences (repository, last) VALUES (?, 1)
			ON CONFLICT (repository) DO UPDATE SET last = last + 1
			RETURNING last`, task.Repository).Scan(&task.Number); err != nil {
			return fmt.Errorf("next number: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tasks (`+taskColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, 0, ?, ?, NULL, '', ?, ?)`,
			task.Repository, task.Number, task.Title, task.Description, task.State, labels,
			task.Priority, task.Role, expertise, task.Type, task.ProjectID,
			formatTime(at), formatTime(at), allowHosts, task.Model); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		created = true
		return appendEvent(ctx, tx, task.Key(), Event{At: at, Kind: EventCreated})
	})
	if err != nil {
		return chorus.Task{}, false, fmt.Errorf("add task: %w", err)
	}
	return task, created, nil
}

// Get returns the task with key, or an error wrapping chorus.ErrNotFound.
func (b *Board) Get(ctx context.Context, key chorus.TaskKey) (chorus.Task, error) {
	if err := checkKey(key); err != nil {
		return chorus.Task{}, fmt.Errorf("get %s: %w", key, err)
	}
	t, err := scanTask(b.r.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks
		WHERE repository = ? AND number = ?`, key.Repository, key.Number))
	if errors.Is(err, sql.ErrNoRows) {
		return chorus.Task{}, fmt.Errorf("get %s: %w", key, chorus.ErrNotFound)
	}
	if err != nil {
		return chorus.Task{}, fmt.Errorf("get %s: %w", key, err)
	}
	return t, nil
}

// List returns the tasks f selects, highest priority first, then oldest
// first, then by number (and repository, so the order is total).
func (b *Board) List(ctx context.Context, f Filter) ([]chorus.Task, error) {
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	var (
		where []string
		args  []any
	)
	if len(f.States) > 0 {
		marks := make([]string, len(f.States))
		for i, s := range f.States {
			marks[i] = "?"
			args = append(args, string(s))
		}
		where = append(where, "state IN ("+strings.Join(marks, ", ")+")")
	}
	if f.Repository != "" {
		where = append(where, "repository = ?")
		args = append(args, f.Repository)
	}
	query := `SELECT ` + taskColumns + ` FROM tasks`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	query += ` ORDER BY priority DESC, created_at, number, repository LIMIT ?`
	args = append(args, limit)

	rows, err := b.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	tasks := []chorus.Task{}
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		tasks = append(tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return tasks, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanTask reads one row selected with taskColumns.
func scanTask(s scanner) (chorus.Task, error) {
	var (
		t                    chorus.Task
		state                string
		labels, expertise    string
		allowHosts           string
		createdAt, updatedAt string
		result               sql.NullString
	)
	if err := s.Scan(&t.Repository, &t.Number, &t.Title, &t.Description, &state, &labels,
		&t.Assignee, &t.Priority, &t.Role, &expertise, &t.Type, &t.ProjectID, &t.Fence,
		&createdAt, &updatedAt, &result, &t.Error, &allowHosts, &t.Model); err != nil {
		return chorus.Task{}, err
	}
	t.Provider = ProviderName
	t.State = chorus.TaskState(state)
	var err error
	if t.Labels, err = decodeList(labels); err != nil {
		return chorus.Task{}, fmt.Errorf("task %s: labels: %w", t.Key(), err)
	}
	if t.Expertise, err = decodeList(expertise); err != nil {
		return chorus.Task{}, fmt.Errorf("task %s: expertise: %w", t.Key(), err)
	}
	if t.AllowHosts, err = decodeList(allowHosts); err != nil {
		return chorus.Task{}, fmt.Errorf("task %s: allow_hosts: %w", t.Key(), err)
	}
	if t.CreatedAt, err = parseTime(createdAt); err != nil {
		return chorus.Task{}, fmt.Errorf("task %s: created_at: %w", t.Key(), err)
	}
	if t.UpdatedAt, err = parseTime(updatedAt); err != nil {
		return chorus.Task{}, fmt.Errorf("task %s: updated_at: %w", t.Key(), err)
	}
	if result.Valid {
		t.Result = new(chorus.Result)
		if err := json.Unmarshal([]byte(result.String), t.Result); err != nil {
			return chorus.Task{}, fmt.Errorf("task %s: result: %w", t.Key(), err)
		}
	}
	return t, nil
}

// encodeList stores a string list as a JSON array; nil and empty are "[]".
func encodeList(l []string) (string, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// decodeList reads what encodeList wrote; an empty list reads back as nil.
func decodeList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}
