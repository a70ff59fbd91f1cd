package board

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"chorus"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ProviderName is the Provider of every task on a board.
const ProviderName = "board"

// DefaultRepository is used when a task is added without a repository.
const DefaultRepository = "default"

const (
	// busyTimeout is how long a write waits for another process holding
	// the database lock before failing. Writes are single short
	// transactions, so only a stuck process holds the lock this long.
	busyTimeout = 10 * time.Second
	// maxReaders bounds the read pool; SQLite readers in WAL mode do not
	// block each other, and more connections than this only cost memory.
	maxReaders = 4
)

// schema holds the migrations in order: schema[i] takes a file from
// user_version i to i+1. Append, never edit.
var schema = []string{
	`CREATE TABLE tasks (
		repository  TEXT    NOT NULL,
		number      INTEGER NOT NULL,
		title       TEXT    NOT NULL,
		description TEXT    NOT NULL DEFAULT '',
		state       TEXT    NOT NULL,
		labels      TEXT    NOT NULL DEFAULT '[]',
		assignee    TEXT    NOT NULL DEFAULT '',
		priority    INTEGER NOT NULL DEFAULT 0,
		role        TEXT    NOT NULL DEFAULT '',
		expertise   TEXT    NOT NULL DEFAULT '[]',
		type        TEXT    NOT NULL DEFAULT '',
		project_id  TEXT    NOT NULL DEFAULT '',
		fence       INTEGER NOT NULL DEFAULT 0,
		created_at  TEXT    NOT NULL,
		updated_at  TEXT    NOT NULL,
		result      TEXT,
		error       TEXT    NOT NULL DEFAULT '',
		PRIMARY KEY (repository, number)
	);
	CREATE INDEX tasks_queue ON tasks (state, priority DESC, created_at, number);
	CREATE INDEX tasks_submission ON tasks (repository, title);
	CREATE TABLE sequences (
		repository TEXT    PRIMARY KEY,
		last       INTEGER NOT NULL
	);
	CREATE TABLE events (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		repository TEXT    NOT NULL,
		number     INTEGER NOT NULL,
		at         TEXT    NOT NULL,
		kind       TEXT    NOT NULL,
		agent      TEXT    NOT NULL DEFAULT '',
		fence      INTEGER NOT NULL DEFAULT 0,
		detail     TEXT    NOT NULL DEFAULT ''
	);
	CREATE INDEX events_task ON events (repository, number, id);
	-- Each fence is handed out by exactly one claim.
	CREATE UNIQUE INDEX events_claim_once ON events (repository, number, fence) WHERE kind = 'claimed';
	-- A task is completed at most once.
	CREATE UNIQUE INDEX events_complete_once ON events (repository, number) WHERE kind = 'completed';`,
	// 2: the task's network allow-list.
	`ALTER TABLE tasks ADD COLUMN allow_hosts TEXT NOT NULL DEFAULT '[]';`,
	// 3: the model a task asks for.
	`ALTER TABLE tasks ADD COLUMN model TEXT NOT NULL DEFAULT '';`,
}

// Board is a task provider stored in one SQLite file. Create it with Open
// and release it with Close.
type Board struct {
	w *sql.DB // one connection; every write is an IMMEDIATE transaction
	r *sql.DB // read-only pool
}

// Open opens the board stored in the SQLite file at path (with its -wal and
// -shm files beside it), creating the file and its schema if needed and
// migrating an older schema. Several Boards may open the same file at once.
func Open(path string) (*Board, error) {
	if path == "" {
		return nil, fmt.Errorf("open board: %w: path: must not be empty", chorus.ErrInvalid)
	}
	busy := "busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")"
	w, err := sql.Open("sqlite", dsn(path, url.Values{
		// WAL lets readers run while a write is in progress.
		// synchronous=NORMAL: a committed claim or completion
		// survives a crash or SIGKILL of the process; only an OS crash
		// or power cut can lose the last commits, as it can for the
		// embedded Temporal server's own SQLite file, which uses the
		// same setting. FULL costs an fsync per transaction.
		"_pragma": {busy, "journal_mode(WAL)", "synchronous(NORMAL)"},
		// Take the write lock at BEGIN, so a transaction that reads
		// before it writes never fails to upgrade its lock.
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("open board %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {busy, "query_only(1)"},
	}))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open board %s: %w", path, err), w.Close())
	}
	r.SetMaxOpenConns(maxReaders)
	b := &Board{w: w, r: r}
	if err := b.migrate(context.Background()); err != nil {
		return nil, errors.Join(fmt.Errorf("open board %s: %w", path, err), b.Close())
	}
	return b, nil
}

// dsn builds a file: URI so that a path with '?', '#' or '%' in it is not
// mistaken for query parameters.
func dsn(path string, q url.Values) string {
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}
	return u.String()
}

// migrate brings the schema up to date inside one write transaction, so
// concurrent Opens of a new file create it once.
func (b *Board) migrate(ctx context.Context) error {
	return b.write(ctx, func(tx *sql.Tx) error {
		var version int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if version > len(schema) {
			return fmt.Errorf("schema version %d is newer than this program supports (%d)", version, len(schema))
		}
		for i := version; i < len(schema); i++ {
			if _, err := tx.ExecContext(ctx, schema[i]); err != nil {
				return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
			}
		}
		if version < len(schema) {
			// PRAGMA takes no bound parameters; the value is ours.
			if _, err := tx.ExecContext(ctx, `PRAGMA user_version = `+strconv.Itoa(len(schema))); err != nil {
				return fmt.Errorf("set schema version: %w", err)
			}
		}
		return nil
	})
}

// Close closes the database. The Board must not be used afterwards.
func (b *Board) Close() error {
	return errors.Join(b.r.Close(), b.w.Close())
}

// write runs fn in one IMMEDIATE transaction on the writer connection and
// commits it if fn returns nil.
func (b *Board) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := b.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// checkKey reports whether key can name a task on a board.
func checkKey(key chorus.TaskKey) error {
	if key.Provider != ProviderName {
		return fmt.Errorf("%w: key: provider %q is not %q", chorus.ErrInvalid, key.Provider, ProviderName)
	}
	if _, err := chorus.ParseTaskKey(key.String()); err != nil {
		return err
	}
	return nil
}

// timeLayout is fixed-width, so stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// now is the time stamped on a write: UTC, without a monotonic reading, so
// it compares equal to the value read back.
func now() time.Time { return time.Now().UTC() }
