package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"

	"chorus/sandbox"
)

// Labels set on every container the Runner creates.
const (
	// LabelAgent holds the Config.AgentID of the runner that created the
	// container; Reap removes by it.
	LabelAgent = "chorus.agent"
	// LabelManaged is "true" on every container and image chorus creates.
	LabelManaged = "chorus.managed"
)

// DefaultImage is the sandbox image EnsureImage builds and callers run.
const DefaultImage = "chorus-sandbox:1"

// ErrImageNotFound is returned by Run when Spec.Image is not present
// locally. Nothing is ever pulled: build it with EnsureImage.
var ErrImageNotFound = errors.New("sandbox image not found locally")

// Config configures a Runner. AgentID and Logger are required.
type Config struct {
	// AgentID identifies this agent; it is written to LabelAgent on every
	// container so that Reap finds the orphans of an earlier crash.
	AgentID string
	// Logger receives lifecycle events at debug level.
	Logger *slog.Logger
	// Pool configures the warm pool that KeepWarm maintains. The zero
	// value (Size 0) disables it: every run creates its container.
	Pool PoolConfig
	// Metrics receives the chorus_sandbox_* metrics (metrics.go); nil
	// means none.
	Metrics prometheus.Registerer
}

// Validate reports the first missing or bad field.
func (c Config) Validate() error {
	switch {
	case c.AgentID == "":
		return errors.New("docker config: AgentID: must not be empty")
	case c.Logger == nil:
		return errors.New("docker config: Logger: must not be nil")
	}
	return c.Pool.validate()
}

// Runner runs sandbox.Specs as Docker containers. It implements
// sandbox.Runner and is safe for concurrent use.
type Runner struct {
	cli     *client.Client
	agentID string
	log     *slog.Logger
	// pool is nil when Config.Pool.Size is 0.
	pool     *pool
	removals *removals
	metrics  *metrics

	// egressMu guards egressGateway, the gateway IP of EgressNetwork,
	// looked up (or the network created) on the first run that needs it.
	egressMu      sync.Mutex
	egressGateway string
}

var _ sandbox.Runner = (*Runner)(nil)

// New returns a Runner talking to the daemon named by the DOCKER_HOST
// family of environment variables (the local socket by default). It does
// not contact the daemon; call Ping for that.
func New(cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{agentID: cfg.AgentID, log: cfg.Logger, removals: newRemovals(), metrics: newMetrics()}
	if cfg.Pool.Size > 0 {
		dir, err := filepath.Abs(cfg.Pool.Dir)
		if err != nil {
			return nil, fmt.Errorf("docker config: Pool.Dir: %w", err)
		}
		r.pool = newPool(cfg.Pool, filepath.Join(dir, slotDirName(cfg.AgentID)))
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	r.cli = cli
	if err := r.metrics.register(cfg.Metrics, r); err != nil {
		return nil, errors.Join(err, cli.Close())
	}
	return r, nil
}

// Close waits for the background removal of the containers of finished
// runs, then releases the client's connections. It returns the removal
// failures (the containers stay until Reap) joined with the client's. Call
// it after every Run and KeepWarm has returned.
func (r *Runner) Close() error {
	return errors.Join(r.removals.wait(), r.cli.Close())
}

// WaitRemoved blocks until the background removal of every container whose
// run has returned is done, or ctx ends (it then returns ctx's error).
// Removal failures are returned by Close, not here.
func (r *Runner) WaitRemoved(ctx context.Context) error {
	return r.removals.idle(ctx)
}

// Ping checks that the daemon answers.
func (r *Runner) Ping(ctx context.Context) error {
	_, err := r.cli.Ping(ctx)
	r.metrics.pings.WithLabelValues(result(err)).Inc()
	if err != nil {
		return fmt.Errorf("docker daemon at %s is unreachable: %w", r.cli.DaemonHost(), err)
	}
	return nil
}

// Reap force-removes every container labelled with this runner's agent id,
// running or not: orphans of an earlier process that crashed mid-run. It
// returns how many it removed. Call it at start-up, before any Run or
// KeepWarm (later, call WaitRemoved first: Reap would race the background
// removals of finished runs).
func (r *Runner) Reap(ctx context.Context) (int, error) {
	list, err := r.cli.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", LabelAgent+"="+r.agentID)),
	})
	if err != nil {
		return 0, fmt.Errorf("list containers of agent %s: %w", r.agentID, err)
	}
	var errs []error
	n := 0
	for _, c := range list {
		err := r.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		switch {
		case err == nil:
			n++
			r.metrics.reaped.Inc()
			r.log.Info("reaped orphan container", "container", c.ID, "agent", r.agentID)
		case cerrdefs.IsNotFound(err):
			// Gone already: someone else removed it.
		default:
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID, err))
		}
	}
	return n, errors.Join(errs...)
}
