package gossip_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"chorus/gossip"
)

// The mDNS test re-executes its own test binary inside network namespaces;
// these variables carry the child's role and parameters.
const (
	envMDNSChild   = "CHORUS_MDNS_CHILD"   // set to the child's index: run as a child node
	envMDNSService = "CHORUS_MDNS_SERVICE" // mDNS service name shared by the children
	envMDNSDir     = "CHORUS_MDNS_DIR"     // the child's data dir
	envMDNSPeers   = "CHORUS_MDNS_PEERS"   // how many other peers the child must see
	envMDNSRootNet = "CHORUS_MDNS_ROOTNET" // the parent's netns, which the child must not be in
)

const (
	// mdnsPeers is the number of nodes, one per namespace, on one bridge.
	mdnsPeers = 3
	// mdnsDeadline bounds the time from the last node's start until every
	// node is connected to all the others. Measured discovery is under
	// 100 ms; the slack covers a loaded machine.
	mdnsDeadline = 30 * time.Second
	// childPrefix marks the lines a child prints for the parent.
	childPrefix = "mdns-child "
)

// TestMDNSDiscovery proves that nodes with no bootstrap list find and
// connect to each other by mDNS alone. It builds a small LAN of network
// namespaces (a bridge in a hub namespace, one veth per node namespace,
// 10.x addresses) and runs one node per namespace as a child process, so
// nothing ever multicasts from the root namespace.
func TestMDNSDiscovery(t *testing.T) {
	if os.Getenv(envMDNSChild) != "" {
		runMDNSChild(t)
		return
	}
	requireNetns(t)

	rootNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatalf("read own network namespace: %v", err)
	}
	names := makeLAN(t, mdnsPeers)
	service := "_chorus-test-" + randomHex(t) + "._udp"
	dir := t.TempDir()

	children := make([]*mdnsChild, len(names))
	start := time.Now()
	for i, ns := range names {
		children[i] = startMDNSChild(t, ns, i, []string{
			envMDNSChild + "=" + strconv.Itoa(i+1),
			envMDNSService + "=" + service,
			envMDNSDir + "=" + fmt.Sprintf("%s/node%d", dir, i),
			envMDNSPeers + "=" + strconv.Itoa(len(names)-1),
			envMDNSRootNet + "=" + rootNet,
		})
	}
	lastStarted := time.Now()
	deadline := time.NewTimer(mdnsDeadline)
	defer deadline.Stop()

	// Every child first prints its id, then the ids of the peers it is
	// connected to once it has them all.
	ids := make([]string, len(children))
	for i, c := range children {
		ids[i] = c.await(t, deadline.C, "id")
	}
	for i, c := range children {
		got := strings.Split(c.await(t, deadline.C, "connected"), ",")
		var want []string
		for j, id := range ids {
			if j != i {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("node %d (%s) is connected to %v, want exactly the other nodes %v", i, ids[i], got, want)
		}
		t.Logf("node %d connected to all %d others %v after the last node started (%v after the first)",
			i, len(want), c.connectedAt.Sub(lastStarted).Round(time.Millisecond), c.connectedAt.Sub(start).Round(time.Millisecond))
	}
	for i, c := range children {
		if err := c.stop(); err != nil {
			t.Errorf("node %d: %v\n%s", i, err, c.output())
		}
	}
}

// requireNetns skips the test where network namespaces cannot be made,
// except under CI, where the test must run.
func requireNetns(t *testing.T) {
	t.Helper()
	var missing string
	if os.Geteuid() != 0 {
		missing = "root (to create network namespaces)"
	} else if _, err := exec.LookPath("ip"); err != nil {
		missing = "iproute2's ip command"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("mDNS discovery test needs %s; under CI=true it must run", missing)
	}
	t.Skipf("mDNS discovery test needs %s", missing)
}

// makeLAN creates n node namespaces, each with a veth onto a bridge in a
// hub namespace and an address in 10.201.0.0/24, and removes them all when
// the test ends. It returns the node namespaces' names. No interface is
// ever created in the root namespace.
func makeLAN(t *testing.T, n int) []string {
	t.Helper()
	prefix := fmt.Sprintf("chorus-mdns-%d-%s", os.Getpid(), randomHex(t))
	hub := prefix + "-hub"
	addNetns(t, hub)
	ip(t, "-n", hub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	ip(t, "-n", hub, "link", "set", "br0", "multicast", "on", "up")
	names := make([]string, n)
	for i := range names {
		ns := fmt.Sprintf("%s-%d", prefix, i+1)
		addNetns(t, ns)
		port := fmt.Sprintf("p%d", i+1)
		ip(t, "link", "add", "veth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", hub)
		ip(t, "-n", hub, "link", "set", port, "master", "br0")
		ip(t, "-n", hub, "link", "set", port, "multicast", "on", "up")
		ip(t, "-n", ns, "addr", "add", fmt.Sprintf("10.201.0.%d/24", i+1), "dev", "veth0")
		ip(t, "-n", ns, "link", "set", "lo", "up")
		ip(t, "-n", ns, "link", "set", "veth0", "multicast", "on", "up")
		names[i] = ns
	}
	return names
}

// addNetns creates a namespace and deletes it at cleanup; deleting a
// namespace destroys the interfaces in it and, with them, their veth peers.
func addNetns(t *testing.T, name string) {
	t.Helper()
	ip(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// mdnsChild is one node running in its namespace as a child process.
type mdnsChild struct {
	cmd         *exec.Cmd
	stdin       io.WriteCloser
	lines       chan string // lines after childPrefix; closed at EOF
	logPath     string      // the child's stderr (its node's logs)
	outPath     string      // a copy of the child's whole stdout
	connectedAt time.Time
	done        chan error // the result of Wait
}

// startMDNSChild runs this test binary as a child node inside ns. The
// child runs until its stdin is closed; cleanup closes it and, if the
// child does not exit in time, kills it.
func startMDNSChild(t *testing.T, ns string, i int, env []string) *mdnsChild {
	t.Helper()
	dir := t.TempDir()
	c := &mdnsChild{
		lines:   make(chan string, 16),
		logPath: fmt.Sprintf("%s/child%d.log", dir, i),
		outPath: fmt.Sprintf("%s/child%d.out", dir, i),
		done:    make(chan error, 1),
	}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	outFile, err := os.Create(c.outPath)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command("ip", "netns", "exec", ns, os.Args[0],
		"-test.run=^TestMDNSDiscovery$", "-test.count=1", "-test.timeout=2m", "-test.v")
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = logFile
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start child in %s: %v", ns, err)
	}
	go func() {
		defer outFile.Close()
		defer close(c.lines)
		sc := bufio.NewScanner(io.TeeReader(stdout, outFile))
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), childPrefix); ok {
				c.lines <- line
			}
		}
		io.Copy(io.Discard, stdout) // a line too long for the scanner
		c.done <- c.cmd.Wait()
	}()
	t.Cleanup(func() {
		if err := c.stop(); err != nil && !t.Failed() {
			t.Errorf("child %d: %v", i, err)
		}
	})
	return c
}

// await returns the value of the child's next line of the given kind; it
// fails the test if the child prints something else, exits or the
// deadline passes.
func (c *mdnsChild) await(t *testing.T, deadline <-chan time.Time, kind string) string {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok {
			t.Fatalf("child exited before printing %q:\n%s", kind, c.output())
		}
		got, value, _ := strings.Cut(line, " ")
		if got != kind {
			t.Fatalf("child printed %q, want %q:\n%s", line, kind, c.output())
		}
		if kind == "connected" {
			c.connectedAt = time.Now()
		}
		return value
	case <-deadline:
		t.Fatalf("no %q from the child within %v:\n%s", kind, mdnsDeadline, c.output())
		return ""
	}
}

// stop closes the child's stdin, which ends it, and waits for it to exit;
// a child that does not is killed. It is safe to call more than once.
func (c *mdnsChild) stop() error {
	c.stdin.Close()
	select {
	case err := <-c.done:
		c.done <- err // for a later call
		return err
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		err := <-c.done
		c.done <- err
		return fmt.Errorf("did not exit after its stdin closed; killed: %w", err)
	}
}

// output is what the child printed, for failure messages.
func (c *mdnsChild) output() string {
	out, _ := os.ReadFile(c.outPath)
	logs, _ := os.ReadFile(c.logPath)
	return fmt.Sprintf("--- stdout\n%s--- stderr\n%s", out, logs)
}

// runMDNSChild is the child's side: start a node with mDNS and no
// bootstrap peers, print its id, wait until it is connected to every
// other node, print their ids, then run until stdin closes.
func runMDNSChild(t *testing.T) {
	// Never multicast from the root namespace: the child must be in a
	// namespace other than the one the parent test runs in.
	netns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatalf("read own network namespace: %v", err)
	}
	if parent := os.Getenv(envMDNSRootNet); parent == "" || netns == parent {
		t.Fatalf("child is in network namespace %s, parent's is %q: refusing to multicast there", netns, parent)
	}
	want, err := strconv.Atoi(os.Getenv(envMDNSPeers))
	if err != nil {
		t.Fatalf("%s: %v", envMDNSPeers, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	cfg := gossip.DefaultConfig()
	cfg.DataDir = os.Getenv(envMDNSDir)
	cfg.ListenAddrs = []string{"/ip4/0.0.0.0/tcp/0"}
	cfg.Bootstrap = nil
	cfg.MDNS = true
	// Discovery by mDNS alone.
	cfg.DHTMode = gossip.DHTOff
	cfg.MDNSService = os.Getenv(envMDNSService)
	cfg.Role = "tester"
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := gossip.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	fmt.Printf("%sid %s\n", childPrefix, n.ID())

	deadline, stopDeadline := context.WithTimeout(ctx, mdnsDeadline)
	defer stopDeadline()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(n.Peers()) < want {
		select {
		case <-tick.C:
		case <-deadline.Done():
			t.Fatalf("connected to %v, want %d peers: %v", n.Peers(), want, deadline.Err())
		}
	}
	fmt.Printf("%sconnected %s\n", childPrefix, strings.Join(n.Peers(), ","))

	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stdinClosed:
	case <-ctx.Done():
		t.Fatalf("the parent never closed stdin: %v", ctx.Err())
	}
}
