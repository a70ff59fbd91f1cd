package licensing

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func testKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testClaims(pub ed25519.PublicKey) Claims {
	return Claims{LicenseID: "lic-0123456789abcdef0123456789abcdef", ClusterID: "prod", NodeID: "a@1", Seat: 1, Version: 1, Tier: "standard",
		IssuedAt: 1_700_000_000, ExpiresAt: 1_700_000_300, LicenseExpiresAt: 1_800_000_000, KeyID: KeyID(pub)}
}

// sign signs raw payload bytes the way SignToken does, for tokens that
// SignToken itself would refuse to make.
func sign(key ed25519.PrivateKey, payload []byte) string {
	in := "v1." + base64.RawURLEncoding.EncodeToString(payload)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(in)))
}

func TestParseTokenRefusesBadTokens(t *testing.T) {
	key, other := testKey(t), testKey(t)
	pub := key.Public().(ed25519.PublicKey)
	good, err := SignToken(key, testClaims(pub))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ParseToken(good, pub); err != nil || c != testClaims(pub) {
		t.Fatalf("good token: %+v, %v", c, err)
	}
	forged, _ := SignToken(other, testClaims(pub))
	parts := strings.Split(good, ".")
	// Tampered: the payload says seat 2, the signature is of seat 1.
	c2 := testClaims(pub)
	c2.Seat = 2
	b2, _ := json.Marshal(c2)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b2) + "." + parts[2]
	withExtra := func() string {
		var m map[string]any
		b, _ := json.Marshal(testClaims(pub))
		json.Unmarshal(b, &m)
		m["admin"] = true
		b, _ = json.Marshal(m)
		return sign(key, b)
	}()
	badClaim := func(edit func(*Claims)) string {
		c := testClaims(pub)
		edit(&c)
		b, _ := json.Marshal(c)
		return sign(key, b)
	}
	cases := []struct {
		name, token, want string
	}{
		{"forged with another key", forged, "does not verify"},
		{"tampered payload", tampered, "does not verify"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)), "does not verify"},
		{"two parts", parts[0] + "." + parts[1], "want 3 dot-separated parts"},
		{"other version", "v2." + parts[1] + "." + parts[2], `version "v2"`},
		{"payload not base64", "v1.%%%." + parts[2], "token payload: not base64url"},
		{"signature not base64", "v1." + parts[1] + ".%%%", "token signature: not base64url"},
		{"payload not JSON", sign(key, []byte("not json")), "token payload"},
		{"unknown claim", withExtra, `unknown field "admin"`},
		{"no license id", badClaim(func(c *Claims) { c.LicenseID = "" }), "claims.lid"},
		{"bad cluster", badClaim(func(c *Claims) { c.ClusterID = "a b" }), "claims.cid"},
		{"seat 0", badClaim(func(c *Claims) { c.Seat = 0 }), "claims.seat"},
		{"version 0", badClaim(func(c *Claims) { c.Version = 0 }), "claims.ver"},
		{"exp before iat", badClaim(func(c *Claims) { c.ExpiresAt = c.IssuedAt }), "claims.exp"},
		{"other key id", badClaim(func(c *Claims) { c.KeyID = "0000000000000000" }), "claims.kid"},
		{"huge", strings.Repeat("a", maxTokenBytes+1), "bytes, more than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseToken(c.token, pub)
			if !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrBadToken mentioning %q", err, c.want)
			}
		})
	}
}

func TestClaimsTimeAndBinding(t *testing.T) {
	pub := testKey(t).Public().(ed25519.PublicKey)
	c := testClaims(pub)
	at := func(unix int64) time.Time { return time.Unix(unix, 0) }
	if err := c.CheckTime(at(c.ExpiresAt - 1)); err != nil {
		t.Fatalf("within the lease: %v", err)
	}
	if err := c.CheckTime(at(c.ExpiresAt)); !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	c.LicenseExpiresAt = c.ExpiresAt - 10
	if err := c.CheckTime(at(c.ExpiresAt - 5)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired license: %v", err)
	}
	c = testClaims(pub)
	cases := []struct {
		lic, cluster, node string
		want               error
	}{
		{c.LicenseID, "prod", "a@1", nil},
		{c.LicenseID, "staging", "a@1", ErrWrongCluster},
		{"lic-ffffffffffffffffffffffffffffffff", "prod", "a@1", ErrBadToken},
		{c.LicenseID, "prod", "b@1", ErrBadToken},
	}
	for _, tc := range cases {
		err := c.CheckBinding(tc.lic, tc.cluster, tc.node)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("CheckBinding(%s, %s, %s) = %v, want %v", tc.lic, tc.cluster, tc.node, err, tc.want)
		}
	}
}
