package coordination_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"chorus/coordination"
)

func openStore(t *testing.T, dir string) *coordination.Store {
	t.Helper()
	s, err := coordination.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreSurvivesARestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "coordination")
	s := openStore(t, dir)
	if len(s.Escalations()) != 0 || len(s.Records()) != 0 {
		t.Fatal("a new store is not empty")
	}
	e2 := coordination.Escalation{SessionID: "s2", Kind: "dependency", TaskKeys: []string{"task/board/a/1", "task/board/b/1"},
		Reason: "no consensus after 10 messages", RequiresHuman: true, Messages: 10, EscalatedAt: t0.Add(2)}
	e1 := coordination.Escalation{SessionID: "s1", TaskKeys: []string{"task/board/c/1"}, Reason: "no consensus within 30m0s",
		RequiresHuman: true, EscalatedAt: t0.Add(1), ReportedBy: "12D3KooW"}
	for _, e := range []coordination.Escalation{e2, e1} {
		if added, err := s.AddEscalation(e); err != nil || !added {
			t.Fatalf("AddEscalation(%s) = %v, %v", e.SessionID, added, err)
		}
	}
	if added, err := s.AddEscalation(coordination.Escalation{SessionID: "s1", Reason: "again"}); err != nil || added {
		t.Fatalf("same session again: added %v, %v", added, err)
	}
	r := coordination.Record{SessionID: "s3", Kind: "dependency", TaskKeys: []string{"task/board/a/1"}, Outcome: "resolved", Agreements: 2, ClosedAt: t0}
	if added, err := s.AddRecord(r); err != nil || !added {
		t.Fatalf("AddRecord = %v, %v", added, err)
	}
	if added, _ := s.AddRecord(r); added {
		t.Fatal("the same record was added twice")
	}

	again := openStore(t, dir)
	if got := again.Escalations(); !reflect.DeepEqual(got, []coordination.Escalation{e1, e2}) {
		t.Fatalf("after reopening: %+v", got)
	}
	if got, ok := again.Escalation("s2"); !ok || !reflect.DeepEqual(got, e2) {
		t.Fatalf("Escalation(s2) = %+v, %v", got, ok)
	}
	if _, ok := again.Escalation("nope"); ok {
		t.Fatal("Escalation of an unknown session found")
	}
	if got := again.Records(); !reflect.DeepEqual(got, []coordination.Record{r}) {
		t.Fatalf("records after reopening: %+v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != coordination.StoreFile {
		t.Fatalf("the store left other files: %v", entries)
	}
}

func TestStoreRefusesABrokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, coordination.StoreFile)
	if err := os.WriteFile(path, []byte(`{"version": 1, "escalations": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := coordination.OpenStore(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("OpenStore of a torn file = %v, want an error naming it", err)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"version": 1, "escalations": [` {
		t.Fatal("the broken file was changed")
	}
	if err := os.WriteFile(path, []byte(`{"version": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := coordination.OpenStore(dir); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("OpenStore of a newer file = %v", err)
	}
}

func TestEscalationsHandler(t *testing.T) {
	s := openStore(t, t.TempDir())
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	get := func(path string, v any) int {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode
	}
	var raw json.RawMessage
	if code := get("/api/v1/escalations", &raw); code != 200 || string(raw) != "[]" {
		t.Fatalf("empty list: %d %s", code, raw)
	}
	e := coordination.Escalation{SessionID: "s1", TaskKeys: []string{"task/board/a/1"}, Reason: "no consensus after 10 messages",
		RequiresHuman: true, Messages: 10, EscalatedAt: t0}
	if _, err := s.AddEscalation(e); err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if code := get("/api/v1/escalations", &list); code != 200 || len(list) != 1 || list[0]["session_id"] != "s1" ||
		list[0]["requires_human"] != true || list[0]["messages"] != float64(10) {
		t.Fatalf("list: %d %+v", code, list)
	}
	var one coordination.Escalation
	if code := get("/api/v1/escalations/s1", &one); code != 200 || !reflect.DeepEqual(one, e) {
		t.Fatalf("one: %d %+v", code, one)
	}
	var apiErr struct{ Error string }
	if code := get("/api/v1/escalations/nope", &apiErr); code != 404 || !strings.Contains(apiErr.Error, "session_id") {
		t.Fatalf("unknown: %d %+v", code, apiErr)
	}
}
