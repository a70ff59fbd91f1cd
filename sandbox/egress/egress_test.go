package egress_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"chorus/sandbox/egress"
)

func TestRules(t *testing.T) {
	rules, err := egress.ParseRules([]string{"proxy.golang.org", "*.debian.org", "127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host, port string
		want       bool
	}{
		{"proxy.golang.org", "443", true},
		{"PROXY.golang.org.", "80", true},
		{"deb.debian.org", "80", true},
		{"debian.org", "80", false},
		{"evil-debian.org", "80", false},
		{"127.0.0.1", "8080", true},
		{"127.0.0.1", "8081", false},
		{"golang.org", "443", false},
	}
	for _, c := range cases {
		if got := egress.Allows(rules, c.host, c.port); got != c.want {
			t.Errorf("Allows(%s:%s) = %v, want %v", c.host, c.port, got, c.want)
		}
	}
	for _, bad := range []string{"", "http://x", "a b", "*"} {
		if _, err := egress.ParseRules([]string{bad}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", strings.ToLower(strings.TrimSpace(bad)))) {
			t.Errorf("ParseRules(%q) = %v, want an error naming it", bad, err)
		}
	}
}

func startProxy(t *testing.T, allow ...string) (*egress.Proxy, string) {
	t.Helper()
	p, err := egress.New(allow, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	t.Cleanup(func() { p.Close() })
	return p, ln.Addr().String()
}

func TestProxyForwardsOnlyAllowedHosts(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from "+r.URL.Path)
	}))
	defer origin.Close()
	originAddr := strings.TrimPrefix(origin.URL, "http://")
	p, addr := startProxy(t, originAddr)
	proxyURL, _ := url.Parse("http://" + addr)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}

	// Plain HTTP through the proxy.
	resp, err := hc.Get(origin.URL + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello from /ok" {
		t.Fatalf("allowed: %d %q", resp.StatusCode, body)
	}

	// A CONNECT tunnel to the same origin.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", originAddr, originAddr)
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("CONNECT: %q", line)
	}
	br.ReadString('\n')
	fmt.Fprintf(c, "GET /tunnel HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", originAddr)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "hello from /tunnel") {
		t.Fatalf("tunnel reply: %q", rest)
	}

	// Anything else is refused before a connection is made.
	resp, err = hc.Get("http://example.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied host: %d", resp.StatusCode)
	}
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	line, _ = bufio.NewReader(c2).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 403") {
		t.Fatalf("denied CONNECT: %q", line)
	}
	if d := p.Denied(); len(d) != 2 || d[0] != "example.com:80" || d[1] != "example.com:443" {
		t.Fatalf("denied = %q", d)
	}
}
