package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"chorus/audit"
)

// auditDataDir makes a data directory holding a log of 4 entries by agent-1:
// task_claimed, task_progress, task_completed, peer_joined.
func auditDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	key, err := audit.LoadOrCreateKey(audit.KeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(audit.LogPath(dir), key, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{audit.TypeTaskClaimed, audit.TypeTaskProgress, audit.TypeTaskCompleted, audit.TypePeerJoined} {
		if _, err := l.Append(context.Background(), typ, map[string]string{"task": "task/board/demo/1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestAuditVerify(t *testing.T) {
	dir := auditDataDir(t)
	out, errOut, code := starter(t, nil, "audit", "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "valid, 4 entries") {
		t.Fatalf("verify: exit %d, %q %q", code, out, errOut)
	}
	// The data directory may come from the environment.
	out, _, code = starter(t, map[string]string{"CHORUS_DATA_DIR": dir}, "audit", "verify", "--json")
	var r struct {
		Log string `json:"log"`
		audit.Report
	}
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || !r.Valid || r.Entries != 4 || r.Log != audit.LogPath(dir) {
		t.Fatalf("verify --json: exit %d, %v, %q", code, err, out)
	}

	// Tamper with entry 3's data: exit 1 naming index 3.
	path := audit.LogPath(dir)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines[2] = bytes.Replace(lines[2], []byte("demo/1"), []byte("demo/2"), 1)
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = starter(t, nil, "audit", "verify", "--data-dir", dir)
	if code != 1 || !strings.Contains(errOut, "first bad entry 3 ") || !strings.Contains(errOut, string(audit.ReasonHash)) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("tampered: exit %d, %q", code, errOut)
	}
	out, _, code = starter(t, nil, "audit", "verify", "--data-dir", dir, "--json")
	if err := json.Unmarshal([]byte(out), &r); code != 1 || err != nil || r.Valid || r.BadIndex != 3 || r.Reason != audit.ReasonHash {
		t.Fatalf("tampered --json: exit %d, %v, %q", code, err, out)
	}
}

func TestAuditQuery(t *testing.T) {
	dir := auditDataDir(t)
	query := func(args ...string) []audit.Entry {
		t.Helper()
		out, errOut, code := starter(t, nil, append([]string{"audit", "query", "--data-dir", dir, "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("query %q: exit %d, %s", args, code, errOut)
		}
		var es []audit.Entry
		if err := json.Unmarshal([]byte(out), &es); err != nil {
			t.Fatalf("query %q: %v: %q", args, err, out)
		}
		return es
	}
	if es := query(); len(es) != 4 || es[3].Type != audit.TypePeerJoined {
		t.Fatalf("all: %+v", es)
	}
	if es := query("--type", "task_completed"); len(es) != 1 || es[0].Index != 3 {
		t.Fatalf("--type: %+v", es)
	}
	if es := query("--author", "agent-2"); len(es) != 0 {
		t.Fatalf("--author agent-2: %+v", es)
	}
	if es := query("--author", "agent-1", "--limit", "2"); len(es) != 2 || es[1].Index != 2 {
		t.Fatalf("--limit: %+v", es)
	}
	if es := query("--from", "2000-01-01T00:00:00Z", "--to", "2000-01-02T00:00:00Z"); len(es) != 0 {
		t.Fatalf("time window in the past: %+v", es)
	}
	if es := query("--from", "2000-01-01T00:00:00Z"); len(es) != 4 {
		t.Fatalf("--from: %+v", es)
	}
	if es := query("--from-index", "2", "--to-index", "3"); len(es) != 2 || es[0].Index != 2 {
		t.Fatalf("index range: %+v", es)
	}

	out, errOut, code := starter(t, nil, "audit", "query", "--data-dir", dir, "--type", "task_claimed")
	if code != 0 || !strings.HasPrefix(out, "INDEX") || !strings.Contains(out, "agent-1") || !strings.Contains(out, `{"task":"task/board/demo/1"}`) || strings.Contains(out, "peer_joined") {
		t.Fatalf("table: exit %d, %q %q", code, out, errOut)
	}
}

func TestAuditBadInput(t *testing.T) {
	dir := auditDataDir(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"audit"}, 2, "want a subcommand"},
		{[]string{"audit", "rewrite"}, 1, `unknown subcommand "rewrite"`},
		{[]string{"audit", "verify", "--data-dir", t.TempDir()}, 1, "node.key"},
		{[]string{"audit", "verify", "--data-dir", dir, "extra"}, 1, `unexpected argument "extra"`},
		{[]string{"audit", "query", "--data-dir", dir, "--type", "nope"}, 1, `type: unknown entry type "nope"`},
		{[]string{"audit", "query", "--data-dir", dir, "--from", "yesterday"}, 1, "--from"},
		{[]string{"audit", "query", "--data-dir", dir, "--limit", "-1"}, 1, "limit:"},
		{[]string{"audit", "query", "--data-dir", t.TempDir()}, 1, "audit.log"},
		{[]string{"audit", "query", "--bogus"}, 2, "flag provided but not defined"},
	}
	for _, c := range cases {
		_, errOut, code := starter(t, nil, c.args...)
		// Code 2: usage errors, any non-zero exit; code 1: exactly 1, one line.
		if code == 0 || (c.code == 1 && code != 1) || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
		if lines := strings.Count(strings.TrimSpace(errOut), "\n"); c.code == 1 && lines != 0 {
			t.Errorf("%q: error is %d lines, want one: %q", c.args, lines+1, errOut)
		}
	}
	for _, sub := range []string{"verify", "query"} {
		_, errOut, code := starter(t, nil, "audit", sub, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage: starter audit "+sub) || !strings.Contains(errOut, "-data-dir") || !strings.Contains(errOut, "-json") {
			t.Errorf("audit %s --help: exit %d, %q", sub, code, errOut)
		}
	}
	if out, _, code := starter(t, nil, "--help"); code != 0 || !strings.Contains(out, "audit") {
		t.Errorf("usage does not list audit: %q", out)
	}
}
