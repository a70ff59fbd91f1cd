package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Rule is one allow-list entry.
type Rule struct {
	host     string // lower case; "*.x" matches subdomains of x
	port     string // "" = any port
	wildcard bool
}

// ParseRules parses allow-list entries; the error names the bad entry.
func ParseRules(entries []string) ([]Rule, error) {
	var rules []Rule
	for _, e := range entries {
		e = strings.TrimSpace(strings.ToLower(e))
		host, port := e, ""
		if h, p, err := net.SplitHostPort(e); err == nil {
			host, port = h, p
		}
		r := Rule{host: host, port: port}
		if rest, ok := strings.CutPrefix(host, "*."); ok {
			r.host, r.wildcard = rest, true
		}
		if r.host == "" || strings.ContainsAny(r.host, "/*@ :") || !digits(r.port) {
			return nil, fmt.Errorf("allow host %q: must be host, host:port or *.domain", e)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Allows reports whether host:port is on the list.
func Allows(rules []Rule, host, port string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, r := range rules {
		if r.port != "" && r.port != port {
			continue
		}
		if r.wildcard && strings.HasSuffix(host, "."+r.host) || !r.wildcard && host == r.host {
			return true
		}
	}
	return false
}

// Proxy serves one run's allow-list.
type Proxy struct {
	rules  []Rule
	logger *slog.Logger
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	denied []string
}

// New returns a proxy for the allow-list entries.
func New(allow []string, logger *slog.Logger) (*Proxy, error) {
	rules, err := ParseRules(allow)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &Proxy{rules: rules, logger: logger, dial: d.DialContext, conns: map[net.Conn]struct{}{}}, nil
}

// Serve accepts connections on ln until Close.
func (p *Proxy) Serve(ln net.Listener) error {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// Denied lists the host:port requests refused so far.
func (p *Proxy) Denied() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.denied...)
}

// Close stops accepting, ends open tunnels and waits for their goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	var err error
	if p.ln != nil {
		err = p.ln.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) handle(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	host, port := req.URL.Hostname(), req.URL.Port()
	if req.Method == http.MethodConnect {
		host, port, err = net.SplitHostPort(req.Host)
		if err != nil {
			writeStatus(c, http.StatusBadRequest, "CONNECT needs host:port")
			return
		}
	} else if port == "" {
		port = "80"
		if req.URL.Scheme == "https" {
			port = "443"
		}
	}
	if host == "" {
		writeStatus(c, http.StatusBadRequest, "not a proxy request")
		return
	}
	target := net.JoinHostPort(host, port)
	if !Allows(p.rules, host, port) {
		p.mu.Lock()
		p.denied = append(p.denied, target)
		p.mu.Unlock()
		p.logger.Info("egress denied", "target", target)
		writeStatus(c, http.StatusForbidden, target+" is not on this task's allow-list")
		return
	}
	up, err := p.dial(context.Background(), "tcp", target)
	if err != nil {
		writeStatus(c, http.StatusBadGateway, err.Error())
		return
	}
	defer up.Close()
	if req.Method == http.MethodConnect {
		if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			return
		}
	} else {
		// Plain HTTP: forward this one request in origin form.
		req.RequestURI = ""
		req.Header.Del("Proxy-Connection")
		req.Header.Set("Connection", "close")
		if err := req.Write(up); err != nil {
			return
		}
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, br); closeWrite(up); done <- struct{}{} }()
	go func() { io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
}

func writeStatus(c net.Conn, code int, msg string) {
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n",
		code, http.StatusText(code), len(msg)+1, msg)
}
