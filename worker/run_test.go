package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func noenv(string) string { return "" }

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--help"}, noenv, &out, &errOut)
	if err != errHelp {
		t.Fatalf("err = %v, want errHelp", err)
	}
	for _, flag := range []string{"--dev", "-data-dir", "-ops-addr", "-temporal-port", "-ui-port", "-config", "-temporal", "-agent-id", "-election-profile", "-election-heartbeat", "-election-timeout"} {
		if !strings.Contains(errOut.String(), strings.TrimLeft(flag, "-")) {
			t.Errorf("help does not mention %s", flag)
		}
	}
}

func TestBadInputNamesTheProblem(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(bad, []byte("agent:\n  max_tasks: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("agent:\n  colour: red\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--no-agent"}, "--no-agent needs --dev"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--config", bad, "--data-dir", dir}, "agent.max_tasks"},
		{[]string{"--config", unknown, "--data-dir", dir}, "agent.colour"},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
		{[]string{"--heartbeat-timeout", "0s"}, "--heartbeat-timeout"},
		{[]string{"--drain-failures", "0"}, "--drain-failures"},
		{[]string{"--drain-timeout", "-1s"}, "--drain-timeout"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--election-profile", "turbo"}, "--election-profile"},
		{[]string{"--election-heartbeat", "5s", "--election-timeout", "6s"}, "two heartbeats"},
		{[]string{"--election-timeout", "-1s"}, "must not be negative"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		err := run(context.Background(), c.args, noenv, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%q) = %v, want an error mentioning %q", c.args, err, c.want)
		}
	}
}

func TestBusyOpsPortIsReported(t *testing.T) {
	ln, err := listenOps(options{opsAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	// Given explicitly, a busy port is an error that names it.
	if _, err := listenOps(options{opsAddr: addr, opsAddrSet: true}); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("explicit busy port: err = %v", err)
	}
	// The default moves to the next free port.
	ln2, err := listenOps(options{opsAddr: addr})
	if err != nil {
		t.Fatalf("default busy port: %v", err)
	}
	defer ln2.Close()
	if ln2.Addr().String() == addr {
		t.Fatal("fell back to the busy port")
	}
}
