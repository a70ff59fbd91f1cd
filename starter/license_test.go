package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus/licensing"
)

// lockedBuffer is an io.Writer safe for a command running in a goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// licenseServer runs `starter license-server` on a free port until the
// test ends and returns its URL and the exit code channel.
func licenseServer(t *testing.T, dataDir string) (url string, stop func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"license-server", "--addr", addr, "--data-dir", dataDir}, func(string) string { return "" }, &out, &errOut)
	}()
	url = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/status")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case code := <-done:
			t.Fatalf("license-server exited %d: %s %s", code, out.String(), errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("license-server not up: %v: %s", err, errOut.String())
		}
		<-time.After(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "license server on "+url) {
		t.Errorf("banner: %q", out.String())
	}
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { stop() })
	return url, stop
}

func TestLicenseCommands(t *testing.T) {
	dir := t.TempDir()
	url, stop := licenseServer(t, dir)
	tokenFile := filepath.Join(dir, licensing.AdminTokenFile)
	env := map[string]string{"CHORUS_LICENSE_SERVER": url}
	adm := []string{"--admin-token-file", tokenFile}

	out, errOut, code := starter(t, env, append([]string{"license", "issue", "--tier", "standard", "--nodes", "2", "--expires", "720h", "--cluster", "prod"}, adm...)...)
	id := strings.TrimSpace(out)
	if code != 0 || licensing.CheckLicenseID(id) != nil || !strings.Contains(errOut, "--license "+id) {
		t.Fatalf("issue: exit %d, %q %q", code, out, errOut)
	}
	out, errOut, code = starter(t, env, append([]string{"license", "issue", "--cluster", "dev", "--tier", "dev", "--json"}, adm...)...)
	var dev licensing.License
	if code != 0 || json.Unmarshal([]byte(out), &dev) != nil || dev.Tier != "dev" || dev.Nodes != 1 || dev.ExpiresAt.Sub(dev.IssuedAt) != 720*time.Hour {
		t.Fatalf("issue --json: exit %d, %q %q", code, out, errOut)
	}

	// A worker takes a seat; status shows it, with no admin token needed.
	c, err := licensing.NewClient(url, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Activate(context.Background(), licensing.ActivateRequest{LicenseID: id, ClusterID: "prod", NodeID: "worker-a"}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = starter(t, map[string]string{}, "license", "status", id, "--license-server", url)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "1/2") || !strings.Contains(out, "worker-a") || !strings.Contains(out, "active") {
		t.Fatalf("status ID: exit %d, %q %q", code, out, errOut)
	}
	// The list needs the token (here from the environment) and marks dev licenses.
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = starter(t, map[string]string{"CHORUS_LICENSE_SERVER": url, "CHORUS_LICENSE_ADMIN_TOKEN": string(token)}, "license", "status")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, dev.ID) || !strings.Contains(out, "dev (development license)") {
		t.Fatalf("status: exit %d, %q %q", code, out, errOut)
	}

	out, errOut, code = starter(t, env, append([]string{"license", "revoke", id}, adm...)...)
	if code != 0 || !strings.Contains(out, "revoked "+id) || !strings.Contains(out, "version 2") {
		t.Fatalf("revoke: exit %d, %q %q", code, out, errOut)
	}

	// SIGTERM (the ctx) stops the server cleanly; a restart keeps everything.
	if code := stop(); code != 0 {
		t.Fatalf("license-server exit %d after its ctx ended", code)
	}
	url, _ = licenseServer(t, dir)
	out, errOut, code = starter(t, map[string]string{}, "license", "status", id, "--json", "--license-server", url)
	var st licensing.StatusResponse
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Licenses) != 1 || st.Licenses[0].State != "revoked" || st.Licenses[0].Version != 2 {
		t.Fatalf("status after restart: exit %d, %q %q", code, out, errOut)
	}

	env["CHORUS_LICENSE_SERVER"] = url
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"license", "issue"}, "--cluster is required"},
		{append([]string{"license", "issue", "--cluster", "prod", "--nodes", "0"}, adm...), "nodes: must be between 1 and"},
		{append([]string{"license", "issue", "--cluster", "prod", "--expires", "-1h"}, adm...), "--expires must be positive"},
		{[]string{"license", "issue", "--cluster", "prod", "--admin-token-file", filepath.Join(dir, "missing")}, "missing"},
		{[]string{"license", "issue", "--cluster", "prod", "--admin-token-file", filepath.Join(t.TempDir(), "none")}, "no admin token"},
		{[]string{"license", "revoke"}, "exactly one license id"},
		{append([]string{"license", "revoke", "lic-nope"}, adm...), "license_id: must be lic-"},
		{append([]string{"license", "revoke", "lic-ffffffffffffffffffffffffffffffff"}, adm...), "unknown license"},
		{[]string{"license", "status", "lic-ffffffffffffffffffffffffffffffff"}, "unknown license"},
		{[]string{"license", "status", "a", "b"}, "at most one"},
		{[]string{"license", "frob"}, `unknown subcommand "frob"`},
		{[]string{"license", "status", id, "--license-server", "http://127.0.0.1:1"}, "is the license server running"},
		{[]string{"license", "status", id, "--license-server", "127.0.0.1:9092"}, "--license-server"},
	}
	for _, c := range cases {
		_, errOut, code := starter(t, env, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%q: exit %d, stderr %q; want one line mentioning %q", c.args, code, errOut, c.want)
		}
	}
	// A wrong admin token is named as such.
	bad := filepath.Join(t.TempDir(), "bad.token")
	os.WriteFile(bad, []byte("not-the-admin-token-at-all\n"), 0o600)
	_, errOut, code = starter(t, env, "license", "issue", "--cluster", "prod", "--admin-token-file", bad)
	if code != 1 || !strings.Contains(errOut, "admin token") {
		t.Fatalf("wrong token: exit %d, %q", code, errOut)
	}
}

func TestLicenseHelp(t *testing.T) {
	out, _, code := starter(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "license-server") {
		t.Fatalf("usage: %q", out)
	}
	for _, args := range [][]string{{"license", "issue"}, {"license", "revoke"}, {"license", "status"}, {"license-server"}} {
		_, errOut, code := starter(t, nil, append(args, "--help")...)
		want := "Usage: starter " + strings.Join(args, " ")
		if code != 0 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "-json") {
			t.Errorf("%v --help: exit %d, %q", args, code, errOut)
		}
		if args[0] == "license" && !strings.Contains(errOut, "-license-server") {
			t.Errorf("%v --help does not list --license-server", args)
		}
	}
	_, errOut, code := starter(t, nil, "license", "--help")
	if code != 0 || !strings.Contains(errOut, "CHORUS_LICENSE_SERVER") {
		t.Fatalf("license --help: exit %d, %q", code, errOut)
	}
	_, errOut, code = starter(t, nil, "license")
	if code != 2 || !strings.Contains(errOut, "want a subcommand") {
		t.Fatalf("license: exit %d, %q", code, errOut)
	}
	_, errOut, code = starter(t, nil, "license-server", "--addr", "nonsense", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "nonsense") {
		t.Fatalf("bad addr: exit %d, %q", code, errOut)
	}
}
