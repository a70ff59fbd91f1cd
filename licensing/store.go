package licensing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// storeBusyTimeout is how long a write waits for another process holding
// the database lock; writes are single short transactions.
const storeBusyTimeout = 10 * time.Second

// schema holds the migrations in order: schema[i] takes a file from
// user_version i to i+1. Append, never edit.
var schema = []string{
	`CREATE TABLE licenses (
		id         TEXT    PRIMARY KEY,
		tier       TEXT    NOT NULL,
		nodes      INTEGER NOT NULL,
		cluster_id TEXT    NOT NULL,
		issued_at  TEXT    NOT NULL,
		expires_at TEXT    NOT NULL,
		version    INTEGER NOT NULL,
		revoked_at TEXT    NOT NULL DEFAULT '',
		note       TEXT    NOT NULL DEFAULT ''
	);
	CREATE TABLE seats (
		license_id   TEXT    NOT NULL REFERENCES licenses (id),
		node_id      TEXT    NOT NULL,
		seat         INTEGER NOT NULL,
		activated_at TEXT    NOT NULL,
		renewed_at   TEXT    NOT NULL,
		expires_at   TEXT    NOT NULL,
		PRIMARY KEY (license_id, node_id)
	);
	-- A seat number is leased to one node at a time.
	CREATE UNIQUE INDEX seats_number ON seats (license_id, seat);`,
}

// store is the authority's SQLite file. Every write is one IMMEDIATE
// transaction on a single connection, so seat counting is exact even with
// several processes on one file.
type store struct {
	db *sql.DB
}

func openStore(path string) (*store, error) {
	q := url.Values{
		// WAL + synchronous=NORMAL as the task board: a committed
		// activation survives a crash of the process.
		"_pragma": {"busy_timeout(" + strconv.FormatInt(storeBusyTimeout.Milliseconds(), 10) + ")", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"},
		"_txlock": {"immediate"},
	}
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("open license store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	s := &store{db: db}
	if err := s.migrate(context.Background()); err != nil {
		return nil, errors.Join(fmt.Errorf("open license store %s: %w", path, err), db.Close())
	}
	return s, nil
}

func (s *store) migrate(ctx context.Context) error {
	return s.write(ctx, func(tx *sql.Tx) error {
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
			if _, err := tx.ExecContext(ctx, `PRAGMA user_version = `+strconv.Itoa(len(schema))); err != nil {
				return fmt.Errorf("set schema version: %w", err)
			}
		}
		return nil
	})
}

func (s *store) close() error { return s.db.Close() }

// write runs fn in one transaction and commits it when fn returns nil.
func (s *store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
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

// queryer is what reads need: a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// timeLayout is fixed-width, so stored times sort and compare as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) { return time.Parse(timeLayout, s) }

func insertLicense(ctx context.Context, tx *sql.Tx, l License) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO licenses (id, tier, nodes, cluster_id, issued_at, expires_at, version, note)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, l.ID, l.Tier, l.Nodes, l.ClusterID, formatTime(l.IssuedAt), formatTime(l.ExpiresAt), l.Version, l.Note)
	if err != nil {
		return fmt.Errorf("insert license: %w", err)
	}
	return nil
}

const licenseColumns = `id, tier, nodes, cluster_id, issued_at, expires_at, version, revoked_at, note`

func scanLicense(sc interface{ Scan(...any) error }) (License, error) {
	var l License
	var issued, expires, revoked string
	if err := sc.Scan(&l.ID, &l.Tier, &l.Nodes, &l.ClusterID, &issued, &expires, &l.Version, &revoked, &l.Note); err != nil {
		return License{}, err
	}
	var err error
	if l.IssuedAt, err = parseTime(issued); err != nil {
		return License{}, fmt.Errorf("license %s: issued_at: %w", l.ID, err)
	}
	if l.ExpiresAt, err = parseTime(expires); err != nil {
		return License{}, fmt.Errorf("license %s: expires_at: %w", l.ID, err)
	}
	if revoked != "" {
		t, err := parseTime(revoked)
		if err != nil {
			return License{}, fmt.Errorf("license %s: revoked_at: %w", l.ID, err)
		}
		l.RevokedAt = &t
	}
	return l, nil
}

// getLicense returns the license or an error wrapping ErrUnknownLicense.
func getLicense(ctx context.Context, q queryer, id string) (License, error) {
	l, err := scanLicense(q.QueryRowContext(ctx, `SELECT `+licenseColumns+` FROM licenses WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return License{}, fmt.Errorf("license %s: %w", id, ErrUnknownLicense)
	}
	if err != nil {
		return License{}, fmt.Errorf("read license %s: %w", id, err)
	}
	return l, nil
}

func listLicenses(ctx context.Context, q queryer) ([]License, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+licenseColumns+` FROM licenses ORDER BY issued_at, rowid`)
	if err != nil {
		return nil, fmt.Errorf("list licenses: %w", err)
	}
	defer rows.Close()
	var out []License
	for rows.Next() {
		l, err := scanLicense(rows)
		if err != nil {
			return nil, fmt.Errorf("list licenses: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list licenses: %w", err)
	}
	return out, nil
}

// liveSeats returns the leases of a license that have not expired at now,
// by seat number.
func liveSeats(ctx context.Context, q queryer, licenseID string, now time.Time) ([]Seat, error) {
	rows, err := q.QueryContext(ctx, `SELECT seat, node_id, activated_at, renewed_at, expires_at FROM seats
		WHERE license_id = ? AND expires_at > ? ORDER BY seat`, licenseID, formatTime(now))
	if err != nil {
		return nil, fmt.Errorf("read seats of %s: %w", licenseID, err)
	}
	defer rows.Close()
	out := []Seat{}
	for rows.Next() {
		var s Seat
		var act, ren, exp string
		if err := rows.Scan(&s.Seat, &s.NodeID, &act, &ren, &exp); err != nil {
			return nil, fmt.Errorf("read seats of %s: %w", licenseID, err)
		}
		for _, p := range []struct {
			dst *time.Time
			v   string
		}{{&s.ActivatedAt, act}, {&s.RenewedAt, ren}, {&s.ExpiresAt, exp}} {
			t, err := parseTime(p.v)
			if err != nil {
				return nil, fmt.Errorf("read seats of %s: %w", licenseID, err)
			}
			*p.dst = t
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read seats of %s: %w", licenseID, err)
	}
	return out, nil
}

// countLive counts unexpired leases over all licenses.
func countLive(ctx context.Context, q queryer, now time.Time) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM seats WHERE expires_at > ?`, formatTime(now)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count seats: %w", err)
	}
	return n, nil
}
