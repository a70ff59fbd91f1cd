package gossip_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"chorus"
	"chorus/gossip"
)

func ExampleDecode() {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	body, _ := json.Marshal(gossip.TaskProgress{
		TaskKey: "task/github/acme/api/7", AgentID: "agent-a", Status: chorus.StateWorking, Fence: 2, At: now,
	})
	wire, err := gossip.Encode(gossip.Envelope{
		Type: gossip.TypeTaskProgress, From: "12D3KooWPeer", Timestamp: now, Data: body,
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	e, err := gossip.Decode(wire, now.Add(time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	var p gossip.TaskProgress
	if err := e.DecodeData(&p); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.Type.Topic(), p.TaskKey, p.Status)

	_, err = gossip.Decode(wire, now.Add(10*time.Minute))
	var rej *gossip.RejectError
	if errors.As(err, &rej) {
		fmt.Println(rej.Reason)
	}
	// Output:
	// CHORUS/coordination/v1 task/github/acme/api/7 working
	// stale
}
