package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"chorus"
	"chorus/provider/board"
)

func starter(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, func(k string) string { return env[k] }, &o, &e)
	return o.String(), e.String(), code
}

func TestUsageAndBadInput(t *testing.T) {
	out, _, code := starter(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "submit") || !strings.Contains(out, "cancel") {
		t.Fatalf("--help: exit %d, %q", code, out)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"submit"}, 1, "--title is required"},
		{[]string{"submit", "--title", "x", "--priority", "11"}, 1, "priority: 11"},
		{[]string{"submit", "--title", "x", "--repo", "a/b/c"}, 1, "repository"},
		{[]string{"status"}, 1, "exactly one task key"},
		{[]string{"status", "board/x/1"}, 1, "must start with task/"},
		{[]string{"cancel", "task/board/x/zero"}, 1, "positive integer"},
		{[]string{"list", "--state", "done"}, 1, `unknown state "done"`},
		{[]string{"submit", "--title", "x", "--nope"}, 2, "flag provided but not defined"},
	}
	for _, c := range cases {
		_, errOut, code := starter(t, nil, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want non-zero and %q", c.args, code, errOut, c.want)
		}
		if lines := strings.Count(strings.TrimSpace(errOut), "\n"); c.code == 1 && lines != 0 {
			t.Errorf("%q: error is %d lines, want one: %q", c.args, lines+1, errOut)
		}
	}
}

func TestCommandHelp(t *testing.T) {
	for _, cmd := range []string{"submit", "list", "status", "watch", "cancel"} {
		_, errOut, code := starter(t, nil, cmd, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage: starter "+cmd) || !strings.Contains(errOut, "-json") {
			t.Errorf("%s --help: exit %d, %q", cmd, code, errOut)
		}
	}
}

func TestListReadsTheBoard(t *testing.T) {
	b, err := board.Open(filepath.Join(t.TempDir(), "board.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	ctx := context.Background()
	for _, title := range []string{"low", "high"} {
		prio := 1
		if title == "high" {
			prio = 9
		}
		if _, _, err := b.Add(ctx, chorus.Task{Title: title, Repository: "demo", Priority: prio}); err != nil {
			t.Fatal(err)
		}
	}
	// Flags may follow positional arguments and come from the environment.
	out, errOut, code := starter(t, map[string]string{"CHORUS_BOARD": srv.URL}, "list", "--json", "--state", "open")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	var items []listItem
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("list --json: %v: %q", err, out)
	}
	if len(items) != 2 || items[0].Title != "high" || items[0].TaskKey != "task/board/demo/2" || items[1].State != chorus.StateOpen {
		t.Fatalf("items = %+v", items)
	}
	out, _, code = starter(t, nil, "list", "--board", srv.URL)
	if code != 0 || !strings.Contains(out, "task/board/demo/1") || !strings.HasPrefix(out, "KEY") {
		t.Fatalf("list table: exit %d, %q", code, out)
	}
	_, errOut, code = starter(t, nil, "list", "--board", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Fatalf("unreachable board: exit %d, %q", code, errOut)
	}
}

func TestParseAllowsFlagsAfterArguments(t *testing.T) {
	e := &env{getenv: func(string) string { return "" }, stderr: &bytes.Buffer{}}
	fs := e.flags("status", "KEY", "")
	pos, err := parse(fs, []string{"task/board/a/1", "--json", "--temporal", "h:1"})
	if err != nil || len(pos) != 1 || pos[0] != "task/board/a/1" || !e.json || e.temporal != "h:1" {
		t.Fatalf("pos %q err %v json %v temporal %q", pos, err, e.json, e.temporal)
	}
}
