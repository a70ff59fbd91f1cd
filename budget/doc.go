// Package budget enforces the AI rung's spending limits before a model is
// called, never after: per task (tokens, steps, wall time) and per agent per
// day (tokens, calls).
//
// A Task is checked with Check before each model call; it says how many
// tokens the call may use at most (so one call cannot overshoot) or returns
// an error wrapping ErrExhausted that names the limit. The Daily ledger is a
// small JSON file in the data dir, rewritten atomically (write + rename) on
// every charge so a crash loses at most the charge in flight; the day rolls
// over at midnight UTC. RegisterMetrics serves today's use and the daily
// limits as chorus_ai_daily_* gauges, read from the ledger at scrape time.
//
// Concurrency: Task is used by one execution at a time and is not locked.
// Daily is safe for concurrent use; one goroutine's Reserve and Commit are
// serialised with the others' by a mutex over the ledger.
package budget
