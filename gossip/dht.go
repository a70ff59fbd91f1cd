package gossip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// The values of Config.DHTMode.
const (
	// DHTAuto serves DHT queries unless the node learns that it is not
	// reachable from outside, and is then a client.
	DHTAuto = "auto"
	// DHTClient queries the DHT but does not answer queries.
	DHTClient = "client"
	// DHTServer queries the DHT and answers queries.
	DHTServer = "server"
	// DHTOff runs no DHT; FindPeer then fails.
	DHTOff = "off"
)

// dhtProtocolPrefix makes the DHT speak /chorus/kad/1.0.0 instead of the
// public IPFS /ipfs/kad/1.0.0, so that it only ever talks to chorus nodes
// and never joins the public network, even when a public peer is dialled.
const dhtProtocolPrefix = "/chorus"

// ErrPeerNotFound is returned by FindPeer when the DHT knows no address of
// the peer.
var ErrPeerNotFound = errors.New("peer not found")

// dhtModeOpt maps an accepted Config.DHTMode value (other than off) to the
// DHT's mode. Auto maps to ModeAutoServer, not ModeAuto: ModeAuto is a
// client until AutoNAT proves the node reachable, and a chorus cluster runs
// no AutoNAT service, so with ModeAuto every node would stay a client and no
// node would answer queries. ModeAutoServer serves while reachability is
// unknown and still turns client when the node learns that it is private.
func dhtModeOpt(mode string) (dht.ModeOpt, bool) {
	switch mode {
	case DHTAuto:
		return dht.ModeAutoServer, true
	case DHTClient:
		return dht.ModeClient, true
	case DHTServer:
		return dht.ModeServer, true
	}
	return 0, false
}

// startDHT starts the Kademlia DHT on h in the given mode (not off), using
// the bootstrap peers to refill the routing table whenever it empties.
func startDHT(h host.Host, mode string, bootstrap []peer.AddrInfo, stored func()) (*dht.IpfsDHT, error) {
	m, ok := dhtModeOpt(mode)
	if !ok {
		return nil, fmt.Errorf("start dht: unknown mode %q", mode) // checked by Validate
	}
	d, err := dht.New(h,
		dht.Mode(m),
		dht.ProtocolPrefix(dhtProtocolPrefix),
		// Only the configured peers: the default would be none, and the
		// public IPFS bootstrappers speak another protocol anyway.
		dht.BootstrapPeers(bootstrap...),
		// The probe's records (dht_probe.go).
		dht.NamespacedValidator(probeNamespace, probeValidator{now: time.Now}),
		dht.ValueDatastore(newProbeStore(h.ID(), stored)),
	)
	if err != nil {
		return nil, fmt.Errorf("start dht: %w", err)
	}
	return d, nil
}

// bootstrapInfos parses the bootstrap multiaddrs, leaving out the node
// itself. Validate has checked them.
func bootstrapInfos(self peer.ID, addrs []string) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, a := range addrs {
		pi, err := peer.AddrInfoFromString(a)
		if err != nil || pi.ID == self {
			continue
		}
		out = append(out, *pi)
	}
	return out
}

// DHTMode returns the configured DHT mode: DHTAuto, DHTClient, DHTServer or
// DHTOff.
func (n *Node) DHTMode() string { return n.dhtMode }

// FindPeer returns the addresses of the peer with the given id as full
// multiaddrs ending in /p2p/<peer id>, sorted, ready for Connect. It answers
// from the connections the node has, else asks the DHT, which may dial
// peers on the way. It fails with ErrPeerNotFound when no address is found,
// and always when the DHT is off.
func (n *Node) FindPeer(ctx context.Context, id string) ([]string, error) {
	pid, err := peer.Decode(id)
	if err != nil {
		return nil, fmt.Errorf("find peer %q: %w", id, err)
	}
	if n.dht == nil {
		return nil, fmt.Errorf("find peer %s: the dht is off", id)
	}
	start := time.Now()
	pi, err := n.dht.FindPeer(ctx, pid)
	n.metrics.dhtOp("find_peer", start, err, errors.Is(err, routing.ErrNotFound) || (err == nil && len(pi.Addrs) == 0))
	if errors.Is(err, routing.ErrNotFound) || (err == nil && len(pi.Addrs) == 0) {
		return nil, fmt.Errorf("find peer %s: %w", id, ErrPeerNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find peer %s: %w", id, err)
	}
	addrs, err := peer.AddrInfoToP2pAddrs(&pi)
	if err != nil {
		return nil, fmt.Errorf("find peer %s: %w", id, err)
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	slices.Sort(out)
	return out, nil
}
