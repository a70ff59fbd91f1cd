package main

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// body is what every benchmark message carries: the typed path puts it in
// Envelope.Data after redaction, the raw path publishes it as is.
type body struct {
	// Phase tells a measured message from a warm-up probe or a message of
	// an earlier phase still in flight.
	Phase int `json:"phase"`
	Seq   int `json:"seq"`
	// SentNS is the publish time in nanoseconds since the run's base time,
	// read from the monotonic clock before redaction and encoding.
	SentNS    int64 `json:"sent_ns"`
	Publisher int   `json:"publisher"`
	// Note is filler text with one credential-shaped string, so the
	// redactor has something to replace on every message.
	Note string `json:"note"`
}

// filler returns size bytes of word-like text that starts with a fake
// credential the default SHHH rules redact.
func filler(rng *rand.Rand, size int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	var b strings.Builder
	b.WriteString("progress: build green, password=hunter2-bench ")
	for b.Len() < size {
		for range 3 + rng.IntN(6) {
			b.WriteByte(letters[rng.IntN(len(letters))])
		}
		b.WriteByte(' ')
	}
	return b.String()[:max(size, 0)]
}

// collector records the deliveries of one phase on an n-node network. It
// is shared by every receiving goroutine and guarded by its mutex.
type collector struct {
	base  time.Time
	phase int
	n, m  int
	want  int

	mu      sync.Mutex
	seen    [][]bool        // [seq][receiver]
	lat     []time.Duration // one per first delivery
	last    []time.Duration // per message: latency of its last receiver
	copies  []int           // per message: receivers reached
	got     int
	dups    int
	foreign int // messages of another phase or unparsable
	done    chan struct{}
}

// newCollector expects m messages, each to reach every node but its
// publisher.
func newCollector(base time.Time, phase, n, m int) *collector {
	c := &collector{
		base: base, phase: phase, n: n, m: m, want: m * (n - 1),
		seen:   make([][]bool, m),
		last:   make([]time.Duration, m),
		copies: make([]int, m),
		lat:    make([]time.Duration, 0, m*(n-1)),
		done:   make(chan struct{}),
	}
	for i := range c.seen {
		c.seen[i] = make([]bool, n)
	}
	return c
}

// receive records that node got payload at elapsed (time since base).
func (c *collector) receive(node int, payload []byte, elapsed time.Duration) {
	var b body
	err := json.Unmarshal(payload, &b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || b.Phase != c.phase || b.Seq < 0 || b.Seq >= c.m || node == b.Publisher {
		c.foreign++
		return
	}
	if c.seen[b.Seq][node] {
		c.dups++
		return
	}
	c.seen[b.Seq][node] = true
	d := elapsed - time.Duration(b.SentNS)
	c.lat = append(c.lat, d)
	c.last[b.Seq] = max(c.last[b.Seq], d)
	c.copies[b.Seq]++
	c.got++
	if c.got == c.want {
		close(c.done)
	}
}

// complete reports whether message seq has reached every other node.
func (c *collector) complete(seq int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.copies[seq] == c.n-1
}

// result is what a phase measured.
type result struct {
	want, got, dups int
	lat             []time.Duration // per delivery
	allPeers        []time.Duration // per fully delivered message
}

func (c *collector) result() result {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := result{want: c.want, got: c.got, dups: c.dups, lat: slices.Clone(c.lat)}
	for i, d := range c.last {
		if c.copies[i] == c.n-1 {
			r.allPeers = append(r.allPeers, d)
		}
	}
	return r
}

// percentile returns the nearest-rank q-quantile of ds in milliseconds,
// sorting ds in place; 0 for no samples.
func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	i = min(max(i, 0), len(ds)-1)
	return float64(ds[i]) / float64(time.Millisecond)
}
