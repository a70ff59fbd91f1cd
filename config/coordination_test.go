package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/config"
)

func TestParseCoordination(t *testing.T) {
	f, err := config.Parse([]byte(`coordination:
  scan_interval: 1m
  max_participants: 4
  session_timeout: 20m
  max_messages: 12
  cleanup_interval: 5m
  rules:
    - name: payments
      task: [checkout, cart*]
      depends_on: [payment*]
      confidence: 0.6
    - {name: queues, task: [kafka, queue*]}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Coordination{
		ScanInterval: config.Duration(time.Minute), MaxParticipants: 4, SessionTimeout: config.Duration(20 * time.Minute),
		MaxMessages: 12, CleanupInterval: config.Duration(5 * time.Minute),
		Rules: []config.DependencyRule{
			{Name: "payments", Task: []string{"checkout", "cart*"}, DependsOn: []string{"payment*"}, Confidence: 0.6},
			{Name: "queues", Task: []string{"kafka", "queue*"}},
		},
	}
	if !reflect.DeepEqual(f.Coordination, want) {
		t.Fatalf("Coordination =\n%+v\nwant\n%+v", f.Coordination, want)
	}
	if d := config.Default().Coordination; !reflect.DeepEqual(d, config.Coordination{}) {
		t.Fatalf("default Coordination %+v, want all zero (the SPEC defaults)", d)
	}
}

func TestCoordinationProblemsNameTheField(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"rule without name", "coordination:\n  rules:\n    - {task: [x]}\n", `config: coordination.rules[0].name: must be lower-case letters, digits, _ . or -, got ""`},
		{"rule name with capitals", "coordination:\n  rules:\n    - {name: Pay, task: [x]}\n", "config: coordination.rules[0].name: must be lower-case"},
		{"built-in name", "coordination:\n  rules:\n    - {name: security, task: [x]}\n", `config: coordination.rules[0].name: "security" is a built-in rule`},
		{"duplicate name", "coordination:\n  rules:\n    - {name: a, task: [x]}\n    - {name: a, task: [y]}\n",
			`config: coordination.rules[1].name: duplicate rule "a" (also coordination.rules[0])`},
		{"no task keywords", "coordination:\n  rules:\n    - {name: a}\n", "config: coordination.rules[0].task: at least one keyword is needed"},
		{"upper-case keyword", "coordination:\n  rules:\n    - {name: a, task: [Kafka]}\n", `config: coordination.rules[0].task[0]: must be lower-case letters or digits, optionally ending in *, got "Kafka"`},
		{"star inside", "coordination:\n  rules:\n    - {name: a, task: [x], depends_on: [ok, pay*ment]}\n", `config: coordination.rules[0].depends_on[1]`},
		{"confidence", "coordination:\n  rules:\n    - {name: a, task: [x], confidence: 1.2}\n", "config: coordination.rules[0].confidence: must be within 0..1, got 1.2"},
		{"participants", "coordination:\n  max_participants: 17\n", "config: coordination.max_participants: must be between 1 and 16 (0 for the default of 5), got 17 (line 2)"},
		{"messages", "coordination:\n  max_messages: -1\n", "config: coordination.max_messages: must not be negative, got -1"},
		{"unknown field", "coordination:\n  rulez: []\n", "config: coordination.rulez: unknown field (line 2)"},
		{"negative duration", "coordination:\n  session_timeout: -1m\n", "config: coordination.session_timeout: invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v\nwant %q", err, tt.want)
			}
			if !errors.Is(err, chorus.ErrInvalid) {
				t.Error("error does not wrap chorus.ErrInvalid")
			}
		})
	}
}
