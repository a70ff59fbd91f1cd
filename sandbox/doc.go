// Package sandbox defines what running a command in an isolated container
// means, independent of the container engine: a Spec (image, command,
// workspace, limits, timeout) goes in and a Result (exit code, bounded output
// tail, duration, resource usage) comes out. The Docker implementation lives
// in sandbox/docker.
//
// Invariants: limits and timeouts are fields of Spec, never globals; a
// container's lifetime is tied to the ctx passed to Run, so cancelling the
// ctx kills and removes the container. A Runner may serve a run from a
// container prepared ahead of time (Result.Warm); the isolation and the
// Result mean the same either way. Spec and Result are plain values.
package sandbox
