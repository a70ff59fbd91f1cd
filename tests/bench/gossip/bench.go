package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// receiver gets each message a node delivers to its application, with the
// time since the run's base at which it arrived.
type receiver func(node int, payload []byte, at time.Duration)

// network is one of the two paths on n in-process hosts.
type network interface {
	size() int
	connect(ctx context.Context, from, to int) error
	waitMesh(ctx context.Context, node, peers int) error
	publish(ctx context.Context, node int, b body) error
	drops() int64
	close() error
}

func jsonBody(b body) ([]byte, error) {
	data, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	return data, nil
}

// Phases: warm-up probes use probePhase+k, measured messages measuredPhase.
const (
	measuredPhase = 1
	probePhase    = 100
	// probesNeeded consecutive probes must reach every node before the
	// measurement starts.
	probesNeeded = 3
	// probeWait bounds the wait for one probe.
	probeWait = 3 * time.Second
	// meshPeers is the mesh size each node waits for, or its degree if
	// smaller: GossipSub grafts up to D=6, at least Dlo=5, of its peers,
	// but a peer that pruned a node keeps it out for a minute, so a node
	// of degree 3 may sit at 2 for that long. The probes are the real gate.
	meshPeers = 2
)

// phaseResult is one path's measurement in one round.
type phaseResult struct {
	result
	publishCalls []time.Duration
	publishErrs  int
	cpu          time.Duration
	elapsed      time.Duration // first publish to last publish
	setup        time.Duration // connect to warm-up done
	drops        int64
	rejections   map[string]int64
	redactions   int64
	auditEntries int64
	alloc        uint64 // bytes allocated by the process, publish and drain
	gcs          int    // GC cycles in the same window
	// shared: measured together with the other path on the same nodes
	// (cpu, alloc and gcs are then the process's, for both paths).
	shared bool
}

// kind names a path.
type kind string

const (
	kindTyped kind = "typed"
	kindRaw   kind = "raw"
)

func benchSize(ctx context.Context, log *slog.Logger, o options, n int) (report, error) {
	rng := rand.New(rand.NewPCG(uint64(o.Seed), uint64(n)))
	edges, deg := topology(rng, n, o.Dials)
	note := filler(rng, o.Size)
	results := map[kind][]phaseResult{}
	for round := range o.Rounds {
		if o.Mesh == meshShared {
			log.Info("round start", "nodes", n, "mesh", o.Mesh, "round", round+1)
			t, r, err := runShared(ctx, o, n, round, edges, deg, note)
			if err != nil {
				return report{}, fmt.Errorf("round %d: %w", round+1, err)
			}
			log.Info("round done", "nodes", n, "round", round+1, "delivered", t.got, "raw_delivered", r.got, "want", t.want,
				"p99_ms", percentile(t.lat, 0.99), "raw_p99_ms", percentile(r.lat, 0.99), "setup", t.setup.Round(time.Millisecond))
			results[kindTyped] = append(results[kindTyped], t)
			results[kindRaw] = append(results[kindRaw], r)
			continue
		}
		order := []kind{kindTyped, kindRaw}
		if round%2 == 1 {
			order = []kind{kindRaw, kindTyped}
		}
		for _, k := range order {
			log.Info("phase start", "nodes", n, "path", string(k), "round", round+1)
			r, err := runPhase(ctx, o, k, n, edges, deg, note)
			if err != nil {
				return report{}, fmt.Errorf("%s path, round %d: %w", k, round+1, err)
			}
			log.Info("phase done", "nodes", n, "path", string(k), "round", round+1,
				"delivered", r.got, "want", r.want, "p99_ms", percentile(r.lat, 0.99), "setup", r.setup.Round(time.Millisecond))
			results[k] = append(results[k], r)
		}
	}
	return newReport(o, n, len(edges), results[kindTyped], results[kindRaw]), nil
}

func runPhase(ctx context.Context, o options, k kind, n int, edges []edge, deg []int, note string) (_ phaseResult, err error) {
	// Every goroutine of this path's hosts inherits the label, so a CPU
	// profile separates the paths: go tool pprof -tagfocus path=typed.
	defer pprof.SetGoroutineLabels(ctx)
	ctx = pprof.WithLabels(ctx, pprof.Labels("path", string(k)))
	pprof.SetGoroutineLabels(ctx)
	base := time.Now()
	var current atomic.Pointer[collector]
	recv := into(&current)
	dir, err := os.MkdirTemp("", "chorus-bench-gossip-")
	if err != nil {
		return phaseResult{}, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()

	var net network
	var typed *typedNet
	switch k {
	case kindTyped:
		typed, err = startTyped(ctx, dir, n, base, recv)
		net = typed
	default:
		net, err = startRaw(ctx, n, base, recv)
	}
	if err != nil {
		return phaseResult{}, err
	}
	defer func() { err = errors.Join(err, net.close()) }()

	t0 := time.Now()
	if err := connectAll(ctx, net, edges); err != nil {
		return phaseResult{}, err
	}
	if err := waitReady(ctx, o, net, deg, base, note, &current); err != nil {
		return phaseResult{}, err
	}
	setup := time.Since(t0)

	rs, err := measure(ctx, o, []network{net}, []*atomic.Pointer[collector]{&current}, 0, base, note)
	if err != nil {
		return phaseResult{}, err
	}
	res := rs[0]
	res.setup = setup
	res.drops = net.drops()
	if typed != nil {
		if err := typed.record(&res); err != nil {
			return phaseResult{}, err
		}
	}
	return res, nil
}

// into returns a receiver that hands deliveries to the collector cur
// holds, if any.
func into(cur *atomic.Pointer[collector]) receiver {
	return func(node int, payload []byte, at time.Duration) {
		if c := cur.Load(); c != nil {
			c.receive(node, payload, at)
		}
	}
}

// measure publishes o.Messages on every path in nets (publishAll, slot 0
// to path first) while a fresh collector per path, installed in curs,
// gathers its deliveries, and waits for all of them against one drain
// deadline: what has not arrived by then counts as lost. Each result
// carries the process's CPU time, allocation and GC cycles over the whole
// window.
func measure(ctx context.Context, o options, nets []network, curs []*atomic.Pointer[collector], first int, base time.Time, note string) ([]phaseResult, error) {
	cs := make([]*collector, len(nets))
	for p, net := range nets {
		cs[p] = newCollector(base, measuredPhase, net.size(), o.Messages)
		curs[p].Store(cs[p])
	}
	var mem0, mem1 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0 := cpuTime()
	pubs := publishAll(ctx, o, nets, first, base, note)
	drain, stop := context.WithTimeout(ctx, o.Drain)
	defer stop()
	for _, c := range cs {
		select {
		case <-c.done:
		case <-drain.Done():
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&mem1)
	out := make([]phaseResult, len(nets))
	for p, c := range cs {
		out[p] = phaseResult{
			result: c.result(), cpu: cpu, shared: len(nets) > 1,
			alloc: mem1.TotalAlloc - mem0.TotalAlloc, gcs: int(mem1.NumGC - mem0.NumGC),
			publishCalls: pubs[p].calls, publishErrs: pubs[p].errs, elapsed: pubs[p].elapsed,
		}
	}
	return out, nil
}

// connectAll dials every edge at once.
func connectAll(ctx context.Context, net network, edges []edge) error {
	errs := make([]error, len(edges))
	var wg sync.WaitGroup
	for i, e := range edges {
		wg.Go(func() { errs[i] = net.connect(ctx, e.From, e.To) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitReady waits until every node has min(degree, meshPeers) mesh peers,
// then until probesNeeded consecutive probes from different publishers
// reach every node: messages published before the mesh forms are lost.
func waitReady(ctx context.Context, o options, net network, deg []int, base time.Time, note string, current *atomic.Pointer[collector]) error {
	ctx, cancel := context.WithTimeout(ctx, o.MeshTimeout)
	defer cancel()
	errs := make([]error, net.size())
	var wg sync.WaitGroup
	for i := range net.size() {
		wg.Go(func() { errs[i] = net.waitMesh(ctx, i, min(deg[i], meshPeers)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wait for mesh: %w", err)
	}
	for k, ok := 0, 0; ok < probesNeeded; k++ {
		c := newCollector(base, probePhase+k, net.size(), 1)
		current.Store(c)
		pub := k % net.size()
		b := body{Phase: probePhase + k, Seq: 0, SentNS: int64(time.Since(base)), Publisher: pub, Note: note}
		if err := net.publish(ctx, pub, b); err != nil {
			return fmt.Errorf("publish probe: %w", err)
		}
		wait := time.NewTimer(probeWait)
		select {
		case <-c.done:
			ok++
		case <-wait.C:
			ok = 0
		case <-ctx.Done():
			wait.Stop()
			return fmt.Errorf("warm-up probes: %w", ctx.Err())
		}
		wait.Stop()
	}
	return nil
}

// published is what one path's publishing did.
type published struct {
	calls   []time.Duration // every publish call's duration
	errs    int             // failed publishes
	elapsed time.Duration   // first publish to last publish
}

// publishAll publishes o.Messages messages on every path in nets on one
// open-loop schedule at o.Rate network-wide: slot k goes to path
// (k+first) mod len(nets), so the paths alternate message by message, and
// message i of a path comes from node i mod n. Each node publishes each
// path from its own goroutine, so a slow publish (or audit append) delays
// only that node's next message on that path.
func publishAll(ctx context.Context, o options, nets []network, first int, base time.Time, note string) []published {
	n := nets[0].size()
	interval := time.Duration(float64(time.Second) / o.Rate)
	queues := make([][]chan int, len(nets))
	out := make([]published, len(nets))
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		firstAt = make([]time.Time, len(nets))
		lastAt  = make([]time.Time, len(nets))
	)
	for p, net := range nets {
		queues[p] = make([]chan int, n)
		for node := range n {
			queues[p][node] = make(chan int, o.Messages/n+1)
			wg.Go(func() {
				for seq := range queues[p][node] {
					start := time.Now()
					b := body{Phase: measuredPhase, Seq: seq, SentNS: int64(start.Sub(base)), Publisher: node, Note: note}
					err := net.publish(ctx, node, b)
					end := time.Now()
					mu.Lock()
					out[p].calls = append(out[p].calls, end.Sub(start))
					if err != nil {
						out[p].errs++
					}
					if firstAt[p].IsZero() || start.Before(firstAt[p]) {
						firstAt[p] = start
					}
					if start.After(lastAt[p]) {
						lastAt[p] = start
					}
					mu.Unlock()
				}
			})
		}
	}
	begin := time.Now()
	timer := time.NewTimer(0)
	<-timer.C
loop:
	for k := range o.Messages * len(nets) {
		timer.Reset(time.Until(begin.Add(time.Duration(k) * interval)))
		select {
		case <-timer.C:
		case <-ctx.Done():
			break loop
		}
		p, seq := (k+first)%len(nets), k/len(nets)
		queues[p][seq%n] <- seq
	}
	timer.Stop()
	for _, qs := range queues {
		for _, q := range qs {
			close(q)
		}
	}
	wg.Wait()
	for p := range out {
		out[p].elapsed = lastAt[p].Sub(firstAt[p])
	}
	return out
}

// cpuTime is the CPU time (user plus system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report is the JSON object printed per network size. Latencies are per
// delivery (one sample per message and receiving node) unless named
// all_peers, which is per message: the latency of its last receiver.
type report struct {
	Nodes    int     `json:"nodes"`
	Mesh     string  `json:"mesh"`
	Messages int     `json:"messages"`
	Rounds   int     `json:"rounds"`
	RateHz   float64 `json:"rate_per_sec"`
	Edges    int     `json:"edges"`
	Seed     int64   `json:"seed"`

	DeliveryRatio    float64 `json:"delivery_ratio"`
	P50MS            float64 `json:"p50_ms"`
	P99MS            float64 `json:"p99_ms"`
	MaxMS            float64 `json:"max_ms"`
	RawDeliveryRatio float64 `json:"raw_delivery_ratio"`
	RawP50MS         float64 `json:"raw_p50_ms"`
	RawP99MS         float64 `json:"raw_p99_ms"`
	RawMaxMS         float64 `json:"raw_max_ms"`
	P50Ratio         float64 `json:"p50_ratio"`
	P99Ratio         float64 `json:"p99_ratio"`
	GoalsMet         bool    `json:"goals_met"`

	AllPeersP99MS    float64 `json:"all_peers_p99_ms"`
	RawAllPeersP99MS float64 `json:"raw_all_peers_p99_ms"`

	PublishCallP50MS    float64 `json:"publish_call_p50_ms"`
	PublishCallP99MS    float64 `json:"publish_call_p99_ms"`
	RawPublishCallP50MS float64 `json:"raw_publish_call_p50_ms"`
	RawPublishCallP99MS float64 `json:"raw_publish_call_p99_ms"`
	PublishErrors       int     `json:"publish_errors"`
	RawPublishErrors    int     `json:"raw_publish_errors"`
	AchievedRate        float64 `json:"achieved_rate_per_sec"`
	RawAchievedRate     float64 `json:"raw_achieved_rate_per_sec"`

	// Per path with -mesh separate; with -mesh shared the paths run in one
	// process window, so only the shared_ figures (over the deliveries of
	// both) are reported.
	CPUMicrosPerDelivery       *float64 `json:"cpu_us_per_delivery,omitempty"`
	RawCPUMicrosPerDelivery    *float64 `json:"raw_cpu_us_per_delivery,omitempty"`
	AllocPerDelivery           *float64 `json:"alloc_bytes_per_delivery,omitempty"`
	RawAllocPerDelivery        *float64 `json:"raw_alloc_bytes_per_delivery,omitempty"`
	GCCycles                   *int     `json:"gc_cycles,omitempty"`
	RawGCCycles                *int     `json:"raw_gc_cycles,omitempty"`
	SharedCPUMicrosPerDelivery *float64 `json:"shared_cpu_us_per_delivery,omitempty"`
	SharedAllocPerDelivery     *float64 `json:"shared_alloc_bytes_per_delivery,omitempty"`
	SharedGCCycles             *int     `json:"shared_gc_cycles,omitempty"`
	Duplicates                 int      `json:"duplicate_deliveries"`
	RawDuplicates              int      `json:"raw_duplicate_deliveries"`
	Drops                      int64    `json:"queue_drops"`
	RawDrops                   int64    `json:"raw_queue_drops"`

	Rejections   map[string]int64 `json:"rejections"`
	Redactions   int64            `json:"redactions"`
	AuditEntries int64            `json:"audit_entries_verified"`
	SetupMS      float64          `json:"setup_ms"`
	RawSetupMS   float64          `json:"raw_setup_ms"`
}

// pooled merges the rounds of one path.
type pooled struct {
	want, got, dups, errs int
	lat, allPeers, calls  []time.Duration
	cpu, elapsed, setup   time.Duration
	drops                 int64
	alloc                 uint64
	gcs                   int
	published             int
}

func pool(rs []phaseResult) pooled {
	var p pooled
	for _, r := range rs {
		p.want += r.want
		p.got += r.got
		p.dups += r.dups
		p.errs += r.publishErrs
		p.lat = append(p.lat, r.lat...)
		p.allPeers = append(p.allPeers, r.allPeers...)
		p.calls = append(p.calls, r.publishCalls...)
		p.cpu += r.cpu
		p.alloc += r.alloc
		p.gcs += r.gcs
		p.elapsed += r.elapsed
		p.setup = max(p.setup, r.setup)
		p.drops += r.drops
		p.published += len(r.publishCalls)
	}
	return p
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return -1 // undefined; JSON cannot carry infinity
	}
	return round3(a / b)
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func newReport(o options, n, edges int, typed, raw []phaseResult) report {
	t, r := pool(typed), pool(raw)
	rep := report{
		Nodes: n, Mesh: o.Mesh, Messages: o.Messages, Rounds: o.Rounds, RateHz: o.Rate, Edges: edges, Seed: o.Seed,
		DeliveryRatio: round3(ratio(float64(t.got), float64(t.want))), RawDeliveryRatio: round3(ratio(float64(r.got), float64(r.want))),
		P50MS: round3(percentile(t.lat, 0.5)), P99MS: round3(percentile(t.lat, 0.99)), MaxMS: round3(percentile(t.lat, 1)),
		RawP50MS: round3(percentile(r.lat, 0.5)), RawP99MS: round3(percentile(r.lat, 0.99)), RawMaxMS: round3(percentile(r.lat, 1)),
		AllPeersP99MS: round3(percentile(t.allPeers, 0.99)), RawAllPeersP99MS: round3(percentile(r.allPeers, 0.99)),
		PublishCallP50MS: round3(percentile(t.calls, 0.5)), PublishCallP99MS: round3(percentile(t.calls, 0.99)),
		RawPublishCallP50MS: round3(percentile(r.calls, 0.5)), RawPublishCallP99MS: round3(percentile(r.calls, 0.99)),
		PublishErrors: t.errs, RawPublishErrors: r.errs,
		Duplicates: t.dups, RawDuplicates: r.dups, Drops: t.drops, RawDrops: r.drops,
		SetupMS: float64(t.setup.Milliseconds()), RawSetupMS: float64(r.setup.Milliseconds()),
		Rejections: map[string]int64{},
	}
	rep.P50Ratio = ratio(rep.P50MS, rep.RawP50MS)
	rep.P99Ratio = ratio(rep.P99MS, rep.RawP99MS)
	rep.GoalsMet = rep.DeliveryRatio == 1 && rep.P99Ratio >= 0 && rep.P99Ratio <= 1.2
	perSec := func(p pooled) float64 {
		if p.elapsed <= 0 || p.published < 2 {
			return 0
		}
		// Each round has published-1 intervals between its first and
		// last publish.
		return round3(float64(p.published-o.Rounds) / p.elapsed.Seconds())
	}
	rep.AchievedRate, rep.RawAchievedRate = perSec(t), perSec(r)
	perDelivery := func(x float64, got int) *float64 {
		if got == 0 {
			return nil
		}
		v := round3(x / float64(got))
		return &v
	}
	if o.Mesh == meshShared {
		// Each result carries the process totals of its round once.
		rep.SharedCPUMicrosPerDelivery = perDelivery(float64(t.cpu.Microseconds()), t.got+r.got)
		rep.SharedAllocPerDelivery = perDelivery(float64(t.alloc), t.got+r.got)
		rep.SharedGCCycles = &t.gcs
	} else {
		rep.CPUMicrosPerDelivery = perDelivery(float64(t.cpu.Microseconds()), t.got)
		rep.RawCPUMicrosPerDelivery = perDelivery(float64(r.cpu.Microseconds()), r.got)
		rep.AllocPerDelivery = perDelivery(float64(t.alloc), t.got)
		rep.RawAllocPerDelivery = perDelivery(float64(r.alloc), r.got)
		rep.GCCycles, rep.RawGCCycles = &t.gcs, &r.gcs
	}
	for _, pr := range typed {
		for k, v := range pr.rejections {
			rep.Rejections[k] += v
		}
		rep.Redactions += pr.redactions
		rep.AuditEntries += pr.auditEntries
	}
	return rep
}

func writeReport(w io.Writer, rep report) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
