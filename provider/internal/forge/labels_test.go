package forge

import (
	"errors"
	"slices"
	"testing"

	"chorus"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestApplyLabels(t *testing.T) {
	tests := []struct {
		labels []string
		want   chorus.Task
	}{
		{nil, chorus.Task{}},
		{[]string{"priority:7"}, chorus.Task{Priority: 7}},
		{[]string{"Priority: 3"}, chorus.Task{Priority: 3}},
		{[]string{"priority:11", "priority:high"}, chorus.Task{}},
		{[]string{"priority:2", "priority:9"}, chorus.Task{Priority: 2}},
		{[]string{"role:tester", "role:dev"}, chorus.Task{Role: "tester"}},
		{[]string{"expertise:go", "expertise:sql", "expertise:go"}, chorus.Task{Expertise: []string{"go", "sql"}}},
		{[]string{"type:testing", "project:apollo", "model:llama3"}, chorus.Task{Type: "testing", ProjectID: "apollo", Model: "llama3"}},
		{[]string{"bug", "role:", "chorus-task"}, chorus.Task{}},
	}
	for _, tt := range tests {
		var got chorus.Task
		applyLabels(&got, tt.labels)
		if got.Priority != tt.want.Priority || got.Role != tt.want.Role || !slices.Equal(got.Expertise, tt.want.Expertise) ||
			got.Type != tt.want.Type || got.ProjectID != tt.want.ProjectID || got.Model != tt.want.Model {
			t.Errorf("applyLabels(%q) = %+v, want %+v", tt.labels, got, tt.want)
		}
	}
}

func TestDependencies(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"", nil},
		{"see #4", nil},
		{"Depends on #4", []string{"task/github/acme/api/4"}},
		{"depends on: #4, #5 and acme/web#9", []string{"task/github/acme/api/4", "task/github/acme/api/5", "task/github/acme/web/9"}},
		{"blocked by #2\ndepends on #2", []string{"task/github/acme/api/2"}},
		{"depends on #1 (itself)", nil},
	}
	for _, tt := range tests {
		if got := Dependencies("github", "acme/api", 1, tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("Dependencies(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestNextLink(t *testing.T) {
	tests := []struct{ header, want string }{
		{"", ""},
		{`<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last"`, "https://api.github.com/repositories/1/issues?page=2"},
		{`<https://x/a?page=1>; rel="prev", <https://x/a?page=3>; rel="next"`, "https://x/a?page=3"},
		{`<https://x/a?page=5>; rel="last"`, ""},
		{`<https://x/a?page=2>; rel="next last"`, "https://x/a?page=2"},
		{`garbage, <broken; rel="next"`, ""},
	}
	for _, tt := range tests {
		if got := NextLink(tt.header); got != tt.want {
			t.Errorf("NextLink(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}
