package gossip

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

const testPeer = "12D3KooWGRUVh7bZrTqPaoHhDJVkx8GiAY4ExyiKjAWb8Zs1TYSV"

func TestProbeValidator(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	v := probeValidator{now: func() time.Time { return now }}
	key := "/" + probeNamespace + "/" + testPeer
	rec := func(peer, nonce string, at time.Time) []byte {
		b, _ := json.Marshal(probeRecord{Peer: peer, Nonce: nonce, Time: at})
		return b
	}
	tests := []struct {
		name  string
		key   string
		value []byte
		want  string // "" = valid
	}{
		{"valid", key, rec(testPeer, "n1", now), ""},
		{"slightly ahead", key, rec(testPeer, "n1", now.Add(20*time.Second)), ""},
		{"other namespace", "/pk/" + testPeer, rec(testPeer, "n1", now), "is not in"},
		{"no namespace", testPeer, rec(testPeer, "n1", now), "is not in"},
		{"under another peer's key", key, rec("12D3KooWother", "n1", now), "under key of"},
		{"no nonce", key, rec(testPeer, "", now), "under key of"},
		{"future", key, rec(testPeer, "n1", now.Add(time.Minute)), "in the future"},
		{"stale", key, rec(testPeer, "n1", now.Add(-11*time.Minute)), "old"},
		{"unknown field", key, []byte(`{"peer":"` + testPeer + `","nonce":"n","time":"2025-06-01T12:00:00Z","x":1}`), "unknown field"},
		{"not json", key, []byte("garbage"), "probe record"},
		{"oversized", key, []byte(`{"peer":"` + strings.Repeat("x", 600) + `"}`), "at most 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.key, tt.value)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}

	older, newer := rec(testPeer, "old", now.Add(-time.Minute)), rec(testPeer, "new", now)
	if i, err := v.Select(key, [][]byte{older, []byte("junk"), newer}); err != nil || i != 2 {
		t.Fatalf("Select = %d, %v; want the newest (2)", i, err)
	}
	if _, err := v.Select(key, [][]byte{[]byte("junk")}); err == nil {
		t.Fatal("Select among invalid records succeeded")
	}
}

// TestProbeStoreKeepsNoOwnProbeRecord: the node's own probe record is
// never stored locally (so the probe must read it from a peer); others'
// records and other keys are, and counted.
func TestProbeStoreKeepsNoOwnProbeRecord(t *testing.T) {
	self, err := peer.Decode(testPeer)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	s := newProbeStore(self, func() { stored++ })
	ctx := context.Background()
	put := func(dsKey, recordKey string) {
		t.Helper()
		b, err := proto.Marshal(&recpb.Record{Key: []byte(recordKey), Value: []byte("v")})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, ds.NewKey(dsKey), b); err != nil {
			t.Fatal(err)
		}
	}
	put("/own", probeKey(self))
	put("/other", "/"+probeNamespace+"/12D3KooWother")
	if ok, _ := s.Has(ctx, ds.NewKey("/own")); ok {
		t.Error("the node's own probe record was stored")
	}
	if ok, _ := s.Has(ctx, ds.NewKey("/other")); !ok {
		t.Error("another peer's probe record was not stored")
	}
	if stored != 1 {
		t.Errorf("stored counted %d, want 1", stored)
	}
}
