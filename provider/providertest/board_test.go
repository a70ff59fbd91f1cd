package providertest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"chorus"
	"chorus/provider/board"
	"chorus/provider/providertest"
)

// boardLister adapts a board to the harness: its open list is List with
// the open state.
type boardLister struct{ *board.Board }

func (b boardLister) ListOpen(ctx context.Context, limit int) ([]chorus.Task, error) {
	return b.List(ctx, board.Filter{States: []chorus.TaskState{chorus.StateOpen}, Limit: board.MaxLimit})
}

// TestBoardClaimRace races agents over one real SQLite file, each with its
// own Board (its own connections), as separate processes would.
func TestBoardClaimRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "board.db")
	setup, err := board.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	ctx := context.Background()
	var keys []chorus.TaskKey
	for i := range 200 {
		task, _, err := setup.Add(ctx, chorus.Task{Title: fmt.Sprintf("task %d", i), Repository: "acme/race"})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, task.Key())
	}
	const workers = 4
	boards := make([]providertest.Provider, workers)
	for i := range boards {
		b, err := board.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		boards[i] = boardLister{b}
	}
	providertest.Run(t, providertest.Race{
		Open:        func(w int) providertest.Provider { return boards[w] },
		Tasks:       keys,
		Workers:     workers,
		Completions: setup.Completions,
	})
}
