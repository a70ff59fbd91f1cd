package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus"
	"chorus/activities"
	"chorus/config"
	"chorus/coordination"
	"chorus/gossip"
	"chorus/provider/board"
)

// coordinator is the worker's meta-coordination: the driver on the gossip
// node and the store behind GET /api/v1/escalations.
type coordinator struct {
	driver *coordination.Driver
	store  *coordination.Store
}

// listFunc is a board's List (local or over HTTP).
type listFunc func(context.Context, board.Filter) ([]chorus.Task, error)

// startCoordination joins the meta-discussion topic on the mesh's node and
// builds the driver: custom rules and limits from the config file, the
// agent's models for plans (the template when there are none), the store
// under <data>/coordination, the node's audit log.
func startCoordination(c config.Coordination, agentID string, isAdmin func() bool, dataDir string, m *mesh, list listFunc,
	rung aiRung, audit activities.Auditor, reg prometheus.Registerer, logger *slog.Logger) (*coordinator, error) {
	topic, err := m.node.Join(gossip.TopicMetaDiscussion)
	if err != nil {
		return nil, fmt.Errorf("coordination: %w", err)
	}
	store, err := coordination.OpenStore(filepath.Join(dataDir, "coordination"))
	if err != nil {
		return nil, err
	}
	detector, err := coordination.NewDetector(rulesFrom(c))
	if err != nil {
		return nil, fmt.Errorf("config: coordination: %w", err)
	}
	pcfg := coordination.DefaultPlannerConfig()
	pcfg.Logger = logger
	for _, name := range rung.order {
		pcfg.Models = append(pcfg.Models, coordination.Model{Name: name, Client: rung.clients[name]})
	}
	planner, err := coordination.NewPlanner(pcfg)
	if err != nil {
		return nil, err
	}
	cfg := coordinationConfig(c)
	cfg.AgentID, cfg.IsAdmin, cfg.Topic, cfg.Tasks, cfg.Roster = agentID, isAdmin, topic, boardTasks{list}, registryRoster{m.registry}
	cfg.Store, cfg.Detector, cfg.Planner, cfg.Audit, cfg.Logger = store, detector, planner, audit, logger
	cfg.Metrics = reg
	d, err := coordination.New(cfg)
	if err != nil {
		return nil, err
	}
	return &coordinator{driver: d, store: store}, nil
}

// routes puts the escalations and sessions on the ops mux.
func (c *coordinator) routes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/escalations", c.store.Handler())
	mux.Handle("GET /api/v1/escalations/{id}", c.store.Handler())
	mux.HandleFunc("GET /api/v1/coordination/sessions", c.driver.ServeSessions)
}

// coordinationConfig is the driver's defaults with the file's non-zero
// values (zero keeps the SPEC default).
func coordinationConfig(c config.Coordination) coordination.Config {
	cfg := coordination.DefaultConfig()
	if c.ScanInterval > 0 {
		cfg.ScanInterval = time.Duration(c.ScanInterval)
	}
	if c.CleanupInterval > 0 {
		cfg.CleanupInterval = time.Duration(c.CleanupInterval)
	}
	if c.SessionTimeout > 0 {
		cfg.Limits.MaxDuration = time.Duration(c.SessionTimeout)
	}
	if c.MaxParticipants > 0 {
		cfg.Limits.MaxParticipants = c.MaxParticipants
	}
	if c.MaxMessages > 0 {
		cfg.Limits.MaxMessages = c.MaxMessages
	}
	return cfg
}

func rulesFrom(c config.Coordination) []coordination.Rule {
	var rules []coordination.Rule
	for _, r := range c.Rules {
		rules = append(rules, coordination.Rule{Name: r.Name, Task: r.Task, DependsOn: r.DependsOn, Confidence: r.Confidence})
	}
	return rules
}

// boardTasks adapts a board's List to coordination.TaskLister: the tasks
// that are open, claimed or working.
type boardTasks struct{ list listFunc }

func (b boardTasks) ListActive(ctx context.Context) ([]chorus.Task, error) {
	return b.list(ctx, board.Filter{States: []chorus.TaskState{chorus.StateOpen, chorus.StateClaimed, chorus.StateWorking}, Limit: board.MaxLimit})
}

// registryRoster adapts the mesh's peer registry to coordination.Roster.
type registryRoster struct{ r *gossip.Registry }

func (r registryRoster) Agents() []coordination.Agent {
	var out []coordination.Agent
	for _, p := range r.r.Snapshot() {
		if p.AgentID != "" {
			out = append(out, coordination.Agent{ID: p.AgentID, Role: p.Role, PeerID: p.PeerID})
		}
	}
	return out
}

// escalator implements activities.Escalator for the task workflow's
// selection step: a task no agent qualified for becomes an escalation in
// the coordination store (starter escalations), on every node through
// escalation_trigger, and in the audit log.
type escalator struct {
	coord *coordinator
	audit activities.Auditor
	self  string
}

func (e escalator) Escalate(ctx context.Context, in activities.EscalateInput) error {
	t := gossip.EscalationTrigger{SessionID: "selection/" + in.Key, Kind: "selection", TaskKeys: []string{in.Key},
		Reason: in.Reason, RequiresHuman: true, At: time.Now().UTC()}
	if err := e.coord.driver.Escalate(ctx, t, e.self); err != nil {
		return err
	}
	return e.audit.Record(ctx, "escalation", t)
}
