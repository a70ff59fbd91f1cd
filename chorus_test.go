package chorus_test

import (
	"errors"
	"strings"
	"testing"

	"chorus"
)

func TestTaskKeyRoundTrip(t *testing.T) {
	for _, k := range []chorus.TaskKey{
		{Provider: "board", Repository: "demo", Number: 1},
		{Provider: "github", Repository: "acme/api", Number: 42},
	} {
		got, err := chorus.ParseTaskKey(k.String())
		if err != nil {
			t.Fatalf("ParseTaskKey(%q): %v", k, err)
		}
		if got != k {
			t.Fatalf("round trip: got %+v, want %+v", got, k)
		}
	}
}

func TestParseTaskKeyRejects(t *testing.T) {
	for _, s := range []string{"", "board/demo/1", "task/board/demo", "task/board/demo/x", "task/board/demo/0", "task//demo/1", "task/board/a b/1"} {
		if _, err := chorus.ParseTaskKey(s); !errors.Is(err, chorus.ErrInvalid) {
			t.Errorf("ParseTaskKey(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestTaskValidateNamesField(t *testing.T) {
	cases := map[string]chorus.Task{
		"title":          {Title: " "},
		"priority":       {Title: "x", Priority: 11},
		"repository":     {Title: "x", Repository: "a/b/c"},
		"allow_hosts[1]": {Title: "x", AllowHosts: []string{"proxy.golang.org:443", "http://evil"}},
	}
	for field, task := range cases {
		err := task.Validate()
		if !errors.Is(err, chorus.ErrInvalid) {
			t.Fatalf("%s: got %v, want ErrInvalid", field, err)
		}
		if want := field + ":"; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not name the field", field, err)
		}
	}
	if err := (chorus.Task{Title: "ok", Repository: "acme/api", Priority: 10, AllowHosts: []string{"*.debian.org", "127.0.0.1:8080"}}).Validate(); err != nil {
		t.Fatalf("valid task rejected: %v", err)
	}
}

func TestDetectTaskType(t *testing.T) {
	cases := []struct{ title, body, want string }{
		{"Fix the login bug", "", chorus.TypeBugFix},
		{"Implement export", "", chorus.TypeFeature},
		{"Add unit tests", "", chorus.TypeTesting},
		{"Update docs", "", chorus.TypeDocs},
		{"Refactor the parser", "", chorus.TypeRefactoring},
		{"Please review PR", "", chorus.TypeReview},
		{"Make it faster", "", chorus.TypeDevelopment},
	}
	for _, c := range cases {
		if got := chorus.DetectTaskType(c.title, c.body); got != c.want {
			t.Errorf("DetectTaskType(%q) = %s, want %s", c.title, got, c.want)
		}
	}
}
