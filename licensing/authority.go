package licensing

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Files under AuthorityConfig.DataDir.
const (
	// StoreFile is the SQLite file of licenses and seat leases.
	StoreFile = "authority.db"
	// KeyFile is the authority's Ed25519 signing key (PEM PKCS#8, 0600).
	KeyFile = "authority.key"
	// AdminTokenFile is where LoadOrCreateAdminToken keeps the admin token
	// when none is given.
	AdminTokenFile = "admin.token"
)

// AuthorityConfig configures an Authority.
type AuthorityConfig struct {
	// DataDir holds StoreFile and KeyFile; it is created (0700) if needed.
	DataDir string
	// LeaseTTL is how long a seat lease, and the token that proves it,
	// lasts without a heartbeat.
	LeaseTTL time.Duration
	// AdminToken enables the operator actions over HTTP (issue, revoke,
	// list) for requests with "Authorization: Bearer <token>". Empty
	// disables them; the Go API needs no token.
	AdminToken string
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
	// Logger receives authority events; nil discards them.
	Logger *slog.Logger
	// Metrics registers the authority's metrics; nil means none.
	Metrics prometheus.Registerer
}

// DefaultAuthorityConfig returns the defaults; DataDir must still be set.
func DefaultAuthorityConfig() AuthorityConfig {
	return AuthorityConfig{
		// Five minutes: a worker that dies without deactivating gives
		// its seat back within five minutes, and a lease survives four
		// lost heartbeats at the gate's default one-minute interval.
		LeaseTTL: 5 * time.Minute,
	}
}

// Validate checks the config; errors name the field.
func (c AuthorityConfig) Validate() error {
	if strings.TrimSpace(c.DataDir) == "" {
		return fieldErr("data_dir", "must not be empty")
	}
	if c.LeaseTTL < time.Second || c.LeaseTTL > 24*time.Hour {
		return fieldErr("lease_ttl", "must be between 1s and 24h, got %s", c.LeaseTTL)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return fieldErr("admin_token", "must be at least 16 characters, got %d", len(c.AdminToken))
	}
	return nil
}

// Authority is the license authority (KACHING): it issues and revokes
// licenses, leases seats and signs the tokens that prove a lease. Its
// HTTP face is Handler. Create it with NewAuthority; Close releases the
// store.
type Authority struct {
	cfg     AuthorityConfig
	key     ed25519.PrivateKey
	pub     ed25519.PublicKey
	kid     string
	store   *store
	logger  *slog.Logger
	metrics *authorityMetrics
}

// NewAuthority opens (or creates) the authority stored in cfg.DataDir: its
// signing key and its SQLite store. A restart with the same DataDir keeps
// every license, seat lease and the key, so tokens issued before still
// verify.
func NewAuthority(cfg AuthorityConfig) (*Authority, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("license authority config: %w", err)
	}
	cfg.LeaseTTL = cfg.LeaseTTL.Round(time.Second)
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("license authority data dir: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.DataDir, KeyFile))
	if err != nil {
		return nil, err
	}
	st, err := openStore(filepath.Join(cfg.DataDir, StoreFile))
	if err != nil {
		return nil, err
	}
	pub := key.Public().(ed25519.PublicKey)
	a := &Authority{cfg: cfg, key: key, pub: pub, kid: KeyID(pub), store: st, logger: cfg.Logger}
	if a.metrics, err = newAuthorityMetrics(cfg.Metrics, a); err != nil {
		return nil, errors.Join(err, st.close())
	}
	return a, nil
}

// Close closes the store; the Authority must not be used afterwards.
func (a *Authority) Close() error { return a.store.close() }

// PublicKey is the key tokens are checked with.
func (a *Authority) PublicKey() ed25519.PublicKey { return a.pub }

// now is the authority's clock in whole seconds: tokens carry Unix
// seconds, and leases and tokens must agree to the second.
func (a *Authority) now() time.Time { return a.cfg.Clock().UTC().Truncate(time.Second) }

// AuthorityInfo is what anyone may know about the authority.
type AuthorityInfo struct {
	KeyID           string    `json:"key_id"`
	PublicKey       string    `json:"public_key"`
	LeaseTTLSeconds float64   `json:"lease_ttl_seconds"`
	Time            time.Time `json:"time"`
}

// Info describes the authority.
func (a *Authority) Info() AuthorityInfo {
	return AuthorityInfo{KeyID: a.kid, PublicKey: EncodePublicKey(a.pub), LeaseTTLSeconds: a.cfg.LeaseTTL.Seconds(), Time: a.now()}
}

// Issue creates a license.
func (a *Authority) Issue(ctx context.Context, req IssueRequest) (License, error) {
	now := a.now()
	exp, err := req.validate(now)
	if err != nil {
		return License{}, fmt.Errorf("issue license: %w", err)
	}
	id, err := newLicenseID()
	if err != nil {
		return License{}, err
	}
	l := License{ID: id, Tier: req.Tier, Nodes: req.Nodes, ClusterID: req.ClusterID, IssuedAt: now, ExpiresAt: exp, Version: 1, Note: req.Note}
	if err := a.store.write(ctx, func(tx *sql.Tx) error { return insertLicense(ctx, tx, l) }); err != nil {
		return License{}, fmt.Errorf("issue license: %w", err)
	}
	a.logger.Info("license issued", "license", l.ID, "tier", l.Tier, "nodes", l.Nodes, "cluster", l.ClusterID, "expires", l.ExpiresAt)
	return l, nil
}

// Revoke revokes a license: it bumps the version, so every token issued
// before is refused at its next heartbeat, and refuses new activations.
// Revoking a revoked license changes nothing.
func (a *Authority) Revoke(ctx context.Context, id string) (License, error) {
	if err := CheckLicenseID(id); err != nil {
		return License{}, fmt.Errorf("revoke license: %w", err)
	}
	now := a.now()
	var l License
	err := a.store.write(ctx, func(tx *sql.Tx) error {
		var err error
		if l, err = getLicense(ctx, tx, id); err != nil {
			return err
		}
		if l.RevokedAt != nil {
			return nil
		}
		l.Version++
		l.RevokedAt = &now
		if _, err := tx.ExecContext(ctx, `UPDATE licenses SET version = ?, revoked_at = ? WHERE id = ?`, l.Version, formatTime(now), id); err != nil {
			return fmt.Errorf("update license: %w", err)
		}
		// The seats are free: no heartbeat of this license succeeds again.
		if _, err := tx.ExecContext(ctx, `DELETE FROM seats WHERE license_id = ?`, id); err != nil {
			return fmt.Errorf("release seats: %w", err)
		}
		return nil
	})
	if err != nil {
		return License{}, fmt.Errorf("revoke license: %w", err)
	}
	a.logger.Info("license revoked", "license", l.ID, "version", l.Version)
	return l, nil
}

// Status returns one license with its live seat leases.
func (a *Authority) Status(ctx context.Context, id string) (LicenseStatus, error) {
	if err := CheckLicenseID(id); err != nil {
		return LicenseStatus{}, fmt.Errorf("license status: %w", err)
	}
	l, err := getLicense(ctx, a.store.db, id)
	if err != nil {
		return LicenseStatus{}, fmt.Errorf("license status: %w", err)
	}
	return a.status(ctx, l)
}

// List returns every license with its live seat leases, oldest first.
func (a *Authority) List(ctx context.Context) ([]LicenseStatus, error) {
	ls, err := listLicenses(ctx, a.store.db)
	if err != nil {
		return nil, err
	}
	out := make([]LicenseStatus, 0, len(ls))
	for _, l := range ls {
		st, err := a.status(ctx, l)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (a *Authority) status(ctx context.Context, l License) (LicenseStatus, error) {
	now := a.now()
	seats, err := liveSeats(ctx, a.store.db, l.ID, now)
	if err != nil {
		return LicenseStatus{}, fmt.Errorf("license status: %w", err)
	}
	return LicenseStatus{License: l, State: l.State(now), Dev: l.Dev(), SeatsInUse: len(seats), Seats: seats}, nil
}

// ActivateRequest asks for a seat of a license for one node.
type ActivateRequest struct {
	LicenseID string `json:"license_id"`
	ClusterID string `json:"cluster_id"`
	NodeID    string `json:"node_id"`
}

func (r ActivateRequest) validate() error {
	return errors.Join(CheckLicenseID(r.LicenseID), CheckClusterID(r.ClusterID), CheckNodeID(r.NodeID))
}

// HeartbeatRequest renews the lease the token proves.
type HeartbeatRequest struct {
	Token string `json:"token"`
}

// DeactivateRequest releases the lease the token proves.
type DeactivateRequest struct {
	Token string `json:"token"`
}

func checkToken(token string) error {
	if token == "" {
		return fieldErr("token", "must not be empty")
	}
	return nil
}

// Grant is the answer to a successful activation or heartbeat.
type Grant struct {
	// Token proves the lease until LeaseExpiresAt.
	Token string `json:"token"`
	// PublicKey is the authority's key (EncodePublicKey) for checking the
	// token.
	PublicKey      string    `json:"public_key"`
	Seat           int       `json:"seat"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	License        License   `json:"license"`
}

// Activate leases a seat of the license to the node. A node that already
// holds a live lease keeps its seat (the lease is renewed), so activating
// again after a restart is safe. It fails with ErrUnknownLicense,
// ErrRevoked, ErrExpired, ErrWrongCluster or ErrSeatsExhausted.
func (a *Authority) Activate(ctx context.Context, req ActivateRequest) (g Grant, err error) {
	defer func() { a.metrics.observe("activate", err) }()
	if err := req.validate(); err != nil {
		return Grant{}, fmt.Errorf("activate: %w", err)
	}
	now := a.now()
	var l License
	var seat Seat
	err = a.store.write(ctx, func(tx *sql.Tx) error {
		var err error
		if l, err = getLicense(ctx, tx, req.LicenseID); err != nil {
			return err
		}
		if err := usable(l, now); err != nil {
			return err
		}
		if l.ClusterID != req.ClusterID {
			return fmt.Errorf("license %s: %w: it is bound to cluster %q, this node is in cluster %q", l.ID, ErrWrongCluster, l.ClusterID, req.ClusterID)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM seats WHERE license_id = ? AND expires_at <= ?`, l.ID, formatTime(now)); err != nil {
			return fmt.Errorf("drop expired leases: %w", err)
		}
		live, err := liveSeats(ctx, tx, l.ID, now)
		if err != nil {
			return err
		}
		exp := a.leaseEnd(l, now)
		for _, s := range live {
			if s.NodeID == req.NodeID {
				seat = s
				seat.RenewedAt, seat.ExpiresAt = now, exp
				return renewSeat(ctx, tx, l.ID, seat)
			}
		}
		if len(live) >= l.Nodes {
			return seatsExhausted(l, live, a.cfg.LeaseTTL)
		}
		seat = Seat{Seat: freeSeat(live), NodeID: req.NodeID, ActivatedAt: now, RenewedAt: now, ExpiresAt: exp}
		if _, err := tx.ExecContext(ctx, `INSERT INTO seats (license_id, node_id, seat, activated_at, renewed_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			l.ID, seat.NodeID, seat.Seat, formatTime(now), formatTime(now), formatTime(exp)); err != nil {
			return fmt.Errorf("lease seat: %w", err)
		}
		return nil
	})
	if err != nil {
		return Grant{}, fmt.Errorf("activate: %w", err)
	}
	a.logger.Info("seat leased", "license", l.ID, "node", seat.NodeID, "seat", seat.Seat, "until", seat.ExpiresAt)
	return a.grant(l, req.ClusterID, seat, now)
}

// Heartbeat renews the lease proven by a token and returns a fresh token.
// A token of an older license version fails with ErrRevoked; an expired
// token or a lease that is gone fails with ErrLeaseLost (activate again).
func (a *Authority) Heartbeat(ctx context.Context, req HeartbeatRequest) (g Grant, err error) {
	defer func() { a.metrics.observe("heartbeat", err) }()
	if err := checkToken(req.Token); err != nil {
		return Grant{}, fmt.Errorf("heartbeat: %w", err)
	}
	c, err := ParseToken(req.Token, a.pub)
	if err != nil {
		return Grant{}, fmt.Errorf("heartbeat: %w", err)
	}
	now := a.now()
	if now.Unix() >= c.ExpiresAt {
		return Grant{}, fmt.Errorf("heartbeat: license %s: %w: the token expired at %s; activate again", c.LicenseID, ErrLeaseLost, c.Expires().Format(time.RFC3339))
	}
	var l License
	var seat Seat
	err = a.store.write(ctx, func(tx *sql.Tx) error {
		var err error
		if l, err = getLicense(ctx, tx, c.LicenseID); err != nil {
			return err
		}
		if c.Version < l.Version {
			return fmt.Errorf("license %s: %w: the token is of version %d, the license is at version %d", l.ID, ErrRevoked, c.Version, l.Version)
		}
		if err := usable(l, now); err != nil {
			return err
		}
		if c.ClusterID != l.ClusterID {
			return fmt.Errorf("license %s: %w: it is bound to cluster %q, the token names %q", l.ID, ErrWrongCluster, l.ClusterID, c.ClusterID)
		}
		live, err := liveSeats(ctx, tx, l.ID, now)
		if err != nil {
			return err
		}
		for _, s := range live {
			if s.NodeID == c.NodeID && s.Seat == c.Seat {
				seat = s
				seat.RenewedAt, seat.ExpiresAt = now, a.leaseEnd(l, now)
				return renewSeat(ctx, tx, l.ID, seat)
			}
		}
		return fmt.Errorf("license %s: %w: node %q holds no live lease of seat %d; activate again", l.ID, ErrLeaseLost, c.NodeID, c.Seat)
	})
	if err != nil {
		return Grant{}, fmt.Errorf("heartbeat: %w", err)
	}
	return a.grant(l, c.ClusterID, seat, now)
}

// Deactivate releases the lease proven by a token, even an expired one, so
// the seat is free at once. Releasing a lease that is gone is not an error.
func (a *Authority) Deactivate(ctx context.Context, req DeactivateRequest) (err error) {
	defer func() { a.metrics.observe("deactivate", err) }()
	if err := checkToken(req.Token); err != nil {
		return fmt.Errorf("deactivate: %w", err)
	}
	c, err := ParseToken(req.Token, a.pub)
	if err != nil {
		return fmt.Errorf("deactivate: %w", err)
	}
	err = a.store.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM seats WHERE license_id = ? AND node_id = ? AND seat = ?`, c.LicenseID, c.NodeID, c.Seat)
		return err
	})
	if err != nil {
		return fmt.Errorf("deactivate: %w", err)
	}
	a.logger.Info("seat released", "license", c.LicenseID, "node", c.NodeID, "seat", c.Seat)
	return nil
}

// usable refuses revoked and expired licenses.
func usable(l License, now time.Time) error {
	switch l.State(now) {
	case StateRevoked:
		return fmt.Errorf("license %s: %w at %s (version %d)", l.ID, ErrRevoked, l.RevokedAt.Format(time.RFC3339), l.Version)
	case StateExpired:
		return fmt.Errorf("license %s: %w at %s", l.ID, ErrExpired, l.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// leaseEnd is now+LeaseTTL, but never past the license's expiry.
func (a *Authority) leaseEnd(l License, now time.Time) time.Time {
	exp := now.Add(a.cfg.LeaseTTL)
	if exp.After(l.ExpiresAt) {
		exp = l.ExpiresAt
	}
	return exp
}

func renewSeat(ctx context.Context, tx *sql.Tx, licenseID string, s Seat) error {
	if _, err := tx.ExecContext(ctx, `UPDATE seats SET renewed_at = ?, expires_at = ? WHERE license_id = ? AND node_id = ?`,
		formatTime(s.RenewedAt), formatTime(s.ExpiresAt), licenseID, s.NodeID); err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	return nil
}

// freeSeat is the lowest seat number not in live (sorted by seat).
func freeSeat(live []Seat) int {
	n := 1
	for _, s := range live {
		if s.Seat != n {
			break
		}
		n++
	}
	return n
}

func seatsExhausted(l License, live []Seat, ttl time.Duration) error {
	held := make([]string, 0, len(live))
	for _, s := range live {
		held = append(held, fmt.Sprintf("seat %d by node %s until %s", s.Seat, s.NodeID, s.ExpiresAt.Format(time.RFC3339)))
	}
	return fmt.Errorf("license %s: %w: all %d seats are leased (%s); a seat frees when its node stops or misses heartbeats for %s",
		l.ID, ErrSeatsExhausted, l.Nodes, strings.Join(held, "; "), ttl)
}

func (a *Authority) grant(l License, clusterID string, s Seat, now time.Time) (Grant, error) {
	tok, err := SignToken(a.key, Claims{
		LicenseID: l.ID, ClusterID: clusterID, NodeID: s.NodeID, Seat: s.Seat, Version: l.Version, Tier: l.Tier,
		IssuedAt: now.Unix(), ExpiresAt: s.ExpiresAt.Unix(), LicenseExpiresAt: l.ExpiresAt.Unix(), KeyID: a.kid,
	})
	if err != nil {
		return Grant{}, err
	}
	return Grant{Token: tok, PublicKey: EncodePublicKey(a.pub), Seat: s.Seat, LeaseExpiresAt: s.ExpiresAt, License: l}, nil
}

// DevLicenseNote marks the licenses EnsureDevLicense provisions.
const DevLicenseNote = "provisioned by worker --dev for itself; not for production"

// devLicenseLifetime is how long a provisioned dev license lasts; a dev
// worker restarted within it keeps the same license.
const devLicenseLifetime = 30 * 24 * time.Hour

// EnsureDevLicense returns the active dev license (tier TierDev, one seat)
// this authority provisioned for clusterID, issuing one when there is none
// or the one there expires within a day. created says whether it is new.
func (a *Authority) EnsureDevLicense(ctx context.Context, clusterID string) (l License, created bool, err error) {
	if err := CheckClusterID(clusterID); err != nil {
		return License{}, false, fmt.Errorf("dev license: %w", err)
	}
	ls, err := listLicenses(ctx, a.store.db)
	if err != nil {
		return License{}, false, fmt.Errorf("dev license: %w", err)
	}
	now := a.now()
	for i := len(ls) - 1; i >= 0; i-- {
		l := ls[i]
		if l.Dev() && l.Note == DevLicenseNote && l.ClusterID == clusterID && l.State(now) == StateActive && l.ExpiresAt.Sub(now) > 24*time.Hour {
			return l, false, nil
		}
	}
	l, err = a.Issue(ctx, IssueRequest{Tier: TierDev, Nodes: 1, ClusterID: clusterID, ExpiresIn: devLicenseLifetime.String(), Note: DevLicenseNote})
	if err != nil {
		return License{}, false, fmt.Errorf("dev license: %w", err)
	}
	return l, true, nil
}
