package coordination_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus"
	"chorus/audit"
	"chorus/coordination"
	"chorus/gossip"
)

// ----- real gossip nodes on loopback -----

func gossipNode(t *testing.T, ctx context.Context) *gossip.Node {
	t.Helper()
	cfg := gossip.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS = false
	cfg.DHTMode = gossip.DHTOff
	n, err := gossip.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	return n
}

// mesh starts n nodes connected to each other, joined on the HMMM topic,
// and waits until every node has all the others in its mesh.
func mesh(t *testing.T, ctx context.Context, n int) ([]*gossip.Node, []*gossip.Topic) {
	t.Helper()
	nodes := make([]*gossip.Node, n)
	topics := make([]*gossip.Topic, n)
	for i := range nodes {
		nodes[i] = gossipNode(t, ctx)
		for _, prev := range nodes[:i] {
			if err := nodes[i].Connect(ctx, prev.Addrs()[0]); err != nil {
				t.Fatal(err)
			}
		}
		tp, err := nodes[i].Join(gossip.TopicMetaDiscussion)
		if err != nil {
			t.Fatal(err)
		}
		topics[i] = tp
	}
	for _, nd := range nodes {
		if err := nd.WaitMesh(ctx, gossip.TopicMetaDiscussion, n-1); err != nil {
			t.Fatal(err)
		}
	}
	return nodes, topics
}

// wire records everything an observer node hears.
type wire struct {
	mu  sync.Mutex
	got []gossip.Envelope
}

func observe(t *testing.T, tp *gossip.Topic) *wire {
	t.Helper()
	w := &wire{}
	cancel, err := tp.Subscribe(func(e gossip.Envelope, _ string) {
		w.mu.Lock()
		w.got = append(w.got, e)
		w.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return w
}

// of returns the envelopes of type typ heard so far, decoded into T.
func of[T any](w *wire, typ gossip.MessageType) ([]gossip.Envelope, []T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var es []gossip.Envelope
	var bs []T
	for _, e := range w.got {
		if e.Type != typ {
			continue
		}
		var b T
		if e.DecodeData(&b) == nil {
			es, bs = append(es, e), append(bs, b)
		}
	}
	return es, bs
}

// eventually waits for cond, checking every 20 ms, until ctx ends.
func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// ----- fakes of the consumer interfaces -----

// board is a fixed list of unfinished tasks.
type board struct {
	mu    sync.Mutex
	tasks []chorus.Task
}

func (b *board) ListActive(context.Context) ([]chorus.Task, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.tasks), nil
}

type roster []coordination.Agent

func (r roster) Agents() []coordination.Agent { return slices.Clone(r) }

// auditLog records the types and session ids of audit entries.
type auditLog struct {
	mu      sync.Mutex
	entries []string
}

func (a *auditLog) Record(_ context.Context, typ string, data any) error {
	if !audit.ValidType(typ) {
		return fmt.Errorf("audit type %q is not one of the SPEC's", typ)
	}
	ev := data.(coordination.AuditEvent)
	a.mu.Lock()
	a.entries = append(a.entries, typ+" "+ev.AgentID)
	a.mu.Unlock()
	return nil
}

func (a *auditLog) types() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.entries)
}

// agent is one node's driver with its parts.
type agent struct {
	id     string
	driver *coordination.Driver
	store  *coordination.Store
	dir    string
	audit  *auditLog
}

func startAgent(t *testing.T, ctx context.Context, id string, admin bool, tp coordination.Topic, tasks *board, r roster) *agent {
	t.Helper()
	a := &agent{id: id, dir: t.TempDir(), audit: &auditLog{}}
	var err error
	if a.store, err = coordination.OpenStore(a.dir); err != nil {
		t.Fatal(err)
	}
	cfg := coordination.DefaultConfig()
	cfg.AgentID, cfg.Topic, cfg.Tasks, cfg.Roster, cfg.Store, cfg.Audit = id, tp, tasks, r, a.store, a.audit
	cfg.IsAdmin = func() bool { return admin }
	cfg.ScanInterval = time.Hour // the scan at start is the one under test
	cfg.TickInterval = 100 * time.Millisecond
	if a.driver, err = coordination.New(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.driver.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", id, err)
		}
	})
	return a
}

func (a *agent) record(id string) (coordination.Record, bool) {
	for _, r := range a.store.Records() {
		if r.SessionID == id {
			return r, true
		}
	}
	return coordination.Record{}, false
}

const (
	apiKey = "task/board/acme/api/1"
	webKey = "task/board/acme/web/2"
)

func twoRepos() []chorus.Task {
	api := task("acme/api", 1, "Define the user API", "GET /users returns id and name")
	api.Role = "backend"
	web := task("acme/web", 2, "Implement the signup page", "calls the backend")
	web.Role = "frontend"
	return []chorus.Task{api, web}
}

// TestDependencyResolvedOverGossip: two tasks in two repositories, an
// admin and two agents on real libp2p hosts: the admin publishes the
// alert, opens a session with the agents of the tasks' roles, proposes the
// template plan; both agree, and the session is resolved everywhere.
func TestDependencyResolvedOverGossip(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes, topics := mesh(t, ctx, 4)
	w := observe(t, topics[3])
	tasks := &board{tasks: twoRepos()}
	known := roster{{ID: "carol", Role: "frontend"}, {ID: "bob", Role: "backend"}, {ID: "dave", Role: "backend"}}
	bob := startAgent(t, ctx, "bob", false, topics[1], tasks, nil)
	carol := startAgent(t, ctx, "carol", false, topics[2], tasks, nil)
	admin := startAgent(t, ctx, "admin", true, topics[0], tasks, known)

	var sessionID string
	eventually(t, ctx, "a resolved session on the admin", func() bool {
		for _, s := range admin.driver.Sessions() {
			sessionID = s.ID
			return s.State == coordination.StateResolved
		}
		return false
	})
	s, _ := admin.driver.Session(sessionID)
	if !reflect.DeepEqual(s.Participants, []string{"admin", "bob", "carol"}) || s.Owner != "admin" ||
		!reflect.DeepEqual(s.TaskKeys, []string{apiKey, webKey}) || s.Kind != coordination.KindDependency || s.Agreements != 2 {
		t.Fatalf("session %+v", s)
	}
	var kinds []string
	for _, m := range s.Messages {
		kinds = append(kinds, m.From+":"+string(m.Kind))
	}
	slices.Sort(kinds[1:])
	if want := []string{"admin:proposal", "bob:agreement", "carol:agreement"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("messages %q, want %q", kinds, want)
	}

	// What went over the wire.
	eventually(t, ctx, "the outcome on the wire", func() bool {
		_, cs := of[gossip.CoordinationComplete](w, gossip.TypeCoordinationComplete)
		return len(cs) > 0
	})
	alertEnv, alerts := of[gossip.DependencyAlert](w, gossip.TypeDependencyAlert)
	if len(alerts) == 0 || alerts[0].Rule != "api_contract" || alerts[0].Confidence != 0.8 || alerts[0].Task.TaskKey != webKey ||
		alerts[0].DependsOn.TaskKey != apiKey || alertEnv[0].HopCount != 0 || alertEnv[0].From != nodes[0].ID() {
		t.Fatalf("alerts %+v %+v", alerts, alertEnv)
	}
	reqEnv, reqs := of[gossip.CoordinationRequest](w, gossip.TypeCoordinationRequest)
	if len(reqs) == 0 || reqs[0].SessionID != sessionID || reqEnv[0].ThreadID != sessionID || reqs[0].Owner != "admin" ||
		!reflect.DeepEqual(reqs[0].Participants, []string{"admin", "bob", "carol"}) || reqs[0].Kind != "dependency" {
		t.Fatalf("requests %+v", reqs)
	}
	mdEnv, mds := of[gossip.MetaDiscussion](w, gossip.TypeMetaDiscussion)
	var proposal gossip.MetaDiscussion
	for i, m := range mds {
		if mdEnv[i].ThreadID != sessionID || mdEnv[i].HopCount != 0 {
			t.Fatalf("meta_discussion outside the session thread: %+v", mdEnv[i])
		}
		if m.Kind == "proposal" {
			proposal = m
		}
	}
	if !proposal.Template || !strings.HasPrefix(proposal.Text, coordination.TemplateMarker) || !reflect.DeepEqual(proposal.Order, []string{apiKey, webKey}) ||
		proposal.AgentID != "admin" || proposal.MessageID == "" {
		t.Fatalf("proposal %+v", proposal)
	}
	_, completes := of[gossip.CoordinationComplete](w, gossip.TypeCoordinationComplete)
	c := completes[0]
	if c.SessionID != sessionID || c.Outcome != "resolved" || c.Agreements != 2 || !c.Template || c.Plan != proposal.Text ||
		!reflect.DeepEqual(c.TaskKeys, []string{apiKey, webKey}) {
		t.Fatalf("complete %+v", c)
	}
	if _, triggers := of[gossip.EscalationTrigger](w, gossip.TypeEscalationTrigger); len(triggers) != 0 {
		t.Fatalf("escalations of a resolved session: %+v", triggers)
	}

	// Audit entries and stores on every node.
	if got := admin.audit.types(); !reflect.DeepEqual(got, []string{"plan_proposed admin", "consensus_reached admin"}) {
		t.Fatalf("admin audit %q", got)
	}
	for _, a := range []*agent{bob, carol} {
		eventually(t, ctx, a.id+" storing the outcome", func() bool { _, ok := a.record(sessionID); return ok })
		if got := a.audit.types(); !reflect.DeepEqual(got, []string{"collaboration " + a.id}) {
			t.Fatalf("%s audit %q", a.id, got)
		}
		if s, _ := a.driver.Session(sessionID); s.State != coordination.StateResolved {
			t.Fatalf("%s mirror: %+v", a.id, s)
		}
	}
	if r, ok := admin.record(sessionID); !ok || r.Outcome != "resolved" || !r.Template || len(admin.store.Escalations()) != 0 {
		t.Fatalf("admin store: %+v %v %+v", r, ok, admin.store.Escalations())
	}

	// The pair is settled: another scan opens nothing, and neither does a
	// restarted admin with the same store.
	if opened := admin.driver.Scan(ctx); len(opened) != 0 {
		t.Fatalf("second scan opened %v", opened)
	}
	store, err := coordination.OpenStore(admin.dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := coordination.DefaultConfig()
	cfg.AgentID, cfg.Topic, cfg.Tasks, cfg.Store, cfg.IsAdmin = "admin", topics[0], tasks, store, func() bool { return true }
	restarted, err := coordination.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if opened := restarted.Scan(ctx); len(opened) != 0 {
		t.Fatalf("restarted admin opened %v", opened)
	}

	// The sessions endpoint shows it.
	srv := httptest.NewServer(http.HandlerFunc(admin.driver.ServeSessions))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var views []coordination.SessionView
	if err := json.NewDecoder(resp.Body).Decode(&views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 1 || views[0].ID != sessionID || views[0].State != coordination.StateResolved || !views[0].Template || len(views[0].Messages) != 3 {
		t.Fatalf("sessions endpoint: %+v", views)
	}
}

// TestObjectionsEscalateAtTenMessages: carol is already working on the
// task the plan puts second, so she objects to every revision; bob agrees.
// The tenth message escalates the session to humans, and the escalation is
// in the stores (surviving a reopen) and on the wire.
func TestObjectionsEscalateAtTenMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes, topics := mesh(t, ctx, 4)
	w := observe(t, topics[3])
	ts := twoRepos()
	ts[1].State, ts[1].Assignee = chorus.StateWorking, "carol"
	tasks := &board{tasks: ts}
	known := roster{{ID: "bob", Role: "backend"}, {ID: "carol", Role: "frontend"}}
	bob := startAgent(t, ctx, "bob", false, topics[1], tasks, nil)
	carol := startAgent(t, ctx, "carol", false, topics[2], tasks, nil)
	admin := startAgent(t, ctx, "admin", true, topics[0], tasks, known)

	eventually(t, ctx, "an escalation in the admin's store", func() bool { return len(admin.store.Escalations()) == 1 })
	e := admin.store.Escalations()[0]
	s, _ := admin.driver.Session(e.SessionID)
	if s.State != coordination.StateEscalated || len(s.Messages) != 10 || s.Outcome != "no consensus after 10 messages" {
		t.Fatalf("session %s: %d messages, %q", s.State, len(s.Messages), s.Outcome)
	}
	if !e.RequiresHuman || e.Reason != "no consensus after 10 messages" || e.Messages != 10 || e.Kind != "dependency" ||
		!reflect.DeepEqual(e.TaskKeys, []string{apiKey, webKey}) || !reflect.DeepEqual(e.Participants, []string{"admin", "bob", "carol"}) ||
		e.ReportedBy != "" || !strings.Contains(e.Plan, "already working on "+webKey) {
		t.Fatalf("escalation %+v", e)
	}
	var objections int
	for _, m := range s.Messages {
		if m.Kind == coordination.Objection {
			objections++
			if m.From != "carol" || !strings.Contains(m.Text, "I am already working on "+webKey+", which the plan puts after "+apiKey+" (still open)") {
				t.Fatalf("objection %+v", m)
			}
		}
		if m.Kind == coordination.Agreement && m.From != "bob" {
			t.Fatalf("agreement %+v", m)
		}
	}
	if objections < 2 {
		t.Fatalf("%d objections in %+v", objections, s.Messages)
	}

	eventually(t, ctx, "the escalation on the wire", func() bool {
		_, ts := of[gossip.EscalationTrigger](w, gossip.TypeEscalationTrigger)
		return len(ts) > 0
	})
	trigEnv, triggers := of[gossip.EscalationTrigger](w, gossip.TypeEscalationTrigger)
	if tr := triggers[0]; tr.SessionID != e.SessionID || !tr.RequiresHuman || tr.Messages != 10 || trigEnv[0].ThreadID != e.SessionID ||
		trigEnv[0].HopCount != 0 || trigEnv[0].Priority != gossip.PriorityUrgent {
		t.Fatalf("trigger %+v %+v", tr, trigEnv[0])
	}
	for _, a := range []*agent{bob, carol} {
		eventually(t, ctx, a.id+" storing the escalation", func() bool { _, ok := a.store.Escalation(e.SessionID); return ok })
		got, _ := a.store.Escalation(e.SessionID)
		if got.ReportedBy != nodes[0].ID() || !got.RequiresHuman || got.Messages != 10 {
			t.Fatalf("%s store: %+v", a.id, got)
		}
	}
	if got := admin.audit.types(); !slices.Contains(got, "escalation admin") || slices.Contains(got, "consensus_reached admin") ||
		!slices.Contains(got, "plan_proposed admin") {
		t.Fatalf("admin audit %q", got)
	}
	if got := carol.audit.types(); len(got) == 0 || slices.ContainsFunc(got, func(s string) bool { return s != "objection_raised carol" }) {
		t.Fatalf("carol audit %q", got)
	}

	// A restart loses nothing.
	again, err := coordination.OpenStore(admin.dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := again.Escalation(e.SessionID); !ok || !reflect.DeepEqual(got, e) {
		t.Fatalf("after reopening: %+v %v", got, ok)
	}
	if r, ok := admin.record(e.SessionID); !ok || r.Outcome != "escalated" {
		t.Fatalf("record %+v %v", r, ok)
	}
}

// TestLostMessagesAreSentAgain: the participant starts listening only
// after the admin has opened the session and proposed, so it missed both;
// the admin's re-sends still bring the session to consensus.
func TestLostMessagesAreSentAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	_, topics := mesh(t, ctx, 2)
	tasks := &board{tasks: twoRepos()}
	admin := startAgent(t, ctx, "admin", true, topics[0], tasks, roster{{ID: "bob", Role: "backend"}})
	var id string
	eventually(t, ctx, "the admin's proposal", func() bool {
		for _, s := range admin.driver.Sessions() {
			id = s.ID
			return len(s.Messages) == 1
		}
		return false
	})
	bob := startAgent(t, ctx, "bob", false, topics[1], tasks, nil)
	eventually(t, ctx, "consensus", func() bool { s, _ := admin.driver.Session(id); return s.State == coordination.StateResolved })
	s, _ := admin.driver.Session(id)
	if len(s.Messages) != 2 || s.Messages[1].From != "bob" || s.Messages[1].Kind != coordination.Agreement {
		t.Fatalf("messages %+v: re-sent copies must not count twice", s.Messages)
	}
	eventually(t, ctx, "bob's record", func() bool { _, ok := bob.record(id); return ok })
}

func TestDriverConfigValidate(t *testing.T) {
	store, _ := coordination.OpenStore(t.TempDir())
	good := coordination.DefaultConfig()
	good.AgentID, good.Topic, good.Tasks, good.Store = "a", fakeTopic{}, &board{}, store
	if _, err := coordination.New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for field, mod := range map[string]func(*coordination.Config){
		"AgentID":         func(c *coordination.Config) { c.AgentID = "" },
		"Topic":           func(c *coordination.Config) { c.Topic = nil },
		"Tasks":           func(c *coordination.Config) { c.Tasks = nil },
		"Store":           func(c *coordination.Config) { c.Store = nil },
		"ScanInterval":    func(c *coordination.Config) { c.ScanInterval = 0 },
		"TickInterval":    func(c *coordination.Config) { c.TickInterval = -1 },
		"CleanupInterval": func(c *coordination.Config) { c.CleanupInterval = 0 },
		"MaxParticipants": func(c *coordination.Config) { c.Limits.MaxParticipants = 0 },
	} {
		cfg := good
		mod(&cfg)
		if _, err := coordination.New(cfg); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("without %s: %v", field, err)
		}
	}
}

type fakeTopic struct{}

func (fakeTopic) PublishBody(context.Context, gossip.Body, gossip.Envelope) error { return nil }
func (fakeTopic) Subscribe(func(gossip.Envelope, string)) (func(), error)         { return func() {}, nil }

func TestJudge(t *testing.T) {
	order := []string{apiKey, webKey}
	ts := twoRepos()
	tests := []struct {
		name   string
		mod    func([]chorus.Task) []chorus.Task
		agent  string
		kind   coordination.MessageKind
		inText string
	}{
		{"holds nothing", func(ts []chorus.Task) []chorus.Task { return ts }, "bob", coordination.Agreement, "does not touch a task I hold"},
		{"holds the second task, not started", func(ts []chorus.Task) []chorus.Task {
			ts[1].Assignee, ts[1].State = "bob", chorus.StateClaimed
			return ts
		}, "bob", coordination.Agreement, "fits my tasks " + webKey},
		{"working on the second task while the first is open", func(ts []chorus.Task) []chorus.Task {
			ts[1].Assignee, ts[1].State = "bob", chorus.StateWorking
			return ts
		}, "bob", coordination.Objection, "already working on " + webKey + ", which the plan puts after " + apiKey + " (still open)"},
		{"working on the second task, the first is finished", func(ts []chorus.Task) []chorus.Task {
			ts[1].Assignee, ts[1].State = "bob", chorus.StateWorking
			return ts[1:]
		}, "bob", coordination.Agreement, "fits my tasks " + webKey},
		{"working on the first task", func(ts []chorus.Task) []chorus.Task {
			ts[0].Assignee, ts[0].State = "bob", chorus.StateWorking
			return ts
		}, "bob", coordination.Agreement, "fits my tasks " + apiKey},
		{"someone else works out of order", func(ts []chorus.Task) []chorus.Task {
			ts[1].Assignee, ts[1].State = "carol", chorus.StateWorking
			return ts
		}, "bob", coordination.Agreement, "does not touch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, text := coordination.Judge(tt.agent, order, tt.mod(slices.Clone(ts)))
			if kind != tt.kind || !strings.Contains(text, tt.inText) {
				t.Fatalf("Judge = %s %q, want %s with %q", kind, text, tt.kind, tt.inText)
			}
		})
	}
}

// localTopic hands the driver's subscription handler to the test, which
// plays the network; published bodies are kept.
type localTopic struct {
	handler chan func(gossip.Envelope, string)
	mu      sync.Mutex
	sent    []gossip.Body
}

func (l *localTopic) PublishBody(_ context.Context, b gossip.Body, _ gossip.Envelope) error {
	l.mu.Lock()
	l.sent = append(l.sent, b)
	l.mu.Unlock()
	return nil
}

func (l *localTopic) Subscribe(h func(gossip.Envelope, string)) (func(), error) {
	l.handler <- h
	return func() {}, nil
}

func envelope(t *testing.T, b gossip.Body, thread string) gossip.Envelope {
	t.Helper()
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return gossip.Envelope{Type: b.MessageType(), ThreadID: thread, Data: data}
}

func runLocal(t *testing.T, id string, admin bool, r roster) (*coordination.Driver, *coordination.Store, func(gossip.Envelope, string)) {
	t.Helper()
	store, _ := coordination.OpenStore(t.TempDir())
	tp := &localTopic{handler: make(chan func(gossip.Envelope, string), 1)}
	cfg := coordination.DefaultConfig()
	cfg.AgentID, cfg.Topic, cfg.Tasks, cfg.Store, cfg.Roster = id, tp, &board{tasks: twoRepos()}, store, r
	cfg.IsAdmin = func() bool { return admin }
	d, err := coordination.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return d, store, <-tp.handler
}

// TestMessagesInAnotherNameAreRefused: an agreement signed by a peer that
// is not the agent's, and an outcome not sent by the session's owner, are
// ignored.
func TestMessagesInAnotherNameAreRefused(t *testing.T) {
	admin, _, deliver := runLocal(t, "admin", true, roster{{ID: "bob", Role: "backend", PeerID: "peer-bob"}})
	var s coordination.Session
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	eventually(t, ctx, "the scan at start", func() bool {
		for _, s = range admin.Sessions() {
		}
		return len(s.Messages) == 1
	})
	if !reflect.DeepEqual(s.Participants, []string{"admin", "bob"}) {
		t.Fatalf("the scan at start opened %+v", admin.Sessions())
	}
	agree := gossip.MetaDiscussion{TaskKey: apiKey, AgentID: "bob", Kind: "agreement", Text: "yes", At: t0, MessageID: "m1"}
	deliver(envelope(t, agree, s.ID), "peer-mallory")
	if got, _ := admin.Session(s.ID); got.State != coordination.StateOpen || len(got.Messages) != 1 {
		t.Fatalf("a forged agreement counted: %+v", got)
	}
	deliver(envelope(t, agree, s.ID), "peer-bob")
	if got, _ := admin.Session(s.ID); got.State != coordination.StateResolved {
		t.Fatalf("bob's own agreement did not resolve: %+v", got)
	}

	bob, store, deliverBob := runLocal(t, "bob", false, nil)
	req := gossip.CoordinationRequest{SessionID: "s1", Kind: "dependency", TaskKeys: []string{apiKey, webKey}, Participants: []string{"admin", "bob"},
		At: t0, Owner: "admin"}
	deliverBob(envelope(t, req, "s1"), "peer-admin")
	done := gossip.CoordinationComplete{SessionID: "s1", Outcome: "resolved", At: t0, TaskKeys: req.TaskKeys}
	trigger := gossip.EscalationTrigger{SessionID: "s1", Reason: "forged", RequiresHuman: true, At: t0}
	deliverBob(envelope(t, done, "s1"), "peer-mallory")
	deliverBob(envelope(t, trigger, "s1"), "peer-mallory")
	if got, _ := bob.Session("s1"); got.State != coordination.StateOpen || len(store.Records()) != 0 || len(store.Escalations()) != 0 {
		t.Fatalf("an outcome from another peer was taken: %+v %+v %+v", got, store.Records(), store.Escalations())
	}
	deliverBob(envelope(t, done, "s1"), "peer-admin")
	if got, _ := bob.Session("s1"); got.State != coordination.StateResolved || len(store.Records()) != 1 {
		t.Fatalf("the owner's outcome was not taken: %+v", got)
	}
}

// A problem found outside a session (a task nobody qualifies for) is
// escalated through the driver: stored here, heard and stored elsewhere,
// once per id.
func TestEscalateOutsideASession(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, topics := mesh(t, ctx, 2)
	tasks := &board{}
	here := startAgent(t, ctx, "here", false, topics[0], tasks, nil)
	there := startAgent(t, ctx, "there", false, topics[1], tasks, nil)
	trig := gossip.EscalationTrigger{SessionID: "selection/" + apiKey, Kind: "selection", TaskKeys: []string{apiKey},
		Reason: "no agent scored above 0.5 for 10m0s", RequiresHuman: true}
	if err := here.driver.Escalate(ctx, trig, "peer-here"); err != nil {
		t.Fatal(err)
	}
	if got := here.store.Escalations(); len(got) != 1 || got[0].Kind != "selection" || got[0].ReportedBy != "peer-here" || !got[0].RequiresHuman {
		t.Fatalf("local store = %+v", got)
	}
	eventually(t, ctx, "the escalation on the other node", func() bool { return len(there.store.Escalations()) == 1 })
	if err := here.driver.Escalate(ctx, trig, "peer-here"); err != nil || len(here.store.Escalations()) != 1 {
		t.Fatalf("second escalation: %v, store %+v", err, here.store.Escalations())
	}
	if err := here.driver.Escalate(ctx, gossip.EscalationTrigger{Reason: "x"}, "p"); err == nil {
		t.Fatal("an escalation without an id was accepted")
	}
}
