package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/gossip"
	"chorus/ops"
)

// Health check schedule of the probes this file adds (the others are
// registered next to the state they check, in run.go).
const (
	// probeInterval is the SPEC's default: often enough that a lost mesh
	// shows within a minute.
	probeInterval = ops.DefaultInterval
	// probeTimeout bounds the gossip probes; a DHT put and get over a few
	// peers takes well under a second on a LAN.
	probeTimeout = ops.DefaultTimeout
)

// newHealth builds the worker's Health on reg: a critical check failing
// o.drainFailures runs in a row drains the worker, reported once on the
// returned channel.
func newHealth(o options, logger *slog.Logger, reg prometheus.Registerer) (*ops.Health, <-chan ops.CriticalFailure, error) {
	drained := make(chan ops.CriticalFailure, 1)
	cfg := ops.DefaultHealthConfig()
	cfg.Logger = logger.With("component", "health")
	cfg.FailureThreshold = o.drainFailures
	cfg.Metrics = reg
	cfg.OnCritical = func(f ops.CriticalFailure) {
		select {
		case drained <- f:
		default: // already draining
		}
	}
	h, err := ops.New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("--drain-failures: %w", err)
	}
	return h, drained, nil
}

// registerProcessMetrics adds the Go, process and chorus_system_*
// collectors to reg.
func registerProcessMetrics(reg prometheus.Registerer, dataDir string) error {
	if err := ops.RegisterStandard(reg); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return ops.RegisterSystem(reg, ops.SystemConfig{DataDir: dataDir})
}

// registerMeshChecks adds the gossip probes: the pubsub loopback probe
// and, with the DHT on, the DHT put/get probe. Neither is critical: a node
// that cannot gossip still executes the tasks Temporal gives it.
func registerMeshChecks(h *ops.Health, n *gossip.Node) error {
	if err := h.Register(ops.Check{Name: "pubsub", Interval: probeInterval, Timeout: probeTimeout, Func: n.ProbePubSub}); err != nil {
		return err
	}
	if n.DHTMode() == gossip.DHTOff {
		return nil
	}
	return h.Register(ops.Check{Name: "dht", Interval: probeInterval, Timeout: probeTimeout, Func: func(ctx context.Context) error {
		err := n.ProbeDHT(ctx)
		if errors.Is(err, gossip.ErrNoDHTPeers) {
			return ops.Skip("no peers in the dht routing table yet")
		}
		return err
	}})
}

// pinger is a task provider that can say whether it answers.
type pinger interface {
	Ping(ctx context.Context) error
}

// registerProviderCheck adds the provider reachability probe. It is not
// critical: a board that is down delays claims and completions, which the
// workflows retry, but running executions can still finish.
func registerProviderCheck(h *ops.Health, p pinger) error {
	return h.Register(ops.Check{Name: "provider", Interval: ops.DefaultInterval, Timeout: ops.DefaultTimeout, Func: p.Ping})
}

// waitOrDrain blocks until ctx ends (a clean stop: nil) or a critical
// check drains the worker (its failure, which becomes the exit status).
// Either way /health/ready turns 503 before the caller's deferred stops
// run, so a load balancer or orchestrator stops sending work first.
func waitOrDrain(ctx context.Context, h *ops.Health, drained <-chan ops.CriticalFailure, logger *slog.Logger, stopTimeout time.Duration) error {
	select {
	case <-ctx.Done():
		h.Drain("shutting down")
		logger.Info("shutting down")
		return nil
	case f := <-drained:
		logger.Error("draining: a critical health check keeps failing; the workers stop polling, running executions get the drain timeout to finish, then the process exits",
			"check", f.Check, "failures", f.Failures, "error", f.Message, "drain_timeout", stopTimeout)
		return fmt.Errorf("%w; drained", f)
	}
}
