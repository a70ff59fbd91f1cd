// Command gossip measures what chorus's typed gossip path adds over bare
// GossipSub. For each network size N it starts N in-process gossip.Nodes on
// loopback (TCP only, mDNS off, a random sparse topology), waits for the
// mesh, and publishes M messages from rotating publishers at a fixed rate
// through the typed path: body redacted by an shhh.Redactor, an Envelope
// published with Topic.PublishBody (strict signing, content-hash ids, the
// envelope validator) and an audit.Log entry appended per publish. The raw
// path publishes the same bodies with bare GossipSub: by default (-mesh
// shared) on a second topic of the same nodes (gossip.Node.JoinBare), the
// two paths' messages alternating on one schedule; with -mesh separate on
// N plain libp2p hosts built with the options gossip.New uses, on the same
// topology, one path after the other. It prints one JSON object per N:
//
//	{nodes, messages, delivery_ratio, p50_ms, p99_ms, raw_p50_ms, raw_p99_ms, p99_ratio, ...}
//
// Latency is per delivery: the publish time carried in the payload (taken
// before redaction and encoding) against the receive time on each other
// node, both from one process's monotonic clock. Goals: delivery_ratio = 1
// and p99_ratio <= 1.2.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gossip bench:", err)
		os.Exit(1)
	}
}

// run parses args, runs every configured network size and writes one JSON
// report per size to stdout; progress goes to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if opts.CPUProfile != "" {
		f, err := os.Create(opts.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if opts.MemProfile != "" {
		defer func() {
			f, ferr := os.Create(opts.MemProfile)
			if ferr == nil {
				ferr = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
			}
			if ferr != nil {
				log.Error("writing the allocation profile failed", "error", ferr)
			}
		}()
	}
	for _, n := range opts.Nodes {
		rep, err := benchSize(ctx, log, opts, n)
		if err != nil {
			return fmt.Errorf("bench %d nodes: %w", n, err)
		}
		if err := writeReport(stdout, rep); err != nil {
			return err
		}
	}
	return nil
}
