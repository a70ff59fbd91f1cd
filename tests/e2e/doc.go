// Package e2e holds the end-to-end tests: they build the worker and starter
// binaries, start `worker --dev` on free ports in a temporary data dir (a
// real Temporal server, a real SQLite board, real Docker containers) and
// drive it with the starter CLI, as an operator would.
//
// The tests are behind the e2e build tag: go test -tags e2e ./tests/e2e/.
// They need the Docker daemon and busybox-static; without them they fail.
// With CHORUS_RECORD_HISTORY=1 they also write the histories of the
// workflows they run to workflows/testdata for the replay test.
package e2e
