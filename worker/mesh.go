package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/activities"
	"chorus/gossip"
	"chorus/sandbox"
)

// mesh is this worker's place in the gossip network: its node, the
// registry of peers heard on the coordination topic, and (for an agent)
// its capability and availability broadcasts.
type mesh struct {
	node     *gossip.Node
	coord    *gossip.Topic
	registry *gossip.Registry
	agent    *activities.AgentInfo // nil for a node without an agent
	dataDir  string
	interval time.Duration
	running  *countingRunner
	logger   *slog.Logger
	stopSub  func()
	// stopRole ends the subscription to the agent's role topic.
	stopRole func()
	// offer delivers a help offer to a task's workflow; set once the
	// Temporal client exists (until then requests are not answered).
	offer atomic.Pointer[func(ctx context.Context, key string, o activities.HelpOffer) error]
	wg    sync.WaitGroup
	// audit receives network events.
	audit activities.Auditor
	// seen holds the peers heard from since they (last) joined.
	seenMu sync.Mutex
	seen   map[string]bool
	// phases follows the operations of this node for BACKBEAT; set once
	// the BACKBEAT node exists.
	phases atomic.Pointer[opPhases]
}

// networkEvent is the data of the network and collaboration audit entries
// (peer_joined, peer_left, capability_broadcast, task_help_*, collaboration,
// escalation).
type networkEvent struct {
	PeerID    string   `json:"peer_id"`
	AgentID   string   `json:"agent_id,omitempty"`
	Role      string   `json:"role,omitempty"`
	Expertise []string `json:"expertise,omitempty"`
	// Task, Room and Detail describe collaboration events.
	Task   string `json:"task_key,omitempty"`
	Room   string `json:"room,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// markSeen notes a peer as present and reports whether it was new.
func (m *mesh) markSeen(peer string) bool {
	m.seenMu.Lock()
	defer m.seenMu.Unlock()
	if m.seen[peer] {
		return false
	}
	m.seen[peer] = true
	return true
}

// watchPeers records peer_left for every peer the registry forgets (silent
// for ExpiryIntervals broadcast intervals), once per interval.
func (m *mesh) watchPeers(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.leaveIdleRooms()
		present := map[string]string{}
		for _, p := range m.registry.Snapshot() {
			present[p.PeerID] = p.AgentID
		}
		var left []string
		m.seenMu.Lock()
		for peer := range m.seen {
			if _, ok := present[peer]; !ok {
				delete(m.seen, peer)
				left = append(left, peer)
			}
		}
		m.seenMu.Unlock()
		slices.Sort(left)
		for _, peer := range left {
			m.record(ctx, "peer_left", networkEvent{PeerID: peer})
		}
	}
}

// record writes a network event to the node's audit log.
func (m *mesh) record(ctx context.Context, typ string, ev networkEvent) {
	if err := m.audit.Record(ctx, typ, ev); err != nil {
		m.logger.Warn("audit write failed", "type", typ, "error", err)
	}
}

// peersReply is GET /api/v1/peers: this node and the peers it knows.
type peersReply struct {
	Self  selfInfo          `json:"self"`
	Peers []gossip.PeerInfo `json:"peers"`
}

type selfInfo struct {
	AgentID string   `json:"agent_id,omitempty"`
	PeerID  string   `json:"peer_id"`
	Addrs   []string `json:"addrs"`
}

// startMesh starts the node, joins the coordination topic and feeds the
// registry. bootstrapFrom, when set, is another worker's ops URL whose
// addresses are used as bootstrap peers, so workers on one machine find
// each other without mDNS.
func startMesh(ctx context.Context, o options, dataDir string, agent *activities.AgentInfo, running *countingRunner, bootstrapFrom string,
	redact func([]byte) []byte, audit activities.Auditor, metrics prometheus.Registerer, logger *slog.Logger) (*mesh, error) {
	cfg := gossip.DefaultConfig()
	cfg.Metrics = metrics
	cfg.DataDir = dataDir
	cfg.Logger = logger
	cfg.Redact = redact
	cfg.MDNS = o.mdns
	cfg.DHTMode = o.dhtMode
	if o.p2pListen != "" {
		cfg.ListenAddrs = splitList(o.p2pListen)
	}
	cfg.Bootstrap = splitList(o.bootstrap)
	if bootstrapFrom != "" {
		cfg.Bootstrap = append(cfg.Bootstrap, fetchAddrs(ctx, bootstrapFrom, logger)...)
	}
	if agent != nil {
		cfg.AgentID, cfg.Role = agent.ID, agent.Role
	}
	node, err := gossip.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	m := &mesh{node: node, registry: gossip.NewRegistry(o.availabilityInterval, nil), agent: agent, dataDir: dataDir,
		interval: o.availabilityInterval, running: running, logger: logger, audit: audit, seen: map[string]bool{}}
	if m.coord, err = node.Join(gossip.TopicCoordination); err != nil {
		return nil, errors.Join(err, node.Close())
	}
	if m.stopSub, err = m.coord.Subscribe(func(e gossip.Envelope, from string) {
		if ph := m.phases.Load(); ph != nil {
			ph.observe(e)
		}
		if err := m.registry.Observe(e, from); err != nil {
			logger.Debug("ignored broadcast", "from", from, "error", err)
			return
		}
		switch e.Type {
		case gossip.TypeCapabilityBroadcast:
			var c gossip.CapabilityBroadcast
			if e.DecodeData(&c) == nil {
				if m.markSeen(from) {
					m.record(ctx, "peer_joined", networkEvent{PeerID: from, AgentID: c.AgentID})
				}
				m.record(ctx, "capability_broadcast", networkEvent{PeerID: from, AgentID: c.AgentID, Role: c.Role, Expertise: c.Expertise})
			}
		case gossip.TypeAvailabilityBroadcast:
			var a gossip.AvailabilityBroadcast
			if e.DecodeData(&a) == nil && m.markSeen(from) {
				m.record(ctx, "peer_joined", networkEvent{PeerID: from, AgentID: a.NodeID})
			}
		}
	}); err != nil {
		return nil, errors.Join(err, node.Close())
	}
	m.stopRole = func() {}
	if agent != nil && validRole(agent.Role) {
		// Requests addressed to this agent's role arrive on its role topic.
		rt, err := node.Join(gossip.RoleTopic(agent.Role))
		if err != nil {
			return nil, errors.Join(err, node.Close())
		}
		if m.stopRole, err = rt.Subscribe(func(e gossip.Envelope, from string) {
			if e.Type == gossip.TypeTaskHelpRequest {
				m.answerHelp(ctx, e, from)
			}
		}); err != nil {
			return nil, errors.Join(err, node.Close())
		}
	}
	return m, nil
}

var rolePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// validRole reports whether a role can name a role topic.
func validRole(role string) bool { return rolePattern.MatchString(role) }

// Close leaves the network.
func (m *mesh) Close() error {
	m.stopRole()
	m.stopSub()
	m.wg.Wait()
	return m.node.Close()
}

// PublishHelpRequest implements activities.HelpPublisher: it sends the
// request on the topic of each required role (CHORUS/roles/<role>/v1),
// after waiting (briefly) for a peer of that role in the topic's mesh,
// since a publish before the mesh forms is lost. It fails only when no
// role could be asked.
func (m *mesh) PublishHelpRequest(ctx context.Context, req activities.HelpRequest) error {
	prio := gossip.PriorityMedium
	if req.Priority >= 8 {
		prio = gossip.PriorityUrgent
	}
	body := gossip.TaskHelpRequest{TaskKey: req.Key, AgentID: req.AgentID, Roles: req.Roles, Expertise: req.Expertise, Priority: req.Priority}
	if req.Issue > 0 {
		body.Room = gossip.IssueRoom(req.Issue)
	}
	var asked []string
	var errs []error
	for _, role := range req.Roles {
		if !validRole(role) {
			errs = append(errs, fmt.Errorf("role %q cannot name a role topic", role))
			continue
		}
		if err := m.askRole(ctx, role, body, gossip.Envelope{ToRoles: req.Roles, RequiredExpertise: req.Expertise, Priority: prio, ThreadID: req.Key}); err != nil {
			errs = append(errs, err)
			continue
		}
		asked = append(asked, role)
	}
	if len(asked) == 0 {
		return fmt.Errorf("no role could be asked: %w", errors.Join(errs...))
	}
	m.record(ctx, "task_help_requested", networkEvent{PeerID: m.node.ID(), AgentID: req.AgentID, Task: req.Key, Room: body.Room,
		Detail: "asked roles " + strings.Join(asked, ", ")})
	return nil
}

// askRole publishes a help request on one role's topic once a peer of the
// role is in its mesh.
func (m *mesh) askRole(ctx context.Context, role string, body gossip.TaskHelpRequest, e gossip.Envelope) error {
	name := gossip.RoleTopic(role)
	t, err := m.node.Join(name)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.node.WaitMesh(wctx, name, 1); err != nil {
		return fmt.Errorf("no peers of role %s to ask: %w", role, err)
	}
	return t.PublishBody(ctx, body, e)
}

// answerHelp offers this agent's help when the request is addressed to its
// role, it holds some of the required expertise (or none is required), it
// has capacity, and it is not the requester. The offer goes to the task's
// workflow as a signal and, for everyone else, on the topic.
func (m *mesh) answerHelp(ctx context.Context, e gossip.Envelope, from string) {
	offer := m.offer.Load()
	if m.agent == nil || offer == nil {
		return
	}
	var req gossip.TaskHelpRequest
	if err := e.DecodeData(&req); err != nil || req.AgentID == m.agent.ID {
		return
	}
	if len(e.ToRoles) > 0 && !slices.Contains(e.ToRoles, m.agent.Role) {
		return
	}
	if len(req.Expertise) > 0 && !slices.ContainsFunc(req.Expertise, func(x string) bool { return slices.Contains(m.agent.Expertise, x) }) {
		return
	}
	if int(m.running.n.Load()) >= m.agent.MaxTasks {
		return
	}
	o := activities.HelpOffer{AgentID: m.agent.ID, PeerID: m.node.ID(), Role: m.agent.Role, Expertise: m.agent.Expertise}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		// A helper takes part in the task's room: it joins before offering,
		// so the room's mesh can form while the offer travels and the
		// requester's reflection of it reaches this node.
		if issue, ok := gossip.ParseIssueRoom(req.Room); ok {
			if _, err := m.node.JoinRoom(issue); err != nil {
				m.logger.Warn("joining the task's room failed", "room", req.Room, "error", err)
			}
		}
		if err := (*offer)(sctx, req.TaskKey, o); err != nil {
			m.logger.Warn("help offer not delivered", "task", req.TaskKey, "error", err)
			return
		}
		m.logger.Info("offered help", "task", req.TaskKey, "requester", req.AgentID)
		if ph := m.phases.Load(); ph != nil {
			ph.offered(req.TaskKey)
		}
		m.record(sctx, "task_help_offered", networkEvent{PeerID: m.node.ID(), AgentID: m.agent.ID, Task: req.TaskKey, Room: req.Room})
		resp := gossip.TaskHelpResponse{TaskKey: req.TaskKey, AgentID: o.AgentID, PeerID: o.PeerID, Role: o.Role, Expertise: o.Expertise,
			CurrentTasks: int(m.running.n.Load()), MaxTasks: m.agent.MaxTasks}
		_ = m.coord.PublishBody(sctx, resp, gossip.Envelope{ThreadID: req.TaskKey})
	}()
}

// Run broadcasts the agent's capabilities (at start, when they differ from
// the copy on disk, and whenever more peers are connected than before, since
// a message published before the mesh forms is lost) and its availability
// every interval; it also records peers that leave.
func (m *mesh) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); m.watchPeers(ctx) }()
	if m.agent == nil {
		<-ctx.Done()
		return nil
	}
	if changed, err := m.capabilitiesChanged(); err != nil {
		m.logger.Warn("comparing capabilities with the saved copy failed", "error", err)
	} else if changed {
		m.logger.Info("capabilities changed since the last start; announcing")
	}
	t := time.NewTicker(m.interval)
	defer t.Stop()
	lastPeers := -1
	for tick := 0; ; tick++ {
		// A publish before the topic's mesh has formed is lost, so the
		// announcement waits for a mesh peer: at start, whenever more
		// peers are connected than before, and every tenth interval for
		// peers that missed it.
		if n := len(m.node.Peers()); n > lastPeers || tick%10 == 9 {
			lastPeers = n
			wg.Add(1)
			go func() {
				defer wg.Done()
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				if err := m.node.WaitMesh(wctx, gossip.TopicCoordination, 1); err != nil {
					return
				}
				m.publish(ctx, gossip.TypeCapabilityBroadcast, gossip.CapabilityBroadcast{
					AgentID: m.agent.ID, Role: m.agent.Role, Expertise: m.agent.Expertise, MaxTasks: m.agent.MaxTasks, Timestamp: time.Now().UTC(),
				})
			}()
		}
		cur := int(m.running.n.Load())
		status := gossip.AvailabilityStatus("ready")
		switch {
		case cur >= m.agent.MaxTasks:
			status = "busy"
		case cur > 0:
			status = "working"
		}
		now := time.Now().UTC()
		m.publish(ctx, gossip.TypeAvailabilityBroadcast, gossip.AvailabilityBroadcast{
			NodeID: m.agent.ID, AvailableForWork: cur < m.agent.MaxTasks, CurrentTasks: cur, MaxTasks: m.agent.MaxTasks,
			LastActivity: m.running.last(now), Status: status, Timestamp: now, Performance: m.running.performance(),
		})
		// Every interval, and soon after a run starts or ends, so the
		// selection step sees current capacity (at most one extra
		// broadcast per second).
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-m.running.changed:
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}

func (m *mesh) publish(ctx context.Context, typ gossip.MessageType, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		m.logger.Error("encode broadcast", "type", typ, "error", err)
		return
	}
	if err := m.coord.Publish(ctx, gossip.Envelope{Type: typ, Data: data}); err != nil && ctx.Err() == nil {
		// A failed broadcast is logged; the next interval tries again.
		m.logger.Warn("broadcast failed", "type", typ, "error", err)
	}
}

// capabilitiesChanged compares the agent's capabilities with the copy saved
// at the last start and saves the current ones.
func (m *mesh) capabilitiesChanged() (bool, error) {
	cur, err := json.Marshal(struct {
		Role      string   `json:"role"`
		Expertise []string `json:"expertise"`
		MaxTasks  int      `json:"max_tasks"`
	}{m.agent.Role, m.agent.Expertise, m.agent.MaxTasks})
	if err != nil {
		return false, err
	}
	path := filepath.Join(m.dataDir, "p2p", "capabilities.json")
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if bytes.Equal(old, cur) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return true, err
	}
	return true, os.WriteFile(path, cur, 0o644)
}

// servePeers answers GET /api/v1/peers.
func (m *mesh) servePeers(w http.ResponseWriter, r *http.Request) {
	reply := peersReply{Self: selfInfo{PeerID: m.node.ID(), Addrs: m.node.Addrs()}, Peers: m.registry.Snapshot()}
	if m.agent != nil {
		reply.Self.AgentID = m.agent.ID
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

// fetchAddrs asks another worker's ops server for its gossip addresses.
func fetchAddrs(ctx context.Context, opsURL string, logger *slog.Logger) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(opsURL, "/")+"/api/v1/peers", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		logger.Info("no gossip addresses from the board's worker", "url", opsURL, "error", err)
		return nil
	}
	defer resp.Body.Close()
	var reply peersReply
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&reply) != nil {
		return nil
	}
	return reply.Self.Addrs
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// countingRunner counts the sandbox runs in progress (the agent's current
// tasks for its availability broadcasts) and their outcomes (its
// performance record), and signals changed whenever either moves.
type countingRunner struct {
	sandbox.Runner
	n         atomic.Int64
	lastNS    atomic.Int64
	succeeded atomic.Int64
	finished  atomic.Int64
	// changed receives a value (without blocking) when a run starts or ends.
	changed chan struct{}
	// phases, when set, hears of each run of a task's execution.
	phases atomic.Pointer[opPhases]
}

func newCountingRunner() *countingRunner {
	return &countingRunner{changed: make(chan struct{}, 1)}
}

func (c *countingRunner) Run(ctx context.Context, spec sandbox.Spec) (res sandbox.Result, err error) {
	if ph := c.phases.Load(); ph != nil {
		if key := opOf(ctx); key != "" {
			ph.running(key)
		}
	}
	c.n.Add(1)
	c.notify()
	defer func() {
		c.n.Add(-1)
		c.lastNS.Store(time.Now().UnixNano())
		if ctx.Err() == nil {
			c.finished.Add(1)
			if err == nil && res.ExitCode == 0 {
				c.succeeded.Add(1)
			}
		}
		c.notify()
	}()
	return c.Runner.Run(ctx, spec)
}

func (c *countingRunner) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// performance is the share of finished runs that succeeded, with one
// success and one failure assumed beforehand so a new agent starts at 0.5
// and one run does not swing it to an extreme.
func (c *countingRunner) performance() float64 {
	return float64(c.succeeded.Load()+1) / float64(c.finished.Load()+2)
}

// last is the end of the last run, or now when nothing ran yet.
func (c *countingRunner) last(now time.Time) time.Time {
	if ns := c.lastNS.Load(); ns > 0 {
		return time.Unix(0, ns).UTC()
	}
	return now
}
