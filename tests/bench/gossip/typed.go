package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"

	"chorus/audit"
	"chorus/gossip"
	"chorus/shhh"
)

// loopback is the only address benchmark hosts listen on.
const loopback = "/ip4/127.0.0.1/tcp/0"

// benchTopic is the topic both paths publish on.
const benchTopic = gossip.TopicCoordination

// typedNet is the path under test: gossip.Nodes publishing typed bodies
// that the node redacts, each publish recorded in the publisher's audit
// log.
type typedNet struct {
	nodes    []*gossip.Node
	topics   []*gossip.Topic
	cancels  []func()
	logs     []*audit.Log
	keys     []string // audit key paths, for Verify
	redactor *shhh.Redactor
}

// startTyped starts n nodes with their own data directories under dir;
// every valid message a node receives is passed to recv with the time of
// receipt.
func startTyped(ctx context.Context, dir string, n int, base time.Time, recv receiver) (_ *typedNet, err error) {
	red, err := shhh.New(shhh.DefaultConfig())
	if err != nil {
		return nil, err
	}
	t := &typedNet{redactor: red}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.close())
		}
	}()
	for i := range n {
		nodeDir := filepath.Join(dir, "node-"+strconv.Itoa(i))
		cfg := gossip.DefaultConfig()
		cfg.DataDir = nodeDir
		cfg.ListenAddrs = []string{loopback}
		cfg.MDNS = false
		// The planned topology only: no DHT dials (the raw baseline has
		// no DHT either).
		cfg.DHTMode = gossip.DHTOff
		cfg.AgentID = "bench-" + strconv.Itoa(i)
		cfg.Role = "developer"
		// SHHH in front of every publish, as in the worker.
		cfg.Redact = func(b []byte) []byte { out, _ := red.RedactBytes(b); return out }
		node, err := gossip.New(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("start node %d: %w", i, err)
		}
		t.nodes = append(t.nodes, node)
		topic, err := node.Join(benchTopic)
		if err != nil {
			return nil, err
		}
		t.topics = append(t.topics, topic)
		cancel, err := topic.Subscribe(func(e gossip.Envelope, _ string) {
			// A handler reads the typed body, as an agent does; the
			// bench's own fields travel in its message.
			var su gossip.StatusUpdate
			if e.DecodeData(&su) == nil {
				at := time.Since(base)
				// The bench's fields travel as JSON in the message
				// text; the collector only reads them, so it gets the
				// string's bytes without a copy the raw path has no
				// counterpart for.
				recv(i, unsafe.Slice(unsafe.StringData(su.Message), len(su.Message)), at)
			}
		})
		if err != nil {
			return nil, err
		}
		t.cancels = append(t.cancels, cancel)
		keyPath := audit.KeyPath(nodeDir)
		key, err := audit.LoadOrCreateKey(keyPath)
		if err != nil {
			return nil, err
		}
		l, err := audit.OpenWithOptions(audit.LogPath(nodeDir), key, node.ID(), audit.Options{
			Redact: func(b []byte) []byte { out, _ := red.RedactBytes(b); return out },
		})
		if err != nil {
			return nil, err
		}
		t.logs = append(t.logs, l)
		t.keys = append(t.keys, keyPath)
	}
	return t, nil
}

func (t *typedNet) size() int { return len(t.nodes) }

func (t *typedNet) connect(ctx context.Context, from, to int) error {
	addrs := t.nodes[to].Addrs()
	if len(addrs) == 0 {
		return fmt.Errorf("node %d has no address", to)
	}
	return t.nodes[from].Connect(ctx, addrs[0])
}

func (t *typedNet) waitMesh(ctx context.Context, node, peers int) error {
	return t.nodes[node].WaitMesh(ctx, benchTopic, peers)
}

// publishEvent is the audit entry of one publish.
type publishEvent struct {
	Event string `json:"event"`
	Topic string `json:"topic"`
	Type  string `json:"type"`
	Phase int    `json:"phase"`
	Seq   int    `json:"seq"`
	Bytes int    `json:"bytes"`
}

// publish sends the body as an agent does: a typed status_update whose
// data the node redacts (Config.Redact) before signing, then an audit
// entry for the publish.
func (t *typedNet) publish(ctx context.Context, node int, b body) error {
	raw, err := jsonBody(b)
	if err != nil {
		return err
	}
	su := gossip.StatusUpdate{AgentID: "bench-" + strconv.Itoa(node), Status: "bench", Message: string(raw), At: time.Now()}
	if err := t.topics[node].PublishBody(ctx, su, gossip.Envelope{Priority: gossip.PriorityLow}); err != nil {
		return err
	}
	_, err = t.logs[node].Append(ctx, audit.TypeNetworkEvent, publishEvent{
		Event: "gossip_publish", Topic: benchTopic, Type: string(su.MessageType()), Phase: b.Phase, Seq: b.Seq, Bytes: len(raw),
	})
	return err
}

func (t *typedNet) drops() int64 {
	var sum int64
	for _, n := range t.nodes {
		d := n.Drops()
		sum += d.OutboundQueue + d.ValidationQueue + d.Subscription
	}
	return sum
}

// rejections sums the validator's refusals by reason over all nodes.
func (t *typedNet) rejections() map[string]int64 {
	out := map[string]int64{}
	for _, n := range t.nodes {
		for r, c := range n.Rejections() {
			out[string(r)] += c
		}
	}
	return out
}

// record adds the typed path's own figures to res: rejections,
// redactions and the audit entries that verify.
func (t *typedNet) record(res *phaseResult) (err error) {
	res.rejections = t.rejections()
	res.redactions = t.redactor.Stats().Redactions
	res.auditEntries, err = t.verifyAudit()
	return err
}

// verifyAudit checks every node's audit log and returns the number of
// entries that verified.
func (t *typedNet) verifyAudit() (int64, error) {
	var total int64
	for i, l := range t.logs {
		pub, err := audit.LoadPublicKey(t.keys[i])
		if err != nil {
			return total, err
		}
		r, err := audit.Verify(l.Path(), pub)
		if err != nil {
			return total, err
		}
		if !r.Valid {
			return total, fmt.Errorf("audit log of node %d invalid at line %d: %s", i, r.BadLine, r.Reason)
		}
		total += r.Entries
	}
	return total, nil
}

func (t *typedNet) close() error {
	var errs []error
	for _, c := range t.cancels {
		c()
	}
	for _, l := range t.logs {
		errs = append(errs, l.Close())
	}
	for _, n := range t.nodes {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}
