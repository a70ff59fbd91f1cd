package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/audit"
	"chorus/config"
	"chorus/coordination"
	"chorus/provider/board"
)

func TestCoordinationConfigFromTheFile(t *testing.T) {
	// Zero values keep the package defaults, which are the SPEC's.
	if got, want := coordinationConfig(config.Default().Coordination), coordination.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults: %+v, want %+v", got, want)
	}
	f, err := config.Parse([]byte("coordination:\n  scan_interval: 1m\n  max_participants: 3\n  session_timeout: 5m\n  max_messages: 6\n  cleanup_interval: 2m\n" +
		"  rules:\n    - {name: payments, task: [checkout], depends_on: [payment*], confidence: 0.5}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := coordinationConfig(f.Coordination)
	l := cfg.Limits
	if cfg.ScanInterval != time.Minute || cfg.CleanupInterval != 2*time.Minute || l.MaxDuration != 5*time.Minute || l.MaxParticipants != 3 ||
		l.MaxMessages != 6 || l.ConsensusWindow != 3 {
		t.Fatalf("config %+v", cfg)
	}
	rules := rulesFrom(f.Coordination)
	want := []coordination.Rule{{Name: "payments", Task: []string{"checkout"}, DependsOn: []string{"payment*"}, Confidence: 0.5}}
	if !reflect.DeepEqual(rules, want) {
		t.Fatalf("rules %+v", rules)
	}
	if _, err := coordination.NewDetector(rules); err != nil {
		t.Fatalf("a rule the config accepts is refused by the detector: %v", err)
	}
}

// TestCoordinationOnTheWorker wires the driver as run does (a real gossip
// node, a real board, the real audit log) on a lone --dev worker: two tasks
// in two repositories give one session whose only participant is the
// admin, resolved on its proposal, listed on the ops mux and audited.
func TestCoordinationOnTheWorker(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	b, err := board.Open(filepath.Join(dir, "board.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, task := range []chorus.Task{
		{Repository: "acme/api", Title: "Define the user API"},
		{Repository: "acme/web", Title: "Implement the signup page"},
		{Repository: "acme/docs", Title: "Proofread"},
	} {
		if _, _, err := b.Add(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	// A finished task is never looked at.
	done, _, _ := b.Add(ctx, chorus.Task{Repository: "acme/old", Title: "Implement the old API"})
	if err := b.Cancel(ctx, done.Key(), "obsolete"); err != nil {
		t.Fatal(err)
	}
	active, err := boardTasks{b.List}.ListActive(ctx)
	if err != nil || len(active) != 3 {
		t.Fatalf("ListActive = %d tasks, %v; want the 3 unfinished", len(active), err)
	}

	logger := slog.New(slog.DiscardHandler)
	o := options{dev: true, mdns: false, dhtMode: "off", p2pListen: "/ip4/127.0.0.1/tcp/0", availabilityInterval: time.Second}
	auditLog, err := openAudit(dir, "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer auditLog.Close()
	m, err := startMesh(ctx, o, dir, nil, &countingRunner{}, "", nil, auditRecorder{auditLog}, nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	coord, err := startCoordination(config.Coordination{}, "dev", func() bool { return true }, dir, m, b.List, aiRung{}, auditRecorder{auditLog}, nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	coord.routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- coord.driver.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	var views []coordination.SessionView
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(views) == 0 || views[0].State != coordination.StateResolved {
		select {
		case <-ctx.Done():
			t.Fatalf("no resolved session: %+v", views)
		case <-tick.C:
		}
		views = nil
		if code := getJSON(t, srv.URL+"/api/v1/coordination/sessions", &views); code != http.StatusOK {
			t.Fatalf("HTTP %d", code)
		}
	}
	s := views[0]
	if len(views) != 1 || !reflect.DeepEqual(s.TaskKeys, []string{"task/board/acme/api/1", "task/board/acme/web/1"}) ||
		!reflect.DeepEqual(s.Participants, []string{"dev"}) || !s.Template || !strings.HasPrefix(s.Plan, coordination.TemplateMarker) {
		t.Fatalf("sessions %+v", views)
	}
	var escalations []coordination.Escalation
	if code := getJSON(t, srv.URL+"/api/v1/escalations", &escalations); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	if escalations == nil || len(escalations) != 0 {
		t.Fatalf("escalations %+v, want an empty list", escalations)
	}
	// The audit entries follow the session's state change: wait for them.
	for _, typ := range []string{audit.TypePlanProposed, audit.TypeConsensusReached} {
		for {
			entries, err := audit.Query(auditLog.Path(), audit.Filter{Type: typ})
			if err == nil && len(entries) == 1 && strings.Contains(string(entries[0].Data), s.ID) {
				break
			}
			if err != nil || len(entries) > 1 {
				t.Fatalf("audit %s: %+v %v", typ, entries, err)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("audit %s: %+v, want one entry for session %s", typ, entries, s.ID)
			case <-tick.C:
			}
		}
	}
}
