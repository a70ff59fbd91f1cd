package chorus_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// deps lists the packages a package imports, directly or not.
func deps(t *testing.T, format, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", format, pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(strings.NewReplacer("[", " ", "]", " ").Replace(string(out)))
}

// TestDependenciesPointInward checks the house rules on imports: only
// sandbox/docker imports Docker, only devserver imports the Temporal server
// and UI, and workflows imports only the SDK's workflow packages, the root
// package and activities.
func TestDependenciesPointInward(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \",\"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	rules := []struct {
		dep     string
		allowed []string
	}{
		{"github.com/docker/docker/client", []string{"chorus/sandbox/docker", "chorus/worker", "chorus/tests/bench/sandbox"}},
		{"go.temporal.io/server/temporal", []string{"chorus/devserver", "chorus/worker", "chorus/tests/bench/throughput"}},
		{"github.com/temporalio/ui-server/v2/server", []string{"chorus/devserver", "chorus/worker", "chorus/tests/bench/throughput"}},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, list, _ := strings.Cut(line, " ")
		have := map[string]bool{}
		for _, d := range strings.Split(list, ",") {
			have[d] = true
		}
		for _, r := range rules {
			if have[r.dep] && !slices.Contains(r.allowed, pkg) {
				t.Errorf("%s depends on %s; only %v may", pkg, r.dep, r.allowed)
			}
		}
	}

	// Only gossip imports libp2p directly (and the gossip benchmark, for
	// its raw baseline).
	out, err = exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \",\"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, list, _ := strings.Cut(line, " ")
		for _, imp := range strings.Split(list, ",") {
			if strings.HasPrefix(imp, "github.com/libp2p/") && pkg != "chorus/gossip" && pkg != "chorus/tests/bench/gossip" {
				t.Errorf("%s imports %s; only chorus/gossip may", pkg, imp)
			}
		}
	}

	for _, imp := range deps(t, "{{.Imports}}", "chorus/workflows") {
		switch {
		case imp == "chorus", imp == "chorus/activities", imp == "chorus/selection":
		case strings.HasPrefix(imp, "go.temporal.io/sdk/workflow"), strings.HasPrefix(imp, "go.temporal.io/sdk/temporal"),
			strings.HasPrefix(imp, "go.temporal.io/api/enums"):
		case !strings.Contains(imp, "."): // standard library
			if imp == "os" || imp == "net" || imp == "net/http" || strings.HasPrefix(imp, "io") {
				t.Errorf("workflows imports %s: workflow code must not do I/O", imp)
			}
		default:
			t.Errorf("workflows imports %s; only the SDK's workflow packages, chorus, chorus/activities and the pure chorus/selection are allowed", imp)
		}
	}
	for _, imp := range deps(t, "{{.Imports}}", "chorus") {
		if strings.Contains(imp, ".") {
			t.Errorf("the root package imports %s; it must use the standard library only", imp)
		}
	}
}
