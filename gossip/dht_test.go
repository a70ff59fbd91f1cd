package gossip_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"chorus/gossip"
)

// newDHTNode starts a loopback node in the given DHT mode, bootstrapped
// from the given addresses.
func newDHTNode(t *testing.T, ctx context.Context, mode string, bootstrap ...string) *gossip.Node {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.DHTMode = mode
	cfg.Bootstrap = bootstrap
	n, err := gossip.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// TestDHTFindsPeerAcrossALine: in the line A–B–C, where A and C only know
// B, A learns C's address from the DHT and can connect to it.
func TestDHTFindsPeerAcrossALine(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b := newDHTNode(t, ctx, gossip.DHTServer)
	a := newDHTNode(t, ctx, gossip.DHTServer, b.Addrs()[0])
	c := newDHTNode(t, ctx, gossip.DHTServer, b.Addrs()[0])
	if got := a.DHTMode(); got != gossip.DHTServer {
		t.Errorf("DHTMode = %q, want %q", got, gossip.DHTServer)
	}

	// The routing tables fill once identify has run on each connection;
	// until then a lookup has nobody to ask.
	t.Logf("before the lookup A is connected to C: %v (the DHT's own refresh may already have dialled)", slices.Contains(a.Peers(), c.ID()))
	start := time.Now()
	var addrs []string
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var err error
		addrs, err = a.FindPeer(ctx, c.ID())
		if err == nil {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("FindPeer(C) = %v", err)
		}
	}
	t.Logf("A found C after %v: %v", time.Since(start), addrs)
	want := c.Addrs()[0]
	if !slices.Contains(addrs, want) {
		t.Fatalf("FindPeer(C) = %v, want it to contain %s", addrs, want)
	}
	if err := a.Connect(ctx, want); err != nil {
		t.Fatalf("Connect to the address found: %v", err)
	}
	if !slices.Contains(a.Peers(), c.ID()) {
		t.Errorf("A's peers %v do not include C %s", a.Peers(), c.ID())
	}

	// A peer that never joined is not found, and the lookup ends.
	stranger := newDHTNode(t, ctx, gossip.DHTOff)
	if addrs, err := a.FindPeer(ctx, stranger.ID()); !errors.Is(err, gossip.ErrPeerNotFound) {
		t.Errorf("FindPeer(stranger) = %v, %v; want ErrPeerNotFound", addrs, err)
	}
	if _, err := a.FindPeer(ctx, "not-a-peer-id"); err == nil {
		t.Error("FindPeer accepted a malformed peer id")
	}
	if _, err := stranger.FindPeer(ctx, c.ID()); err == nil || errors.Is(err, gossip.ErrPeerNotFound) {
		t.Errorf("FindPeer with the DHT off = %v, want an error saying it is off", err)
	}
}

// TestDHTModes: what each mode announces to a connecting peer. Servers
// speak only the private /chorus protocol, never the public IPFS one;
// clients and nodes with the DHT off speak neither.
func TestDHTModes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	probe, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { probe.Close() })
	const private, public = protocol.ID("/chorus/kad/1.0.0"), protocol.ID("/ipfs/kad/1.0.0")
	for _, tt := range []struct {
		mode  string
		serve bool
	}{
		{gossip.DHTServer, true},
		// Loopback nodes never learn their reachability, so auto serves.
		{gossip.DHTAuto, true},
		{gossip.DHTClient, false},
		{gossip.DHTOff, false},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			n := newDHTNode(t, ctx, tt.mode)
			if got := n.DHTMode(); got != tt.mode {
				t.Errorf("DHTMode = %q, want %q", got, tt.mode)
			}
			pi, err := peer.AddrInfoFromString(n.Addrs()[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := probe.Connect(ctx, *pi); err != nil {
				t.Fatal(err)
			}
			// Identify has run once the peerstore knows any protocol.
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				protos, _ := probe.Peerstore().GetProtocols(pi.ID)
				if len(protos) > 0 {
					if slices.Contains(protos, public) {
						t.Errorf("node speaks the public DHT protocol %s", public)
					}
					if got := slices.Contains(protos, private); got != tt.serve {
						t.Errorf("node serves %s = %v, want %v (protocols %v)", private, got, tt.serve, protos)
					}
					return
				}
				select {
				case <-tick.C:
				case <-ctx.Done():
					t.Fatal("identify never completed")
				}
			}
		})
	}
}

func TestConfigValidateDHTMode(t *testing.T) {
	for _, mode := range []string{gossip.DHTAuto, gossip.DHTClient, gossip.DHTServer, gossip.DHTOff} {
		c := gossip.DefaultConfig()
		c.DataDir = "/tmp/x"
		c.DHTMode = mode
		if err := c.Validate(); err != nil {
			t.Errorf("DHTMode %q: %v", mode, err)
		}
	}
	for _, mode := range []string{"", "Server", "full"} {
		c := gossip.DefaultConfig()
		c.DataDir = "/tmp/x"
		c.DHTMode = mode
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "DHTMode") {
			t.Errorf("DHTMode %q: Validate = %v, want an error naming DHTMode", mode, err)
		}
		if n, err := gossip.New(t.Context(), c); err == nil {
			n.Close()
			t.Errorf("DHTMode %q: New accepted it", mode)
		}
	}
	if got := gossip.DefaultConfig().DHTMode; got != gossip.DHTAuto {
		t.Errorf("default DHTMode = %q, want %q", got, gossip.DHTAuto)
	}
}
