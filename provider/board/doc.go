// Package board is the embedded task board: a task provider that keeps its
// tasks in a local SQLite file, serves them over a small JSON HTTP API
// (Board.Handler) and reaches a remote board through a Client with the same
// methods and the same errors.
//
// A task moves open -> claimed -> working -> completed | failed, may be
// released back to open by its holder, and may be failed or cancelled by an
// operator at any point before it is terminal. Every transition appends an
// Event in the same transaction, so the event log is the task's history.
//
// Invariants:
//   - A claim is one conditional UPDATE: it succeeds only on an open task, or
//     is an idempotent no-op when the same agent already holds the task. The
//     database, not a read in Go, decides who wins.
//   - Each successful claim increments the task's fence (fencing token), and
//     fences only grow. Every later write by the holder (Start, Complete,
//     Fail, Release) names its fence and is refused with chorus.ErrFenced once
//     the fence is no longer current, so a holder that lost the task can
//     never complete it. Operator actions (Fail with fence 0, Cancel) also
//     increment the fence, fencing the holder out.
//   - A task is completed at most once: repeating Complete with the same fence
//     returns nil and leaves the stored result unchanged. A unique index on
//     the event log enforces this in the schema as well.
//   - Tasks are numbered per repository and never deleted; numbers are never
//     reused.
//   - The schema version lives in PRAGMA user_version; Open migrates older
//     files and refuses newer ones.
//
// Concurrency: a Board is safe for concurrent use by multiple goroutines, and
// several Boards (in one process or in several) may open the same file.
// SQLite serialises writers: each write is one IMMEDIATE transaction on the
// Board's single writer connection, waiting up to a busy timeout for other
// processes. Reads use a separate pool and see the last committed state
// (WAL mode). A Client is safe for concurrent use as well.
package board
