package gossip_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"chorus/gossip"
)

// ExampleNode shows a node joining the coordination topic, waiting for a
// mesh and publishing. It is compiled but not run: it needs peers.
func ExampleNode() {
	ctx := context.Background()
	cfg := gossip.DefaultConfig()
	cfg.DataDir = os.TempDir()
	cfg.Role = "developer"
	node, err := gossip.New(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()

	reg := gossip.NewRegistry(gossip.AvailabilityInterval, nil)
	coord, err := node.Join(gossip.TopicCoordination)
	if err != nil {
		fmt.Println(err)
		return
	}
	cancel, err := coord.Subscribe(func(e gossip.Envelope, from string) { _ = reg.Observe(e, from) })
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cancel()
	if err := node.WaitMesh(ctx, gossip.TopicCoordination, 1); err != nil {
		fmt.Println(err)
		return
	}
	err = coord.PublishBody(ctx, gossip.StatusUpdate{AgentID: "agent-a", Status: "idle", At: time.Now()}, gossip.Envelope{Priority: gossip.PriorityLow})
	fmt.Println(err, len(reg.Snapshot()))
}
