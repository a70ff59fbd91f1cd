// Package ops is the operator's window into a running agent (SPEC section
// 8): health checks with Kubernetes-style liveness and readiness, the drain
// of a worker whose critical dependency is gone, the Prometheus vocabulary
// every package uses (Namespace, the 12 categories, LatencyBuckets,
// SizeBuckets, DurationBuckets), the chorus_health_* and chorus_system_*
// metrics, the /metrics handler, and the ops HTTP server. Other packages
// register their own metrics on the registry the worker builds and add
// their routes to the same mux.
//
// A Health holds a set of named checks, registered by the package that
// owns the state they probe. Run executes every check once at start and
// then each on its own interval (default 30 s), each run bounded by the
// check's timeout (default 10 s). Routes serves the results:
//
//	GET /health         overall Report: status, reason, draining, checks;
//	                    200 when healthy or degraded, 503 when unhealthy
//	                    or starting
//	GET /health/live    liveness: 200 {"status":"alive"} while the process
//	                    serves HTTP and its check scheduler keeps its
//	                    schedule; 503 {"status":"wedged","stale":[...]}
//	                    when a check's latest run is older than twice its
//	                    interval plus its timeout. Failing dependencies
//	                    never fail liveness: restarting would not fix them.
//	GET /health/ready   readiness: 200 only when every critical check has
//	                    run and passed its latest run and the worker is not
//	                    draining; otherwise 503 with status not_ready (and
//	                    the failing checks) or draining (and the reason)
//	GET /health/checks  per check, sorted by name: name, critical, status
//	                    (healthy, unhealthy, starting), healthy, message,
//	                    latency_ms, last_run, runs, consecutive_failures,
//	                    interval_ms, timeout_ms
//
// Invariants: the overall status is "unhealthy" when a critical check has
// failed its latest run, "starting" while any check has never run,
// "degraded" when only non-critical checks fail (Report.Reason names them
// with their messages) and "healthy" otherwise. A check returning an error
// wrapping ErrSkipped (Skip) counts as healthy, its message saying what
// was not probed. A check that never ran counts as not ready.
//
// Drain: one failed run of a critical check makes the worker unhealthy and
// not ready, nothing more, so a blip (a slow round trip, a server restart)
// costs no work. When a critical check fails FailureThreshold runs in a row
// (HealthConfig, default 3, per check in Check.FailureThreshold), Health
// starts draining: readiness answers 503 from then on, even if the check
// recovers, and OnCritical is called once with the CriticalFailure, whose
// Error names the check. The worker then stops polling Temporal, gives
// running activities its drain timeout to finish (what does not finish is
// cancelled and, after its heartbeat timeout, retried on another agent)
// and exits non-zero with that error. Drain marks a worker draining for
// any other reason (a stop request).
//
// Runs: a run that does not finish within its timeout fails with a timeout
// message even when the check ignores its ctx; while such a run is still
// in flight the next run of that check fails at once instead of piling up
// goroutines. A run requested while another run of the same check is still
// within its timeout (RunChecks during Run) is skipped; the run in flight
// records the result. A panicking check fails; the panic never leaves the
// package. Results of runs cut short because the ctx given to Run or
// RunChecks ended are discarded, so shutting down does not turn the report
// red. Checks are registered before Run starts; Register refuses new
// checks while Run is active.
//
// Metrics: with HealthConfig.Metrics, the check table is read at scrape
// time (chorus_health_status, _check_up, _ready, _draining, _live, ...)
// and each run is counted and timed (chorus_health_check_runs_total,
// _check_duration_seconds, _check_transitions_total). RegisterSystem adds
// the process's and host's resources (chorus_system_*), RegisterStandard
// client_golang's go_* and process_* collectors, MetricsHandler serves a
// registry. No registry is global: the worker builds one in run().
//
// Serve runs an http.Server with a ReadHeaderTimeout on a listener from
// Listen and shuts it down gracefully (in-flight requests get 5 s) when its
// ctx ends. Listen reports a busy address in words an operator recognises.
//
// Concurrency: all Health methods are safe for concurrent use. A single
// mutex guards the check table and the drain state; check functions and
// OnCritical run outside it, each check in its own goroutine, and may run
// concurrently with checks of other names but never with another run of
// the same check. The collectors only read under that mutex.
package ops
