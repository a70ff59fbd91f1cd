// Package activities holds the Temporal activities of the task workflow: the
// side effects (provider calls, sandbox runs) that the deterministic workflow
// code in package workflows may not do itself.
//
// Activities are methods on small structs holding their dependencies
// (Agent, Provider, Executor), registered explicitly by the worker; the
// workflow references them through nil pointers. Every activity takes one
// struct and returns one struct.
//
// Invariants: activities are at-least-once, so each side effect is
// idempotent — a repeated Claim by the same agent keeps its fence, a repeated
// Complete with the same fence is a no-op on the provider, and each Execute
// attempt runs in a fresh workspace. Permanent failures are returned as
// non-retryable application errors with one of the ErrType* types so the
// workflow can branch on them. Large outputs stay on disk; results carry a
// bounded tail and a file reference.
//
// Metrics: a *Metrics from NewMetrics, set on each struct, counts provider
// calls and task outcomes (chorus_tasks_*) and the AI rung's runs, steps,
// corrections and budget stops (chorus_ai_*); labels never hold a task
// key.
//
// Concurrency: the structs are read-only after construction and safe for
// concurrent activity executions.
package activities
