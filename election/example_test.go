package election_test

import (
	"errors"
	"fmt"

	"chorus/election"
	"chorus/gossip"
)

// A node alone elects itself once its start-up wait is over, and its term
// is then the fencing token of its actions.
func ExampleMachine() {
	cfg := election.FastConfig()
	cfg.ID = "12D3KooWSolo"
	m, err := election.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	m.SetComponents(gossip.ScoreComponents{Uptime: 1, Capabilities: 0.5, Resources: 1, Network: 0, Experience: 0})
	for !m.Leading() {
		for _, msg := range m.Tick() {
			switch msg.Kind {
			case election.KindElectionStarted:
				fmt.Println("election for term", msg.Term, "by", msg.Trigger)
			case election.KindCandidacy:
				fmt.Printf("candidacy with score %.2f\n", msg.Score)
			case election.KindStartLeading:
				fmt.Println("leading term", msg.Term)
			}
		}
	}
	fmt.Println(m.Snapshot().Role)
	// Output:
	// election for term 1 by no_admin
	// candidacy with score 0.60
	// leading term 1
	// admin
}

// A Fence refuses the actions of a deposed admin.
func ExampleFence() {
	var f election.Fence
	f.Observe(3) // the election accepted the admin of term 3
	fmt.Println(f.Check(3))
	f.Observe(4) // a newer admin was elected
	err := f.Check(3)
	fmt.Println(errors.Is(err, election.ErrStaleTerm), err)
	// Output:
	// <nil>
	// true stale admin term: term 3, but term 4 has an admin
}
