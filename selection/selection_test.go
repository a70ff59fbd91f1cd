package selection_test

import (
	"math"
	"testing"
	"time"

	"chorus/selection"
)

func TestScoreFormula(t *testing.T) {
	tests := []struct {
		name string
		req  selection.Requirement
		c    selection.Candidate
		want float64
		qual bool
	}{
		{"perfect", selection.Requirement{Role: "tester", Expertise: []string{"go"}},
			selection.Candidate{AgentID: "a", Role: "tester", Expertise: []string{"go"}, MaxTasks: 2, Performance: 1}, 1, true},
		{"no requirement, idle, new", selection.Requirement{}, selection.Candidate{AgentID: "a", Role: "developer", MaxTasks: 1, Performance: 0.5}, 0.95, true},
		{"wrong role", selection.Requirement{Role: "tester"}, selection.Candidate{AgentID: "a", Role: "developer", MaxTasks: 1, Performance: 0.5}, 0.55, true},
		{"wrong role, busy", selection.Requirement{Role: "tester"}, selection.Candidate{AgentID: "a", Role: "developer", CurrentTasks: 1, MaxTasks: 1, Performance: 0.5}, 0.35, false},
		{"partial role", selection.Requirement{Role: "developer"}, selection.Candidate{AgentID: "a", Role: "backend-developer", MaxTasks: 4, CurrentTasks: 2}, 0.2 + 0.3 + 0.1, true},
		{"half the expertise", selection.Requirement{Role: "dev", Expertise: []string{"go", "sql"}},
			selection.Candidate{AgentID: "a", Role: "dev", Expertise: []string{"GO"}, MaxTasks: 1, CurrentTasks: 1}, 0.4 + 0.15, true},
		// exactly at the threshold does not qualify: only scores above it do
		{"at threshold", selection.Requirement{Role: "qa", Expertise: []string{"x"}},
			selection.Candidate{AgentID: "a", Role: "qa", MaxTasks: 1, CurrentTasks: 1, Performance: 1}, 0.5, false},
		{"over capacity counts as none", selection.Requirement{}, selection.Candidate{AgentID: "a", MaxTasks: 1, CurrentTasks: 3}, 0.7, true},
		{"bad performance clamped", selection.Requirement{}, selection.Candidate{AgentID: "a", MaxTasks: 1, Performance: 7}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := selection.Score(tt.req, tt.c)
			if math.Abs(b.Score-tt.want) > 1e-9 || b.Qualified != tt.qual {
				t.Fatalf("Score = %+v, want %.3f qualified %v", b, tt.want, tt.qual)
			}
		})
	}
}

func TestRoleMatch(t *testing.T) {
	tests := []struct {
		req, have string
		want      float64
	}{
		{"", "anything", 1},
		{"developer", "developer", 1},
		{"Developer", "developer ", 1},
		{"developer", "backend-developer", 0.5},
		{"senior_developer", "developer", 0.5},
		{"developer", "developers", 0},
		{"dev", "developer", 0},
		{"tester", "", 0},
	}
	for _, tt := range tests {
		if got := selection.RoleMatch(tt.req, tt.have); got != tt.want {
			t.Errorf("RoleMatch(%q, %q) = %v, want %v", tt.req, tt.have, got, tt.want)
		}
	}
}

func TestBestPicksHighestQualifiedAndBreaksTiesByID(t *testing.T) {
	req := selection.Requirement{Role: "tester"}
	cands := []selection.Candidate{
		{AgentID: "dev", Role: "developer", MaxTasks: 1, Performance: 0.5},
		{AgentID: "t2", Role: "tester", MaxTasks: 1, Performance: 0.5},
		{AgentID: "t1", Role: "tester", MaxTasks: 1, Performance: 0.5},
		{AgentID: "t1", Role: "developer", MaxTasks: 1}, // a second report of t1 is ignored
	}
	best, scores, ok := selection.Best(req, cands, nil)
	if !ok || best.AgentID != "t1" || len(scores) != 3 || scores[0].AgentID != "t1" || scores[1].AgentID != "t2" || scores[2].AgentID != "dev" {
		t.Fatalf("Best = %v %+v %v", best.AgentID, scores, ok)
	}
	best, _, ok = selection.Best(req, cands, []string{"t1"})
	if !ok || best.AgentID != "t2" {
		t.Fatalf("excluding t1: %v %v", best.AgentID, ok)
	}
	// Busy agents of the wrong role do not qualify; nobody left.
	busy := []selection.Candidate{{AgentID: "dev", Role: "developer", MaxTasks: 1, CurrentTasks: 1}}
	if _, scores, ok := selection.Best(req, busy, nil); ok || len(scores) != 1 || scores[0].Qualified {
		t.Fatalf("busy developer for a tester task: %+v %v", scores, ok)
	}
	if _, scores, ok := selection.Best(req, nil, nil); ok || len(scores) != 0 {
		t.Fatal("no candidates but ok")
	}
}

func TestOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := []selection.Work{
		{Key: "low-old", Priority: 1, Score: 0.9, CreatedAt: t0},
		{Key: "high-new", Priority: 9, Score: 0.6, CreatedAt: t0.Add(time.Hour)},
		{Key: "high-better", Priority: 9, Score: 0.8, CreatedAt: t0.Add(2 * time.Hour)},
		{Key: "mid-old", Priority: 5, Score: 0.7, CreatedAt: t0},
		{Key: "mid-new-blocks", Priority: 5, Score: 0.7, CreatedAt: t0.Add(time.Minute), Blocks: 3},
		{Key: "mid-old-blocks", Priority: 5, Score: 0.7, CreatedAt: t0, Blocks: 1},
	}
	selection.Order(w)
	want := []string{"high-better", "high-new", "mid-old-blocks", "mid-old", "mid-new-blocks", "low-old"}
	for i, k := range want {
		if w[i].Key != k {
			t.Fatalf("order = %v, want %v", keys(w), want)
		}
	}
}

func keys(w []selection.Work) []string {
	var out []string
	for _, x := range w {
		out = append(out, x.Key)
	}
	return out
}

func TestPriorityKey(t *testing.T) {
	tests := []struct {
		p     int
		block bool
		want  int
	}{{10, false, 1}, {9, true, 1}, {8, false, 2}, {7, true, 1}, {5, false, 3}, {4, true, 2}, {3, false, 4}, {1, false, 5}, {0, true, 4}}
	for _, tt := range tests {
		if got := selection.PriorityKey(tt.p, tt.block); got != tt.want {
			t.Errorf("PriorityKey(%d, %v) = %d, want %d", tt.p, tt.block, got, tt.want)
		}
	}
}
