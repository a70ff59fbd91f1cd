package licensing

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"chorus"
)

// Sentinel errors. Every refusal of the authority wraps one of them, on both
// sides of the wire (Client maps the error codes back); callers branch with
// errors.Is.
var (
	// ErrUnknownLicense: the authority has no license with that id.
	ErrUnknownLicense = errors.New("unknown license")
	// ErrRevoked: the license was revoked, or a token carries an older
	// license version than the current one.
	ErrRevoked = errors.New("license revoked")
	// ErrExpired: the license is past its expiry.
	ErrExpired = errors.New("license expired")
	// ErrWrongCluster: the license is bound to another cluster.
	ErrWrongCluster = errors.New("license bound to another cluster")
	// ErrSeatsExhausted: every seat of the license is leased to another node.
	ErrSeatsExhausted = errors.New("no free seat")
	// ErrLeaseLost: the node's seat lease expired or was released; the node
	// must activate again.
	ErrLeaseLost = errors.New("seat lease lost")
	// ErrBadToken: a token is malformed, tampered with, signed by another
	// key, expired, or issued for another license, cluster or node.
	ErrBadToken = errors.New("invalid license token")
	// ErrUnauthorized: an operator action without the right admin token.
	ErrUnauthorized = errors.New("admin token required")
	// ErrUnreachable: the authority could not be asked (network, 5xx, open
	// circuit breaker). It is the only failure the offline grace covers.
	ErrUnreachable = errors.New("license authority unreachable")
	// ErrBreakerOpen wraps ErrUnreachable while the circuit breaker is open
	// and no request is sent.
	ErrBreakerOpen = fmt.Errorf("circuit breaker open: %w", ErrUnreachable)
	// ErrGraceExpired: the authority has been unreachable for longer than
	// the offline grace period since the last successful validation.
	ErrGraceExpired = errors.New("offline grace period over")
	// ErrNoLicense: the gate has no validated license (yet).
	ErrNoLicense = errors.New("no license")
)

// TierDev is the tier of the licenses `worker --dev` provisions for itself.
const TierDev = "dev"

// Limits enforced on licenses and identifiers.
const (
	// MaxNodes bounds a license's node limit; more seats than this is a
	// typo, not a deployment.
	MaxNodes = 10000
	// MaxLifetime bounds a license's lifetime at issue.
	MaxLifetime = 100 * 365 * 24 * time.Hour
	maxIDLen    = 128
)

var (
	licenseIDRe = regexp.MustCompile(`^lic-[0-9a-f]{32}$`)
	tierRe      = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	nameRe      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:@/-]*$`)
)

// License is one grant of the right to run chorus workers.
type License struct {
	// ID is "lic-" and 32 hex digits (128 random bits). Whoever knows it
	// may activate the license: it is the license key.
	ID string `json:"id"`
	// Tier is a label such as "dev" or "standard"; TierDev marks the
	// licenses a dev worker provisions for itself.
	Tier string `json:"tier"`
	// Nodes is the node limit: how many seats may be leased at once.
	Nodes int `json:"nodes"`
	// ClusterID is the one cluster the license may be used in.
	ClusterID string    `json:"cluster_id"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Version starts at 1 and is bumped by Revoke; tokens of an older
	// version are refused.
	Version int64 `json:"version"`
	// RevokedAt is set once the license is revoked.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Note is free text from the issuer.
	Note string `json:"note,omitempty"`
}

// Dev reports whether this is a dev license.
func (l License) Dev() bool { return l.Tier == TierDev }

// State is "revoked", "expired" or "active" at now.
func (l License) State(now time.Time) string {
	switch {
	case l.RevokedAt != nil:
		return StateRevoked
	case !now.Before(l.ExpiresAt):
		return StateExpired
	}
	return StateActive
}

// License states reported by State.
const (
	StateActive  = "active"
	StateRevoked = "revoked"
	StateExpired = "expired"
)

// Seat is one node's lease of a seat.
type Seat struct {
	Seat        int       `json:"seat"`
	NodeID      string    `json:"node_id"`
	ActivatedAt time.Time `json:"activated_at"`
	RenewedAt   time.Time `json:"renewed_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// LicenseStatus is a license with its live seat leases.
type LicenseStatus struct {
	License
	State      string `json:"state"`
	Dev        bool   `json:"dev,omitempty"`
	SeatsInUse int    `json:"seats_in_use"`
	Seats      []Seat `json:"seats"`
}

// IssueRequest asks for a new license. Exactly one of ExpiresAt and
// ExpiresIn is set.
type IssueRequest struct {
	Tier      string    `json:"tier"`
	Nodes     int       `json:"nodes"`
	ClusterID string    `json:"cluster_id"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// ExpiresIn is a Go duration ("720h") counted from the authority's now.
	ExpiresIn string `json:"expires_in,omitempty"`
	Note      string `json:"note,omitempty"`
}

// Validate checks the request's fields against now and returns the expiry.
func (r IssueRequest) validate(now time.Time) (time.Time, error) {
	if !tierRe.MatchString(r.Tier) {
		return time.Time{}, fieldErr("tier", "must match [a-z][a-z0-9-]{0,31}, got %q", r.Tier)
	}
	if r.Nodes < 1 || r.Nodes > MaxNodes {
		return time.Time{}, fieldErr("nodes", "must be between 1 and %d, got %d", MaxNodes, r.Nodes)
	}
	if err := checkName("cluster_id", r.ClusterID); err != nil {
		return time.Time{}, err
	}
	if len(r.Note) > 1024 {
		return time.Time{}, fieldErr("note", "must be at most 1024 bytes, got %d", len(r.Note))
	}
	var exp time.Time
	switch {
	case r.ExpiresIn != "" && !r.ExpiresAt.IsZero():
		return time.Time{}, fieldErr("expires_in", "give expires_in or expires_at, not both")
	case r.ExpiresIn != "":
		d, err := time.ParseDuration(r.ExpiresIn)
		if err != nil {
			return time.Time{}, fieldErr("expires_in", "%q is not a duration like 720h", r.ExpiresIn)
		}
		if d <= 0 || d > MaxLifetime {
			return time.Time{}, fieldErr("expires_in", "must be positive and at most %s, got %s", MaxLifetime, d)
		}
		exp = now.Add(d)
	case !r.ExpiresAt.IsZero():
		if !r.ExpiresAt.After(now) {
			return time.Time{}, fieldErr("expires_at", "%s is not in the future", r.ExpiresAt.Format(time.RFC3339))
		}
		if r.ExpiresAt.Sub(now) > MaxLifetime {
			return time.Time{}, fieldErr("expires_at", "must be within %s", MaxLifetime)
		}
		exp = r.ExpiresAt
	default:
		return time.Time{}, fieldErr("expires_in", "must be set (or expires_at)")
	}
	return exp.UTC().Truncate(time.Second), nil
}

// FieldError is bad input; Field names the offending JSON field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes every FieldError match chorus.ErrInvalid.
func (e *FieldError) Unwrap() error { return chorus.ErrInvalid }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// CheckLicenseID reports whether id has the shape of a license id.
func CheckLicenseID(id string) error {
	if id == "" {
		return fieldErr("license_id", "must not be empty")
	}
	if !licenseIDRe.MatchString(id) {
		return fieldErr("license_id", "must be lic- and 32 hex digits, got %q", truncate(id, 80))
	}
	return nil
}

// checkName validates a cluster or node id.
func checkName(field, v string) error {
	switch {
	case v == "":
		return fieldErr(field, "must not be empty")
	case len(v) > maxIDLen:
		return fieldErr(field, "must be at most %d bytes, got %d", maxIDLen, len(v))
	case !nameRe.MatchString(v):
		return fieldErr(field, "must match [A-Za-z0-9_][A-Za-z0-9_.:@/-]*, got %q", truncate(v, 80))
	}
	return nil
}

// CheckClusterID reports whether id can name a cluster.
func CheckClusterID(id string) error { return checkName("cluster_id", id) }

// CheckNodeID reports whether id can name a node.
func CheckNodeID(id string) error { return checkName("node_id", id) }

func newLicenseID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate license id: %w", err)
	}
	return "lic-" + hex.EncodeToString(b[:]), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
