package gossip

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	record "github.com/libp2p/go-libp2p-record"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"google.golang.org/protobuf/proto"
)

// probeNamespace is the DHT record namespace of the probe: keys are
// /chorus-probe/<peer id>. Every chorus node validates it with
// probeValidator; no other record can be put on the private DHT apart
// from the DHT's own public key namespace.
const probeNamespace = "chorus-probe"

// Bounds of a probe record.
const (
	// probeRecordMaxAge: a probe record older than this is invalid, so a
	// stale copy is never served and the DHT's store forgets it.
	probeRecordMaxAge = 10 * time.Minute
	// probeRecordMaxBytes bounds what a peer can make us store.
	probeRecordMaxBytes = 512
)

// ErrNoDHTPeers is returned by ProbeDHT when the routing table is empty:
// there is nobody to put a record on, so nothing was probed.
var ErrNoDHTPeers = errors.New("no peers in the dht routing table")

// probeRecord is the value of a probe record.
type probeRecord struct {
	// Peer is the peer id of the key; a record under another key is
	// invalid.
	Peer string `json:"peer"`
	// Nonce tells this probe's record from an earlier one.
	Nonce string `json:"nonce"`
	// Time is when the probe put the record; the newest record wins.
	Time time.Time `json:"time"`
}

func probeKey(id peer.ID) string { return "/" + probeNamespace + "/" + id.String() }

// probeValidator validates probe records on every node: a bounded JSON
// probeRecord whose peer is the key's, stamped no later than MaxClockSkew
// ahead of the local clock and no more than probeRecordMaxAge ago. Of
// several, the newest is selected.
type probeValidator struct {
	now func() time.Time
}

var _ record.Validator = probeValidator{}

func (v probeValidator) Validate(key string, value []byte) error {
	_, _, err := v.decode(key, value)
	return err
}

func (v probeValidator) decode(key string, value []byte) (probeRecord, time.Time, error) {
	var r probeRecord
	ns, id, err := record.SplitKey(key)
	if err != nil || ns != probeNamespace {
		return r, time.Time{}, fmt.Errorf("probe record: key %q is not in /%s/", key, probeNamespace)
	}
	if len(value) > probeRecordMaxBytes {
		return r, time.Time{}, fmt.Errorf("probe record: %d bytes, at most %d", len(value), probeRecordMaxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, time.Time{}, fmt.Errorf("probe record: %w", err)
	}
	if r.Peer != id || r.Nonce == "" {
		return r, time.Time{}, fmt.Errorf("probe record: peer %q and nonce %q under key of %s", r.Peer, r.Nonce, id)
	}
	now := v.now()
	switch {
	case r.Time.After(now.Add(MaxClockSkew)):
		return r, time.Time{}, fmt.Errorf("probe record: stamped %s in the future", r.Time.Sub(now).Round(time.Second))
	case now.Sub(r.Time) > probeRecordMaxAge:
		return r, time.Time{}, fmt.Errorf("probe record: %s old, at most %s", now.Sub(r.Time).Round(time.Second), probeRecordMaxAge)
	}
	return r, r.Time, nil
}

func (v probeValidator) Select(key string, values [][]byte) (int, error) {
	best, bestTime := -1, time.Time{}
	for i, val := range values {
		_, t, err := v.decode(key, val)
		if err != nil {
			continue
		}
		if best < 0 || t.After(bestTime) {
			best, bestTime = i, t
		}
	}
	if best < 0 {
		return 0, errors.New("probe record: no valid record to select")
	}
	return best, nil
}

// probeStore is the DHT's value store. It keeps every record but this
// node's own probe record, so that ProbeDHT can only read its record back
// from other peers; and it counts the records it stores.
type probeStore struct {
	ds.Batching
	own    string
	stored func()
}

func newProbeStore(self peer.ID, stored func()) *probeStore {
	return &probeStore{Batching: dssync.MutexWrap(ds.NewMapDatastore()), own: probeKey(self), stored: stored}
}

func (s *probeStore) Put(ctx context.Context, k ds.Key, value []byte) error {
	var rec recpb.Record
	if proto.Unmarshal(value, &rec) == nil && string(rec.GetKey()) == s.own {
		return nil
	}
	s.stored()
	return s.Batching.Put(ctx, k, value)
}

// ProbeDHT puts a fresh probe record under this node's key
// (/chorus-probe/<peer id>) on the DHT and reads it back. The node keeps no
// copy of its own probe record, so a nil error proves a round trip through
// the private DHT: a lookup found the peers closest to the key, at least
// one of them stored the record, and a second lookup got this very record
// (its nonce) back from one of them. It returns ErrNoDHTPeers, without
// probing, when the routing table is empty, and an error when the DHT is
// off.
func (n *Node) ProbeDHT(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { n.metrics.probed("dht", start, err) }()
	if n.dht == nil {
		return errors.New("probe dht: the dht is off")
	}
	if n.dht.RoutingTable().Size() == 0 {
		return fmt.Errorf("probe dht: %w", ErrNoDHTPeers)
	}
	key := probeKey(n.host.ID())
	rec := probeRecord{Peer: n.host.ID().String(), Nonce: rand.Text(), Time: time.Now().UTC()}
	value, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("probe dht: %w", err)
	}
	putStart := time.Now()
	err = n.dht.PutValue(ctx, key, value)
	n.metrics.dhtOp("put", putStart, err, false)
	if err != nil {
		return fmt.Errorf("probe dht: put %s: %w", key, err)
	}
	getStart := time.Now()
	got, err := n.dht.GetValue(ctx, key)
	n.metrics.dhtOp("get", getStart, err, errors.Is(err, routing.ErrNotFound))
	if errors.Is(err, routing.ErrNotFound) {
		return fmt.Errorf("probe dht: no peer returned the record just put under %s", key)
	}
	if err != nil {
		return fmt.Errorf("probe dht: get %s: %w", key, err)
	}
	var back probeRecord
	if err := json.Unmarshal(got, &back); err != nil || back.Nonce != rec.Nonce {
		return fmt.Errorf("probe dht: got back another record than the one just put under %s (nonce %q, want %q)", key, back.Nonce, rec.Nonce)
	}
	return nil
}
