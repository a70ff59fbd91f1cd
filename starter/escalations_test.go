package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"chorus/coordination"
)

// TestEscalationsReadsTheWorker runs the command against the real
// escalations handler of a coordination store.
func TestEscalationsReadsTheWorker(t *testing.T) {
	store, err := coordination.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(store.Handler())
	defer srv.Close()

	out, errOut, code := starter(t, nil, "escalations", "--worker", srv.URL)
	if code != 0 || out != "no escalations\n" {
		t.Fatalf("empty: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = starter(t, nil, "escalations", "--worker", srv.URL, "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty --json: exit %d, %q", code, out)
	}

	at := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	for _, e := range []coordination.Escalation{
		{SessionID: "s-two", Kind: "dependency", TaskKeys: []string{"task/board/acme/api/1", "task/board/acme/web/2"},
			Participants: []string{"admin", "bob", "carol"}, Reason: "no consensus after 10 messages", RequiresHuman: true,
			Plan: "[template plan: no model was reachable] ...", Messages: 10, Agreements: 1, OpenedAt: at.Add(-time.Minute), EscalatedAt: at},
		{SessionID: "s-one", Kind: "planning", TaskKeys: []string{"task/board/acme/db/3"}, Reason: "no consensus within 30m0s",
			RequiresHuman: true, Messages: 4, EscalatedAt: at.Add(-time.Hour), ReportedBy: "12D3KooWabc"},
	} {
		if _, err := store.AddEscalation(e); err != nil {
			t.Fatal(err)
		}
	}
	// The worker URL from the environment, flags after the command.
	out, errOut, code = starter(t, map[string]string{"CHORUS_WORKER": srv.URL}, "escalations", "--json")
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var items []escalationItem
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("--json output: %v: %q", err, out)
	}
	if len(items) != 2 || items[0].SessionID != "s-one" || items[1].SessionID != "s-two" || !items[1].RequiresHuman ||
		items[1].Messages != 10 || len(items[1].TaskKeys) != 2 || items[0].ReportedBy != "12D3KooWabc" || !items[1].EscalatedAt.Equal(at) {
		t.Fatalf("items %+v", items)
	}
	out, _, code = starter(t, nil, "escalations", "--worker", srv.URL+"/")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "ESCALATED") ||
		!strings.Contains(lines[1], "s-one") || !strings.Contains(lines[1], "no consensus within 30m0s") ||
		!strings.Contains(lines[2], "task/board/acme/api/1,task/board/acme/web/2") || !strings.Contains(lines[2], " 10 ") {
		t.Fatalf("table: exit %d\n%s", code, out)
	}
}

func TestEscalationsErrors(t *testing.T) {
	old := httptest.NewServer(http.NotFoundHandler()) // a worker without the endpoint
	defer old.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }))
	defer garbage.Close()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"escalations", "--worker", "http://127.0.0.1:1"}, 1, "ask the worker at http://127.0.0.1:1"},
		{[]string{"escalations", "--worker", old.URL}, 1, "answered 404 Not Found"},
		{[]string{"escalations", "--worker", garbage.URL}, 1, "bad reply"},
		{[]string{"escalations", "extra"}, 1, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		_, errOut, code := starter(t, nil, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
		if lines := strings.Count(strings.TrimSpace(errOut), "\n"); c.code == 1 && lines != 0 {
			t.Errorf("%q: error is %d lines, want one", c.args, lines+1)
		}
	}
	_, errOut, code := starter(t, nil, "escalations", "--help")
	if code != 0 || !strings.Contains(errOut, "Usage: starter escalations") || !strings.Contains(errOut, "-worker") ||
		!strings.Contains(errOut, "CHORUS_WORKER") || !strings.Contains(errOut, "-json") {
		t.Fatalf("--help: exit %d, %q", code, errOut)
	}
	out, _, _ := starter(t, nil, "--help")
	if !strings.Contains(out, "escalations") {
		t.Fatalf("usage does not list escalations: %q", out)
	}
}
