// Package docker implements sandbox.Runner with the Docker Engine API. It is
// the only package in chorus that imports the Docker client.
//
// A Runner runs each sandbox.Spec in a fresh container created from a local
// image; nothing is ever pulled. EnsureImage builds the default image,
// DefaultImage, from scratch around a statically linked busybox (Debian's
// busybox-static), so a machine with a daemon but no registry access can
// run sandboxes. Reap removes containers an earlier, crashed process left
// behind; call it at start-up.
//
// # Invariants
//
// Every container Run creates:
//   - has no network (network mode "none": only a loopback interface);
//   - has a read-only root file system; the command can write only to
//     /workspace, a read-write bind mount of Spec.Workspace that is also the
//     working directory, and to /tmp, a 64 MiB tmpfs mounted noexec,nosuid;
//   - runs as Spec.User, never root (uid 65534 by default), with every
//     capability dropped and no-new-privileges set;
//   - is limited by Spec.MemoryBytes (no swap on top), Spec.NanoCPUs and
//     Spec.PidsLimit;
//   - carries the labels LabelAgent (the runner's agent id, which the spec
//     cannot override) and LabelManaged, so Reap can find it;
//   - lives no longer than the Run call: when Spec.Timeout passes or ctx is
//     cancelled it is killed, and it is always force-removed before Run
//     returns. Kill and remove use a fresh, bounded context because ctx may
//     already be done. Cleanup failures are joined to the returned error,
//     never only logged.
//
// The command's exit status, a timeout and an out-of-memory kill are
// reported in sandbox.Result; an error means the sandbox itself failed (or
// ctx was cancelled) and may come with a partial Result.
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
// # Concurrency
//
// A Runner holds only immutable configuration and a Docker client, and is
// safe for concurrent use by multiple goroutines, including concurrent Run
// calls. Spec.OnOutput is called from a goroutine owned by Run, never
// concurrently with itself, and must not block: the container waits while
// it runs. Close must not be called while calls are in flight.
package docker
