// Package intake turns tasks into task workflows. Start is idempotent per
// task: the workflow ID is the task key, a running workflow is reused and a
// finished one is never started again, so submitting a task twice or
// sweeping the board repeatedly never runs a task twice.
//
// Sweeper periodically lists open tasks on a provider and starts their
// workflows, which picks up tasks added through the board's HTTP API and
// tasks whose start was interrupted by a crash between adding and starting.
//
// Under an elected admin (package election) intake runs only on the
// admin: its Starter carries the admin's term, which goes into the memo of
// every workflow it starts (admin_term) and is checked against a Fencer
// before each start, so a deposed admin starts nothing.
//
// Concurrency: Starter and Sweeper are safe for concurrent use; Sweeper.Run
// owns its loop goroutine until ctx is done.
package intake
