package coordination_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/coordination"
	"chorus/gossip"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func task(repo string, n int, title, desc string) chorus.Task {
	return chorus.Task{Provider: "board", Repository: repo, Number: n, Title: title, Description: desc,
		State: chorus.StateOpen, CreatedAt: t0.Add(time.Duration(n) * time.Minute)}
}

// found is an alert reduced to what the tests compare.
func found(alerts []gossip.DependencyAlert) []string {
	var out []string
	for _, a := range alerts {
		out = append(out, fmt.Sprintf("%s: %s -> %s", a.Rule, a.Task.TaskKey, a.DependsOn.TaskKey))
	}
	return out
}

func TestBuiltinRules(t *testing.T) {
	d, err := coordination.NewDetector(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		a, b chorus.Task
		want []string
	}{
		{"api contract: the implementation depends on the api",
			task("acme/api", 1, "Define the user API", "GET /users"),
			task("acme/web", 2, "Implement the signup page", "calls the backend"),
			[]string{"api_contract: task/board/acme/web/2 -> task/board/acme/api/1"}},
		{"api contract, direction from the words not the age",
			task("acme/web", 1, "Implementation of the profile screen", ""),
			task("acme/api", 2, "Profile APIs", "add the v2 endpoints"),
			[]string{"api_contract: task/board/acme/web/1 -> task/board/acme/api/2"}},
		{"api as part of an identifier",
			task("acme/api", 1, "Bump user_api to v3", ""),
			task("acme/web", 2, "Implements retries", ""),
			[]string{"api_contract: task/board/acme/web/2 -> task/board/acme/api/1"}},
		{"database schema needs a word in both",
			task("acme/api", 1, "Add a migration for orders", ""),
			task("acme/billing", 2, "Read the orders table", ""),
			[]string{"database_schema: task/board/acme/billing/2 -> task/board/acme/api/1"}},
		{"database schema, plural and prefix forms",
			task("acme/api", 1, "Schemas for v2", ""),
			task("acme/etl", 2, "Databases cleanup", "drop old tables"),
			[]string{"database_schema: task/board/acme/etl/2 -> task/board/acme/api/1"}},
		{"configuration",
			task("acme/api", 1, "Move settings to the config file", ""),
			task("acme/deploy", 2, "Set the environment for staging", ""),
			[]string{"configuration: task/board/acme/deploy/2 -> task/board/acme/api/1"}},
		{"configuration, longer forms",
			task("acme/api", 1, "Configurable timeouts", "configuration keys"),
			task("acme/ops", 2, "Environments per region", ""),
			[]string{"configuration: task/board/acme/ops/2 -> task/board/acme/api/1"}},
		{"security",
			task("acme/api", 1, "Rotate the signing token", ""),
			task("acme/web", 2, "Show a permission error", ""),
			[]string{"security: task/board/acme/web/2 -> task/board/acme/api/1"}},
		{"security, auth forms",
			task("acme/api", 1, "OAuth2 login", ""),
			task("acme/cli", 2, "Authentication for the CLI", "reuse the auth flow"),
			[]string{"security: task/board/acme/cli/2 -> task/board/acme/api/1"}},
		{"several rules for one pair, in rule order",
			task("acme/api", 1, "API tokens", "store them in the database"),
			task("acme/web", 2, "Implement token refresh", "keep the schema"),
			[]string{
				"api_contract: task/board/acme/web/2 -> task/board/acme/api/1",
				"database_schema: task/board/acme/web/2 -> task/board/acme/api/1",
				"security: task/board/acme/web/2 -> task/board/acme/api/1",
			}},
		{"both show both sides: the later task waits",
			task("acme/api", 1, "Implement the API server", ""),
			task("acme/web", 2, "Implement the API client", ""),
			[]string{"api_contract: task/board/acme/web/2 -> task/board/acme/api/1"}},
		{"same repository: never",
			task("acme/api", 1, "Define the user API", ""),
			task("acme/api", 2, "Implement the user API", ""),
			nil},
		{"same repository in another case: never",
			task("acme/API", 1, "Define the user API", ""),
			task("acme/api", 2, "Implement the user API", ""),
			nil},
		// Near misses: the words are inside other words.
		{"rapid and capital are not api",
			task("acme/api", 1, "Rapid prototyping", "capital letters"),
			task("acme/web", 2, "Implement caching", ""),
			nil},
		{"api alone is not enough",
			task("acme/api", 1, "Define the user API", ""),
			task("acme/web", 2, "Document the API", ""),
			nil},
		{"implement alone is not enough",
			task("acme/api", 1, "Implement caching", ""),
			task("acme/web", 2, "Implement retries", ""),
			nil},
		{"author and authority are not auth",
			task("acme/api", 1, "Credit the author", ""),
			task("acme/web", 2, "Ask the authority", "auth"),
			nil},
		{"tablet, stable and timetable are not table",
			task("acme/api", 1, "Support tablets", "stable release"),
			task("acme/web", 2, "Timetable view", "table"),
			nil},
		{"reconfigure does not start with config",
			task("acme/api", 1, "Reconfigure the proxy", ""),
			task("acme/web", 2, "New config loader", ""),
			nil},
		{"stokes is not token",
			task("acme/api", 1, "Stokes equations", ""),
			task("acme/web", 2, "Token refresh", ""),
			nil},
		{"database in one only",
			task("acme/api", 1, "Database tuning", ""),
			task("acme/web", 2, "CSS tuning", ""),
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := found(d.Detect([]chorus.Task{tt.a, tt.b}, t0))
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Detect = %q\nwant      %q", got, tt.want)
			}
		})
	}
}

func TestAlertFields(t *testing.T) {
	d, _ := coordination.NewDetector(nil)
	a := task("acme/api", 1, "Define the user API", "")
	b := task("acme/web", 2, "Implement the signup page", "")
	alerts := d.Detect([]chorus.Task{a, b}, t0)
	if len(alerts) != 1 {
		t.Fatalf("alerts = %+v", alerts)
	}
	got := alerts[0]
	want := gossip.DependencyAlert{
		Rule: "api_contract", Confidence: 0.8,
		Task:       gossip.TaskRef{TaskKey: "task/board/acme/web/2", Repository: "acme/web", Title: "Implement the signup page"},
		DependsOn:  gossip.TaskRef{TaskKey: "task/board/acme/api/1", Repository: "acme/api", Title: "Define the user API"},
		Reason:     `api_contract: task/board/acme/web/2 mentions "implement" and task/board/acme/api/1 mentions "api"`,
		DetectedAt: t0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("alert\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("the alert does not pass the gossip check: %v", err)
	}
}

func TestDetectIsDeterministic(t *testing.T) {
	d, _ := coordination.NewDetector(nil)
	tasks := []chorus.Task{
		task("acme/api", 1, "API for orders", "schema v2"),
		task("acme/web", 2, "Implement the orders page", "uses the orders table"),
		task("acme/cli", 3, "Implement orders export", "config flag"),
		task("acme/ops", 4, "Environment for orders", "database backups"),
		task("acme/api", 5, "Implement the config loader", ""),
	}
	want := found(d.Detect(tasks, t0))
	if len(want) < 5 {
		t.Fatalf("too few alerts to test the order: %q", want)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		shuffled := append([]chorus.Task{}, tasks...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		// A task listed twice is one task.
		shuffled = append(shuffled, shuffled[0])
		if got := found(d.Detect(shuffled, t0)); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: Detect = %q\nwant %q", i, got, want)
		}
	}
	for i := 1; i < len(want); i++ {
		if want[i-1] == want[i] {
			t.Fatalf("duplicate alert %q", want[i])
		}
	}
}

func TestCustomRules(t *testing.T) {
	d, err := coordination.NewDetector([]coordination.Rule{
		{Name: "payments", Task: []string{"checkout"}, DependsOn: []string{"payment*", "invoice*"}, Confidence: 0.6},
		{Name: "queues", Task: []string{"kafka", "queue*"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tasks := []chorus.Task{
		task("acme/billing", 1, "Payments provider switch", ""),
		task("acme/shop", 2, "Checkout redesign", ""),
		task("acme/events", 3, "Kafka topics", ""),
		task("acme/mail", 4, "Mail queue", ""),
	}
	alerts := d.Detect(tasks, t0)
	want := []string{
		"payments: task/board/acme/shop/2 -> task/board/acme/billing/1",
		"queues: task/board/acme/mail/4 -> task/board/acme/events/3",
	}
	if got := found(alerts); !reflect.DeepEqual(got, want) {
		t.Fatalf("Detect = %q, want %q", got, want)
	}
	if alerts[0].Confidence != 0.6 || alerts[1].Confidence != coordination.DefaultConfidence {
		t.Fatalf("confidences %v, %v; want 0.6 and the default", alerts[0].Confidence, alerts[1].Confidence)
	}
	if n := len(d.Rules()); n != 6 {
		t.Fatalf("%d rules, want the 4 built-in ones and 2 custom", n)
	}
}

func TestBadCustomRules(t *testing.T) {
	tests := []struct {
		rule coordination.Rule
		want string
	}{
		{coordination.Rule{Name: "", Task: []string{"x"}}, "name"},
		{coordination.Rule{Name: "Pay Ments", Task: []string{"x"}}, "name"},
		{coordination.Rule{Name: "security", Task: []string{"x"}}, "already a rule"},
		{coordination.Rule{Name: "p", Task: nil}, "task"},
		{coordination.Rule{Name: "p", Task: []string{"Payment"}}, "task[0]"},
		{coordination.Rule{Name: "p", Task: []string{"pay*ment"}}, "task[0]"},
		{coordination.Rule{Name: "p", Task: []string{"pay"}, DependsOn: []string{"ok", ""}}, "depends_on[1]"},
		{coordination.Rule{Name: "p", Task: []string{"pay"}, Confidence: 1.5}, "confidence"},
	}
	for _, tt := range tests {
		_, err := coordination.NewDetector([]coordination.Rule{tt.rule})
		if err == nil || !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewDetector(%+v) = %v, want an ErrInvalid naming %q", tt.rule, err, tt.want)
		}
	}
}
