package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chorus/licensing"
)

// devWorker is the licensing half of a `worker --dev`: its embedded
// authority served on an ops mux, as run() does.
type devWorker struct {
	lic   *licensed
	url   string // the ops URL
	admin *licensing.Client
}

func startDevLicense(t *testing.T) *devWorker {
	t.Helper()
	dir := t.TempDir()
	lic, err := startLicense(context.Background(), options{dev: true, lic: licenseOptions{clusterID: "dev"}}, dir, "a", noenv, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lic.Close() })
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var out bytes.Buffer
	lic.serve(mux, srv.URL, &out)
	if !lic.dev || !strings.Contains(out.String(), "dev license "+lic.licenseID) || !strings.Contains(out.String(), "starter license issue --cluster dev --license-server "+srv.URL+"/license") {
		t.Fatalf("dev worker said %q", out.String())
	}
	token, err := licensing.ReadAdminToken(filepath.Join(dir, "license", licensing.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := licensing.NewClient(srv.URL+licensePath, nil, token)
	if err != nil {
		t.Fatal(err)
	}
	return &devWorker{lic: lic, url: srv.URL, admin: admin}
}

func (d *devWorker) issue(t *testing.T, nodes int, cluster string) string {
	t.Helper()
	l, err := d.admin.Issue(context.Background(), licensing.IssueRequest{Tier: "standard", Nodes: nodes, ClusterID: cluster, ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return l.ID
}

func TestDevWorkerProvisionsItsOwnLicense(t *testing.T) {
	d := startDevLicense(t)
	if err := d.lic.gate.Allowed(); err != nil {
		t.Fatal(err)
	}
	st, err := d.admin.Status(context.Background(), d.lic.licenseID)
	if err != nil || len(st.Licenses) != 1 || st.Licenses[0].Tier != licensing.TierDev || !st.Licenses[0].Dev || st.Licenses[0].SeatsInUse != 1 {
		t.Fatalf("the dev license in /status: %+v, %v", st, err)
	}
	if !strings.HasPrefix(st.Licenses[0].Seats[0].NodeID, "a@") {
		t.Fatalf("seat holder %q", st.Licenses[0].Seats[0].NodeID)
	}
}

func TestDevWorkerRestartKeepsItsLicense(t *testing.T) {
	dir := t.TempDir()
	o := options{dev: true, lic: licenseOptions{clusterID: "dev"}}
	var ids []string
	for range 2 {
		lic, err := startLicense(context.Background(), o, dir, "a", noenv, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, lic.licenseID+" "+lic.gate.Status().NodeID)
		if err := lic.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if ids[0] != ids[1] {
		t.Fatalf("license/node after restart: %q, before %q", ids[1], ids[0])
	}
}

func TestWorkerWithoutLicenseRefusesEvenBesideADevCluster(t *testing.T) {
	d := startDevLicense(t)
	// run() itself: the whole worker, pointed at the dev worker's board.
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--board", d.url, "--agent-id", "b", "--data-dir", t.TempDir(), "--ops-addr", "127.0.0.1:0", "--log-format", "json"},
		noenv, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "no license: pass --license") || !strings.Contains(err.Error(), "starter license issue --cluster dev --license-server "+d.url+"/license") {
		t.Fatalf("run without --license: %v", err)
	}
	// Nothing was leased for it.
	st, err := d.admin.Status(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Licenses {
		for _, s := range l.Seats {
			if strings.HasPrefix(s.NodeID, "b@") {
				t.Fatalf("worker b holds a seat: %+v", s)
			}
		}
	}
}

func TestWorkerRefusesABadLicense(t *testing.T) {
	d := startDevLicense(t)
	prod := d.issue(t, 1, "prod")
	revoked := d.issue(t, 1, "dev")
	if _, err := d.admin.Revoke(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	file := filepath.Join(t.TempDir(), "license")
	os.WriteFile(file, []byte("not a license\n"), 0o600)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--license", prod}, `bound to cluster "prod", this node is in cluster "dev"`},
		{[]string{"--license", revoked}, "license revoked"},
		{[]string{"--license", "lic-ffffffffffffffffffffffffffffffff"}, "unknown license"},
		{[]string{"--license", prod, "--cluster-id", "prod", "--license-server", down}, "fail closed"},
		{[]string{"--license", "lic-42"}, "--license: license_id: must be lic- and 32 hex digits"},
		{[]string{"--license", file}, "--license: " + file},
		{[]string{"--license", filepath.Join(t.TempDir(), "missing")}, "neither a license id"},
		{[]string{"--license", prod, "--cluster-id", "a b"}, "--cluster-id"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		args := append([]string{"--board", d.url, "--agent-id", "b", "--data-dir", t.TempDir(), "--ops-addr", "127.0.0.1:0", "--log-format", "json"}, c.args...)
		err := run(context.Background(), args, noenv, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run %q: %v, want an error mentioning %q", c.args, err, c.want)
		}
	}
}

func TestReadLicenseID(t *testing.T) {
	dir := t.TempDir()
	id := "lic-0123456789abcdef0123456789abcdef"
	line := filepath.Join(dir, "line")
	os.WriteFile(line, []byte("\n"+id+"\n"), 0o600)
	js := filepath.Join(dir, "json")
	os.WriteFile(js, []byte(`{"id": "`+id+`", "tier": "standard"}`), 0o600)
	for _, v := range []string{id, " " + id + " ", line, js} {
		if got, err := readLicenseID(v); err != nil || got != id {
			t.Errorf("readLicenseID(%q) = %q, %v", v, got, err)
		}
	}
}

func TestExtraWorkerWaitsForASeat(t *testing.T) {
	d := startDevLicense(t)
	id := d.issue(t, 1, "dev")
	logger := slog.New(slog.DiscardHandler)
	join := func(agent string) *licensed {
		o := options{boardURL: d.url, lic: licenseOptions{license: id, clusterID: "dev"}}
		lic, err := startLicense(context.Background(), o, t.TempDir(), agent, noenv, nil, logger)
		if err != nil {
			t.Fatalf("%s: %v", agent, err)
		}
		return lic
	}
	b, c := join("b"), join("c")
	if err := b.gate.Allowed(); err != nil {
		t.Fatal(err)
	}
	// c is the one too many: it starts, but its workers do not, and its
	// health check says why.
	err := c.check(context.Background())
	if !errors.Is(err, licensing.ErrSeatsExhausted) || !strings.Contains(err.Error(), "takes no new work") || !strings.Contains(err.Error(), id) {
		t.Fatalf("c's license check: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var started, stopped atomic.Int32
	var polling atomic.Bool
	start := func() (func(), error) {
		started.Add(1)
		return func() { stopped.Add(1) }, nil
	}
	done, err := c.runWork(ctx, start, &polling, logger)
	if err != nil {
		t.Fatal(err)
	}
	if started.Load() != 0 || polling.Load() {
		t.Fatal("the extra worker started its workers")
	}
	// b leaves (its Run ends and releases the seat); c's next heartbeat gets it.
	bctx, bcancel := context.WithCancel(context.Background())
	bcancel()
	b.gate.Run(bctx)
	if err := c.gate.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c's workers to start", 10*time.Second, func() bool { return started.Load() == 1 && polling.Load() })
	// Revoked: c stops taking work at its next heartbeat.
	if _, err := d.admin.Revoke(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	c.gate.Renew(context.Background())
	waitFor(t, "c's workers to stop", 10*time.Second, func() bool { return stopped.Load() == 1 && !polling.Load() })
	if err := c.check(context.Background()); !errors.Is(err, licensing.ErrRevoked) {
		t.Fatalf("check after revoke: %v", err)
	}
	cancel()
	<-done
	if started.Load() != 1 || stopped.Load() != 1 {
		t.Fatalf("started %d stopped %d", started.Load(), stopped.Load())
	}
}

// waitFor waits for cond with a deadline.

func TestHelpListsTheLicenseFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, noenv, &out, &errOut); err != errHelp {
		t.Fatal(err)
	}
	for _, f := range []string{"-license-server", "-license ", "-cluster-id", "CHORUS_LICENSE", "CHORUS_CLUSTER_ID"} {
		if !strings.Contains(errOut.String(), f) {
			t.Errorf("--help does not mention %s", f)
		}
	}
}
