package gossip_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"chorus/gossip"
	"chorus/shhh"
)

// BenchmarkPublish is the publisher's side of one message on a node with
// no peers: typed (redaction, envelope, body checks, signing, local
// validation) against a bare GossipSub publish of the same body, and the
// redaction alone.
func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	cfg := testConfig(b, b.TempDir())
	red, err := shhh.New(shhh.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	cfg.Redact = func(x []byte) []byte { o, _ := red.RedactBytes(x); return o }
	n, err := gossip.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	tp, err := n.Join(gossip.TopicCoordination)
	if err != nil {
		b.Fatal(err)
	}
	inner, err := json.Marshal(benchBody{Seq: 12, Phase: 1, SentNS: 123456789012, Filler: "progress: password=hunter2-bench " + strings.Repeat("lorem ipsum ", 62)})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("typed", func(b *testing.B) {
		for b.Loop() {
			su := gossip.StatusUpdate{AgentID: "bench-7", Status: "bench", Message: string(inner), At: time.Now()}
			if err := tp.PublishBody(ctx, su, gossip.Envelope{Priority: gossip.PriorityLow}); err != nil {
				b.Fatal(err)
			}
		}
	})
	bt, err := n.JoinBare("bare")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("bare", func(b *testing.B) {
		for b.Loop() {
			if err := bt.Publish(ctx, inner); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redact", func(b *testing.B) {
		for b.Loop() {
			red.RedactBytes(inner)
		}
	})
}
