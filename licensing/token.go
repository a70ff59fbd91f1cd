package licensing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// tokenVersion prefixes every token; a new format gets a new prefix.
const tokenVersion = "v1"

// maxTokenBytes bounds a token before any decoding.
const maxTokenBytes = 4096

// Claims are the signed contents of a token.
type Claims struct {
	// LicenseID, ClusterID and NodeID say whose seat this is.
	LicenseID string `json:"lid"`
	ClusterID string `json:"cid"`
	NodeID    string `json:"nid"`
	// Seat is the seat number, 1..Nodes.
	Seat int `json:"seat"`
	// Version is the license version at issue; an older one than the
	// license's current version means the license was revoked.
	Version int64 `json:"ver"`
	// Tier is the license's tier.
	Tier string `json:"tier"`
	// IssuedAt and ExpiresAt bound the token (Unix seconds); ExpiresAt is
	// also when the seat lease ends unless renewed.
	IssuedAt  int64 `json:"iat"`
	ExpiresAt int64 `json:"exp"`
	// LicenseExpiresAt is the license's own expiry (Unix seconds).
	LicenseExpiresAt int64 `json:"lexp"`
	// KeyID names the signing key (KeyID of its public key).
	KeyID string `json:"kid"`
}

// Issued is IssuedAt as a time.
func (c Claims) Issued() time.Time { return time.Unix(c.IssuedAt, 0).UTC() }

// Expires is ExpiresAt as a time.
func (c Claims) Expires() time.Time { return time.Unix(c.ExpiresAt, 0).UTC() }

// LicenseExpires is LicenseExpiresAt as a time.
func (c Claims) LicenseExpires() time.Time { return time.Unix(c.LicenseExpiresAt, 0).UTC() }

// validate checks every claim's shape; errors name the claim.
func (c Claims) validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: claims.%s: %s", ErrBadToken, field, fmt.Sprintf(format, a...))
	}
	if !licenseIDRe.MatchString(c.LicenseID) {
		return bad("lid", "not a license id: %q", truncate(c.LicenseID, 80))
	}
	if checkName("cid", c.ClusterID) != nil {
		return bad("cid", "not a cluster id: %q", truncate(c.ClusterID, 80))
	}
	if checkName("nid", c.NodeID) != nil {
		return bad("nid", "not a node id: %q", truncate(c.NodeID, 80))
	}
	switch {
	case c.Seat < 1 || c.Seat > MaxNodes:
		return bad("seat", "must be between 1 and %d, got %d", MaxNodes, c.Seat)
	case c.Version < 1:
		return bad("ver", "must be at least 1, got %d", c.Version)
	case !tierRe.MatchString(c.Tier):
		return bad("tier", "not a tier: %q", truncate(c.Tier, 80))
	case c.IssuedAt <= 0:
		return bad("iat", "must be positive, got %d", c.IssuedAt)
	case c.ExpiresAt <= c.IssuedAt:
		return bad("exp", "must be after iat (%d), got %d", c.IssuedAt, c.ExpiresAt)
	case c.LicenseExpiresAt <= 0:
		return bad("lexp", "must be positive, got %d", c.LicenseExpiresAt)
	case c.KeyID == "":
		return bad("kid", "must not be empty")
	}
	return nil
}

// KeyID is the short name of a public key: the first 8 bytes of its
// SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// SignToken encodes and signs claims with key. The format is
//
//	v1.<payload>.<signature>
//
// where payload is the base64url (no padding) of the compact JSON of the
// claims and signature the base64url (no padding) Ed25519 signature of the
// ASCII bytes "v1.<payload>".
func SignToken(key ed25519.PrivateKey, c Claims) (string, error) {
	if err := c.validate(); err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	input := tokenVersion + "." + base64.RawURLEncoding.EncodeToString(b)
	sig := ed25519.Sign(key, []byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// ParseToken checks a token's format and signature against pub and returns
// its claims. It does not look at the time: CheckTime does. Every failure
// wraps ErrBadToken and says which part is wrong.
func ParseToken(token string, pub ed25519.PublicKey) (Claims, error) {
	if len(token) > maxTokenBytes {
		return Claims{}, fmt.Errorf("%w: token: %d bytes, more than %d", ErrBadToken, len(token), maxTokenBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("%w: token: want 3 dot-separated parts (v1.<payload>.<signature>), got %d", ErrBadToken, len(parts))
	}
	if parts[0] != tokenVersion {
		return Claims{}, fmt.Errorf("%w: token: version %q, want %q", ErrBadToken, truncate(parts[0], 16), tokenVersion)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: token payload: not base64url: %v", ErrBadToken, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: token signature: not base64url: %v", ErrBadToken, err)
	}
	if len(pub) != ed25519.PublicKeySize {
		return Claims{}, fmt.Errorf("%w: no authority public key to check it with", ErrBadToken)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return Claims{}, fmt.Errorf("%w: token signature: does not verify with the authority key %s (forged, tampered with, or signed by another authority)", ErrBadToken, KeyID(pub))
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Claims{}, fmt.Errorf("%w: token payload: %v", ErrBadToken, err)
	}
	if err := c.validate(); err != nil {
		return Claims{}, err
	}
	if c.KeyID != KeyID(pub) {
		return Claims{}, fmt.Errorf("%w: claims.kid: %q, want %q", ErrBadToken, c.KeyID, KeyID(pub))
	}
	return c, nil
}

// CheckTime reports whether the token is valid at now.
func (c Claims) CheckTime(now time.Time) error {
	if now.Unix() >= c.ExpiresAt {
		return fmt.Errorf("%w: token expired at %s", ErrBadToken, c.Expires().Format(time.RFC3339))
	}
	if now.Unix() >= c.LicenseExpiresAt {
		return fmt.Errorf("license %s: %w at %s", c.LicenseID, ErrExpired, c.LicenseExpires().Format(time.RFC3339))
	}
	return nil
}

// CheckBinding reports whether the token is for this license, cluster and
// node.
func (c Claims) CheckBinding(licenseID, clusterID, nodeID string) error {
	switch {
	case c.LicenseID != licenseID:
		return fmt.Errorf("%w: token is for license %s, not %s", ErrBadToken, c.LicenseID, licenseID)
	case c.ClusterID != clusterID:
		return fmt.Errorf("%w: token of license %s is for cluster %q, this node is in cluster %q", ErrWrongCluster, c.LicenseID, c.ClusterID, clusterID)
	case c.NodeID != nodeID:
		return fmt.Errorf("%w: token is for node %q, not %q", ErrBadToken, c.NodeID, nodeID)
	}
	return nil
}

// EncodePublicKey is the wire form of a public key: standard base64.
func EncodePublicKey(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// DecodePublicKey parses EncodePublicKey's output.
func DecodePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public_key: not a base64 Ed25519 public key", ErrBadToken)
	}
	return ed25519.PublicKey(b), nil
}
