package gossip_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"chorus/gossip"
)

// BenchmarkDecodeReceived is what the validator does with every message a
// node receives: decode and check the envelope, then its body.
func BenchmarkDecodeReceived(b *testing.B) {
	inner, err := json.Marshal(map[string]any{"seq": 12, "phase": 1, "sent_ns": 123456789012, "filler": strings.Repeat("lorem ipsum ", 64)})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	body, err := json.Marshal(gossip.StatusUpdate{AgentID: "bench-7", Status: "bench", Message: string(inner), At: now})
	if err != nil {
		b.Fatal(err)
	}
	msg, err := gossip.Encode(gossip.Envelope{
		Type: gossip.TypeStatusUpdate, From: "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf",
		FromRole: "developer", Priority: gossip.PriorityLow, Timestamp: now, Data: body,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := gossip.Decode(msg, now)
		if err != nil {
			b.Fatal(err)
		}
		var su gossip.StatusUpdate
		if err := e.DecodeData(&su); err != nil {
			b.Fatal(err)
		}
	}
}
