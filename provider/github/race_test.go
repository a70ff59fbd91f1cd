package github_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/provider/github"
	"chorus/provider/github/githubtest"
	"chorus/provider/providertest"
)

// TestClaimRace races four agents, each with its own client, over the
// fake GitHub; claim comments are held until two claimers have written,
// so the conflicts are real (both comments on the issue before either
// re-reads).
func TestClaimRace(t *testing.T) {
	s := newFake(t)
	var keys []chorus.TaskKey
	for i := range 200 {
		n := s.CreateIssue(repo, githubtest.NewIssue{Title: fmt.Sprintf("task %d", i), Labels: []string{"chorus-task"}})
		keys = append(keys, key(n))
	}
	s.Interleave(2, 50*time.Millisecond, func(body string) bool { return strings.Contains(body, `"op":"claim"`) })
	const workers = 4
	trackers := make([]*github.Tracker, workers)
	for i := range trackers {
		trackers[i] = newTracker(t, s)
	}
	providertest.Run(t, providertest.Race{
		Open:    func(w int) providertest.Provider { return trackers[w] },
		Tasks:   keys,
		Workers: workers,
		Completions: func(_ context.Context, k chorus.TaskKey) (int, error) {
			return markers(t, s, k.Number, "complete"), nil
		},
	})
	if s.Interleaved() == 0 {
		t.Error("no two claims were ever in flight together")
	}
	for _, k := range keys {
		if n := markers(t, s, k.Number, "claim"); n < 1 || n > 2 {
			t.Errorf("%s: %d claim comments left, want 1 (2 for a released task)", k, n)
		}
		is, _ := s.Issue(repo, k.Number)
		if is.Open || !slices.Contains(is.Labels, "completed") || slices.Contains(is.Labels, "in-progress") {
			t.Errorf("%s: open=%v labels=%v after the race", k, is.Open, is.Labels)
		}
	}
	t.Logf("%d interleaved claims, %d requests", s.Interleaved(), s.Requests(""))
}
