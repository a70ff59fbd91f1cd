package licensing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chorus"
)

func activate(t *testing.T, a *Authority, l License, node string) Grant {
	t.Helper()
	g, err := a.Activate(context.Background(), ActivateRequest{LicenseID: l.ID, ClusterID: l.ClusterID, NodeID: node})
	if err != nil {
		t.Fatalf("activate %s: %v", node, err)
	}
	return g
}

func TestSeatsAreLeasedUpToTheNodeLimit(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	a := newTestAuthority(t, t.TempDir(), clock)
	l := issue(t, a, 2, "prod")
	g1, g2 := activate(t, a, l, "a"), activate(t, a, l, "b")
	if g1.Seat != 1 || g2.Seat != 2 {
		t.Fatalf("seats %d %d, want 1 2", g1.Seat, g2.Seat)
	}
	// Activating again (a restart) keeps the seat.
	if g := activate(t, a, l, "a"); g.Seat != 1 {
		t.Fatalf("re-activation got seat %d, want 1", g.Seat)
	}
	// N+1: the third node is refused, and told who holds the seats.
	_, err := a.Activate(ctx, ActivateRequest{LicenseID: l.ID, ClusterID: "prod", NodeID: "c"})
	if !errors.Is(err, ErrSeatsExhausted) || !strings.Contains(err.Error(), "all 2 seats") || !strings.Contains(err.Error(), "node b") {
		t.Fatalf("third node: %v", err)
	}
	// Releasing a seat lets it in, on the freed seat number.
	if err := a.Deactivate(ctx, DeactivateRequest{Token: g1.Token}); err != nil {
		t.Fatal(err)
	}
	if g := activate(t, a, l, "c"); g.Seat != 1 {
		t.Fatalf("c got seat %d, want the freed 1", g.Seat)
	}
	// A lease not renewed for LeaseTTL frees its seat; b's renewed one does not.
	clock.Add(4 * time.Minute)
	g2, err = a.Heartbeat(ctx, HeartbeatRequest{Token: g2.Token})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute + time.Second)
	st, err := a.Status(ctx, l.ID)
	if err != nil || st.SeatsInUse != 1 || st.Seats[0].NodeID != "b" {
		t.Fatalf("status after c's lease expired: %+v, %v", st, err)
	}
	if g := activate(t, a, l, "d"); g.Seat != 1 {
		t.Fatalf("d got seat %d, want 1", g.Seat)
	}
}

func TestHeartbeatRenewsAndRefuses(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	a := newTestAuthority(t, t.TempDir(), clock)
	l := issue(t, a, 1, "prod")
	g := activate(t, a, l, "a")
	c, err := ParseToken(g.Token, a.PublicKey())
	if err != nil || c.LicenseID != l.ID || c.ClusterID != "prod" || c.NodeID != "a" || c.Seat != 1 || c.Version != 1 ||
		c.Expires().Sub(c.Issued()) != 5*time.Minute || !c.LicenseExpires().Equal(l.ExpiresAt) {
		t.Fatalf("claims %+v, %v", c, err)
	}
	clock.Add(time.Minute)
	g2, err := a.Heartbeat(ctx, HeartbeatRequest{Token: g.Token})
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := ParseToken(g2.Token, a.PublicKey())
	if c2.IssuedAt != c.IssuedAt+60 || c2.ExpiresAt != c.ExpiresAt+60 {
		t.Fatalf("renewed claims %+v after %+v", c2, c)
	}
	// An expired token: the lease is gone, activate again.
	clock.Add(5 * time.Minute)
	if _, err := a.Heartbeat(ctx, HeartbeatRequest{Token: g2.Token}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("expired token: %v", err)
	}
	// A token signed by someone else.
	other := testKey(t)
	forged, _ := SignToken(other, c2)
	if _, err := a.Heartbeat(ctx, HeartbeatRequest{Token: forged}); !errors.Is(err, ErrBadToken) {
		t.Fatalf("forged token: %v", err)
	}
	if _, err := a.Heartbeat(ctx, HeartbeatRequest{}); !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), "token") {
		t.Fatalf("empty token: %v", err)
	}
}

func TestRevokeBumpsTheVersion(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	a := newTestAuthority(t, t.TempDir(), clock)
	l := issue(t, a, 2, "prod")
	g := activate(t, a, l, "a")
	r, err := a.Revoke(ctx, l.ID)
	if err != nil || r.Version != 2 || r.RevokedAt == nil || r.State(clock.Now()) != StateRevoked {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	// The old token is refused at its next heartbeat, naming the versions.
	_, err = a.Heartbeat(ctx, HeartbeatRequest{Token: g.Token})
	if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "version 1") || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("heartbeat after revoke: %v", err)
	}
	if _, err := a.Activate(ctx, ActivateRequest{LicenseID: l.ID, ClusterID: "prod", NodeID: "b"}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("activate after revoke: %v", err)
	}
	// Revoking again changes nothing.
	if r2, err := a.Revoke(ctx, l.ID); err != nil || r2.Version != 2 {
		t.Fatalf("second revoke: %+v, %v", r2, err)
	}
	if _, err := a.Revoke(ctx, "lic-ffffffffffffffffffffffffffffffff"); !errors.Is(err, ErrUnknownLicense) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

func TestActivationRefusals(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	a := newTestAuthority(t, t.TempDir(), clock)
	l := issue(t, a, 1, "prod")
	short, err := a.Issue(ctx, IssueRequest{Tier: "trial", Nodes: 1, ClusterID: "prod", ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	// A lease never outlives its license.
	clock.Add(58 * time.Minute)
	if g := activate(t, a, short, "a"); !g.LeaseExpiresAt.Equal(short.ExpiresAt) {
		t.Fatalf("lease ends %s, license %s", g.LeaseExpiresAt, short.ExpiresAt)
	}
	clock.Add(2 * time.Minute)
	cases := []struct {
		req  ActivateRequest
		want error
		text string
	}{
		{ActivateRequest{l.ID, "staging", "a"}, ErrWrongCluster, `bound to cluster "prod", this node is in cluster "staging"`},
		{ActivateRequest{short.ID, "prod", "a"}, ErrExpired, "expired"},
		{ActivateRequest{"lic-ffffffffffffffffffffffffffffffff", "prod", "a"}, ErrUnknownLicense, "lic-ffff"},
		{ActivateRequest{"", "prod", "a"}, chorus.ErrInvalid, "license_id: must not be empty"},
		{ActivateRequest{"LIC-1", "prod", "a"}, chorus.ErrInvalid, "license_id: must be lic-"},
		{ActivateRequest{l.ID, "", "a"}, chorus.ErrInvalid, "cluster_id"},
		{ActivateRequest{l.ID, "prod", "a b"}, chorus.ErrInvalid, "node_id"},
	}
	for _, c := range cases {
		_, err := a.Activate(ctx, c.req)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("activate %+v: %v, want %v mentioning %q", c.req, err, c.want, c.text)
		}
	}
}

func TestIssueValidatesFields(t *testing.T) {
	a := newTestAuthority(t, t.TempDir(), newClock())
	ok := IssueRequest{Tier: "standard", Nodes: 3, ClusterID: "prod", ExpiresIn: "720h"}
	cases := []struct {
		edit  func(*IssueRequest)
		field string
	}{
		{func(r *IssueRequest) { r.Tier = "" }, "tier"},
		{func(r *IssueRequest) { r.Tier = "Gold" }, "tier"},
		{func(r *IssueRequest) { r.Nodes = 0 }, "nodes"},
		{func(r *IssueRequest) { r.Nodes = MaxNodes + 1 }, "nodes"},
		{func(r *IssueRequest) { r.ClusterID = "" }, "cluster_id"},
		{func(r *IssueRequest) { r.ExpiresIn = "" }, "expires_in"},
		{func(r *IssueRequest) { r.ExpiresIn = "a month" }, "expires_in"},
		{func(r *IssueRequest) { r.ExpiresIn = "-1h" }, "expires_in"},
		{func(r *IssueRequest) { r.ExpiresIn = ""; r.ExpiresAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }, "expires_at"},
		{func(r *IssueRequest) { r.ExpiresAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }, "expires_in"},
	}
	for _, c := range cases {
		r := ok
		c.edit(&r)
		_, err := a.Issue(context.Background(), r)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("issue %+v: %v, want a field error on %s", r, err, c.field)
		}
	}
	l, err := a.Issue(context.Background(), ok)
	if err != nil || !licenseIDRe.MatchString(l.ID) || l.Version != 1 || l.ExpiresAt.Sub(l.IssuedAt) != 720*time.Hour {
		t.Fatalf("issue: %+v, %v", l, err)
	}
}

func TestAuthorityRestartKeepsEverything(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := newClock()
	cfg := DefaultAuthorityConfig()
	cfg.DataDir, cfg.Clock = dir, clock.Now
	a, err := NewAuthority(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := issue(t, a, 1, "prod")
	revoked := issue(t, a, 1, "prod")
	g := activate(t, a, l, "a")
	if _, err := a.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	pub := a.PublicKey()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}

	b, err := NewAuthority(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.PublicKey().Equal(pub) {
		t.Fatal("the signing key changed across a restart")
	}
	ls, err := b.List(ctx)
	if err != nil || len(ls) != 2 || ls[0].ID != l.ID || ls[0].SeatsInUse != 1 || ls[0].Seats[0].NodeID != "a" || ls[1].State != StateRevoked || ls[1].Version != 2 {
		t.Fatalf("after restart: %+v, %v", ls, err)
	}
	// The seat is still a's: another node cannot take it, and a's token
	// from before the restart still renews.
	if _, err := b.Activate(ctx, ActivateRequest{LicenseID: l.ID, ClusterID: "prod", NodeID: "b"}); !errors.Is(err, ErrSeatsExhausted) {
		t.Fatalf("b after restart: %v", err)
	}
	clock.Add(time.Minute)
	if _, err := b.Heartbeat(ctx, HeartbeatRequest{Token: g.Token}); err != nil {
		t.Fatalf("heartbeat with a token from before the restart: %v", err)
	}
}

func TestEnsureDevLicense(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	a := newTestAuthority(t, t.TempDir(), clock)
	l, created, err := a.EnsureDevLicense(ctx, "dev")
	if err != nil || !created || l.Tier != TierDev || l.Nodes != 1 || !l.Dev() {
		t.Fatalf("first: %+v %v %v", l, created, err)
	}
	again, created, err := a.EnsureDevLicense(ctx, "dev")
	if err != nil || created || again.ID != l.ID {
		t.Fatalf("second: %+v %v %v", again, created, err)
	}
	// A dev license close to its expiry is replaced.
	clock.Add(devLicenseLifetime - time.Hour)
	fresh, created, err := a.EnsureDevLicense(ctx, "dev")
	if err != nil || !created || fresh.ID == l.ID {
		t.Fatalf("near expiry: %+v %v %v", fresh, created, err)
	}
	st, err := a.Status(ctx, fresh.ID)
	if err != nil || !st.Dev || st.Note != DevLicenseNote {
		t.Fatalf("status: %+v %v", st, err)
	}
}

func TestConcurrentActivationsNeverExceedTheSeats(t *testing.T) {
	// Two authorities on one store, as two processes would be, and many
	// nodes at once: exactly Nodes of them get a seat.
	dir := t.TempDir()
	clock := newClock()
	a, b := newTestAuthority(t, dir, clock), newTestAuthority(t, dir, clock)
	l := issue(t, a, 3, "prod")
	errs := make(chan error, 12)
	for i := range 12 {
		auth := a
		if i%2 == 1 {
			auth = b
		}
		go func() {
			_, err := auth.Activate(context.Background(), ActivateRequest{LicenseID: l.ID, ClusterID: "prod", NodeID: fmt.Sprintf("n%d", i)})
			errs <- err
		}()
	}
	granted := 0
	for range 12 {
		switch err := <-errs; {
		case err == nil:
			granted++
		case !errors.Is(err, ErrSeatsExhausted):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	st, err := a.Status(context.Background(), l.ID)
	if granted != 3 || err != nil || st.SeatsInUse != 3 || st.Seats[0].Seat != 1 || st.Seats[2].Seat != 3 {
		t.Fatalf("%d granted, status %+v, %v", granted, st, err)
	}
}
