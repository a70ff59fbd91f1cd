// Command failover measures admin failover with real gossip: N in-process
// gossip.Nodes on loopback (TCP, mDNS and DHT off, every node connected to
// every other), each running the real election.Driver on the election
// topic. It waits for an admin, kills it (its driver stops and its node
// closes, with no goodbye), and times until every survivor reports the same
// new admin; then it restarts the killed node from its data dir (same
// identity, same saved term), waits until all N agree again, and repeats.
// It prints one JSON object per profile:
//
//	{nodes, profile, failover_ms_p50, failover_ms_max, split_brain_events, ...}
//
// split_brain_events counts the times a node started leading (its
// OnStartLeading callback) while another node that was not killed still
// led. Goals: default profile failover_ms_max <= 17000 (as Kubernetes
// leases), fast <= 4000 (as Nomad), split_brain_events = 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"chorus/election"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "failover bench:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	nodes    int
	rounds   int
	profiles []string
	seed     int64
	verbose  bool
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	profile := fs.String("profile", "both", "election profile: default (5s heartbeat, 15s timeout), fast (1s, 3s) or both")
	fs.IntVar(&o.nodes, "nodes", 5, "nodes in the cluster")
	fs.IntVar(&o.rounds, "rounds", 5, "admin kills per profile")
	fs.Int64Var(&o.seed, "seed", 0, "seed of the kill times and scores; 0 = from the clock")
	fs.BoolVar(&o.verbose, "v", false, "log every driver's election events to stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	switch *profile {
	case "both":
		o.profiles = []string{election.ProfileDefault, election.ProfileFast}
	case election.ProfileDefault, election.ProfileFast:
		o.profiles = []string{*profile}
	default:
		errs = append(errs, fmt.Errorf("-profile: %q: want default, fast or both", *profile))
	}
	if o.nodes < 3 {
		errs = append(errs, fmt.Errorf("-nodes: %d: at least 3, so that killing one leaves a majority", o.nodes))
	}
	if o.rounds < 1 {
		errs = append(errs, fmt.Errorf("-rounds: %d must be at least 1", o.rounds))
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	return o, errors.Join(errs...)
}

// report is the JSON line of one profile.
type report struct {
	Nodes            int     `json:"nodes"`
	Profile          string  `json:"profile"`
	FailoverMsP50    float64 `json:"failover_ms_p50"`
	FailoverMsMax    float64 `json:"failover_ms_max"`
	SplitBrainEvents int     `json:"split_brain_events"`
	// Extra fields.
	Rounds     int       `json:"rounds"`
	FailoverMs []float64 `json:"failover_ms"`
	// SinceHeartbeatMs is, per round, the time from the killed admin's last
	// heartbeat (as the survivors last heard it) to agreement: the timeout
	// plus the election, whatever the kill's phase.
	SinceHeartbeatMs []float64 `json:"since_last_heartbeat_ms"`
	HeartbeatMs      float64   `json:"heartbeat_ms"`
	TimeoutMs        float64   `json:"timeout_ms"`
	StartupMs        float64   `json:"startup_election_ms"`
	// MeshWaitMsMax is the longest wait, after restarting a killed node,
	// until every node had it back in its GossipSub mesh.
	MeshWaitMsMax float64 `json:"mesh_wait_ms_max"`
	FinalTerm     uint64  `json:"final_term"`
	GoalMs        float64 `json:"goal_ms"`
	GoalMet       bool    `json:"goal_met"`
	Seed          int64   `json:"seed"`
}

// goals are the failover_ms_max goals per profile.
var goals = map[string]time.Duration{election.ProfileDefault: 17 * time.Second, election.ProfileFast: 4 * time.Second}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	for i, p := range o.profiles {
		rep, err := benchProfile(ctx, log, o, p, o.seed+int64(i))
		if err != nil {
			return fmt.Errorf("profile %s: %w", p, err)
		}
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintln(stdout, string(b)); err != nil {
			return err
		}
	}
	return nil
}
