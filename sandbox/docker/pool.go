package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"

	"chorus/sandbox"
)

// Pool tuning. The pool only ever saves latency, so its failures are
// retried slowly rather than returned.
const (
	// refillBackoffMin and refillBackoffMax bound the wait before retrying
	// a failed refill (image missing, daemon restarting): long enough not
	// to hammer the daemon, short enough to recover within a task or two.
	refillBackoffMin = time.Second
	refillBackoffMax = 30 * time.Second
	// slotWorkspace is the directory of a slot that is bind-mounted at
	// /workspace.
	slotWorkspace = "workspace"
)

// waitingShell is the command of every pool container: a shell that reads
// the run's script from stdin. Data written to an attached stdin is
// buffered, so the script can be sent whether or not the shell has started
// reading yet.
var waitingShell = []string{"/bin/sh", "-s"}

// shellSetVars are the variables the waiting shell sets in its environment
// at start-up; the script unsets them (and restores the image's values, if
// any) so the command sees the environment a cold container would give it.
var shellSetVars = []string{"PWD", "SHLVL"}

// ErrNoPool is returned by KeepWarm and WaitWarm when Config.Pool.Size is 0.
var ErrNoPool = errors.New("no warm pool configured (Config.Pool.Size is 0)")

// PoolConfig configures the warm pool: containers created and started
// ahead of time, each waiting for one run, so that a run skips container
// creation and start-up. Size 0, the default, disables it.
//
// A pool container is created from Spec exactly as a cold run's container
// is (see the package documentation), except that its command is a shell
// waiting on stdin and its /workspace is the slot directory
// Dir/<AgentID>/slot-*/workspace. A run it serves moves the entries of
// Spec.Workspace into the slot, gives the slot directory the workspace's
// mode and owner, sends the command and environment to the shell, which
// execs the command as PID 1, and moves the entries back once the
// container has stopped. Dir must therefore be on the same file system as
// the workspaces (a run whose workspace is elsewhere runs cold), must not
// be shared with another process using the same AgentID, and the pool's
// image must have /bin/sh. Concurrent runs must not share a workspace, and
// the caller must not change a workspace while its run is in progress.
type PoolConfig struct {
	// Size is how many started, idle containers KeepWarm keeps ready.
	Size int
	// Dir holds the pool's slot directories. Required when Size > 0.
	Dir string
	// Spec is the template of every pool container: its Image,
	// MemoryBytes, NanoCPUs, PidsLimit, User (zero values take the
	// sandbox defaults) and Labels are fixed when a container is created.
	// A run is served warm only when its Spec has the same Image, limits
	// and User, and its Labels are a subset of these (LabelAgent and
	// LabelManaged aside: the runner sets those). Its other fields are
	// ignored.
	Spec sandbox.Spec
}

func (c PoolConfig) validate() error {
	switch {
	case c.Size < 0:
		return errors.New("docker config: Pool.Size: must not be negative")
	case c.Size == 0:
		return nil
	case c.Dir == "":
		return errors.New("docker config: Pool.Dir: must not be empty when Pool.Size > 0")
	}
	s := c.Spec.WithDefaults()
	// Command and Workspace belong to runs, not to the template.
	s.Command, s.Workspace = waitingShell, c.Dir
	if err := s.Validate(); err != nil {
		return fmt.Errorf("docker config: Pool.Spec: %w", err)
	}
	if runsAsRoot(s.User) {
		return fmt.Errorf("docker config: Pool.Spec: %w: user: %q is root", sandbox.ErrInvalidSpec, s.User)
	}
	return nil
}

// warmContainer is a started pool container whose shell waits for a
// script on the attached stdin.
type warmContainer struct {
	id string
	// slot is the host directory of the container; workspace, inside it,
	// is mounted at /workspace.
	slot      string
	workspace string
	// shellEnv holds the image's values of shellSetVars.
	shellEnv []string
	stream   types.HijackedResponse
	exit     *exitWatch
}

// pool holds the idle warm containers. Run takes them, KeepWarm adds
// them; the mutex guards the fields below it.
type pool struct {
	size int
	// spec is the template, with defaults applied.
	spec sandbox.Spec
	// dir is Config.Pool.Dir/<agent id>, the parent of the slots.
	dir string

	mu sync.Mutex
	// keeping is set while KeepWarm runs; idle is empty otherwise.
	keeping bool
	// idle lists the containers waiting for a run, oldest first.
	idle []*warmContainer
	// changed is closed, and replaced, whenever idle or keeping changes.
	changed chan struct{}
}

func newPool(cfg PoolConfig, dir string) *pool {
	return &pool{size: cfg.Size, spec: cfg.Spec.WithDefaults(), dir: dir, changed: make(chan struct{})}
}

// notify wakes the waiters on changed. p.mu must be held.
func (p *pool) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// start marks KeepWarm as running; it reports false if it already was.
func (p *pool) start() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keeping {
		return false
	}
	p.keeping = true
	p.notify()
	return true
}

// stop marks KeepWarm as stopped and returns the idle containers, which
// the caller removes.
func (p *pool) stop() []*warmContainer {
	p.mu.Lock()
	defer p.mu.Unlock()
	idle := p.idle
	p.idle = nil
	p.keeping = false
	p.notify()
	return idle
}

// state returns the number of live idle containers and a channel closed
// at the next change.
func (p *pool) state() (int, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, w := range p.idle {
		if !w.exited() {
			n++
		}
	}
	return n, p.changed
}

// add makes w available to runs.
func (p *pool) add(w *warmContainer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = append(p.idle, w)
	p.notify()
}

// evict removes w from the idle list and reports whether it was there.
func (p *pool) evict(w *warmContainer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.Index(p.idle, w)
	if i < 0 {
		return false
	}
	p.idle = slices.Delete(p.idle, i, i+1)
	p.notify()
	return true
}

// take returns a live idle container that can serve spec, or nil and the
// reason why the run must be cold. The caller owns the container.
func (p *pool) take(spec sandbox.Spec, workspace string) (*warmContainer, string) {
	if reason := p.mismatch(spec); reason != "" {
		return nil, reason
	}
	if !sameFileSystem(workspace, p.dir) {
		return nil, "workspace is not on the pool directory's file system"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, w := range p.idle {
		if w.exited() {
			continue // its evictOnExit goroutine replaces it
		}
		p.idle = slices.Delete(p.idle, i, i+1)
		p.notify()
		return w, ""
	}
	return nil, "no idle warm container"
}

// unsafeName matches what may not appear in a directory name made from an
// agent id.
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// slotDirName returns the name of the agent's directory under
// PoolConfig.Dir: the agent id, made safe as one path element.
func slotDirName(agentID string) string {
	name := unsafeName.ReplaceAllString(agentID, "_")
	if name == "." || name == ".." {
		name = strings.ReplaceAll(name, ".", "_")
	}
	return name
}

// envName is what the waiting shell can export.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// mismatch returns why spec (with defaults) cannot run in a pool
// container, or "".
func (p *pool) mismatch(spec sandbox.Spec) string {
	if len(spec.AllowHosts) > 0 {
		return "the task allows network hosts; pool containers have no network"
	}
	t := p.spec
	switch {
	case spec.Image != t.Image:
		return "image differs from the pool's"
	case spec.MemoryBytes != t.MemoryBytes, spec.NanoCPUs != t.NanoCPUs, spec.PidsLimit != t.PidsLimit:
		return "limits differ from the pool's"
	case spec.User != t.User:
		return "user differs from the pool's"
	}
	for k, v := range spec.Labels {
		if k == LabelAgent || k == LabelManaged {
			continue // the runner overrides these on every container
		}
		if tv, ok := t.Labels[k]; !ok || tv != v {
			return "labels are not a subset of the pool's"
		}
	}
	for _, e := range spec.Env {
		name, _, ok := strings.Cut(e, "=")
		if !ok || !envName.MatchString(name) || strings.ContainsRune(e, 0) {
			return "an environment entry is not NAME=value with a shell variable name"
		}
	}
	for _, a := range spec.Command {
		if strings.ContainsRune(a, 0) {
			return "the command holds a NUL byte"
		}
	}
	if strings.HasPrefix(spec.Command[0], "-") {
		// exec would take it for an option, and not every shell's exec
		// accepts "--".
		return "the command name starts with '-'"
	}
	return ""
}

func (w *warmContainer) exited() bool {
	select {
	case <-w.exit.done:
		return true
	default:
		return false
	}
}

// KeepWarm keeps Config.Pool.Size started containers ready for Run until
// ctx is done, refilling the pool as runs take them. It then removes the
// idle containers and returns the failures to do so (nil when clean).
// Failed refills are logged and retried with a backoff: runs stay cold
// meanwhile. At start it deletes the empty slot directories an earlier
// process left in Config.Pool.Dir; a slot still holding files (of a run
// interrupted by a crash) is logged and left alone. It returns ErrNoPool
// when the pool is disabled. Call Reap before it, and at most one KeepWarm
// per Runner at a time.
func (r *Runner) KeepWarm(ctx context.Context) error {
	p := r.pool
	if p == nil {
		return fmt.Errorf("keep warm: %w", ErrNoPool)
	}
	if !p.start() {
		return errors.New("keep warm: already running for this runner")
	}
	if err := r.clearSlots(); err != nil {
		p.stop()
		return err
	}
	backoff := refillBackoffMin
	for ctx.Err() == nil {
		ready, changed := p.state()
		if ready >= p.size {
			select {
			case <-changed:
			case <-ctx.Done():
			}
			continue
		}
		w, err := r.fill(ctx)
		r.metrics.refills.WithLabelValues(result(err)).Inc()
		if err != nil {
			r.log.Warn("warm pool refill failed", "error", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			backoff = min(2*backoff, refillBackoffMax)
			continue
		}
		backoff = refillBackoffMin
		p.add(w)
		go r.evictOnExit(ctx, w)
	}
	var errs []error
	for _, w := range p.stop() {
		w.exit.stop()
		w.stream.Close()
		errs = append(errs, r.remove(ctx, w.id, w.workspace, w.slot))
	}
	r.log.Debug("warm pool stopped")
	return errors.Join(errs...)
}

// WaitWarm blocks until at least n pool containers are ready or ctx ends.
// KeepWarm must be running for the pool to fill.
func (r *Runner) WaitWarm(ctx context.Context, n int) error {
	if r.pool == nil {
		return fmt.Errorf("wait warm: %w", ErrNoPool)
	}
	if n > r.pool.size {
		return fmt.Errorf("wait warm: %d containers exceeds the pool size %d", n, r.pool.size)
	}
	for {
		ready, changed := r.pool.state()
		if ready >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d warm containers (%d ready): %w", n, ready, context.Cause(ctx))
		}
	}
}

// clearSlots creates the pool directory and deletes the empty slots left
// in it by an earlier process.
func (r *Runner) clearSlots() error {
	dir := r.pool.dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keep warm: create pool directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("keep warm: read pool directory: %w", err)
	}
	for _, e := range entries {
		slot := filepath.Join(dir, e.Name())
		if err := removeEmpty(filepath.Join(slot, slotWorkspace), slot); err != nil {
			r.log.Warn("pool slot left by an earlier process holds files; leaving it", "slot", slot, "error", err)
		}
	}
	return nil
}

// removeEmpty removes each directory, which must be empty, in order.
func removeEmpty(dirs ...string) error {
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// fill creates, attaches to and starts one pool container.
func (r *Runner) fill(ctx context.Context) (*warmContainer, error) {
	p := r.pool
	shellEnv, err := r.shellEnv(ctx, p.spec.Image)
	if err != nil {
		return nil, err
	}
	slot, err := os.MkdirTemp(p.dir, "slot-")
	if err != nil {
		return nil, fmt.Errorf("create pool slot: %w", err)
	}
	ws := filepath.Join(slot, slotWorkspace)
	// Readable by any user, so that the container's user can enter it at
	// start; a run gives it the workspace's own mode and owner.
	if err := os.Mkdir(ws, 0o755); err != nil {
		return nil, errors.Join(fmt.Errorf("create pool slot: %w", err), removeEmpty(slot))
	}
	cfg, host := r.containerConfig(p.spec, ws)
	cfg.Cmd = waitingShell
	cfg.Env = nil
	cfg.AttachStdin, cfg.OpenStdin, cfg.StdinOnce = true, true, true
	id, err := r.create(ctx, cfg, host)
	if err != nil {
		return nil, errors.Join(err, removeEmpty(ws, slot))
	}

	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	attachStart := time.Now()
	stream, err := r.cli.ContainerAttach(cctx, id, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	r.metrics.op(opAttach, attachStart, err)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("attach container %s: %w", id, err), r.remove(ctx, id, ws, slot))
	}
	exit := r.watchExit(ctx, id)
	if err := r.cli.ContainerStart(cctx, id, container.StartOptions{}); err != nil {
		exit.stop()
		stream.Close()
		return nil, errors.Join(fmt.Errorf("start container %s: %w", id, err), r.remove(ctx, id, ws, slot))
	}
	r.log.Debug("warm container ready", "container", id, "slot", slot)
	return &warmContainer{id: id, slot: slot, workspace: ws, shellEnv: shellEnv, stream: stream, exit: exit}, nil
}

// shellEnv returns the image's environment entries for shellSetVars.
func (r *Runner) shellEnv(ctx context.Context, image string) ([]string, error) {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	info, err := r.cli.ImageInspect(cctx, image)
	if err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", image, err)
	}
	var env []string
	if info.Config != nil {
		for _, e := range info.Config.Env {
			name, _, _ := strings.Cut(e, "=")
			if slices.Contains(shellSetVars, name) {
				env = append(env, e)
			}
		}
	}
	return env, nil
}

// evictOnExit replaces w when its container exits while idle (someone
// killed it, the daemon restarted). A run or KeepWarm's exit that took w
// stops w.exit, which ends this goroutine.
func (r *Runner) evictOnExit(ctx context.Context, w *warmContainer) {
	<-w.exit.done
	if !r.pool.evict(w) {
		return
	}
	r.metrics.evictions.Inc()
	r.log.Warn("idle warm container exited; replacing it", "container", w.id, "exit_code", w.exit.status.StatusCode, "error", w.exit.err)
	w.stream.Close()
	r.removeLater(ctx, w.id, w.workspace, w.slot)
}

// retire discards a taken container that will not run anything. dirs are
// the slot directories to delete with it.
func (r *Runner) retire(ctx context.Context, w *warmContainer, dirs ...string) {
	w.exit.stop()
	w.stream.Close()
	r.removeLater(ctx, w.id, dirs...)
}

// runWarm runs spec in the pool container w. served is false, with err
// saying why, when the workspace could not be handed to w: nothing ran,
// and the caller runs spec cold.
func (r *Runner) runWarm(ctx context.Context, spec sandbox.Spec, workspace string, w *warmContainer, out *output) (res sandbox.Result, served bool, err error) {
	if err := enterSlot(workspace, w.workspace); err != nil {
		if undoErr := moveEntries(w.workspace, workspace); undoErr != nil {
			r.retire(ctx, w)
			return res, true, fmt.Errorf("hand workspace to container %s: %w; moving it back: %w (files left in %s)", w.id, err, undoErr, w.workspace)
		}
		r.retire(ctx, w, w.workspace, w.slot)
		return res, false, fmt.Errorf("hand workspace to warm container: %w", err)
	}
	res.Warm = true
	res.ContainerID = w.id

	script := warmScript(spec.Command, spec.Env, w.shellEnv)
	start := func(runCtx context.Context) (err error) {
		began := time.Now()
		defer func() { r.metrics.op(opWarmStart, began, err) }()
		conn := w.stream.Conn
		stopDeadline := context.AfterFunc(runCtx, func() { conn.SetWriteDeadline(time.Now()) })
		defer stopDeadline()
		_, err = io.WriteString(conn, script)
		if err == nil {
			err = w.stream.CloseWrite()
		}
		if err == nil {
			return nil
		}
		// The shell may still be waiting: stop it before the workspace
		// moves back.
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		return errors.Join(fmt.Errorf("send command to container %s: %w", w.id, err), errors.Join(r.kill(cctx, w.id)...))
	}
	err = r.supervise(ctx, spec, w.id, w.stream, w.exit, start, out, &res)

	if leaveErr := leaveSlot(w.workspace, workspace); leaveErr != nil {
		r.removeLater(ctx, w.id)
		return res, true, errors.Join(err, fmt.Errorf("return workspace from container %s: %w (files left in %s)", w.id, leaveErr, w.workspace))
	}
	r.removeLater(ctx, w.id, w.workspace, w.slot)
	return res, true, err
}

// enterSlot gives slot the mode and owner of workspace and moves the
// entries of workspace into it.
func enterSlot(workspace, slot string) error {
	fi, err := os.Stat(workspace)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("workspace %s is not a directory", workspace)
	}
	slotInfo, err := os.Stat(slot)
	if err != nil {
		return err
	}
	uid, gid, ok := owner(fi)
	slotUID, slotGID, slotOK := owner(slotInfo)
	if ok && slotOK && (uid != slotUID || gid != slotGID) {
		if err := os.Lchown(slot, uid, gid); err != nil {
			return err
		}
	}
	if err := os.Chmod(slot, dirMode(fi)); err != nil {
		return err
	}
	return moveEntries(workspace, slot)
}

// leaveSlot moves the entries of slot back into workspace and gives
// workspace the slot's mode, which the command may have changed.
func leaveSlot(slot, workspace string) error {
	if err := moveEntries(slot, workspace); err != nil {
		return err
	}
	fi, err := os.Stat(slot)
	if err != nil {
		return err
	}
	return os.Chmod(workspace, dirMode(fi))
}

// dirMode returns the permission bits of fi in the form os.Chmod takes.
func dirMode(fi fs.FileInfo) fs.FileMode {
	return fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// moveEntries renames every entry of directory from into directory to.
func moveEntries(from, to string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// sameFileSystem reports whether a and b are on one file system, so that
// entries can be renamed between them.
func sameFileSystem(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false
	}
	da, ok := device(fa)
	db, ok2 := device(fb)
	return ok && ok2 && da == db
}

// warmScript returns the script the waiting shell runs: it restores the
// environment a cold container would have, adds env, and replaces itself
// with argv, whose stdin is /dev/null opened read-write as Docker's is.
func warmScript(argv, env, shellEnv []string) string {
	var b strings.Builder
	b.WriteString("unset " + strings.Join(shellSetVars, " ") + "\n")
	for _, e := range slices.Concat(shellEnv, env) {
		b.WriteString("export " + shellQuote(e) + "\n")
	}
	b.WriteString("exec")
	for _, a := range argv {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString(" <>/dev/null\n")
	return b.String()
}

// shellQuote quotes s as one POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
