package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

// removals counts the stopped containers being removed in the background
// and keeps the failures for Close.
type removals struct {
	mu      sync.Mutex
	pending int
	// done is closed while pending is 0 and replaced when it rises.
	done chan struct{}
	errs []error
}

func newRemovals() *removals {
	done := make(chan struct{})
	close(done)
	return &removals{done: done}
}

func (m *removals) add() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending == 0 {
		m.done = make(chan struct{})
	}
	m.pending++
}

func (m *removals) finish(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.errs = append(m.errs, err)
	}
	m.pending--
	if m.pending == 0 {
		close(m.done)
	}
}

// idle waits until no removal is pending or ctx ends.
func (m *removals) idle(ctx context.Context) error {
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for container removal: %w", context.Cause(ctx))
	}
}

// wait waits until no removal is pending (each is bounded by
// cleanupTimeout) and returns, and forgets, the failures so far.
func (m *removals) wait() error {
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	<-done
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := m.errs
	m.errs = nil
	return errors.Join(errs...)
}

// removeLater removes container id, and then the empty host directories
// dirs in order, in the background. It must be called only once the
// container has stopped (or when it never ran): removal is bookkeeping,
// not containment.
func (r *Runner) removeLater(ctx context.Context, id string, dirs ...string) {
	r.removals.add()
	go func() {
		err := r.remove(ctx, id, dirs...)
		if err != nil {
			r.metrics.removalFail.Inc()
		}
		r.removals.finish(err)
	}()
}

// remove force-removes container id and then the empty directories dirs,
// which it may have mounted. A container that is already gone is not an
// error.
func (r *Runner) remove(ctx context.Context, id string, dirs ...string) error {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	began := time.Now()
	err := r.cli.ContainerRemove(cctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && cerrdefs.IsNotFound(err) {
		err = nil
	}
	r.metrics.op(opRemove, began, err)
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	r.log.Debug("sandbox container removed", "container", id)
	for _, dir := range dirs {
		// os.Remove, not RemoveAll: a pool slot that still holds files
		// holds a workspace's files, which are not ours to delete.
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove pool slot of container %s: %w", id, err)
		}
	}
	return nil
}
