package coordination

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"chorus"
	"chorus/audit"
	"chorus/gossip"
)

// Topic is the HMMM topic as the driver uses it; *gossip.Topic joined on
// gossip.TopicMetaDiscussion satisfies it.
type Topic interface {
	PublishBody(ctx context.Context, b gossip.Body, e gossip.Envelope) error
	Subscribe(handler func(e gossip.Envelope, from string)) (cancel func(), err error)
}

// TaskLister lists the tasks that are not finished (open, claimed or
// working): detection runs over them, and a participant judges a plan by
// the ones it holds.
type TaskLister interface {
	ListActive(ctx context.Context) ([]chorus.Task, error)
}

// Agent is an agent this node knows of.
type Agent struct {
	ID   string
	Role string
	// PeerID is the gossip peer the agent speaks from, when known; session
	// messages signed by another peer in its name are refused.
	PeerID string
}

// Roster lists the other agents this node knows (from their gossip
// broadcasts).
type Roster interface {
	Agents() []Agent
}

// Auditor records session events in the node's audit log;
// activities.Auditor satisfies it.
type Auditor interface {
	Record(ctx context.Context, typ string, data any) error
}

// Config configures a Driver. Start from DefaultConfig.
type Config struct {
	// AgentID is this node's agent: the owner of the sessions it opens and
	// the participant it answers for. Required.
	AgentID string
	// IsAdmin reports whether this node is the admin now; only the admin
	// runs detection and opens sessions. nil means never.
	IsAdmin func() bool
	// Topic is the joined meta-discussion topic. Required.
	Topic Topic
	// Tasks lists unfinished tasks. Required.
	Tasks TaskLister
	// Roster names the agents that may take part for a task nobody holds;
	// nil knows none.
	Roster Roster
	// Store keeps escalations and closed sessions. Required.
	Store *Store
	// Detector finds dependencies; nil uses the built-in rules.
	Detector *Detector
	// Planner writes plans; nil writes template plans.
	Planner *Planner
	// Audit records plan_proposed, collaboration, objection_raised,
	// consensus_reached and escalation; nil records nothing.
	Audit Auditor
	// Limits are the session rules.
	Limits Limits
	// ScanInterval is how often the admin runs detection over the tasks.
	ScanInterval time.Duration
	// TickInterval is how often deadlines are checked and the messages of
	// sessions still waiting for an answer are sent again.
	TickInterval time.Duration
	// CleanupInterval is how often closed sessions are dropped from memory
	// (they stay in the Store), and how long one stays listed after it
	// closed.
	CleanupInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
	// Metrics registers the driver's metrics; nil means none.
	Metrics prometheus.Registerer
}

// DefaultConfig returns a Config with every default set; the required
// fields are left empty.
func DefaultConfig() Config {
	return Config{
		Limits: DefaultLimits(),
		// Tasks arrive at human speed; half a minute finds a new
		// dependency long before its tasks are picked up.
		ScanInterval: 30 * time.Second,
		// Agents answer in milliseconds; a message lost before the mesh
		// formed is sent again within seconds, and a 30 min deadline is
		// honoured to within 5 s.
		TickInterval: 5 * time.Second,
		// SPEC section 7: idle sessions are cleaned every 10 min.
		CleanupInterval: 10 * time.Minute,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.AgentID) == "":
		return fmt.Errorf("%w: AgentID: missing", chorus.ErrInvalid)
	case c.Topic == nil:
		return fmt.Errorf("%w: Topic: missing", chorus.ErrInvalid)
	case c.Tasks == nil:
		return fmt.Errorf("%w: Tasks: missing", chorus.ErrInvalid)
	case c.Store == nil:
		return fmt.Errorf("%w: Store: missing", chorus.ErrInvalid)
	case c.ScanInterval <= 0:
		return fmt.Errorf("%w: ScanInterval: %s must be positive", chorus.ErrInvalid, c.ScanInterval)
	case c.TickInterval <= 0:
		return fmt.Errorf("%w: TickInterval: %s must be positive", chorus.ErrInvalid, c.TickInterval)
	case c.CleanupInterval <= 0:
		return fmt.Errorf("%w: CleanupInterval: %s must be positive", chorus.ErrInvalid, c.CleanupInterval)
	}
	return c.Limits.Validate()
}

// Driver runs meta-coordination on one node over gossip: detection and
// session ownership when the node is the admin, answers when its agent is
// a participant, and a mirror of every session it hears of.
type Driver struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	detector *Detector
	planner  *Planner
	metrics  *metrics
	// wg tracks plan revisions running in the background.
	wg sync.WaitGroup

	mu    sync.Mutex
	table *Table
	// owned are the sessions this node opened, by id.
	owned map[string]*owned
	// answers are this agent's answers, by session id and proposal id.
	answers map[string]map[string]gossip.MetaDiscussion
	// pairs maps the task set of every session in the table to its id.
	pairs map[string]string
	// ownerPeer is the peer that sent each mirrored session's request;
	// only it may close the session.
	ownerPeer map[string]string
}

// owned is what the owner keeps beyond the table.
type owned struct {
	request    gossip.CoordinationRequest
	alerts     []gossip.DependencyAlert
	tasks      []chorus.Task
	proposal   gossip.MetaDiscussion // the current one; zero before the first
	template   bool
	objections []string
	revising   bool
	complete   *gossip.CoordinationComplete
	trigger    *gossip.EscalationTrigger
}

// New returns a driver; Run starts it.
func New(cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("coordination config: %w", err)
	}
	d := &Driver{cfg: cfg, log: cfg.Logger, now: cfg.Now, detector: cfg.Detector, planner: cfg.Planner,
		owned: map[string]*owned{}, answers: map[string]map[string]gossip.MetaDiscussion{}, pairs: map[string]string{},
		ownerPeer: map[string]string{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	var err error
	if d.detector == nil {
		if d.detector, err = NewDetector(nil); err != nil {
			return nil, err
		}
	}
	if d.planner == nil {
		if d.planner, err = NewPlanner(DefaultPlannerConfig()); err != nil {
			return nil, err
		}
	}
	if d.table, err = NewTable(cfg.Limits); err != nil {
		return nil, err
	}
	if d.metrics, err = newMetrics(cfg.Metrics, d.openCount); err != nil {
		return nil, err
	}
	return d, nil
}

// Run subscribes to the topic and runs until ctx ends: detection every
// ScanInterval (when admin; once at start too), deadlines and re-sends
// every TickInterval, cleanup every CleanupInterval. It returns nil when
// ctx ends.
func (d *Driver) Run(ctx context.Context) error {
	cancel, err := d.cfg.Topic.Subscribe(func(e gossip.Envelope, from string) { d.handle(ctx, e, from) })
	if err != nil {
		return fmt.Errorf("coordination: subscribe: %w", err)
	}
	defer d.wg.Wait()
	defer cancel()
	scan := time.NewTicker(d.cfg.ScanInterval)
	defer scan.Stop()
	tick := time.NewTicker(d.cfg.TickInterval)
	defer tick.Stop()
	clean := time.NewTicker(d.cfg.CleanupInterval)
	defer clean.Stop()
	d.Scan(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-scan.C:
			d.Scan(ctx)
		case <-tick.C:
			d.tick(ctx)
		case <-clean.C:
			d.cleanup(ctx)
		}
	}
}

func (d *Driver) isAdmin() bool { return d.cfg.IsAdmin != nil && d.cfg.IsAdmin() }

// pairKey names a set of tasks independently of order.
func pairKey(keys []string) string {
	k := slices.Clone(keys)
	slices.Sort(k)
	return strings.Join(slices.Compact(k), " ")
}

// Scan runs detection once when this node is the admin: it lists the
// unfinished tasks, and for every pair of tasks with dependencies that no
// session (open here, or closed in the Store) covers yet, publishes the
// dependency_alerts and opens a dependency session. It returns the ids of
// the sessions opened.
func (d *Driver) Scan(ctx context.Context) []string {
	if !d.isAdmin() {
		return nil
	}
	tasks, err := d.cfg.Tasks.ListActive(ctx)
	if err != nil {
		d.log.Warn("coordination scan: listing tasks failed", "error", err)
		return nil
	}
	alerts := d.detector.Detect(tasks, d.now().UTC())
	if len(alerts) == 0 {
		return nil
	}
	byKey := map[string]chorus.Task{}
	for _, t := range tasks {
		byKey[t.Key().String()] = t
	}
	done := map[string]bool{}
	for _, r := range d.cfg.Store.Records() {
		done[pairKey(r.TaskKeys)] = true
	}
	var groups []string
	grouped := map[string][]gossip.DependencyAlert{}
	for _, a := range alerts {
		pk := pairKey([]string{a.Task.TaskKey, a.DependsOn.TaskKey})
		if _, seen := grouped[pk]; !seen {
			groups = append(groups, pk)
		}
		grouped[pk] = append(grouped[pk], a)
	}
	var opened []string
	for _, pk := range groups {
		d.mu.Lock()
		_, open := d.pairs[pk]
		d.mu.Unlock()
		if open || done[pk] {
			continue
		}
		as := grouped[pk]
		for _, a := range as {
			d.metrics.alert(a.Rule)
			d.publish(ctx, a, "")
		}
		keys := strings.Fields(pk)
		ts := make([]chorus.Task, 0, len(keys))
		for _, k := range keys {
			ts = append(ts, byKey[k])
		}
		var reasons []string
		for _, a := range as {
			reasons = append(reasons, a.Reason)
		}
		s, err := d.Open(ctx, OpenInput{Kind: KindDependency, Tasks: ts, Dependencies: as, Reason: strings.Join(reasons, "; ")})
		if err != nil {
			d.log.Warn("coordination session not opened", "tasks", pk, "error", err)
			continue
		}
		opened = append(opened, s.ID)
	}
	return opened
}

// OpenInput is a session to open.
type OpenInput struct {
	Kind         Kind
	Tasks        []chorus.Task
	Dependencies []gossip.DependencyAlert
	Reason       string
}

// Open opens a session owned by this node: the participants are this
// agent, then for each task its holder (Assignee) or else the first agent
// of the Roster (by id) with the task's role (any role when the task names
// none) not already taking part. It publishes the coordination_request,
// asks the Planner for a plan and proposes it.
func (d *Driver) Open(ctx context.Context, in OpenInput) (Session, error) {
	keys := make([]string, len(in.Tasks))
	for i, t := range in.Tasks {
		keys[i] = t.Key().String()
	}
	now := d.now().UTC()
	id := uuid.NewString()
	req := gossip.CoordinationRequest{SessionID: id, Kind: string(in.Kind), TaskKeys: keys, Participants: d.participants(in.Tasks),
		Reason: in.Reason, At: now, Owner: d.cfg.AgentID}
	d.mu.Lock()
	s, err := d.table.Open(OpenRequest{ID: id, Kind: in.Kind, TaskKeys: keys, Participants: req.Participants, Owner: d.cfg.AgentID, Reason: in.Reason}, now)
	if err == nil {
		d.owned[id] = &owned{request: req, alerts: slices.Clone(in.Dependencies), tasks: slices.Clone(in.Tasks)}
		d.pairs[pairKey(keys)] = id
	}
	d.mu.Unlock()
	if err != nil {
		return Session{}, err
	}
	d.metrics.opened.Inc()
	d.log.Info("coordination session opened", "session", id, "kind", in.Kind, "tasks", keys, "participants", req.Participants)
	d.publish(ctx, req, id)
	plan := d.planner.Plan(ctx, PlanInput{Kind: in.Kind, Tasks: in.Tasks, Dependencies: in.Dependencies})
	d.propose(ctx, id, plan)
	s, _ = d.Session(id)
	return s, nil
}

// participants picks the agents of a session (see Open), at most
// Limits.MaxParticipants.
func (d *Driver) participants(tasks []chorus.Task) []string {
	ps := []string{d.cfg.AgentID}
	var roster []Agent
	if d.cfg.Roster != nil {
		roster = d.cfg.Roster.Agents()
	}
	slices.SortFunc(roster, func(a, b Agent) int { return strings.Compare(a.ID, b.ID) })
	for _, t := range tasks {
		if t.Assignee != "" {
			if !slices.Contains(ps, t.Assignee) {
				ps = append(ps, t.Assignee)
			}
			continue
		}
		for _, a := range roster {
			if a.ID != "" && !slices.Contains(ps, a.ID) && (t.Role == "" || a.Role == t.Role) {
				ps = append(ps, a.ID)
				break
			}
		}
	}
	if len(ps) > d.cfg.Limits.MaxParticipants {
		d.log.Info("coordination participants capped", "wanted", ps, "limit", d.cfg.Limits.MaxParticipants)
		ps = ps[:d.cfg.Limits.MaxParticipants]
	}
	return ps
}

// propose publishes plan as the session's current proposal.
func (d *Driver) propose(ctx context.Context, id string, plan Plan) {
	now := d.now().UTC()
	d.metrics.plan(plan.Template)
	d.mu.Lock()
	o := d.owned[id]
	s, ok := d.table.Get(id)
	if o == nil || !ok || s.State != StateOpen {
		d.mu.Unlock()
		return
	}
	msg := gossip.MetaDiscussion{TaskKey: s.TaskKeys[0], AgentID: d.cfg.AgentID, Kind: string(Proposal), Text: plan.Text, At: now,
		MessageID: uuid.NewString(), Order: plan.Order, Template: plan.Template}
	o.proposal, o.template = msg, plan.Template
	ch, err := d.table.Add(id, Message{ID: msg.MessageID, From: d.cfg.AgentID, Kind: Proposal, Text: plan.Text, At: now}, now)
	d.mu.Unlock()
	if err != nil {
		d.log.Warn("coordination proposal not added", "session", id, "error", err)
		return
	}
	d.record(ctx, audit.TypePlanProposed, AuditEvent{SessionID: id, Kind: string(s.Kind), TaskKeys: s.TaskKeys, AgentID: d.cfg.AgentID,
		Text: plan.Text, Order: plan.Order, Template: plan.Template, Model: plan.Model})
	d.publish(ctx, msg, id)
	if ch.Closed {
		d.closed(ctx, ch.Session)
	}
}

// handle is the subscription handler.
func (d *Driver) handle(ctx context.Context, e gossip.Envelope, from string) {
	switch e.Type {
	case gossip.TypeCoordinationRequest:
		var b gossip.CoordinationRequest
		if e.DecodeData(&b) == nil {
			d.onRequest(b, from)
		}
	case gossip.TypeMetaDiscussion:
		var b gossip.MetaDiscussion
		if e.ThreadID != "" && e.DecodeData(&b) == nil && d.speaksFor(from, b.AgentID) {
			d.onMessage(ctx, e.ThreadID, b)
		}
	case gossip.TypeCoordinationComplete:
		var b gossip.CoordinationComplete
		if e.DecodeData(&b) == nil && d.fromOwner(b.SessionID, from) {
			d.onComplete(b)
		}
	case gossip.TypeEscalationTrigger:
		var b gossip.EscalationTrigger
		if e.DecodeData(&b) == nil && d.fromOwner(b.SessionID, from) {
			d.onTrigger(b, from)
		}
	case gossip.TypeDependencyAlert:
		var b gossip.DependencyAlert
		if e.DecodeData(&b) == nil {
			d.log.Debug("dependency alert heard", "rule", b.Rule, "task", b.Task.TaskKey, "depends_on", b.DependsOn.TaskKey)
		}
	}
}

// speaksFor reports whether peer may speak for agent: always, unless the
// Roster knows the agent on another peer.
func (d *Driver) speaksFor(peer, agent string) bool {
	if d.cfg.Roster == nil {
		return true
	}
	for _, a := range d.cfg.Roster.Agents() {
		if a.ID == agent && a.PeerID != "" && a.PeerID != peer {
			d.log.Info("coordination message refused: sent in another agent's name", "agent", agent, "peer", peer, "agent_peer", a.PeerID)
			return false
		}
	}
	return true
}

// fromOwner reports whether peer may close session id: the peer that sent
// its request, when this node mirrors it; anyone otherwise.
func (d *Driver) fromOwner(id, peer string) bool {
	d.mu.Lock()
	owner, ok := d.ownerPeer[id]
	d.mu.Unlock()
	if ok && owner != peer {
		d.log.Info("coordination outcome refused: not from the session owner", "session", id, "peer", peer)
		return false
	}
	return true
}

// onRequest mirrors a session another node opened.
func (d *Driver) onRequest(b gossip.CoordinationRequest, from string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.table.Get(b.SessionID); ok {
		return // a re-sent request
	}
	if _, err := d.table.Open(OpenRequest{ID: b.SessionID, Kind: Kind(b.Kind), TaskKeys: b.TaskKeys, Participants: b.Participants,
		Owner: b.Owner, Reason: b.Reason}, d.now().UTC()); err != nil {
		d.log.Info("coordination request refused", "session", b.SessionID, "error", err)
		return
	}
	d.pairs[pairKey(b.TaskKeys)] = b.SessionID
	d.ownerPeer[b.SessionID] = from
}

// sessionKind maps a meta_discussion kind to a session message kind;
// question and answer count as notes, seed and offer are not session
// messages.
func sessionKind(k string) (MessageKind, bool) {
	switch MessageKind(k) {
	case Proposal, Agreement, Objection, Note:
		return MessageKind(k), true
	}
	if k == "question" || k == "answer" {
		return Note, true
	}
	return "", false
}

// onMessage applies a session message heard on the topic.
func (d *Driver) onMessage(ctx context.Context, id string, b gossip.MetaDiscussion) {
	kind, ok := sessionKind(b.Kind)
	if !ok {
		return
	}
	now := d.now().UTC()
	d.mu.Lock()
	ch, err := d.table.Add(id, Message{ID: b.MessageID, From: b.AgentID, Kind: kind, Text: b.Text, At: b.At}, now)
	o := d.owned[id]
	var resend []gossip.Body
	revise := false
	if o != nil {
		switch {
		case errors.Is(err, ErrSessionClosed):
			// Someone missed the outcome: tell again.
			if o.trigger != nil {
				resend = append(resend, *o.trigger)
			}
			if o.complete != nil {
				resend = append(resend, *o.complete)
			}
		case err == nil && ch.Accepted && kind == Objection && !ch.Closed:
			o.objections = append(o.objections, fmt.Sprintf("%s: %s", b.AgentID, b.Text))
			revise = !o.revising
			o.revising = o.revising || revise
		}
	}
	d.mu.Unlock()
	for _, r := range resend {
		d.publish(ctx, r, id)
	}
	switch {
	case errors.Is(err, ErrUnknownSession), errors.Is(err, ErrSessionClosed):
		return
	case err != nil:
		d.log.Debug("coordination message refused", "session", id, "from", b.AgentID, "error", err)
		return
	}
	if ch.Closed {
		d.closed(ctx, ch.Session)
		return
	}
	if kind == Proposal && (ch.Accepted || ch.Duplicate) {
		d.answer(ctx, id, b)
	}
	if revise {
		d.wg.Go(func() { d.revise(ctx, id) })
	}
}

// revise proposes a new plan that takes the objections into account.
func (d *Driver) revise(ctx context.Context, id string) {
	d.mu.Lock()
	o := d.owned[id]
	if o == nil { // cleaned up meanwhile
		d.mu.Unlock()
		return
	}
	in := PlanInput{Kind: Kind(o.request.Kind), Tasks: o.tasks, Dependencies: o.alerts, Objections: slices.Clone(o.objections)}
	d.mu.Unlock()
	plan := d.planner.Plan(ctx, in)
	d.mu.Lock()
	o.revising = false
	d.mu.Unlock()
	if ctx.Err() == nil {
		d.propose(ctx, id, plan)
	}
}

// answer sends this agent's agreement or objection to a proposal, once per
// proposal; a proposal heard again gets the same answer again.
func (d *Driver) answer(ctx context.Context, id string, p gossip.MetaDiscussion) {
	me := d.cfg.AgentID
	d.mu.Lock()
	s, ok := d.table.Get(id)
	prev, answered := d.answers[id][p.MessageID]
	d.mu.Unlock()
	if !ok || p.AgentID == me || !slices.Contains(s.Participants, me) || s.State != StateOpen {
		return
	}
	if answered {
		d.publish(ctx, prev, id)
		return
	}
	tasks, err := d.cfg.Tasks.ListActive(ctx)
	if err != nil {
		// No answer without knowing our tasks; the owner sends the
		// proposal again and we try then.
		d.log.Warn("coordination answer postponed: listing tasks failed", "session", id, "error", err)
		return
	}
	kind, text := Judge(me, p.Order, tasks)
	now := d.now().UTC()
	ans := gossip.MetaDiscussion{TaskKey: p.TaskKey, AgentID: me, Kind: string(kind), Text: text, At: now, MessageID: uuid.NewString()}
	d.mu.Lock()
	if d.answers[id] == nil {
		d.answers[id] = map[string]gossip.MetaDiscussion{}
	}
	d.answers[id][p.MessageID] = ans
	ch, err := d.table.Add(id, Message{ID: ans.MessageID, From: me, Kind: kind, Text: text, At: now}, now)
	d.mu.Unlock()
	typ := audit.TypeCollaboration
	if kind == Objection {
		typ = audit.TypeObjectionRaised
	}
	d.record(ctx, typ, AuditEvent{SessionID: id, Kind: string(s.Kind), TaskKeys: s.TaskKeys, AgentID: me, Text: text, Order: p.Order})
	d.log.Info("coordination answer", "session", id, "kind", kind, "text", text)
	d.publish(ctx, ans, id)
	if err == nil && ch.Closed {
		d.closed(ctx, ch.Session)
	}
}

// Judge is a participant's rule for answering a proposal that orders
// tasks: it objects when the agent is already working on a task that the
// order puts after a task that is not finished (it cannot wait any more),
// and agrees otherwise. Tasks are the unfinished tasks; a task missing from
// them counts as finished.
func Judge(agentID string, order []string, tasks []chorus.Task) (MessageKind, string) {
	active := map[string]chorus.Task{}
	for _, t := range tasks {
		active[t.Key().String()] = t
	}
	var held, conflicts []string
	for i, k := range order {
		t, ok := active[k]
		if !ok || t.Assignee != agentID {
			continue
		}
		held = append(held, k)
		if t.State != chorus.StateWorking {
			continue
		}
		for _, before := range order[:i] {
			if b, pending := active[before]; pending {
				conflicts = append(conflicts, fmt.Sprintf("I am already working on %s, which the plan puts after %s (still %s)", k, before, b.State))
			}
		}
	}
	if len(conflicts) > 0 {
		return Objection, strings.Join(conflicts, "; ")
	}
	if len(held) == 0 {
		return Agreement, fmt.Sprintf("agreed: the order %s does not touch a task I hold", strings.Join(order, " -> "))
	}
	return Agreement, fmt.Sprintf("agreed: the order %s fits my tasks %s (none is running ahead of what it waits for)",
		strings.Join(order, " -> "), strings.Join(held, ", "))
}

// closed acts on a session that just closed: its owner publishes the
// outcome, stores it and records it; a mirror only logs.
func (d *Driver) closed(ctx context.Context, s Session) {
	d.metrics.closed(s.State)
	d.log.Info("coordination session closed", "session", s.ID, "state", s.State, "outcome", s.Outcome, "messages", len(s.Messages))
	if s.Owner != d.cfg.AgentID {
		return
	}
	now := d.now().UTC()
	d.mu.Lock()
	o := d.owned[s.ID]
	template := o != nil && o.template
	complete := gossip.CoordinationComplete{SessionID: s.ID, Outcome: string(s.State), Plan: s.Plan, Agreements: s.Agreements, At: now,
		Kind: string(s.Kind), TaskKeys: s.TaskKeys, Template: template}
	var trigger *gossip.EscalationTrigger
	if s.State == StateEscalated {
		trigger = &gossip.EscalationTrigger{SessionID: s.ID, TaskKeys: s.TaskKeys, Reason: s.Outcome, RequiresHuman: true, At: now,
			Kind: string(s.Kind), Participants: s.Participants, Plan: s.Plan, Messages: len(s.Messages), Agreements: s.Agreements, OpenedAt: s.OpenedAt}
	}
	if o != nil {
		o.complete, o.trigger = &complete, trigger
	}
	d.mu.Unlock()
	ev := AuditEvent{SessionID: s.ID, Kind: string(s.Kind), TaskKeys: s.TaskKeys, AgentID: d.cfg.AgentID, Text: s.Outcome,
		Participants: s.Participants, Agreements: s.Agreements, Messages: len(s.Messages), Plan: s.Plan}
	if trigger != nil {
		if _, err := d.cfg.Store.AddEscalation(escalationOf(*trigger, "")); err != nil {
			d.log.Error("escalation not stored", "session", s.ID, "error", err)
		}
		d.record(ctx, audit.TypeEscalation, ev)
		d.publish(ctx, *trigger, s.ID)
	} else {
		d.record(ctx, audit.TypeConsensusReached, ev)
	}
	if _, err := d.cfg.Store.AddRecord(Record{SessionID: s.ID, Kind: string(s.Kind), TaskKeys: s.TaskKeys, Outcome: string(s.State),
		Plan: s.Plan, Template: template, Agreements: s.Agreements, ClosedAt: s.ClosedAt}); err != nil {
		d.log.Error("coordination session not stored", "session", s.ID, "error", err)
	}
	d.publish(ctx, complete, s.ID)
}

func escalationOf(t gossip.EscalationTrigger, from string) Escalation {
	return Escalation{SessionID: t.SessionID, Kind: t.Kind, TaskKeys: t.TaskKeys, Participants: t.Participants, Reason: t.Reason,
		RequiresHuman: t.RequiresHuman, Plan: t.Plan, Messages: t.Messages, Agreements: t.Agreements, OpenedAt: t.OpenedAt,
		EscalatedAt: t.At, ReportedBy: from}
}

// onComplete adopts the owner's outcome.
func (d *Driver) onComplete(b gossip.CoordinationComplete) {
	d.mu.Lock()
	s, ok := d.table.Get(b.SessionID)
	d.table.Close(b.SessionID, State(b.Outcome), "decided by the session owner: "+b.Outcome, d.now().UTC())
	d.mu.Unlock()
	keys := b.TaskKeys
	if len(keys) == 0 && ok {
		keys = s.TaskKeys
	}
	if len(keys) == 0 {
		return
	}
	if _, err := d.cfg.Store.AddRecord(Record{SessionID: b.SessionID, Kind: b.Kind, TaskKeys: keys, Outcome: b.Outcome, Plan: b.Plan,
		Template: b.Template, Agreements: b.Agreements, ClosedAt: b.At}); err != nil {
		d.log.Error("coordination session not stored", "session", b.SessionID, "error", err)
	}
}

// onTrigger stores an escalation heard on the topic.
func (d *Driver) onTrigger(b gossip.EscalationTrigger, from string) {
	if b.SessionID == "" {
		return
	}
	if added, err := d.cfg.Store.AddEscalation(escalationOf(b, from)); err != nil {
		d.log.Error("escalation not stored", "session", b.SessionID, "error", err)
	} else if added {
		d.log.Warn("coordination escalated to humans", "session", b.SessionID, "tasks", b.TaskKeys, "reason", b.Reason)
	}
}

// tick escalates sessions past their deadline and sends again what owned
// sessions still wait on: the alerts, the request and the current
// proposal, while a participant has said nothing since that proposal.
func (d *Driver) tick(ctx context.Context) {
	now := d.now().UTC()
	d.mu.Lock()
	changes := d.table.Tick(now)
	type resend struct {
		id     string
		bodies []gossip.Body
	}
	var resends []resend
	for id, o := range d.owned {
		s, ok := d.table.Get(id)
		if !ok || s.State != StateOpen || o.proposal.MessageID == "" || !waiting(s, o.proposal.MessageID) {
			continue
		}
		r := resend{id: id}
		for _, a := range o.alerts {
			r.bodies = append(r.bodies, a)
		}
		r.bodies = append(r.bodies, o.request, o.proposal)
		resends = append(resends, r)
	}
	d.mu.Unlock()
	for _, c := range changes {
		d.closed(ctx, c.Session)
	}
	slices.SortFunc(resends, func(a, b resend) int { return strings.Compare(a.id, b.id) })
	for _, r := range resends {
		for _, b := range r.bodies {
			d.publish(ctx, b, r.id)
		}
	}
}

// waiting reports whether some participant other than the proposer has
// sent nothing since the proposal with id.
func waiting(s Session, proposalID string) bool {
	i := slices.IndexFunc(s.Messages, func(m Message) bool { return m.ID == proposalID })
	if i < 0 {
		return false
	}
	proposer := s.Messages[i].From
	for _, p := range s.Participants {
		if p != proposer && !slices.ContainsFunc(s.Messages[i+1:], func(m Message) bool { return m.From == p }) {
			return true
		}
	}
	return false
}

// cleanup is the periodic sweep (Table.Cleanup) plus the driver's own
// bookkeeping of forgotten sessions.
func (d *Driver) cleanup(ctx context.Context) {
	d.mu.Lock()
	changes, removed := d.table.Cleanup(d.now().UTC(), d.cfg.CleanupInterval)
	for _, id := range removed {
		delete(d.owned, id)
		delete(d.answers, id)
		delete(d.ownerPeer, id)
	}
	for pk, id := range d.pairs {
		if slices.Contains(removed, id) {
			delete(d.pairs, pk)
		}
	}
	d.mu.Unlock()
	for _, c := range changes {
		d.closed(ctx, c.Session)
	}
	if len(removed) > 0 {
		d.log.Debug("coordination sessions cleaned up", "count", len(removed))
	}
}

// publish sends a body in the session's thread. A failure is logged: the
// tick sends what is still awaited again.
func (d *Driver) publish(ctx context.Context, b gossip.Body, thread string) {
	e := gossip.Envelope{ThreadID: thread}
	if b.MessageType() == gossip.TypeEscalationTrigger {
		e.Priority = gossip.PriorityUrgent
	}
	if err := d.cfg.Topic.PublishBody(ctx, b, e); err != nil && ctx.Err() == nil {
		d.log.Warn("coordination publish failed", "type", b.MessageType(), "session", thread, "error", err)
	}
}

// AuditEvent is the data of the audit entries the driver records.
type AuditEvent struct {
	SessionID    string   `json:"session_id"`
	Kind         string   `json:"kind,omitempty"`
	TaskKeys     []string `json:"task_keys,omitempty"`
	AgentID      string   `json:"agent_id"`
	Text         string   `json:"text,omitempty"`
	Order        []string `json:"order,omitempty"`
	Template     bool     `json:"template,omitempty"`
	Model        string   `json:"model,omitempty"`
	Participants []string `json:"participants,omitempty"`
	Agreements   int      `json:"agreements,omitempty"`
	Messages     int      `json:"messages,omitempty"`
	Plan         string   `json:"plan,omitempty"`
}

func (d *Driver) record(ctx context.Context, typ string, ev AuditEvent) {
	if d.cfg.Audit == nil {
		return
	}
	if err := d.cfg.Audit.Record(ctx, typ, ev); err != nil {
		d.log.Warn("audit write failed", "type", typ, "session", ev.SessionID, "error", err)
	}
}

// Session returns a copy of a session this node knows.
func (d *Driver) Session(id string) (Session, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.table.Get(id)
}

// Sessions returns the sessions this node knows, oldest first.
func (d *Driver) Sessions() []Session {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.table.List()
}

func (d *Driver) openCount() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, s := range d.table.List() {
		if s.State == StateOpen {
			n++
		}
	}
	return float64(n)
}

// SessionView is one entry of GET /api/v1/coordination/sessions.
type SessionView struct {
	Session
	// Template is known for sessions this node owns or whose outcome it
	// stored.
	Template bool `json:"template,omitempty"`
}

// ServeSessions answers GET /api/v1/coordination/sessions: the sessions in
// memory (with their messages), then the closed sessions of the Store that
// were cleaned up from memory, oldest first.
func (d *Driver) ServeSessions(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	live := d.table.List()
	views := make([]SessionView, 0, len(live))
	for _, s := range live {
		v := SessionView{Session: s}
		if o := d.owned[s.ID]; o != nil {
			v.Template = o.template
		}
		views = append(views, v)
	}
	d.mu.Unlock()
	for _, rec := range d.cfg.Store.Records() {
		if slices.ContainsFunc(live, func(s Session) bool { return s.ID == rec.SessionID }) {
			continue
		}
		views = append(views, SessionView{Template: rec.Template, Session: Session{ID: rec.SessionID, Kind: Kind(rec.Kind),
			TaskKeys: rec.TaskKeys, State: State(rec.Outcome), ClosedAt: rec.ClosedAt, Plan: rec.Plan, Agreements: rec.Agreements,
			Messages: []Message{}}})
	}
	writeJSON(w, http.StatusOK, views)
}

// Escalate hands a problem found outside a session to humans (a task no
// agent qualified for, say): it stores the escalation here and publishes
// it, so every node's store lists it. The trigger needs a SessionID that
// names the problem; a second escalation of the same id is a no-op.
func (d *Driver) Escalate(ctx context.Context, t gossip.EscalationTrigger, self string) error {
	if t.SessionID == "" {
		return errors.New("escalate: session_id: missing")
	}
	if t.At.IsZero() {
		t.At = d.now().UTC()
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("escalate %s: %w", t.SessionID, err)
	}
	added, err := d.cfg.Store.AddEscalation(escalationOf(t, self))
	if err != nil {
		return err
	}
	if !added {
		return nil
	}
	d.log.Warn("escalated to humans", "id", t.SessionID, "tasks", t.TaskKeys, "reason", t.Reason)
	if err := d.cfg.Topic.PublishBody(ctx, t, gossip.Envelope{ThreadID: t.SessionID, Priority: gossip.PriorityUrgent}); err != nil {
		return fmt.Errorf("escalate %s: %w", t.SessionID, err)
	}
	return nil
}
