package gossip_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"chorus/gossip"
)

// benchBody is what tests/bench/gossip carries in a status message's text.
type benchBody struct {
	Seq    int    `json:"seq"`
	Phase  int    `json:"phase"`
	SentNS int64  `json:"sent_ns"`
	Filler string `json:"filler"`
}

// BenchmarkDecodeReceived is what the validator does with every message a
// node receives: decode and check the envelope, then its body.
func BenchmarkDecodeReceived(b *testing.B) {
	inner, err := json.Marshal(benchBody{Seq: 12, Phase: 1, SentNS: 123456789012, Filler: strings.Repeat("lorem ipsum ", 64)})
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
