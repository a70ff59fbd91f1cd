package ops_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"chorus"
	"chorus/ops"
)

func TestServerConfigValidate(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr bool
	}{
		{ops.DefaultAddr, false},
		{":9090", false},
		{"127.0.0.1:0", false},
		{"[::1]:9090", false},
		{"", true},
		{"localhost", true},
		{"127.0.0.1:http", true},
		{"127.0.0.1:70000", true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := ops.ServerConfig{Addr: tt.addr}.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate(%q) = %v, wantErr %v", tt.addr, err, tt.wantErr)
			}
			if err != nil && (!errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), "ops addr")) {
				t.Fatalf("error %q does not name the field", err)
			}
		})
	}
}

func TestListenReportsAddressInUse(t *testing.T) {
	first, err := ops.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	addr := first.Addr().String()

	_, err = ops.Listen(addr)
	if err == nil {
		t.Fatal("second Listen on the same address succeeded")
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "in use") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("error %q should name %s, say it is in use and wrap EADDRINUSE", err, addr)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	ln, err := ops.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()

	entered, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	ops.NewHealth(nil, nil).Routes(mux)
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	})

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ops.Serve(ctx, ln, mux, nil) }()

	resp, err := http.Get(base + "/health/live")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "alive") {
		t.Fatalf("/health/live = %d %s", resp.StatusCode, body)
	}

	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- string(b)
	}()
	<-entered
	cancel()

	// New connections are refused once shutdown has begun.
	waitFor(t, "the listener to close", func() bool {
		c, err := http.Get(base + "/health/live")
		if err == nil {
			c.Body.Close()
		}
		return err != nil
	})
	close(release)
	if got := <-slow; got != "finished" {
		t.Fatalf("in-flight request got %q, want it to finish", got)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v, want nil on clean shutdown", err)
		}
	case <-time.After(ops.ShutdownTimeout + time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestServeReturnsErrorWhenListenerFails(t *testing.T) {
	ln, err := ops.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = ops.Serve(context.Background(), ln, http.NewServeMux(), nil)
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Serve on a closed listener = %v, want an error naming the address", err)
	}
}
