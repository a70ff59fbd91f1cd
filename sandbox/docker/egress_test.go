package docker_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"chorus/sandbox/docker"
)

// TestRunAllowsOnlyListedHosts runs a command whose task allows one host:
// through the proxy it reaches that host, every other host is refused, and
// there is no direct route out at all.
func TestRunAllowsOnlyListedHosts(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	// The origin listens on all interfaces; the proxy dials it on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the allowed host\n")
	}))
	origin.Listener = ln
	origin.Start()
	defer origin.Close()
	allowed := ln.Addr().String()

	// busybox nc speaks the proxy protocol by hand: split HTTP_PROXY into
	// host and port, send an absolute-URI request.
	script := `p=${HTTP_PROXY#http://}; ph=${p%:*}; pp=${p##*:}
ask() { printf 'GET http://%s/ HTTP/1.0\r\n\r\n' "$1" | nc -w 5 "$ph" "$pp"; }
echo "allowed:"; ask ` + allowed + `
echo "denied:"; ask example.com:80 | head -1
echo "direct:"; nc -w 2 1.1.1.1 80 </dev/null 2>&1 || echo direct-refused
echo "network:"; ip -o -4 addr show eth0 | wc -l`
	s := spec(t, "/bin/sh", "-c", script)
	s.AllowHosts = []string{allowed}
	res, err := r.Run(testContext(t, time.Minute), s)
	if err != nil {
		t.Fatal(err)
	}
	out := res.OutputTail
	for _, want := range []string{"hello from the allowed host", "HTTP/1.1 403 Forbidden", "direct-refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The denied request never reached the origin; nothing else did either.
	if strings.Count(out, "hello from the allowed host") != 1 {
		t.Errorf("origin answered more than once:\n%s", out)
	}

	cli := dockerClient(t)
	nw, err := cli.NetworkInspect(testContext(t, 10*time.Second), docker.EgressNetwork, networkInspectOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !nw.Internal || nw.Options["com.docker.network.bridge.enable_icc"] != "false" {
		t.Fatalf("network %s: internal=%v options=%v", docker.EgressNetwork, nw.Internal, nw.Options)
	}

	// Without an allow-list the same command has no network at all.
	s = spec(t, "/bin/sh", "-c", `test -z "$HTTP_PROXY" && ip -o -4 addr | grep -c -v ' lo '`)
	res, err = r.Run(testContext(t, time.Minute), s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(res.OutputTail) != "0" {
		t.Fatalf("default run has an interface besides lo: %q (exit %d)", res.OutputTail, res.ExitCode)
	}
}
