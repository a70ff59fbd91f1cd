package election

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the tunables of a Machine. Durations are turned into whole
// ticks (rounded up) with Tick, the time one call to Machine.Tick stands
// for; the machine itself never reads a clock. Start from DefaultConfig or
// FastConfig and set ID.
type Config struct {
	// ID is this node's peer id; it breaks score ties and names the node
	// in every message it sends.
	ID string
	// Tick is the time one Machine.Tick stands for; the driver ticks at
	// this rate.
	Tick time.Duration
	// Heartbeat is how often the admin proves it is alive.
	Heartbeat time.Duration
	// Timeout is how long a follower waits without a heartbeat before it
	// starts an election (trigger heartbeat_timeout). The admin's lease is
	// Timeout minus half a Heartbeat: it steps down when its majority has
	// been silent that long, before any follower may elect a successor.
	Timeout time.Duration
	// Stability is the minimum term: within it no voluntary (manual)
	// re-election is accepted. A dead admin is still replaced.
	Stability time.Duration
	// StartupWait is how long a new node listens for an admin before it
	// starts an election (trigger no_admin).
	StartupWait time.Duration
	// Collect is how long an election gathers candidacies before each node
	// votes for the best candidate it has seen.
	Collect time.Duration
	// RoundTimeout ends an election without a winner; the node tries again
	// after Backoff.
	RoundTimeout time.Duration
	// Resend is how often candidacies and votes of a running election are
	// sent again (messages can be lost), and the fastest rate at which the
	// admin answers a stray candidacy with a heartbeat.
	Resend time.Duration
	// Backoff is the pause between a failed election and the next one; each
	// node adds up to one more Backoff of jitter derived from its ID.
	Backoff time.Duration
	// MemberTTL is how long a silent node still counts as a member for the
	// quorum. Within it a partition's minority cannot elect an admin; past
	// it the node is treated as gone, so a cluster that shrank elects again.
	MemberTTL time.Duration
	// Term is the highest admin term this node saw before it started (kept
	// on disk by the driver), so terms stay monotonic across restarts.
	Term uint64
}

// DefaultConfig is the SPEC's profile: heartbeat 5 s, timeout 15 s,
// stability window 30 s.
func DefaultConfig() Config {
	return Config{
		// Fine enough that quantisation adds at most 0.1 s to a failover.
		Tick: 100 * time.Millisecond,
		// SPEC section 6; cheap (one small message per node every 5 s).
		Heartbeat: 5 * time.Second,
		// Three heartbeats: one or two lost heartbeats never depose an admin.
		Timeout: 15 * time.Second,
		// SPEC: a minimum term against churn.
		Stability: 30 * time.Second,
		// One heartbeat plus the ~1 s GossipSub needs to graft a new peer
		// into the mesh: a running admin is heard before a newcomer stands.
		StartupWait: 6 * time.Second,
		// Gossip reaches every node in tens of milliseconds even at 50
		// nodes (all-peers p99 27 ms on loopback); 0.5 s leaves room for
		// slow links and busy CPUs, and keeps failover within 17 s.
		Collect: 500 * time.Millisecond,
		// Collect plus several resends of lost votes.
		RoundTimeout: 3 * time.Second,
		// Each lost message costs at most this much.
		Resend: 500 * time.Millisecond,
		// Short: nodes that retry at once join the same term anyway.
		Backoff: 500 * time.Millisecond,
		// Four timeouts: a partition shorter than a minute never gives its
		// minority an admin; a node gone for longer no longer blocks the
		// quorum of those that remain.
		MemberTTL: time.Minute,
	}
}

// FastConfig is the fast profile, heartbeat 1 s and timeout 3 s, for small
// clusters on a fast network (failover in about 3 s, like Nomad's).
func FastConfig() Config {
	return Config{
		Tick:         50 * time.Millisecond,
		Heartbeat:    time.Second,
		Timeout:      3 * time.Second,
		Stability:    10 * time.Second,
		StartupWait:  1500 * time.Millisecond,
		Collect:      250 * time.Millisecond,
		RoundTimeout: 1500 * time.Millisecond,
		Resend:       250 * time.Millisecond,
		Backoff:      250 * time.Millisecond,
		MemberTTL:    12 * time.Second,
	}
}

// Profile names.
const (
	ProfileDefault = "default"
	ProfileFast    = "fast"
)

// ProfileConfig returns the named profile: ProfileDefault or ProfileFast.
func ProfileConfig(name string) (Config, error) {
	switch name {
	case ProfileDefault, "":
		return DefaultConfig(), nil
	case ProfileFast:
		return FastConfig(), nil
	}
	return Config{}, fmt.Errorf("election profile %q: want %q or %q", name, ProfileDefault, ProfileFast)
}

// Validate reports every field that makes the Config unusable.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("ID: missing"))
	}
	if c.Tick <= 0 {
		errs = append(errs, fmt.Errorf("Tick: %s must be positive", c.Tick))
	} else {
		for _, d := range []struct {
			name string
			v    time.Duration
		}{{"Heartbeat", c.Heartbeat}, {"Timeout", c.Timeout}, {"StartupWait", c.StartupWait}, {"Collect", c.Collect},
			{"RoundTimeout", c.RoundTimeout}, {"Resend", c.Resend}, {"Backoff", c.Backoff}, {"MemberTTL", c.MemberTTL}} {
			if d.v < c.Tick {
				errs = append(errs, fmt.Errorf("%s: %s must be at least one Tick (%s)", d.name, d.v, c.Tick))
			}
		}
	}
	if c.Stability < 0 {
		errs = append(errs, fmt.Errorf("Stability: %s is negative", c.Stability))
	}
	if c.Timeout < 2*c.Heartbeat {
		errs = append(errs, fmt.Errorf("Timeout: %s must be at least two heartbeats (%s), or one lost heartbeat deposes the admin", c.Timeout, 2*c.Heartbeat))
	}
	if c.RoundTimeout <= c.Collect {
		errs = append(errs, fmt.Errorf("RoundTimeout: %s must be longer than Collect (%s)", c.RoundTimeout, c.Collect))
	}
	if c.MemberTTL < c.Timeout {
		errs = append(errs, fmt.Errorf("MemberTTL: %s must be at least Timeout (%s)", c.MemberTTL, c.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("election config: %w", err)
	}
	return nil
}

// ticks turns a duration into whole ticks, rounded up, at least one.
func (c Config) ticks(d time.Duration) int64 {
	n := int64((d + c.Tick - 1) / c.Tick)
	if n < 1 {
		n = 1
	}
	return n
}
