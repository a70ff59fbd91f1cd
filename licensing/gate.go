package licensing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Leaser is what the gate needs from the license authority: a *Client over
// HTTP, or an *Authority in the same process.
type Leaser interface {
	Activate(ctx context.Context, req ActivateRequest) (Grant, error)
	Heartbeat(ctx context.Context, req HeartbeatRequest) (Grant, error)
	Deactivate(ctx context.Context, req DeactivateRequest) error
}

// Config configures a Gate.
type Config struct {
	// Authority is asked for the seat lease.
	Authority Leaser
	// LicenseID, ClusterID and NodeID say which license this node uses,
	// in which cluster, and who it is (one seat per node id).
	LicenseID string
	ClusterID string
	NodeID    string
	// PublicKey is the authority's key. Nil means trust on first use: the
	// key of the first successful activation is pinned (in StatePath) and
	// every later token must verify with it.
	PublicKey ed25519.PublicKey
	// StatePath is the file holding the pinned key and the last good
	// token, so a restart within the grace period starts while the
	// authority is down. Empty keeps nothing on disk.
	StatePath string
	// BreakerThreshold is how many consecutive failures to reach the
	// authority open the circuit breaker.
	BreakerThreshold int
	// BreakerCooldown is how long the breaker stays open before one
	// half-open probe goes out.
	BreakerCooldown time.Duration
	// Grace is how long after the last successful validation the node
	// keeps working while the authority cannot be reached.
	Grace time.Duration
	// HeartbeatInterval is how often Run renews the lease (at most a third
	// of the lease's length, whichever is shorter).
	HeartbeatInterval time.Duration
	// RequestTimeout bounds one call to the authority.
	RequestTimeout time.Duration
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
	// Logger receives gate events; nil discards them.
	Logger *slog.Logger
	// Metrics registers the gate's metrics; nil means none.
	Metrics prometheus.Registerer
}

// DefaultConfig returns the SPEC section 10 defaults; Authority, LicenseID,
// ClusterID and NodeID must still be set.
func DefaultConfig() Config {
	return Config{
		// Five failures in a row (five minutes of heartbeats) is an
		// outage, not a blip; past it the gate stops hammering.
		BreakerThreshold: 5,
		// Thirty seconds: a restarted authority is noticed quickly, and
		// one probe per half-minute costs it nothing.
		BreakerCooldown: 30 * time.Second,
		// A day of offline work after the last confirmation: long enough
		// to ride out an authority outage overnight, short enough that a
		// revoked license cannot be used for long by cutting the network.
		Grace: 24 * time.Hour,
		// Once a minute: five heartbeats per default five-minute lease,
		// so four may be lost before the seat is.
		HeartbeatInterval: time.Minute,
		// Ten seconds, as the ops health checks: a round trip to a live
		// authority takes milliseconds.
		RequestTimeout: 10 * time.Second,
	}
}

// Validate checks the config; errors name the field.
func (c Config) Validate() error {
	var errs []error
	if c.Authority == nil {
		errs = append(errs, fieldErr("authority", "must be set"))
	}
	errs = append(errs, CheckLicenseID(c.LicenseID), CheckClusterID(c.ClusterID), CheckNodeID(c.NodeID))
	if c.PublicKey != nil && len(c.PublicKey) != ed25519.PublicKeySize {
		errs = append(errs, fieldErr("public_key", "must be %d bytes, got %d", ed25519.PublicKeySize, len(c.PublicKey)))
	}
	if c.BreakerThreshold < 1 {
		errs = append(errs, fieldErr("breaker_threshold", "must be at least 1, got %d", c.BreakerThreshold))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"breaker_cooldown", c.BreakerCooldown}, {"grace", c.Grace}, {"heartbeat_interval", c.HeartbeatInterval}, {"request_timeout", c.RequestTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fieldErr(d.name, "must be positive, got %s", d.v))
		}
	}
	return errors.Join(errs...)
}

// Gate is the worker's license check (fail closed). Validate at start,
// then Run to keep the seat lease; Allowed before taking work. Build it
// with NewGate.
type Gate struct {
	cfg     Config
	logger  *slog.Logger
	metrics *gateMetrics

	// op serialises conversations with the authority (Validate, Renew,
	// the release at the end of Run); it is never taken under mu.
	op     sync.Mutex
	loaded bool // the state file was read; guarded by op

	mu      sync.Mutex
	pub     ed25519.PublicKey // pinned authority key
	token   string            // newest verified token
	claims  Claims            // its claims; valid when have
	have    bool
	refused error // the authority's last definitive no; cleared by a grant
	lastErr error // the last failure to reach the authority
	breaker breaker
	allowed bool          // Allowed()==nil at the last notify
	changed chan struct{} // closed when allowed flips
}

// NewGate returns a gate that has not validated anything yet: Allowed
// fails until Validate succeeds.
func NewGate(cfg Config) (*Gate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("license gate config: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gate{cfg: cfg, logger: cfg.Logger, pub: cfg.PublicKey, changed: make(chan struct{}),
		breaker: breaker{threshold: cfg.BreakerThreshold, cooldown: cfg.BreakerCooldown}}
	var err error
	if g.metrics, err = newGateMetrics(cfg.Metrics, g); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gate) now() time.Time { return g.cfg.Clock() }

// Validate makes sure the node holds a valid license, asking the authority
// unless a token still valid is cached. It fails closed: a refusal (unknown,
// revoked, expired, wrong cluster, forged token, no free seat) is returned
// as is, and an unreachable authority is an error unless a successful
// validation (this run's, or one persisted in StatePath) lies within the
// grace period. A node refused only for ErrSeatsExhausted may wait: Run
// keeps asking for a seat.
func (g *Gate) Validate(ctx context.Context) error {
	g.op.Lock()
	defer g.op.Unlock()
	now := g.now()
	g.mu.Lock()
	cached := g.have && g.refused == nil && g.claims.CheckTime(now) == nil
	g.mu.Unlock()
	if cached {
		g.metrics.validation("cached")
		return nil
	}
	g.loadState()
	err := g.activate(ctx)
	if err == nil || isRefusal(err) {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.allowedLocked(now) == nil {
		g.metrics.validation("grace")
		g.logger.Warn("license authority unreachable; working on the offline grace period",
			"license", g.cfg.LicenseID, "last_validated", g.claims.Issued(), "grace_ends", g.claims.Issued().Add(g.cfg.Grace), "error", err)
		return nil
	}
	return fmt.Errorf("license %s: %w; no successful validation within the last %s, so this node does not start (fail closed)", g.cfg.LicenseID, err, g.cfg.Grace)
}

// Renew does one heartbeat: it renews the seat lease, or activates again
// when there is no lease (none yet, lost, or refused before). Run calls it
// on its interval; the outcome is visible through Allowed.
func (g *Gate) Renew(ctx context.Context) error {
	g.op.Lock()
	defer g.op.Unlock()
	g.mu.Lock()
	tok, live := g.token, g.have && g.refused == nil && g.now().Unix() < g.claims.ExpiresAt
	g.mu.Unlock()
	if live {
		grant, err := g.call(ctx, "heartbeat", func(ctx context.Context) (Grant, error) {
			return g.cfg.Authority.Heartbeat(ctx, HeartbeatRequest{Token: tok})
		})
		if !errors.Is(err, ErrLeaseLost) {
			return g.apply(grant, err)
		}
		g.logger.Warn("seat lease lost; activating again", "license", g.cfg.LicenseID, "error", err)
	}
	return g.activate(ctx)
}

// Allowed reports whether the node may take new work now: nil while the
// lease is valid or, with the authority unreachable, within the grace
// period after the last successful validation; otherwise the reason,
// naming the license.
func (g *Gate) Allowed() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.allowedLocked(g.now())
}

// Check is Allowed as an ops health check (register it as critical).
func (g *Gate) Check(context.Context) error { return g.Allowed() }

// Changed returns a channel that is closed the next time Allowed turns
// from nil to an error or back. Time alone (the grace running out) is
// noticed on Run's next tick.
func (g *Gate) Changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// Run renews the lease every HeartbeatInterval (sooner when the lease is
// short or the breaker's half-open probe is due) until ctx ends, then
// releases the seat. Failures do not end it; they show in Allowed. It
// returns nil.
func (g *Gate) Run(ctx context.Context) error {
	for {
		t := time.NewTimer(g.nextRenew())
		select {
		case <-ctx.Done():
			t.Stop()
			g.release(ctx)
			return nil
		case <-t.C:
		}
		if err := g.Renew(ctx); err != nil && ctx.Err() == nil {
			g.logger.Warn("license renewal failed", "license", g.cfg.LicenseID, "error", err, "allowed", errString(g.Allowed()))
		}
		g.mu.Lock()
		g.notifyLocked(g.now())
		g.mu.Unlock()
	}
}

func (g *Gate) nextRenew() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := g.cfg.HeartbeatInterval
	if g.have && g.refused == nil {
		if third := time.Duration(g.claims.ExpiresAt-g.claims.IssuedAt) * time.Second / 3; third > 0 && third < d {
			d = third
		}
	}
	if in := g.breaker.retryIn(g.now()); in > 0 && in < d {
		d = in
	}
	return d
}

// release gives the seat back at the end of Run, with its own short
// deadline since ctx is already done.
func (g *Gate) release(ctx context.Context) {
	g.op.Lock()
	defer g.op.Unlock()
	g.mu.Lock()
	tok, have := g.token, g.have
	open := g.breaker.at(g.now()) == BreakerOpen
	g.mu.Unlock()
	if !have || open {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.RequestTimeout)
	defer cancel()
	if err := g.cfg.Authority.Deactivate(rctx, DeactivateRequest{Token: tok}); err != nil {
		g.logger.Warn("releasing the seat failed; it frees when the lease expires", "license", g.cfg.LicenseID, "error", err)
		return
	}
	g.mu.Lock()
	g.refused = fmt.Errorf("license %s: %w: released at shutdown", g.cfg.LicenseID, ErrLeaseLost)
	g.notifyLocked(g.now())
	g.mu.Unlock()
	g.logger.Info("seat released", "license", g.cfg.LicenseID, "node", g.cfg.NodeID)
}

func (g *Gate) activate(ctx context.Context) error {
	grant, err := g.call(ctx, "activate", func(ctx context.Context) (Grant, error) {
		return g.cfg.Authority.Activate(ctx, ActivateRequest{LicenseID: g.cfg.LicenseID, ClusterID: g.cfg.ClusterID, NodeID: g.cfg.NodeID})
	})
	return g.apply(grant, err)
}

// call sends one request through the breaker, timing it.
func (g *Gate) call(ctx context.Context, op string, fn func(context.Context) (Grant, error)) (Grant, error) {
	g.mu.Lock()
	ok := g.breaker.allow(g.now())
	in := g.breaker.retryIn(g.now())
	g.mu.Unlock()
	if !ok {
		return Grant{}, fmt.Errorf("license %s: %w (next probe in %s)", g.cfg.LicenseID, ErrBreakerOpen, in.Round(time.Second))
	}
	cctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	grant, err := fn(cctx)
	g.metrics.request(op, time.Since(start))
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil && !isRefusal(err) {
		if g.breaker.failure(g.now()) {
			g.metrics.breakerOpened()
			g.logger.Warn("license authority circuit breaker open", "license", g.cfg.LicenseID, "cooldown", g.cfg.BreakerCooldown, "error", err)
		}
		if !errors.Is(err, ErrUnreachable) {
			err = fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
	} else {
		g.breaker.success()
	}
	return grant, err
}

// apply records the outcome of an activation or heartbeat.
func (g *Gate) apply(grant Grant, err error) error {
	now := g.now()
	var c Claims
	if err == nil {
		c, err = g.verify(grant, now)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.notifyLocked(now)
	switch {
	case err == nil:
		first := !g.have || g.refused != nil
		g.token, g.claims, g.have, g.refused, g.lastErr = grant.Token, c, true, nil, nil
		if g.pub == nil {
			g.pub, _ = DecodePublicKey(grant.PublicKey)
		}
		g.metrics.validation("ok")
		g.persistLocked()
		if first {
			g.logger.Info("license validated", "license", c.LicenseID, "tier", c.Tier, "cluster", c.ClusterID, "node", c.NodeID, "seat", c.Seat, "lease_until", c.Expires())
		}
		return nil
	case isRefusal(err):
		if g.refused == nil {
			g.logger.Warn("license refused", "license", g.cfg.LicenseID, "error", err)
		}
		g.refused = err
		g.metrics.validation("refused")
		// A refused license must not start on grace after a restart.
		g.token, g.have = "", false
		g.persistLocked()
		return err
	default:
		g.lastErr = err
		g.metrics.validation("unreachable")
		return err
	}
}

// verify checks a grant's token: signature (pinned key, or the grant's
// own on first use), binding and time.
func (g *Gate) verify(grant Grant, now time.Time) (Claims, error) {
	g.mu.Lock()
	pub, prev, have := g.pub, g.claims, g.have
	g.mu.Unlock()
	if pub == nil {
		k, err := DecodePublicKey(grant.PublicKey)
		if err != nil {
			return Claims{}, fmt.Errorf("license %s: %w", g.cfg.LicenseID, err)
		}
		pub = k
	}
	c, err := ParseToken(grant.Token, pub)
	if err != nil {
		if grant.PublicKey != EncodePublicKey(pub) && g.cfg.PublicKey == nil {
			err = fmt.Errorf("%w; the authority now presents key %s but this node pinned %s (delete %s if the authority's key was replaced on purpose)",
				err, keyIDOf(grant.PublicKey), KeyID(pub), g.cfg.StatePath)
		}
		return Claims{}, fmt.Errorf("license %s: %w", g.cfg.LicenseID, err)
	}
	if err := c.CheckBinding(g.cfg.LicenseID, g.cfg.ClusterID, g.cfg.NodeID); err != nil {
		return Claims{}, fmt.Errorf("license %s: %w", g.cfg.LicenseID, err)
	}
	if err := c.CheckTime(now); err != nil {
		return Claims{}, fmt.Errorf("license %s: %w (is this node's clock right?)", g.cfg.LicenseID, err)
	}
	if have && c.Version < prev.Version {
		return Claims{}, fmt.Errorf("license %s: %w: token version %d is older than the %d seen before (a replayed token)", g.cfg.LicenseID, ErrBadToken, c.Version, prev.Version)
	}
	return c, nil
}

func keyIDOf(s string) string {
	k, err := DecodePublicKey(s)
	if err != nil {
		return "(none)"
	}
	return KeyID(k)
}

func (g *Gate) allowedLocked(now time.Time) error {
	id := g.cfg.LicenseID
	switch {
	case g.refused != nil:
		return g.refused
	case !g.have && g.lastErr != nil:
		return fmt.Errorf("license %s: %w: never validated: %w", id, ErrNoLicense, g.lastErr)
	case !g.have:
		return fmt.Errorf("license %s: %w: not validated yet", id, ErrNoLicense)
	case now.Unix() >= g.claims.LicenseExpiresAt:
		return fmt.Errorf("license %s: %w at %s", id, ErrExpired, g.claims.LicenseExpires().Format(time.RFC3339))
	case now.Unix() < g.claims.ExpiresAt:
		return nil
	}
	end := g.claims.Issued().Add(g.cfg.Grace)
	if now.Before(end) {
		return nil
	}
	last := "none"
	if g.lastErr != nil {
		last = g.lastErr.Error()
	}
	return fmt.Errorf("license %s: %w: the authority last confirmed the lease at %s, and the %s grace ended at %s (last error: %s)",
		id, ErrGraceExpired, g.claims.Issued().Format(time.RFC3339), g.cfg.Grace, end.Format(time.RFC3339), last)
}

func (g *Gate) notifyLocked(now time.Time) {
	ok := g.allowedLocked(now) == nil
	if ok != g.allowed {
		g.allowed = ok
		close(g.changed)
		g.changed = make(chan struct{})
	}
}

// GateStatus is a snapshot of the gate for operators.
type GateStatus struct {
	LicenseID string `json:"license_id"`
	ClusterID string `json:"cluster_id"`
	NodeID    string `json:"node_id"`
	Tier      string `json:"tier,omitempty"`
	Seat      int    `json:"seat,omitempty"`
	// Allowed is Allowed()==nil; Reason is its error otherwise.
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
	// Grace is true while work goes on only thanks to the grace period.
	Grace            bool      `json:"grace"`
	GraceEndsAt      time.Time `json:"grace_ends_at,omitzero"`
	LeaseExpiresAt   time.Time `json:"lease_expires_at,omitzero"`
	LicenseExpiresAt time.Time `json:"license_expires_at,omitzero"`
	Breaker          string    `json:"breaker"`
	LastError        string    `json:"last_error,omitempty"`
}

// Status returns a snapshot.
func (g *Gate) Status() GateStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	s := GateStatus{LicenseID: g.cfg.LicenseID, ClusterID: g.cfg.ClusterID, NodeID: g.cfg.NodeID, Breaker: g.breaker.at(now).String()}
	err := g.allowedLocked(now)
	s.Allowed, s.Reason = err == nil, errString(err)
	if g.have {
		s.Tier, s.Seat = g.claims.Tier, g.claims.Seat
		s.LeaseExpiresAt, s.LicenseExpiresAt = g.claims.Expires(), g.claims.LicenseExpires()
		s.GraceEndsAt = g.claims.Issued().Add(g.cfg.Grace)
		s.Grace = err == nil && now.Unix() >= g.claims.ExpiresAt
	}
	if g.lastErr != nil {
		s.LastError = g.lastErr.Error()
	}
	return s
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// gateState is the StatePath file.
type gateState struct {
	// PublicKey is the pinned authority key (EncodePublicKey).
	PublicKey string `json:"public_key"`
	// Token is the last good token; empty after a refusal.
	Token string `json:"token,omitempty"`
}

// loadState reads StatePath once, before the first activation. A token
// that does not verify with the pinned key or is for another license,
// cluster or node is ignored (logged); the pinned key is kept.
func (g *Gate) loadState() {
	if g.loaded || g.cfg.StatePath == "" {
		return
	}
	g.loaded = true
	b, err := os.ReadFile(g.cfg.StatePath)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var st gateState
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		err = dec.Decode(&st)
	}
	if err != nil {
		g.logger.Warn("ignoring unreadable license state", "path", g.cfg.StatePath, "error", err)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pub == nil && st.PublicKey != "" {
		if g.pub, err = DecodePublicKey(st.PublicKey); err != nil {
			g.logger.Warn("ignoring license state with a bad key", "path", g.cfg.StatePath, "error", err)
			return
		}
	}
	if st.Token == "" || g.pub == nil {
		return
	}
	c, err := ParseToken(st.Token, g.pub)
	if err == nil {
		err = c.CheckBinding(g.cfg.LicenseID, g.cfg.ClusterID, g.cfg.NodeID)
	}
	if err != nil {
		g.logger.Warn("ignoring the saved license token", "path", g.cfg.StatePath, "error", err)
		return
	}
	g.token, g.claims, g.have = st.Token, c, true
}

// persistLocked writes the state file; a failure is logged, not fatal
// (it only costs the grace period across a restart).
func (g *Gate) persistLocked() {
	if g.cfg.StatePath == "" || g.pub == nil {
		return
	}
	b, err := json.MarshalIndent(gateState{PublicKey: EncodePublicKey(g.pub), Token: g.token}, "", "  ")
	if err == nil {
		err = writeFileAtomic(g.cfg.StatePath, append(b, '\n'))
	}
	if err != nil {
		g.logger.Warn("saving the license state failed", "path", g.cfg.StatePath, "error", strings.TrimSpace(err.Error()))
	}
}
