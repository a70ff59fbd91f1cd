// Package ops is the operator's window into a running agent: health checks
// and the ops HTTP server that exposes them (SPEC section 8). Metrics and
// other ops endpoints are added to the same mux by their own packages.
//
// A Health holds a set of named checks. Run executes every check once at
// start and then each on its own interval (default 30 s), each run bounded
// by the check's timeout (default 10 s). Routes serves the results:
//
//	GET /health         overall Report; 200 when healthy or degraded,
//	                    503 when unhealthy or starting
//	GET /health/live    200 {"status":"alive"} while the process serves HTTP
//	GET /health/ready   200 only when every critical check has run and
//	                    passed; otherwise 503 naming the failing checks
//	GET /health/checks  the per-check list, sorted by name
//
// Invariants: the overall status is "unhealthy" when a critical check has
// failed its latest run, "starting" while any check has never run,
// "degraded" when only non-critical checks fail and "healthy" otherwise. A
// check that never ran counts as not ready. A run that does not finish within
// its timeout fails with a timeout message even when the check ignores its
// ctx; while such a run is still in flight the next run of that check fails
// at once instead of piling up goroutines. A run requested while another run
// of the same check is still within its timeout (RunChecks during Run) is
// skipped; the run in flight records the result. A panicking check fails; the
// panic never leaves the package. Results of runs cut short because the ctx
// given to Run or RunChecks ended are discarded, so shutting down does not
// turn the report red. Checks are registered before Run starts; Register
// refuses new checks while Run is active.
//
// Serve runs an http.Server with a ReadHeaderTimeout on a listener from
// Listen and shuts it down gracefully (in-flight requests get 5 s) when its
// ctx ends. Listen reports a busy address in words an operator recognises.
//
// Concurrency: all Health methods are safe for concurrent use. A single
// mutex guards the check table; check functions run outside it, each in its
// own goroutine, and may run concurrently with checks of other names but
// never with another run of the same check.
package ops
