package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Values of -mesh.
const (
	meshShared   = "shared"
	meshSeparate = "separate"
)

// options are the command-line settings of one run.
type options struct {
	// Nodes are the network sizes to measure, in order.
	Nodes []int
	// Messages is how many measured messages each path publishes per round.
	Messages int
	// Rate is the network-wide publish rate in messages per second. The
	// notes measured a CPU ceiling near 100 msg/s for 50 signed nodes on 2
	// cores; the default stays far below it so latency, not queueing, is
	// measured.
	Rate float64
	// Dials is how many random earlier nodes each node dials.
	Dials int
	// Size is the length of the filler text in each body, in bytes.
	Size int
	// Rounds alternates the two paths this many times per size; samples
	// are pooled.
	Rounds int
	// Mesh is meshShared (both paths on one set of nodes, messages
	// alternating) or meshSeparate (each path on its own nodes, one after
	// the other).
	Mesh string
	// Seed fixes the topology and filler; 0 picks one from the clock.
	Seed int64
	// MeshTimeout bounds waiting for the mesh and the warm-up probes.
	MeshTimeout time.Duration
	// Drain bounds waiting for deliveries after the last publish.
	Drain time.Duration
	// CPUProfile, when set, is where a CPU profile of the whole run goes;
	// MemProfile, where an allocation profile goes at the end.
	CPUProfile, MemProfile string
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("gossip", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.String("nodes", "20,50", "comma-separated network sizes")
	o := options{}
	fs.IntVar(&o.Messages, "messages", 500, "measured messages per path and round")
	fs.Float64Var(&o.Rate, "rate", 25, "network-wide publish rate, messages per second (both paths together with -mesh shared)")
	fs.IntVar(&o.Dials, "dials", 3, "random earlier nodes each node dials")
	fs.IntVar(&o.Size, "size", 768, "filler bytes in each message body")
	fs.IntVar(&o.Rounds, "rounds", 2, "rounds per size, which path goes first alternating; samples pooled")
	fs.StringVar(&o.Mesh, "mesh", meshShared, "shared: both paths on the same nodes and mesh, messages alternating; separate: each path on its own nodes, one after the other")
	fs.Int64Var(&o.Seed, "seed", 0, "topology and filler seed; 0 = from the clock")
	fs.DurationVar(&o.MeshTimeout, "mesh-timeout", 30*time.Second, "deadline for the mesh and warm-up")
	fs.DurationVar(&o.Drain, "drain", 15*time.Second, "deadline for deliveries after the last publish")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write an allocation profile of the run to this file at the end")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	var errs []error
	for f := range strings.SplitSeq(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			errs = append(errs, fmt.Errorf("-nodes: %q is not a size of at least 2", f))
			continue
		}
		o.Nodes = append(o.Nodes, n)
	}
	if o.Messages < 1 {
		errs = append(errs, fmt.Errorf("-messages: %d must be at least 1", o.Messages))
	}
	if o.Rate <= 0 {
		errs = append(errs, fmt.Errorf("-rate: %v must be positive", o.Rate))
	}
	if o.Dials < 1 {
		errs = append(errs, fmt.Errorf("-dials: %d must be at least 1", o.Dials))
	}
	if o.Size < 0 {
		errs = append(errs, fmt.Errorf("-size: %d is negative", o.Size))
	}
	if o.Mesh != meshShared && o.Mesh != meshSeparate {
		errs = append(errs, fmt.Errorf("-mesh: %q must be %s or %s", o.Mesh, meshShared, meshSeparate))
	}
	if o.Rounds < 1 {
		errs = append(errs, fmt.Errorf("-rounds: %d must be at least 1", o.Rounds))
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}
	return o, errors.Join(errs...)
}
