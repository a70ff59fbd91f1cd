// Package devserver runs a complete Temporal server (frontend, history,
// matching and worker services) and, unless built with the noui tag, the
// Temporal Web UI inside the current process, persisted in one SQLite file.
// It is meant for a single-machine deployment and for tests that want a real
// server rather than the SDK's in-memory test environment.
//
// # Invariants
//
//   - All state lives under Config.DataDir: the SQLite database
//     (<DataDir>/temporal.db plus its -wal and -shm files) and the cluster ID
//     (<DataDir>/cluster_id). Starting again on the same directory keeps every
//     namespace, workflow and history.
//   - The schema is created only when temporal.db does not exist yet; the
//     configured namespaces are created when missing and left alone otherwise
//     (so their retention and search attributes are fixed at creation).
//   - Only the frontend port and the UI port are fixed. The history, matching
//     and worker services listen on free 127.0.0.1 ports chosen at each start.
//   - [Start] checks that the frontend and UI ports can be bound before it
//     starts anything, because a failed listen inside the Temporal server or
//     the UI server ends the whole process instead of returning an error.
//     The check is not atomic: if the frontend port is taken between the check
//     and the bind, Start returns the server's fatal error instead; a UI port
//     taken in that window still ends the process.
//   - Server log records go to the injected [log/slog.Logger] at level warn and
//     above, minus the expected "HTTP API port has not been set" warning.
//     [Server.Stop] silences them first, because the services log warnings
//     and errors about each other while they shut down. A Temporal "fatal"
//     record is logged and then raised as a panic instead of exiting the
//     process; [Start] turns such a panic during start-up into an error.
//   - The package has no package-level state. The server tuning is a static
//     dynamic-config client built per Server; dynamicConfig gives the reason
//     for each value.
//
// # Concurrency
//
// [Start] blocks until the frontend accepts TCP connections and, when enabled,
// the UI does too. A [Server] may be used from any goroutine: FrontendAddr and
// UIURL only read immutable fields, and Stop may be called more than once and
// concurrently; every call waits for the first one and returns its result.
// Only one Server may use a given DataDir at a time. Running several Servers
// in one process at the same time is untested.
//
// After Stop returns, the ports are free and the directory can be started
// again. The Temporal server does not release everything, though: each
// start/stop cycle leaves about 100 goroutines behind (system workers of the
// server's worker service that keep retrying the stopped frontend) and one
// SQLite connection stays open. Start once per process outside of tests.
package devserver
