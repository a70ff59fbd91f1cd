package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"

	"chorus/sandbox"
)

const (
	// workspaceDir is where Spec.Workspace is mounted; it is also the
	// working directory.
	workspaceDir = "/workspace"
	// tmpfsOptions gives the command a small scratch /tmp (the root is
	// read-only) from which nothing can be executed. Its pages count
	// against the memory limit.
	tmpfsOptions = "rw,noexec,nosuid,size=64m"
	// cleanupTimeout bounds create, kill, inspect and remove, which run on
	// a context detached from the caller's: they must happen even when the
	// caller's ctx is already done.
	cleanupTimeout = 30 * time.Second
	// drainTimeout bounds the wait for the output stream to end once the
	// container has exited; the daemon normally closes it at once.
	drainTimeout = 5 * time.Second
)

// errTimedOut is the cause of the run context when Spec.Timeout fires.
var errTimedOut = errors.New("sandbox timeout")

// Run runs spec in a container and returns once the container has exited
// or been killed; the stopped container is then removed in the background
// (see Close and WaitRemoved). See the package documentation for the
// isolation applied. With a warm pool, a matching spec is served by a
// container started ahead of time (Result.Warm); see PoolConfig.
//
// A command that exits non-zero, exceeds Spec.Timeout (Result.TimedOut) or
// is killed for memory (Result.OOMKilled) yields a Result and a nil error.
// Cancelling ctx kills the container and returns the partial Result with an
// error wrapping the ctx's cause. Failures to clean up are joined to the
// returned error, except background removal failures, which Close returns.
//
// The caller must make Spec.Workspace writable by Spec.User (uid 65534 by
// default), for example with chmod 0777 or chown -R 65534:65534; Run does
// not change host permissions.
func (r *Runner) Run(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error) {
	r.metrics.inFlight.Inc()
	defer r.metrics.inFlight.Dec()
	res, err := r.run(ctx, spec)
	r.metrics.ran(res, err)
	return res, err
}

// run is Run without the metrics.
func (r *Runner) run(ctx context.Context, spec sandbox.Spec) (res sandbox.Result, err error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return res, err
	}
	if runsAsRoot(spec.User) {
		return res, fmt.Errorf("%w: user: %q is root", sandbox.ErrInvalidSpec, spec.User)
	}
	workspace, err := filepath.Abs(spec.Workspace)
	if err != nil {
		return res, fmt.Errorf("%w: workspace: %w", sandbox.ErrInvalidSpec, err)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("run sandbox: %w", context.Cause(ctx))
	}

	out, err := newOutput(spec)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, out.close()) }()

	if r.pool != nil {
		w, reason := r.pool.take(spec, workspace)
		if w != nil {
			res, served, err := r.runWarm(ctx, spec, workspace, w, out)
			if served {
				return res, err
			}
			reason = err.Error()
		}
		r.metrics.misses.Inc()
		r.log.Debug("sandbox run is cold", "reason", reason)
	}
	return r.runCold(ctx, spec, workspace, out)
}

// runCold runs spec in a container created for it.
func (r *Runner) runCold(ctx context.Context, spec sandbox.Spec, workspace string, out *output) (res sandbox.Result, err error) {
	cfg, host := r.containerConfig(spec, workspace)
	if len(spec.AllowHosts) > 0 {
		env, stop, err := r.startEgress(ctx, spec.AllowHosts)
		if err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, stop()) }()
		cfg.Env = append(cfg.Env, env...)
		host.NetworkMode = container.NetworkMode(EgressNetwork)
		r.metrics.egressRuns.Inc()
	}
	id, err := r.create(ctx, cfg, host)
	if err != nil {
		return res, err
	}
	res.ContainerID = id
	defer r.removeLater(ctx, id)

	// Attach before start so that no output is missed; the hijacked
	// connection streams output as the command writes it.
	attachStart := time.Now()
	stream, err := r.cli.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	r.metrics.op(opAttach, attachStart, err)
	if err != nil {
		return res, fmt.Errorf("attach container %s: %w", id, err)
	}
	// Registered before start, so an instant exit is not missed.
	exit := r.watchExit(ctx, id)
	start := func(runCtx context.Context) error {
		began := time.Now()
		err := r.cli.ContainerStart(runCtx, id, container.StartOptions{})
		r.metrics.op(opStart, began, err)
		if err != nil {
			return fmt.Errorf("start container %s: %w", id, err)
		}
		return nil
	}
	err = r.supervise(ctx, spec, id, stream, exit, start, out, &res)
	return res, err
}

// containerConfig returns the configuration of a container running spec
// with workspace mounted at /workspace: every isolation property the
// package documents is set here, for cold and pool containers alike.
func (r *Runner) containerConfig(spec sandbox.Spec, workspace string) (*container.Config, *container.HostConfig) {
	pids := spec.PidsLimit
	cfg := &container.Config{
		Image:        spec.Image,
		Cmd:          spec.Command,
		Env:          spec.Env,
		WorkingDir:   workspaceDir,
		User:         spec.User,
		Labels:       r.containerLabels(spec.Labels),
		AttachStdout: true,
		AttachStderr: true,
	}
	host := &container.HostConfig{
		NetworkMode:    "none",
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		Resources: container.Resources{
			Memory:     spec.MemoryBytes,
			MemorySwap: spec.MemoryBytes,
			NanoCPUs:   spec.NanoCPUs,
			PidsLimit:  &pids,
		},
		Tmpfs: map[string]string{"/tmp": tmpfsOptions},
		Mounts: []mount.Mount{{
			Type:   mount.TypeBind,
			Source: workspace,
			Target: workspaceDir,
		}},
		// Output is read through the attach stream, so the daemon keeps
		// no copy: a chatty command cannot fill the host's disk.
		LogConfig:  container.LogConfig{Type: "none"},
		AutoRemove: false,
	}
	return cfg, host
}

// containerLabels returns extra plus the runner's own labels, which extra
// cannot override.
func (r *Runner) containerLabels(extra map[string]string) map[string]string {
	labels := make(map[string]string, len(extra)+2)
	maps.Copy(labels, extra)
	labels[LabelAgent] = r.agentID
	labels[LabelManaged] = "true"
	return labels
}

// create creates the container. It uses a detached context so that a
// container the daemon creates is always known to the caller, which
// removes it.
func (r *Runner) create(ctx context.Context, cfg *container.Config, host *container.HostConfig) (string, error) {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	began := time.Now()
	created, err := r.cli.ContainerCreate(cctx, cfg, host, nil, nil, "")
	r.metrics.op(opCreate, began, err)
	if cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("create container: %w: %s (sandbox images are built locally with EnsureImage, never pulled)", ErrImageNotFound, cfg.Image)
	}
	if err != nil {
		return "", fmt.Errorf("create container from %s: %w", cfg.Image, err)
	}
	r.log.Debug("sandbox container created", "container", created.ID, "image", cfg.Image)
	return created.ID, nil
}

// exitWatch follows one container's next exit through the daemon's wait
// endpoint. done is closed once status or err is set.
type exitWatch struct {
	done   chan struct{}
	status container.WaitResponse
	err    error
	cancel context.CancelFunc
}

// watchExit starts watching for the next exit of container id. Call it
// before the container starts so that an instant exit is not missed, and
// call stop when done.
func (r *Runner) watchExit(ctx context.Context, id string) *exitWatch {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := &exitWatch{done: make(chan struct{}), cancel: cancel}
	waitC, errC := r.cli.ContainerWait(wctx, id, container.WaitConditionNextExit)
	go func() {
		defer close(w.done)
		select {
		case w.status = <-waitC:
		case w.err = <-errC:
		}
	}()
	return w
}

// stop ends the watch and waits for its goroutine.
func (w *exitWatch) stop() {
	w.cancel()
	<-w.done
}

// supervise starts the created (or waiting) container with start, streams
// its output and waits for it to exit, killing it when ctx is done or
// spec.Timeout passes. It fills res and stops exit. When it returns after
// start was called, the container is no longer running unless a kill
// failed, which is in the returned error.
func (r *Runner) supervise(ctx context.Context, spec sandbox.Spec, id string, stream types.HijackedResponse,
	exit *exitWatch, start func(context.Context) error, out *output, res *sandbox.Result) error {
	defer exit.stop()
	runCtx, cancel := context.WithTimeoutCause(ctx, spec.Timeout, errTimedOut)
	defer cancel()

	copied := make(chan struct{})
	var copyErr error
	go func() {
		defer close(copied)
		_, copyErr = stdcopy.StdCopy(out, out, stream.Reader)
	}()
	defer func() {
		stream.Close()
		<-copied
	}()

	started := time.Now()
	if err := start(runCtx); err != nil && runCtx.Err() == nil {
		return err
	}
	r.log.Debug("sandbox container started", "container", id, "warm", res.Warm)
	statsCtx, stopStats := context.WithCancel(ctx)
	defer stopStats()
	usage := r.watchUsage(statsCtx, id)

	var errs []error
	killed := false
	select {
	case <-exit.done:
		if exit.err != nil {
			errs = append(errs, fmt.Errorf("wait container %s: %w", id, exit.err))
			killed = true
			break
		}
		res.ExitCode = int(exit.status.StatusCode)
		if exit.status.Error != nil && exit.status.Error.Message != "" {
			errs = append(errs, fmt.Errorf("wait container %s: %s", id, exit.status.Error.Message))
		}
	case <-runCtx.Done():
		killed = true
	}

	cctx, cancelCleanup := cleanupContext(ctx)
	defer cancelCleanup()
	if killed {
		errs = append(errs, r.kill(cctx, id)...)
	}
	res.Duration = time.Since(started)

	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	select {
	case <-copied:
		if copyErr != nil {
			errs = append(errs, fmt.Errorf("read output of container %s: %w", id, copyErr))
		}
	case <-timer.C:
		r.log.Warn("sandbox output still open after exit; truncating", "container", id, "after", drainTimeout)
	}
	stream.Close()
	<-copied
	res.OutputTail = out.tail.String()
	res.OutputBytes = out.tail.Len

	stopStats()
	res.Usage = <-usage

	inspectStart := time.Now()
	info, err := r.cli.ContainerInspect(cctx, id)
	r.metrics.op(opInspect, inspectStart, err)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("inspect container %s: %w", id, err))
	case info.State != nil:
		res.ExitCode = info.State.ExitCode
		res.OOMKilled = info.State.OOMKilled
		if !killed && res.ExitCode == 137 && !res.OOMKilled {
			res.OOMKilled = r.awaitOOMFlag(cctx, id)
		}
	}

	// runCtx is done either because the timeout fired (a Result) or
	// because ctx is done (an error); a failed wait alone is in errs.
	if killed && runCtx.Err() != nil {
		if errors.Is(context.Cause(runCtx), errTimedOut) {
			res.TimedOut = true
		} else {
			errs = append([]error{fmt.Errorf("run container %s: %w", id, context.Cause(ctx))}, errs...)
		}
	}
	r.log.Debug("sandbox container exited", "container", id, "exit_code", res.ExitCode,
		"timed_out", res.TimedOut, "oom_killed", res.OOMKilled, "duration", res.Duration, "warm", res.Warm)
	return errors.Join(errs...)
}

// awaitOOMFlag re-reads the OOM flag of a container that died of SIGKILL
// without us killing it: the daemon records the kernel's OOM event
// asynchronously and may report the exit first. It gives up after a second.
func (r *Runner) awaitOOMFlag(ctx context.Context, id string) bool {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for range 10 {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		info, err := r.cli.ContainerInspect(ctx, id)
		if err != nil || info.State == nil {
			return false
		}
		if info.State.OOMKilled {
			return true
		}
	}
	return false
}

// kill sends SIGKILL and waits until the container is no longer running,
// so that its exit state can be inspected.
func (r *Runner) kill(ctx context.Context, id string) []error {
	var errs []error
	began := time.Now()
	err := r.cli.ContainerKill(ctx, id, "KILL")
	// Conflict: it exited (or never started) in the meantime.
	if err != nil && cerrdefs.IsConflict(err) {
		err = nil
	}
	r.metrics.op(opKill, began, err)
	if err != nil {
		errs = append(errs, fmt.Errorf("kill container %s: %w", id, err))
	}
	waitC, waitErrC := r.cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-waitErrC:
		errs = append(errs, fmt.Errorf("wait for killed container %s: %w", id, err))
	}
	r.log.Debug("sandbox container killed", "container", id)
	return errs
}

// watchUsage follows the container's stats stream until ctx is done and
// then delivers the last CPU time and the peak memory seen. Usage is best
// effort: the daemon samples about once a second, so a command shorter
// than that reports zero.
func (r *Runner) watchUsage(ctx context.Context, id string) <-chan sandbox.Usage {
	c := make(chan sandbox.Usage, 1)
	go func() {
		var u sandbox.Usage
		defer func() { c <- u }()
		resp, err := r.cli.ContainerStats(ctx, id, true)
		if err != nil {
			return // no usage; the run itself is unaffected
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var s container.StatsResponse
			if dec.Decode(&s) != nil {
				return // stream ended: container gone or ctx done
			}
			u.CPUTimeMS = max(u.CPUTimeMS, int64(s.CPUStats.CPUUsage.TotalUsage/uint64(time.Millisecond)))
			// MaxUsage is the cgroup v1 high-water mark; cgroup v2
			// reports only the current usage.
			peak := max(s.MemoryStats.MaxUsage, s.MemoryStats.Usage)
			u.PeakMemoryBytes = max(u.PeakMemoryBytes, int64(peak))
		}
	}()
	return c
}

// cleanupContext returns a context that keeps ctx's values but not its
// cancellation, bounded by cleanupTimeout.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// runsAsRoot reports whether a uid[:gid] user string names uid 0.
func runsAsRoot(user string) bool {
	uid, _, _ := strings.Cut(user, ":")
	if uid == "root" {
		return true
	}
	n, err := strconv.ParseUint(uid, 10, 32)
	return err == nil && n == 0
}

// output fans the container's combined output out to the optional output
// file, the tail and the OnOutput hook. Only the goroutine copying the
// attach stream writes to it.
type output struct {
	file    *os.File
	fileErr error
	tail    *sandbox.Tail
	hook    func([]byte)
}

func newOutput(spec sandbox.Spec) (*output, error) {
	o := &output{tail: sandbox.NewTail(spec.TailBytes), hook: spec.OnOutput}
	if spec.OutputPath != "" {
		f, err := os.OpenFile(spec.OutputPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open output file: %w", err)
		}
		o.file = f
	}
	return o, nil
}

// Write never fails: an error here would stop the copy, and a container
// whose output is not read blocks on its next write. A file error is kept
// and reported by close.
func (o *output) Write(p []byte) (int, error) {
	if o.file != nil && o.fileErr == nil {
		if _, err := o.file.Write(p); err != nil {
			o.fileErr = err
		}
	}
	o.tail.Write(p)
	if o.hook != nil {
		o.hook(bytes.Clone(p))
	}
	return len(p), nil
}

func (o *output) close() error {
	if o.file == nil {
		return nil
	}
	if err := errors.Join(o.fileErr, o.file.Close()); err != nil {
		return fmt.Errorf("output file %s: %w", o.file.Name(), err)
	}
	return nil
}
