package docker

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"chorus/sandbox"
)

// runScript runs a warm script with the host's shell, as the waiting shell
// in a pool container does.
func runScript(t *testing.T, script string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-s")
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SHLVL=1", "PWD=/"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script failed: %v\n%s\n--- script\n%s", err, out, script)
	}
	return string(out)
}

func TestWarmScriptPassesArgvVerbatim(t *testing.T) {
	argv := []string{"printf", `[%s]\n`, "a  b", "it's", `$HOME`, "-x", "", "two\nlines", `\'"`, "*"}
	got := runScript(t, warmScript(argv, nil, nil))
	want := "[a  b]\n[it's]\n[$HOME]\n[-x]\n[]\n[two\nlines]\n[\\'\"]\n[*]\n"
	if got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestWarmScriptSetsTheColdEnvironment(t *testing.T) {
	env := []string{"QUOTED=it's $x", "EMPTY=", "MULTI=a\nb", "PATH=/bin:/usr/bin", "DUP=1", "DUP=2"}
	got := strings.Split(runScript(t, warmScript([]string{"env"}, env, []string{"SHLVL=7"})), "\n")
	slices.Sort(got)
	got = slices.DeleteFunc(got, func(s string) bool { return s == "" })
	// MULTI's value spans two lines of env's output.
	want := []string{"DUP=2", "EMPTY=", "MULTI=a", "PATH=/bin:/usr/bin", "QUOTED=it's $x", "SHLVL=7", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("environment = %q, want %q (the shell's own PWD and SHLVL gone)", got, want)
	}
}

func TestPoolMismatch(t *testing.T) {
	p := newPool(PoolConfig{Size: 1, Dir: "/pool", Spec: sandbox.Spec{
		Image:  "img",
		Labels: map[string]string{"team": "a", "kind": "build"},
	}}, "/pool/agent")
	base := sandbox.Spec{Image: "img", Command: []string{"true"}, Workspace: "/w"}.WithDefaults()
	cases := []struct {
		name   string
		mutate func(*sandbox.Spec)
		want   string // "" when the pool can serve the spec
	}{
		{"same", func(*sandbox.Spec) {}, ""},
		{"label subset", func(s *sandbox.Spec) { s.Labels = map[string]string{"team": "a"} }, ""},
		{"runner labels ignored", func(s *sandbox.Spec) {
			s.Labels = map[string]string{LabelAgent: "x", LabelManaged: "no"}
		}, ""},
		{"env and run fields", func(s *sandbox.Spec) {
			s.Env, s.Timeout, s.TailBytes, s.OutputPath = []string{"A_1=x=y", "_B="}, 1, 1, "/out"
		}, ""},
		{"image", func(s *sandbox.Spec) { s.Image = "other" }, "image"},
		{"memory", func(s *sandbox.Spec) { s.MemoryBytes++ }, "limits"},
		{"cpus", func(s *sandbox.Spec) { s.NanoCPUs++ }, "limits"},
		{"pids", func(s *sandbox.Spec) { s.PidsLimit++ }, "limits"},
		{"user", func(s *sandbox.Spec) { s.User = "1000" }, "user"},
		{"extra label", func(s *sandbox.Spec) { s.Labels = map[string]string{"task": "1"} }, "labels"},
		{"label value", func(s *sandbox.Spec) { s.Labels = map[string]string{"team": "b"} }, "labels"},
		{"env without value", func(s *sandbox.Spec) { s.Env = []string{"A"} }, "environment"},
		{"env name", func(s *sandbox.Spec) { s.Env = []string{"A-B=1"} }, "environment"},
		{"env name digit", func(s *sandbox.Spec) { s.Env = []string{"1A=1"} }, "environment"},
		{"NUL in command", func(s *sandbox.Spec) { s.Command = []string{"a\x00b"} }, "NUL"},
		{"option-like command", func(s *sandbox.Spec) { s.Command = []string{"-x"} }, "'-'"},
	}
	for _, c := range cases {
		s := base
		c.mutate(&s)
		got := p.mismatch(s)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: mismatch = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestSlotDirNameIsOnePathElement(t *testing.T) {
	cases := map[string]string{
		"agent-1.example_2": "agent-1.example_2",
		"a/../b":            "a_.._b",
		"..":                "__",
		".":                 "_",
		"host name:1":       "host_name_1",
	}
	for id, want := range cases {
		if got := slotDirName(id); got != want {
			t.Errorf("slotDirName(%q) = %q, want %q", id, got, want)
		}
	}
}
