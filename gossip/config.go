package gossip

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// Config holds the tunables of a Node. Start from DefaultConfig and set
// DataDir; New refuses a Config that does not Validate.
type Config struct {
	// DataDir holds the persistent identity key in <DataDir>/p2p/identity.key.
	DataDir string
	// ListenAddrs are the multiaddrs the host listens on.
	ListenAddrs []string
	// Bootstrap are full multiaddrs (ending in /p2p/<peer id>) dialled at start.
	Bootstrap []string
	// MDNS turns on discovery of peers on the local network.
	MDNS bool
	// MDNSService is the mDNS service name; only nodes using the same name
	// find each other, so tests use unique names.
	MDNSService string
	// DHTMode is how the node takes part in the Kademlia DHT used to find
	// peers' addresses: DHTAuto, DHTClient, DHTServer or DHTOff.
	DHTMode string
	// ConnLow and ConnHigh are the connection manager's water marks: above
	// ConnHigh connections it trims down to ConnLow.
	ConnLow, ConnHigh int
	// PeerOutboundQueue, ValidateQueue and SubscriptionBuffer size the three
	// places where GossipSub drops messages silently when full (see Drops).
	PeerOutboundQueue, ValidateQueue, SubscriptionBuffer int
	// IDontWantThreshold is the message size from which a node tells its
	// mesh peers (IDONTWANT) not to send it a copy it already has.
	IDontWantThreshold int
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// Redact, when set, is applied to every outgoing payload (the data of
	// each envelope published through a Topic, and raw publishes) before
	// it leaves the node: the SHHH redactor in the worker. Its output must
	// still be valid JSON for envelope data.
	Redact func([]byte) []byte
	// AgentID and Role describe the agent running this node; Role fills the
	// from_role of published envelopes that leave it empty.
	AgentID, Role string
	// Metrics receives the chorus_p2p_*, chorus_dht_* and chorus_pubsub_*
	// metrics (see metrics.go); nil means none.
	Metrics prometheus.Registerer
}

// DefaultConfig returns a Config with every default set; DataDir is left
// empty because it has no sensible default.
func DefaultConfig() Config {
	return Config{
		// Any interface, a free port; QUIC as well as TCP because QUIC does
		// not suffer from TCP simultaneous open on mutual dials.
		ListenAddrs: []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"},
		// Agents on one LAN find each other without configuration.
		MDNS:        true,
		MDNSService: "chorus",
		// A node answers DHT queries unless it learns it is unreachable,
		// so a small cluster has servers without any configuration.
		DHTMode: DHTAuto,
		// go-libp2p's own defaults: far above the size of an agent cluster,
		// so trimming only protects against runaway connection counts.
		ConnLow:  160,
		ConnHigh: 192,
		// GossipSub's default of 32 lost messages under bursts in our
		// measurements; 1024 turned that loss into latency.
		PeerOutboundQueue:  1024,
		ValidateQueue:      1024,
		SubscriptionBuffer: 1024,
		// GossipSub's 1 KiB default makes every receipt of a typical
		// agent message (a 1-2 KiB envelope) send one more control RPC to
		// every mesh peer; below 16 KiB a duplicate costs less than that
		// announcement, so only large messages are announced.
		IDontWantThreshold: 16 << 10,
	}
}

// Validate reports the first field that makes the Config unusable.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("DataDir: missing"))
	}
	if len(c.ListenAddrs) == 0 {
		errs = append(errs, errors.New("ListenAddrs: at least one address is needed"))
	}
	for _, a := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			errs = append(errs, fmt.Errorf("ListenAddrs: %q: %w", a, err))
		}
	}
	for _, a := range c.Bootstrap {
		if _, err := peer.AddrInfoFromString(a); err != nil {
			errs = append(errs, fmt.Errorf("Bootstrap: %q: %w", a, err))
		}
	}
	if c.MDNS && c.MDNSService == "" {
		errs = append(errs, errors.New("MDNSService: missing while MDNS is on"))
	}
	switch c.DHTMode {
	case DHTAuto, DHTClient, DHTServer, DHTOff:
	default:
		errs = append(errs, fmt.Errorf("DHTMode: %q: want %q, %q, %q or %q", c.DHTMode, DHTAuto, DHTClient, DHTServer, DHTOff))
	}
	if c.ConnLow < 0 || c.ConnHigh < 1 || c.ConnLow > c.ConnHigh {
		errs = append(errs, fmt.Errorf("ConnLow, ConnHigh: %d, %d: need 0 <= ConnLow <= ConnHigh and ConnHigh >= 1", c.ConnLow, c.ConnHigh))
	}
	for _, q := range []struct {
		name string
		n    int
	}{{"PeerOutboundQueue", c.PeerOutboundQueue}, {"ValidateQueue", c.ValidateQueue}, {"SubscriptionBuffer", c.SubscriptionBuffer}} {
		if q.n < 1 {
			errs = append(errs, fmt.Errorf("%s: %d must be at least 1", q.name, q.n))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gossip config: %w", err)
	}
	return nil
}
