package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
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
	typed   *typedNet
	topics  []*pubsub.Topic
	subs    []*pubsub.Subscription
	stop    context.CancelFunc
	readers sync.WaitGroup
}

func joinBare(t *typedNet, base time.Time, recv receiver) (_ *bareView, err error) {
	life, stop := context.WithCancel(context.Background())
	v := &bareView{typed: t, stop: stop}
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
		v.topics = append(v.topics, topic)
		sub, err := topic.Subscribe(pubsub.WithBufferSize(1024))
		if err != nil {
			return nil, fmt.Errorf("subscribe bare %d: %w", i, err)
		}
		v.subs = append(v.subs, sub)
		self, err := peer.Decode(node.ID())
		if err != nil {
			return nil, err
		}
		v.readers.Go(func() {
			for {
				m, err := sub.Next(life)
				if err != nil {
					return
				}
				at := time.Since(base)
				if m.GetFrom() == self {
					continue
				}
				recv(i, m.GetData(), at)
			}
		})
	}
	return v, nil
}

func (v *bareView) size() int { return len(v.topics) }

func (v *bareView) connect(ctx context.Context, from, to int) error {
	return v.typed.connect(ctx, from, to)
}

func (v *bareView) waitMesh(ctx context.Context, node, peers int) error {
	return v.typed.nodes[node].WaitMesh(ctx, bareTopic, peers)
}

func (v *bareView) publish(ctx context.Context, node int, b body) error {
	data, err := jsonBody(b)
	if err != nil {
		return err
	}
	return v.topics[node].Publish(ctx, data)
}

// drops are counted per node, for both paths, by the typed side.
func (v *bareView) drops() int64 { return 0 }

// close ends the subscriptions; the topics close with their nodes.
func (v *bareView) close() error {
	for _, s := range v.subs {
		s.Cancel()
	}
	v.stop()
	v.readers.Wait()
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
	into := func(cur *atomic.Pointer[collector]) receiver {
		return func(node int, payload []byte, at time.Duration) {
			if c := cur.Load(); c != nil {
				c.receive(node, payload, at)
			}
		}
	}
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

	ct := newCollector(base, measuredPhase, n, o.Messages)
	cr := newCollector(base, measuredPhase, n, o.Messages)
	curTyped.Store(ct)
	curRaw.Store(cr)
	var mem0 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0 := cpuTime()
	pubs := publishAll(ctx, o, []network{typed, bare}, round%2, base, note)
	// One deadline for both paths' deliveries; what has not arrived by
	// then counts as lost.
	drain, stopDrain := context.WithTimeout(ctx, o.Drain)
	defer stopDrain()
	for _, done := range []chan struct{}{ct.done, cr.done} {
		select {
		case <-done:
		case <-drain.Done():
		}
		if err := ctx.Err(); err != nil {
			return phaseResult{}, phaseResult{}, err
		}
	}
	cpu := cpuTime() - cpu0
	var mem1 runtime.MemStats
	runtime.ReadMemStats(&mem1)

	rt := phaseResult{result: ct.result(), shared: true, setup: setup, cpu: cpu,
		alloc: mem1.TotalAlloc - mem0.TotalAlloc, gcs: int(mem1.NumGC - mem0.NumGC)}
	rr := rt
	rr.result = cr.result()
	rt.publishCalls, rt.publishErrs, rt.elapsed = pubs[0].calls, pubs[0].errs, pubs[0].elapsed
	rr.publishCalls, rr.publishErrs, rr.elapsed = pubs[1].calls, pubs[1].errs, pubs[1].elapsed
	rt.drops = typed.drops()
	rt.rejections = typed.rejections()
	rt.redactions = typed.redactor.Stats().Redactions
	if rt.auditEntries, err = typed.verifyAudit(); err != nil {
		return phaseResult{}, phaseResult{}, err
	}
	return rt, rr, nil
}
