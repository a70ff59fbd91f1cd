package licensing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeClock is a virtual clock the tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestAuthority opens an authority in dir on clock.
func newTestAuthority(t *testing.T, dir string, clock *fakeClock) *Authority {
	t.Helper()
	cfg := DefaultAuthorityConfig()
	cfg.DataDir = dir
	cfg.Clock = clock.Now
	cfg.AdminToken = "test-admin-token-0123456789"
	a, err := NewAuthority(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	return a
}

func issue(t *testing.T, a *Authority, nodes int, cluster string) License {
	t.Helper()
	l, err := a.Issue(context.Background(), IssueRequest{Tier: "standard", Nodes: nodes, ClusterID: cluster, ExpiresIn: "720h"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// switchable serves h over real HTTP, and while down aborts every
// connection, as a crashed or partitioned authority would look.
type switchable struct {
	down     atomic.Bool
	requests atomic.Int64 // every request that reached the server
	srv      *httptest.Server
}

func serve(t *testing.T, h http.Handler) *switchable {
	t.Helper()
	s := &switchable{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if s.down.Load() {
			panic(http.ErrAbortHandler)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func client(t *testing.T, url string) *Client {
	t.Helper()
	c, err := NewClient(url, &http.Client{Timeout: 5 * time.Second}, "test-admin-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestGate(t *testing.T, l Leaser, lic License, node string, clock *fakeClock, state string) *Gate {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Authority = l
	cfg.LicenseID, cfg.ClusterID, cfg.NodeID = lic.ID, lic.ClusterID, node
	cfg.Clock = clock.Now
	cfg.StatePath = state
	g, err := NewGate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// value reads the one sample of a counter or gauge.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	close(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", &m)
	return 0
}
