// Package docker implements sandbox.Runner with the Docker Engine API. It is
// the only package in chorus that imports the Docker client.
//
// A Runner runs each sandbox.Spec in a fresh container created from a local
// image; nothing is ever pulled. EnsureImage builds the default image,
// DefaultImage, from scratch around a statically linked busybox (Debian's
// busybox-static), so a machine with a daemon but no registry access can
// run sandboxes. Reap removes containers an earlier, crashed process left
// behind; call it at start-up. KeepWarm optionally keeps a pool of
// containers started ahead of time for fast starts (see Warm pool).
//
// # Invariants
//
// Every container Run uses, whether created for the run or taken from the
// warm pool, serves that one run only and:
//   - has no network (network mode "none": only a loopback interface);
//   - has a read-only root file system; the command can write only to
//     /workspace, a read-write bind mount of Spec.Workspace (for a pool
//     container, of a slot directory holding Spec.Workspace's entries for
//     the run) that is also the working directory, and to /tmp, a 64 MiB
//     tmpfs mounted noexec,nosuid;
//   - runs as Spec.User, never root (uid 65534 by default), with every
//     capability dropped and no-new-privileges set;
//   - is limited by Spec.MemoryBytes (no swap on top), Spec.NanoCPUs and
//     Spec.PidsLimit;
//   - carries the labels LabelAgent (the runner's agent id, which the spec
//     cannot override) and LabelManaged, so Reap can find it, besides
//     Spec.Labels (the pool's template's, for a pool container);
//   - runs its command no longer than the Run call: when Spec.Timeout
//     passes or ctx is cancelled it is killed, and Run returns only once it
//     has stopped. The stopped container is then force-removed in the
//     background, so that the caller does not wait for the daemon's
//     bookkeeping: WaitRemoved waits for those removals, Close waits for
//     them and returns their failures, and Reap removes whatever a crash
//     left. Kill and remove use a fresh, bounded context because ctx may
//     already be done. Other cleanup failures are joined to Run's error,
//     never only logged.
//
// The command's exit status, a timeout and an out-of-memory kill are
// reported in sandbox.Result; an error means the sandbox itself failed (or
// ctx was cancelled) and may come with a partial Result.
//
// # Warm pool
//
// With Config.Pool.Size > 0, KeepWarm keeps that many containers created,
// attached and started ahead of time, each running a shell that waits for
// a script on stdin. A run whose Spec matches the pool's template (same
// image, limits and user; labels a subset) takes one, which skips creating
// and starting a container; any other run, or a run finding the pool
// empty, is cold. Result.Warm says which. A pool container is created by
// the same code as a cold one and serves exactly one run: every invariant
// above holds for it. The run moves the entries of Spec.Workspace into the
// container's slot directory (mounted at /workspace, given the
// workspace's mode and owner), sends the environment and command, which
// the shell execs as PID 1 with stdin on /dev/null, and moves the entries
// back once the container has stopped. The command sees what a cold
// container shows it, with these known differences: the pool container's
// configuration (docker inspect) has the waiting shell as its command,
// stdin open and the slot as the mount source; the environment keeps its
// values but not its order; and a command name is resolved by the image's
// shell, so a missing command is exit code 127 with the shell's message
// rather than a start error, and a busybox shell also finds its applets
// off PATH. Labels are fixed at creation, so a run that needs its own
// labels on the container (say, a task id) always runs cold. While a warm
// run is in progress the directory Spec.Workspace is empty; if the
// process crashes then, the entries stay in the slot, which the next
// KeepWarm logs and leaves alone. The pool container is attached to when
// it is created, so none of its output is missed either.
//
// # Output
//
// Run attaches to the container's stdout and stderr before starting it and
// demultiplexes the stream as it arrives into Spec.OutputPath, a
// sandbox.Tail and Spec.OnOutput. The container's log driver is "none": the
// attach stream is the only copy, so the daemon stores nothing that a
// chatty command could grow without bound, and no log read-back races the
// container's removal. Stdout and stderr are combined as they arrive; each
// keeps its own order, but they are separate pipes, so a line written to
// stderr may arrive before an earlier line written to stdout.
//
// # Workspace permissions
//
// The caller prepares Spec.Workspace so that Spec.User can write to it
// (for the default user, chown -R 65534:65534 or chmod 0777 on the
// directories the command writes to). Run does not change permissions on
// the host: it cannot know which files the command needs, and silently
// opening up a caller's tree would be worse than a clear "Permission
// denied" in the output.
//
// # Resource usage
//
// Result.Usage is read from the daemon's stats stream, which samples about
// once a second: commands shorter than that report zero. Result.Duration is
// always set.
//
// # Metrics
//
// With Config.Metrics a Runner counts its runs by mode (warm, cold) and
// outcome (ok, nonzero, timeout, oom, cancelled, invalid, and error: a
// failure of the sandbox itself, which is what alerts watch), times them
// and each Docker API call, records output size, CPU and peak memory, and
// reads the warm pool and the pending removals at scrape time
// (chorus_sandbox_*, metrics.go).
//
// # Concurrency
//
// A Runner is safe for concurrent use by multiple goroutines, including
// concurrent Run calls and one KeepWarm. Besides immutable configuration
// and a Docker client it holds the idle pool containers and the count of
// pending removals, each behind its own mutex. Spec.OnOutput is called
// from a goroutine owned by Run, never concurrently with itself, and must
// not block: the container waits while it runs. Close must not be called
// while Run or KeepWarm calls are in flight.
package docker
