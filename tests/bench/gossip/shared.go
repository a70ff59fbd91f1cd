package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// bareTopic carries the raw path in the shared mode.
const bareTopic = "chorus-bench/bare/v1"

// bareView is the raw path on the typed path's own nodes (the shared
// mode): a topic each node joins with gossip.Node.JoinBare, so raw
// GossipSub messages travel over the same hosts, connections, router and
// mesh as the typed ones, with none of chorus's envelope, validation,
// redaction or audit. The nodes belong to the typedNet, which closes them.
type bareView struct {
	bareTopics
	typed       *typedNet
	stopReading context.CancelFunc
}

func joinBare(t *typedNet, base time.Time, recv receiver) (_ *bareView, err error) {
	life, stop := context.WithCancel(context.Background())
	v := &bareView{typed: t, stopReading: stop}
	defer func() {
		if err != nil {
			err = errors.Join(err, v.close())
		}
	}()
	for i, node := range t.nodes {
		topic, err := node.JoinBare(bareTopic)
		if err != nil {
			return nil, err
		}
		self, err := peer.Decode(node.ID())
		if err != nil {
			return nil, err
		}
		if err := v.add(life, i, topic, self, base, recv); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (v *bareView) connect(ctx context.Context, from, to int) error {
	return v.typed.connect(ctx, from, to)
}

func (v *bareView) waitMesh(ctx context.Context, node, peers int) error {
	return v.typed.nodes[node].WaitMesh(ctx, bareTopic, peers)
}

// drops are counted per node, for both paths, by the typed side.
func (v *bareView) drops() int64 { return 0 }

// close ends the subscriptions; the topics close with their nodes.
func (v *bareView) close() error {
	v.stop(v.stopReading)
	return nil
}

// runShared measures both paths in one round on one set of n nodes: the
// typed path on its topic, the raw path on a bare topic of the same nodes,
// their messages alternating on one schedule (which goes first alternates
// by round). Machine noise, GC and scheduling then hit both paths alike.
// CPU and allocation cannot be told apart per path here; both results
// carry the process totals with shared set.
func runShared(ctx context.Context, o options, n, round int, edges []edge, deg []int, note string) (_, _ phaseResult, err error) {
	base := time.Now()
	var curTyped, curRaw atomic.Pointer[collector]
	dir, err := os.MkdirTemp("", "chorus-bench-gossip-")
	if err != nil {
		return phaseResult{}, phaseResult{}, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	typed, err := startTyped(ctx, dir, n, base, into(&curTyped))
	if err != nil {
		return phaseResult{}, phaseResult{}, err
	}
	defer func() { err = errors.Join(err, typed.close()) }()
	bare, err := joinBare(typed, base, into(&curRaw))
	if err != nil {
		return phaseResult{}, phaseResult{}, err
	}
	defer func() { err = errors.Join(err, bare.close()) }()

	t0 := time.Now()
	if err := connectAll(ctx, typed, edges); err != nil {
		return phaseResult{}, phaseResult{}, err
	}
	if err := waitReady(ctx, o, typed, deg, base, note, &curTyped); err != nil {
		return phaseResult{}, phaseResult{}, fmt.Errorf("typed path: %w", err)
	}
	if err := waitReady(ctx, o, bare, deg, base, note, &curRaw); err != nil {
		return phaseResult{}, phaseResult{}, fmt.Errorf("raw path: %w", err)
	}
	setup := time.Since(t0)

	rs, err := measure(ctx, o, []network{typed, bare}, []*atomic.Pointer[collector]{&curTyped, &curRaw}, round%2, base, note)
	if err != nil {
		return phaseResult{}, phaseResult{}, err
	}
	rt, rr := rs[0], rs[1]
	rt.setup, rr.setup = setup, setup
	rt.drops = typed.drops()
	if err := typed.record(&rt); err != nil {
		return phaseResult{}, phaseResult{}, err
	}
	return rt, rr, nil
}
