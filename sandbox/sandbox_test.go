package sandbox_test

import (
	"errors"
	"strings"
	"testing"

	"chorus/sandbox"
)

func TestSpecValidateNamesField(t *testing.T) {
	ok := sandbox.Spec{Image: "i", Command: []string{"true"}, Workspace: "/w"}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid spec rejected: %v", err)
	}
	cases := map[string]func(*sandbox.Spec){
		"image":     func(s *sandbox.Spec) { s.Image = "" },
		"command":   func(s *sandbox.Spec) { s.Command = nil },
		"workspace": func(s *sandbox.Spec) { s.Workspace = "" },
		"memory":    func(s *sandbox.Spec) { s.MemoryBytes = 1024 },
		"user":      func(s *sandbox.Spec) { s.User = "root" },
	}
	for field, mutate := range cases {
		s := ok
		mutate(&s)
		err := s.Validate()
		if !errors.Is(err, sandbox.ErrInvalidSpec) || !strings.Contains(err.Error(), field+":") {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

func TestTailKeepsLastBytes(t *testing.T) {
	tl := sandbox.NewTail(5)
	for _, s := range []string{"abc", "defg", "hi"} {
		tl.Write([]byte(s))
	}
	if got := tl.String(); got != "efghi" {
		t.Fatalf("tail = %q, want efghi", got)
	}
	if tl.Len != 9 {
		t.Fatalf("len = %d, want 9", tl.Len)
	}
}
