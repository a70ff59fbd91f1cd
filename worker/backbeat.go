package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/activities"
	"chorus/backbeat"
	"chorus/gossip"
	"chorus/ops"
)

// backbeatOptions are the BACKBEAT flags.
type backbeatOptions struct {
	tempo    float64
	tempoSet bool
	bar      int
}

func (b *backbeatOptions) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.Float64Var(&b.tempo, "backbeat-tempo", backbeat.DefaultTempoBPM,
		fmt.Sprintf("BACKBEAT tempo in beats per minute, of the pulse this worker publishes as admin and of its local clock until it hears one (%v with --dev unless given)", backbeat.DevTempoBPM))
	fs.IntVar(&b.bar, "backbeat-bar", backbeat.DefaultBarLength, "BACKBEAT beats per bar; the admin publishes one bar report per bar")
}

// resolve applies the --dev tempo and checks the values.
func (b *backbeatOptions) resolve(dev bool) error {
	if dev && !b.tempoSet {
		b.tempo = backbeat.DevTempoBPM
	}
	if !(b.tempo >= backbeat.MinTempoBPM && b.tempo <= backbeat.MaxTempoBPM) {
		return fmt.Errorf("--backbeat-tempo: %v is outside %v..%v beats per minute", b.tempo, backbeat.MinTempoBPM, backbeat.MaxTempoBPM)
	}
	if b.bar < 1 {
		return fmt.Errorf("--backbeat-bar: %d must be at least 1", b.bar)
	}
	return nil
}

// beatBudget is an operation's beat budget on this agent: the longest a
// task should take here (the help window, the AI rung's wall time and the
// execution timeout) in beats at the tempo, and at least one.
func beatBudget(agent activities.AgentInfo, bpm float64) int {
	d := agent.HelpWindow + agent.AIWallTime + agent.ExecutionTimeout
	return max(int(math.Ceil(float64(d)/float64(backbeat.Interval(bpm)))), 1)
}

// startBackbeat joins the BACKBEAT topic and builds the node, with its
// health check "backbeat" (not critical: a lost pulse degrades, it does not
// stop the agent) and GET /api/v1/backbeat on mux. isAdmin says whether
// this worker is the admin, which publishes the pulse and the bar reports;
// the node asks it every beat and at least every second. Its metrics go to
// reg (nil: none). The caller runs it.
func startBackbeat(o options, node *gossip.Node, agent activities.AgentInfo, isAdmin func() bool, mux *http.ServeMux, health *ops.Health,
	reg prometheus.Registerer, logger *slog.Logger) (*backbeat.Node, error) {
	topic, err := node.Join(gossip.TopicBackbeat)
	if err != nil {
		return nil, fmt.Errorf("backbeat: %w", err)
	}
	cfg := backbeat.DefaultConfig()
	cfg.ClusterID = o.lic.clusterID // --cluster-id, the license's cluster
	cfg.AgentID = agent.ID
	cfg.TempoBPM = o.backbeat.tempo
	cfg.BarLength = o.backbeat.bar
	cfg.Budget = beatBudget(agent, o.backbeat.tempo)
	cfg.IsAdmin = isAdmin
	cfg.Logger = logger
	cfg.Metrics = reg
	bb, err := backbeat.New(cfg, topic)
	if err != nil {
		return nil, err
	}
	if err := health.Register(ops.Check{Name: "backbeat", Interval: 5 * time.Second, Func: bb.Check}); err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /api/v1/backbeat", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(bb.Snapshot())
	})
	return bb, nil
}
