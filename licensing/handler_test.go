package licensing

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"chorus"
)

func post(t *testing.T, url, auth, body string) (int, ErrorBody, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e ErrorBody
	json.Unmarshal(b, &e)
	return resp.StatusCode, e, string(b)
}

func TestHTTPErrorsNameTheField(t *testing.T) {
	clock := newClock()
	a := newTestAuthority(t, t.TempDir(), clock)
	l := issue(t, a, 1, "prod")
	srv := serve(t, a.Handler()).srv
	admin := "Bearer test-admin-token-0123456789"
	cases := []struct {
		path, auth, body string
		status           int
		code, field      string
		text             string
	}{
		{"/activate", "", `{"license_id": "` + l.ID + `", "cluster_id": "prod"}`, 400, CodeInvalid, "node_id", "node_id: must not be empty"},
		{"/activate", "", `{"license_id": 7}`, 400, CodeInvalid, "license_id", "must be a JSON string"},
		{"/activate", "", `{"license": "x"}`, 400, CodeInvalid, "license", "unknown field"},
		{"/activate", "", ``, 400, CodeInvalid, "body", "empty"},
		{"/activate", "", `{} {}`, 400, CodeInvalid, "body", "more than one"},
		{"/activate", "", `{"license_id": "lic-ffffffffffffffffffffffffffffffff", "cluster_id": "prod", "node_id": "a"}`, 404, CodeUnknownLicense, "", "unknown license"},
		{"/activate", "", `{"license_id": "` + l.ID + `", "cluster_id": "qa", "node_id": "a"}`, 403, CodeWrongCluster, "", `cluster "qa"`},
		{"/heartbeat", "", `{"token": "v1.x.y"}`, 401, CodeBadToken, "", "token payload"},
		{"/heartbeat", "", `{"token": ""}`, 400, CodeInvalid, "token", "token: must not be empty"},
		{"/deactivate", "", `{"token": 1}`, 400, CodeInvalid, "token", "must be a JSON string"},
		{"/licenses", "", `{"tier": "standard"}`, 401, CodeUnauthorized, "", "Authorization: Bearer"},
		{"/licenses", "Bearer wrong-token-wrong-token", `{"tier": "standard"}`, 401, CodeUnauthorized, "", "admin token"},
		{"/licenses", admin, `{"tier": "standard", "nodes": 0, "cluster_id": "prod", "expires_in": "1h"}`, 400, CodeInvalid, "nodes", "nodes: must be between 1 and"},
		{"/licenses", admin, `{"tier": "standard", "nodes": 1, "cluster_id": "prod", "expires_in": "soon"}`, 400, CodeInvalid, "expires_in", "not a duration"},
		{"/licenses/lic-1/revoke", admin, ``, 400, CodeInvalid, "license_id", "must be lic-"},
		{"/licenses/lic-ffffffffffffffffffffffffffffffff/revoke", admin, ``, 404, CodeUnknownLicense, "", "unknown license"},
	}
	for _, c := range cases {
		status, e, raw := post(t, srv.URL+c.path, c.auth, c.body)
		if status != c.status || e.Code != c.code || e.Field != c.field || !strings.Contains(e.Error, c.text) {
			t.Errorf("POST %s %s: %d %s, want %d code %s field %q text %q", c.path, c.body, status, raw, c.status, c.code, c.field, c.text)
		}
	}
	// Seat exhaustion has its own code.
	post(t, srv.URL+"/activate", "", `{"license_id": "`+l.ID+`", "cluster_id": "prod", "node_id": "a"}`)
	status, e, raw := post(t, srv.URL+"/activate", "", `{"license_id": "`+l.ID+`", "cluster_id": "prod", "node_id": "b"}`)
	if status != 409 || e.Code != CodeSeatsExhausted {
		t.Fatalf("seat exhaustion: %d %s", status, raw)
	}
}

func TestClientSpeaksTheAPI(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	a := newTestAuthority(t, t.TempDir(), clock)
	s := serve(t, a.Handler())
	c := client(t, s.srv.URL)

	l, err := c.Issue(ctx, IssueRequest{Tier: "standard", Nodes: 1, ClusterID: "prod", ExpiresIn: "720h"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.Activate(ctx, ActivateRequest{LicenseID: l.ID, ClusterID: "prod", NodeID: "a"})
	if err != nil || g.Seat != 1 || g.PublicKey != EncodePublicKey(a.PublicKey()) {
		t.Fatalf("activate: %+v, %v", g, err)
	}
	if _, err := c.Heartbeat(ctx, HeartbeatRequest{Token: g.Token}); err != nil {
		t.Fatal(err)
	}
	// Refusals come back as the same sentinels as in process.
	_, err = c.Activate(ctx, ActivateRequest{LicenseID: l.ID, ClusterID: "prod", NodeID: "b"})
	var re *RemoteError
	if !errors.Is(err, ErrSeatsExhausted) || !errors.As(err, &re) || re.Status != 409 || !isRefusal(err) {
		t.Fatalf("seat exhaustion over HTTP: %v", err)
	}
	if _, err := c.Activate(ctx, ActivateRequest{LicenseID: l.ID, ClusterID: "prod"}); !errors.Is(err, chorus.ErrInvalid) {
		t.Fatalf("missing node: %v", err)
	}
	// Status: one license for whoever knows its id, all with the admin token.
	st, err := c.Status(ctx, l.ID)
	if err != nil || len(st.Licenses) != 1 || st.Licenses[0].SeatsInUse != 1 || st.Authority.KeyID != KeyID(a.PublicKey()) {
		t.Fatalf("status: %+v, %v", st, err)
	}
	anon, _ := NewClient(s.srv.URL, nil, "")
	if st, err := anon.Status(ctx, ""); err != nil || len(st.Licenses) != 0 || st.Authority.PublicKey == "" {
		t.Fatalf("anonymous status: %+v, %v", st, err)
	}
	if _, err := anon.Issue(ctx, IssueRequest{}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("issue without a token: %v", err)
	}
	if r, err := c.Revoke(ctx, l.ID); err != nil || r.Version != 2 {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	if _, err := c.Heartbeat(ctx, HeartbeatRequest{Token: g.Token}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("heartbeat after revoke over HTTP: %v", err)
	}
	// A dead authority and a server that is not one are unreachable, not refusals.
	s.down.Store(true)
	if _, err := c.Activate(ctx, ActivateRequest{LicenseID: l.ID, ClusterID: "prod", NodeID: "a"}); !errors.Is(err, ErrUnreachable) || isRefusal(err) {
		t.Fatalf("down: %v", err)
	}
	other := serve(t, http.NotFoundHandler())
	if _, err := client(t, other.srv.URL).Activate(ctx, ActivateRequest{LicenseID: l.ID, ClusterID: "prod", NodeID: "a"}); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "is that a license server") {
		t.Fatalf("not an authority: %v", err)
	}
	if _, err := NewClient("127.0.0.1:9092", nil, ""); !errors.Is(err, chorus.ErrInvalid) {
		t.Fatalf("URL without scheme: %v", err)
	}
}
