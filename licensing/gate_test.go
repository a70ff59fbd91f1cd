package licensing

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// setup is an authority over real HTTP, a license of n seats for cluster
// prod, and a virtual clock shared by both sides.
type setup struct {
	clock *fakeClock
	a     *Authority
	srv   *switchable
	c     *Client
	lic   License
}

func newSetup(t *testing.T, seats int) *setup {
	t.Helper()
	s := &setup{clock: newClock()}
	s.a = newTestAuthority(t, t.TempDir(), s.clock)
	s.srv = serve(t, s.a.Handler())
	s.c = client(t, s.srv.srv.URL)
	s.lic = issue(t, s.a, seats, "prod")
	return s
}

func (s *setup) gate(t *testing.T, node, state string, reg prometheus.Registerer) *Gate {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Authority = s.c
	cfg.LicenseID, cfg.ClusterID, cfg.NodeID = s.lic.ID, "prod", node
	cfg.Clock, cfg.StatePath, cfg.Metrics = s.clock.Now, state, reg
	g, err := NewGate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGateFailsClosedWhenTheAuthorityIsDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there: connection refused
	clock := newClock()
	lic := License{ID: "lic-0123456789abcdef0123456789abcdef", ClusterID: "prod"}
	g := newTestGate(t, client(t, "http://"+addr), lic, "a", clock, filepath.Join(t.TempDir(), "gate.json"))
	err = g.Validate(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), lic.ID) || !strings.Contains(err.Error(), "fail closed") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Validate = %v", err)
	}
	if err := g.Allowed(); !errors.Is(err, ErrNoLicense) {
		t.Fatalf("Allowed = %v", err)
	}
	if err := g.Check(context.Background()); err == nil {
		t.Fatal("health check passes without a license")
	}
}

func TestGateValidatesAndCaches(t *testing.T) {
	s := newSetup(t, 1)
	reg := prometheus.NewRegistry()
	g := s.gate(t, "a", "", reg)
	if err := g.Allowed(); !errors.Is(err, ErrNoLicense) {
		t.Fatalf("before Validate: %v", err)
	}
	ctx := context.Background()
	if err := g.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	sent := s.srv.requests.Load()
	if err := g.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	if s.srv.requests.Load() != sent {
		t.Fatal("a second Validate with a valid token asked the authority")
	}
	if v := value(t, g.metrics.validations.WithLabelValues("cached")); v != 1 {
		t.Fatalf("cached validations = %v", v)
	}
	st := g.Status()
	if !st.Allowed || st.Seat != 1 || st.Tier != "standard" || st.Grace || st.Breaker != "closed" {
		t.Fatalf("status %+v", st)
	}
	// Renew keeps the lease going past its first expiry.
	for range 10 {
		s.clock.Add(time.Minute)
		if err := g.Renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Allowed(); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"chorus_licensing_validations_total", "chorus_licensing_request_duration_seconds", "chorus_licensing_breaker_opens_total",
		"chorus_licensing_breaker_state", "chorus_licensing_allowed", "chorus_licensing_grace_remaining_seconds",
		"chorus_licensing_lease_expiry_timestamp_seconds", "chorus_licensing_license_expiry_timestamp_seconds"} {
		if !names[n] {
			t.Errorf("metric %s missing; have %v", n, names)
		}
	}
}

func TestGateGraceWhenTheAuthorityGoesDownMidRun(t *testing.T) {
	s := newSetup(t, 1)
	reg := prometheus.NewRegistry()
	g := s.gate(t, "a", "", reg)
	ctx := context.Background()
	if err := g.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	validated := s.clock.Now()
	s.srv.down.Store(true)
	changed := g.Changed()
	// A day of failed heartbeats: work goes on.
	for s.clock.Now().Before(validated.Add(24*time.Hour - time.Minute)) {
		s.clock.Add(time.Minute)
		if err := g.Renew(ctx); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("renew while down: %v", err)
		}
		if err := g.Allowed(); err != nil {
			t.Fatalf("at %s after validation: %v", s.clock.Now().Sub(validated), err)
		}
	}
	if st := g.Status(); !st.Grace || !strings.Contains(st.LastError, "unreachable") {
		t.Fatalf("status in grace: %+v", st)
	}
	if v := value(t, g.metrics.validations.WithLabelValues("unreachable")); v < 100 {
		t.Fatalf("unreachable validations = %v", v)
	}
	select {
	case <-changed:
		t.Fatal("Changed fired while still allowed")
	default:
	}
	// The grace ends 24 h after the last successful validation.
	s.clock.Add(time.Minute)
	g.Renew(ctx)
	err := g.Allowed()
	if !errors.Is(err, ErrGraceExpired) || !strings.Contains(err.Error(), s.lic.ID) {
		t.Fatalf("after 24 h: %v", err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed did not fire when the grace ended")
	}
	// The authority is back: the lease is gone, so the gate activates again.
	s.srv.down.Store(false)
	s.clock.Add(30 * time.Second) // the breaker's half-open probe is due
	if err := g.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Allowed(); err != nil {
		t.Fatal(err)
	}
}

func TestGateBreakerOpensAfterFiveFailures(t *testing.T) {
	s := newSetup(t, 1)
	reg := prometheus.NewRegistry()
	g := s.gate(t, "a", "", reg)
	ctx := context.Background()
	if err := g.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	s.srv.down.Store(true)
	before := s.srv.requests.Load()
	for i := range 5 {
		if err := g.Renew(ctx); !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if got := s.srv.requests.Load() - before; got != 5 {
		t.Fatalf("%d requests for 5 renewals", got)
	}
	if g.Status().Breaker != "open" || value(t, g.metrics.opens) != 1 {
		t.Fatalf("breaker %s after 5 failures", g.Status().Breaker)
	}
	// Open: nothing is sent for 30 s.
	s.clock.Add(29 * time.Second)
	if err := g.Renew(ctx); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("renew while open: %v", err)
	}
	if got := s.srv.requests.Load() - before; got != 5 {
		t.Fatalf("the open breaker let a request through (%d)", got)
	}
	// After 30 s one probe goes out; it fails, and the breaker re-opens.
	s.clock.Add(time.Second)
	if g.Status().Breaker != "half-open" {
		t.Fatalf("breaker %s after the cooldown", g.Status().Breaker)
	}
	if err := g.Renew(ctx); errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("probe not sent: %v", err)
	}
	if got := s.srv.requests.Load() - before; got != 6 || g.Status().Breaker != "open" {
		t.Fatalf("after a failed probe: %d requests, breaker %s", got, g.Status().Breaker)
	}
	// The next probe succeeds and closes it.
	s.srv.down.Store(false)
	s.clock.Add(30 * time.Second)
	if err := g.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if g.Status().Breaker != "closed" || g.Allowed() != nil {
		t.Fatalf("after a good probe: %+v", g.Status())
	}
}

func TestGateRestartWithinGraceWhileTheAuthorityIsDown(t *testing.T) {
	s := newSetup(t, 1)
	state := filepath.Join(t.TempDir(), "license", "gate.json")
	ctx := context.Background()
	if err := s.gate(t, "a", state, nil).Validate(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	s.srv.down.Store(true)
	// Two hours later the worker restarts: it starts on the grace.
	s.clock.Add(2 * time.Hour)
	g := s.gate(t, "a", state, nil)
	if err := g.Validate(ctx); err != nil {
		t.Fatalf("restart within grace: %v", err)
	}
	if st := g.Status(); !st.Allowed || !st.Grace {
		t.Fatalf("status %+v", st)
	}
	// Another node's state, or an edited one, does not count.
	if err := s.gate(t, "b", state, nil).Validate(ctx); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("other node with a's state: %v", err)
	}
	b, _ := os.ReadFile(state)
	tampered := filepath.Join(t.TempDir(), "gate.json")
	os.WriteFile(tampered, []byte(strings.Replace(string(b), `"token": "v1.`, `"token": "v1.x`, 1)), 0o600)
	if err := s.gate(t, "a", tampered, nil).Validate(ctx); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("tampered state: %v", err)
	}
	// Past the grace a restart fails closed.
	s.clock.Add(22*time.Hour + time.Second)
	if err := s.gate(t, "a", state, nil).Validate(ctx); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "fail closed") {
		t.Fatalf("restart after grace: %v", err)
	}
}

func TestGateStopsOnRevocation(t *testing.T) {
	s := newSetup(t, 2)
	state := filepath.Join(t.TempDir(), "gate.json")
	g := s.gate(t, "a", state, nil)
	ctx := context.Background()
	if err := g.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	changed := g.Changed()
	if _, err := s.c.Revoke(ctx, s.lic.ID); err != nil {
		t.Fatal(err)
	}
	// Until the next heartbeat the cached token holds; then it is refused.
	if err := g.Allowed(); err != nil {
		t.Fatal(err)
	}
	s.clock.Add(time.Minute)
	if err := g.Renew(ctx); !errors.Is(err, ErrRevoked) {
		t.Fatalf("renew after revoke: %v", err)
	}
	if err := g.Allowed(); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Allowed after revoke: %v", err)
	}
	<-changed // closed by the refusal; a hang here fails the test by timeout
	// An outage now does not bring back the grace, nor does a restart.
	s.srv.down.Store(true)
	s.clock.Add(time.Minute)
	g.Renew(ctx)
	if err := g.Allowed(); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Allowed after revoke, authority down: %v", err)
	}
	if err := s.gate(t, "a", state, nil).Validate(ctx); err == nil {
		t.Fatal("a revoked license started on grace after a restart")
	}
}

func TestGateSeatExhaustion(t *testing.T) {
	s := newSetup(t, 2)
	ctx := context.Background()
	a, b, c := s.gate(t, "a", "", nil), s.gate(t, "b", "", nil), s.gate(t, "c", "", nil)
	for _, g := range []*Gate{a, b} {
		if err := g.Validate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Validate(ctx)
	if !errors.Is(err, ErrSeatsExhausted) || !strings.Contains(err.Error(), "all 2 seats") {
		t.Fatalf("third node: %v", err)
	}
	if err := c.Allowed(); !errors.Is(err, ErrSeatsExhausted) {
		t.Fatalf("third node Allowed: %v", err)
	}
	// a stops (Run's end releases the seat); c gets it at its next renewal.
	runCtx, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	if err := a.Allowed(); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a after release: %v", err)
	}
	changed := c.Changed()
	if err := c.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	<-changed
	if err := c.Allowed(); err != nil || c.Status().Seat != 1 {
		t.Fatalf("c after a left: %v, %+v", err, c.Status())
	}
}

func TestGateRefusesBadAnswers(t *testing.T) {
	s := newSetup(t, 1)
	ctx := context.Background()
	// Wrong cluster, asked honestly.
	cfg := DefaultConfig()
	cfg.Authority, cfg.LicenseID, cfg.ClusterID, cfg.NodeID, cfg.Clock = s.c, s.lic.ID, "staging", "a", s.clock.Now
	g, err := NewGate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Validate(ctx); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("wrong cluster: %v", err)
	}

	real, err := s.a.Activate(ctx, ActivateRequest{LicenseID: s.lic.ID, ClusterID: "prod", NodeID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := ParseToken(real.Token, s.a.PublicKey())
	impostor := testKey(t)
	resign := func(key ed25519.PrivateKey, edit func(*Claims)) Grant {
		c := claims
		edit(&c)
		if key.Equal(impostor) {
			c.KeyID = KeyID(impostor.Public().(ed25519.PublicKey))
		}
		tok, err := SignToken(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return Grant{Token: tok, PublicKey: EncodePublicKey(key.Public().(ed25519.PublicKey))}
	}
	realKey := s.a.key
	cases := []struct {
		name  string
		grant Grant
		pin   bool
		want  error
		text  string
	}{
		{"forged by another key, key pinned", resign(impostor, func(*Claims) {}), true, ErrBadToken, "does not verify"},
		{"tampered token", Grant{Token: real.Token[:len(real.Token)-4] + "AAAA", PublicKey: real.PublicKey}, true, ErrBadToken, "does not verify"},
		{"expired token", resign(realKey, func(c *Claims) { c.IssuedAt -= 3600; c.ExpiresAt = s.clock.Now().Unix() - 1 }), true, ErrBadToken, "expired"},
		{"token for another cluster", resign(realKey, func(c *Claims) { c.ClusterID = "staging" }), true, ErrWrongCluster, "staging"},
		{"token for another node", resign(realKey, func(c *Claims) { c.NodeID = "z" }), true, ErrBadToken, `node "z"`},
		{"expired license", resign(realKey, func(c *Claims) { c.LicenseExpiresAt = s.clock.Now().Unix() }), true, ErrExpired, "expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Authority = &rogue{grant: c.grant}
			cfg.LicenseID, cfg.ClusterID, cfg.NodeID, cfg.Clock = s.lic.ID, "prod", "a", s.clock.Now
			if c.pin {
				cfg.PublicKey = s.a.PublicKey()
			}
			g, err := NewGate(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = g.Validate(ctx)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("Validate = %v, want %v mentioning %q", err, c.want, c.text)
			}
			if g.Allowed() == nil {
				t.Fatal("allowed after a bad answer")
			}
		})
	}

	// Trust on first use: the key of the first activation is pinned, and
	// an impostor met later is refused.
	if err := s.a.Deactivate(ctx, DeactivateRequest{Token: real.Token}); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "gate.json")
	first := s.gate(t, "n", state, nil)
	if err := first.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	cfg = DefaultConfig()
	cfg.Authority = &rogue{grant: resign(impostor, func(c *Claims) { c.NodeID = "n" })}
	cfg.LicenseID, cfg.ClusterID, cfg.NodeID, cfg.Clock, cfg.StatePath = s.lic.ID, "prod", "n", s.clock.Now, state
	later, err := NewGate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := later.Validate(ctx); !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("impostor after pinning: %v", err)
	}
}

// rogue is an authority that answers every activation with one grant.
type rogue struct{ grant Grant }

func (r *rogue) Activate(context.Context, ActivateRequest) (Grant, error)   { return r.grant, nil }
func (r *rogue) Heartbeat(context.Context, HeartbeatRequest) (Grant, error) { return r.grant, nil }
func (r *rogue) Deactivate(context.Context, DeactivateRequest) error        { return nil }

func TestGateLicenseExpiryEndsTheGrace(t *testing.T) {
	s := newSetup(t, 1)
	ctx := context.Background()
	short, err := s.a.Issue(ctx, IssueRequest{Tier: "trial", Nodes: 1, ClusterID: "prod", ExpiresIn: "2h"})
	if err != nil {
		t.Fatal(err)
	}
	s.lic = short
	g := s.gate(t, "a", "", nil)
	if err := g.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	s.srv.down.Store(true)
	s.clock.Add(time.Hour)
	if err := g.Allowed(); err != nil {
		t.Fatalf("in grace: %v", err)
	}
	s.clock.Add(time.Hour)
	if err := g.Allowed(); !errors.Is(err, ErrExpired) {
		t.Fatalf("license expired during the outage: %v", err)
	}
}

func TestGateRunRenewsAndReleases(t *testing.T) {
	// Real time here: Run's own timer paces it. The lease is 3 s, so Run
	// renews every second at most.
	acfg := DefaultAuthorityConfig()
	acfg.DataDir, acfg.LeaseTTL = t.TempDir(), 3*time.Second
	reg := prometheus.NewRegistry()
	acfg.Metrics = reg
	a, err := NewAuthority(acfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := serve(t, a.Handler())
	lic, err := a.Issue(context.Background(), IssueRequest{Tier: "standard", Nodes: 1, ClusterID: "prod", ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Authority, cfg.LicenseID, cfg.ClusterID, cfg.NodeID = client(t, srv.srv.URL), lic.ID, "prod", "a"
	cfg.HeartbeatInterval = 20 * time.Millisecond
	g, err := NewGate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := g.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	heartbeats := func() float64 {
		return value(t, a.metrics.requests.WithLabelValues("heartbeat", "ok"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for heartbeats() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %v heartbeats in 20 s", heartbeats())
		}
		<-time.After(20 * time.Millisecond)
	}
	if err := g.Allowed(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := a.Status(context.Background(), lic.ID)
	if err != nil || st.SeatsInUse != 0 {
		t.Fatalf("seat not released at the end of Run: %+v, %v", st, err)
	}
	if v := value(t, a.metrics.requests.WithLabelValues("deactivate", "ok")); v != 1 {
		t.Fatalf("deactivations = %v", v)
	}
}

func TestGateConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BreakerThreshold, cfg.Grace = 0, 0
	err := cfg.Validate()
	for _, f := range []string{"authority", "license_id", "cluster_id", "node_id", "breaker_threshold", "grace"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("Validate does not name %s: %v", f, err)
		}
	}
}
