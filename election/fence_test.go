package election_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"chorus"
	"chorus/election"
	"chorus/provider/board"
)

func TestFence(t *testing.T) {
	var f election.Fence
	if err := f.Check(0); err != nil {
		t.Fatalf("zero fence: %v", err)
	}
	f.Observe(5)
	f.Observe(3) // never goes down
	for _, c := range []struct {
		term  uint64
		stale bool
	}{{4, true}, {5, false}, {6, false}} {
		if err := f.Check(c.term); errors.Is(err, election.ErrStaleTerm) != c.stale {
			t.Errorf("Check(%d) = %v, stale want %v", c.term, err, c.stale)
		}
	}
	if f.Highest() != 5 {
		t.Errorf("Check raised the fence to %d", f.Highest())
	}
	if err := f.Admit(7); err != nil || f.Highest() != 7 {
		t.Errorf("Admit(7) = %v, highest %d", err, f.Highest())
	}
	if err := f.Admit(6); !errors.Is(err, election.ErrStaleTerm) {
		t.Errorf("Admit(6) after 7 = %v", err)
	}
}

// TestFenceGuardsTheBoard puts the fence in front of the real task board
// API, as the worker serving the board does: an admin's calls carry its
// term, and once a newer admin has been seen (here by gossip, Observe) the
// older one's calls are refused before they reach the board.
func TestFenceGuardsTheBoard(t *testing.T) {
	b, err := board.Open(filepath.Join(t.TempDir(), "board.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, _, err := b.Add(context.Background(), chorus.Task{Title: "t", Repository: "demo"}); err != nil {
		t.Fatal(err)
	}
	fence := &election.Fence{}
	srv := httptest.NewServer(fence.Guard(b.Handler()))
	defer srv.Close()

	list := func(term uint64) error {
		hc := http.DefaultClient
		if term > 0 {
			hc = &http.Client{Transport: election.TermTransport{Term: term}}
		}
		_, err := board.NewClient(srv.URL, hc).List(context.Background(), board.Filter{States: []chorus.TaskState{chorus.StateOpen}})
		return err
	}
	if err := list(3); err != nil {
		t.Fatalf("admin of term 3: %v", err)
	}
	fence.Observe(4) // the election saw a newer admin
	if err := list(3); err == nil {
		t.Fatal("a deposed admin's call was served")
	}
	if err := list(4); err != nil {
		t.Errorf("admin of term 4: %v", err)
	}
	if err := list(0); err != nil {
		t.Errorf("a call without a term (not an admin's): %v", err)
	}

	// The refusal itself, on the wire.
	for _, c := range []struct {
		header string
		code   int
	}{{"3", http.StatusConflict}, {"zero", http.StatusBadRequest}, {"0", http.StatusBadRequest}, {"9", http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/tasks", nil)
		req.Header.Set(election.TermHeader, c.header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error       string `json:"error"`
			HighestTerm uint64 `json:"highest_term"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.code || (c.code != http.StatusOK && body.Error == "") {
			t.Errorf("%s: %s = %d %+v, want %d", election.TermHeader, c.header, resp.StatusCode, body, c.code)
		}
	}
	if fence.Highest() != 9 {
		t.Errorf("highest term %d after admitting 9", fence.Highest())
	}
}
