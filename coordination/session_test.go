package coordination_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/coordination"
)

func newTable(t *testing.T) *coordination.Table {
	t.Helper()
	tb, err := coordination.NewTable(coordination.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func open(t *testing.T, tb *coordination.Table, participants ...string) {
	t.Helper()
	if _, err := tb.Open(coordination.OpenRequest{ID: "s", Kind: coordination.KindDependency, TaskKeys: []string{"task/board/a/1", "task/board/b/1"},
		Participants: participants, Owner: participants[0]}, t0); err != nil {
		t.Fatal(err)
	}
}

// msg is a message written as "from:kind", e.g. "b:agreement".
func msg(s string) coordination.Message {
	from, kind, _ := strings.Cut(s, ":")
	return coordination.Message{From: from, Kind: coordination.MessageKind(kind), Text: s}
}

func TestConsensusAndEscalation(t *testing.T) {
	tests := []struct {
		name         string
		participants []string
		messages     []string
		// wantState is the state after the last message; wantAt is the
		// 1-based message that closed it (0: still open).
		wantState coordination.State
		wantAt    int
		wantAgree int
	}{
		{"two participants: one agreement resolves", []string{"a", "b"},
			[]string{"a:proposal", "b:agreement"}, coordination.StateResolved, 2, 1},
		{"three participants: exactly participants-1 agreements resolve", []string{"a", "b", "c"},
			[]string{"a:proposal", "b:agreement", "c:agreement"}, coordination.StateResolved, 3, 2},
		{"three participants: one agreement short", []string{"a", "b", "c"},
			[]string{"a:proposal", "b:agreement", "c:objection"}, coordination.StateOpen, 0, 1},
		{"the same participant agreeing twice counts once", []string{"a", "b", "c"},
			[]string{"a:proposal", "b:agreement", "b:agreement"}, coordination.StateOpen, 0, 1},
		{"agreements older than the last 3 messages do not count", []string{"a", "b", "c"},
			[]string{"a:proposal", "b:agreement", "a:note", "a:note", "c:agreement"}, coordination.StateOpen, 0, 1},
		{"agreements exactly within the last 3 messages count", []string{"a", "b", "c"},
			[]string{"a:proposal", "a:note", "b:agreement", "a:note", "c:agreement"}, coordination.StateResolved, 5, 2},
		{"the proposer may agree as well", []string{"a", "b", "c"},
			[]string{"a:proposal", "a:agreement", "b:agreement"}, coordination.StateResolved, 3, 2},
		{"one participant: the first message resolves", []string{"a"},
			[]string{"a:proposal"}, coordination.StateResolved, 1, 0},
		{"four participants: three agreements fill the window", []string{"a", "b", "c", "d"},
			[]string{"a:proposal", "b:agreement", "c:agreement", "d:agreement"}, coordination.StateResolved, 4, 3},
		{"five participants cannot reach consensus within a window of 3", []string{"a", "b", "c", "d", "e"},
			[]string{"a:proposal", "b:agreement", "c:agreement", "d:agreement", "e:agreement", "a:note", "b:note", "c:note", "d:note", "e:note"},
			coordination.StateEscalated, 10, 0},
		{"9 messages without consensus stay open", []string{"a", "b", "c"},
			[]string{"a:proposal", "b:agreement", "c:objection", "a:proposal", "b:agreement", "c:objection", "a:proposal", "b:agreement", "c:objection"},
			coordination.StateOpen, 0, 1},
		{"exactly 10 messages without consensus escalate", []string{"a", "b", "c"},
			[]string{"a:proposal", "b:agreement", "c:objection", "a:proposal", "b:agreement", "c:objection", "a:proposal", "b:agreement", "c:objection", "a:proposal"},
			coordination.StateEscalated, 10, 1},
		{"consensus on the 10th message wins over the count", []string{"a", "b", "c"},
			[]string{"a:proposal", "b:objection", "c:objection", "a:proposal", "b:objection", "c:objection", "a:proposal", "a:note", "b:agreement", "c:agreement"},
			coordination.StateResolved, 10, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTable(t)
			open(t, tb, tt.participants...)
			closedAt := 0
			for i, m := range tt.messages {
				ch, err := tb.Add("s", msg(m), t0.Add(time.Duration(i+1)*time.Second))
				if err != nil {
					t.Fatalf("message %d %q: %v", i+1, m, err)
				}
				if !ch.Accepted {
					t.Fatalf("message %d %q not accepted", i+1, m)
				}
				if ch.Closed {
					if closedAt != 0 {
						t.Fatalf("closed twice, at %d and %d", closedAt, i+1)
					}
					closedAt = i + 1
					if i+1 < len(tt.messages) {
						t.Fatalf("closed at message %d of %d: %+v", i+1, len(tt.messages), ch.Session)
					}
				}
			}
			s, _ := tb.Get("s")
			if s.State != tt.wantState || closedAt != tt.wantAt || s.Agreements != tt.wantAgree {
				t.Fatalf("state %s closed at %d agreements %d (%s); want %s at %d with %d",
					s.State, closedAt, s.Agreements, s.Outcome, tt.wantState, tt.wantAt, tt.wantAgree)
			}
			if s.State != coordination.StateOpen && (s.Outcome == "" || s.ClosedAt.IsZero()) {
				t.Fatalf("closed session without outcome or time: %+v", s)
			}
			if _, err := tb.Add("s", msg("a:note"), t0.Add(time.Minute)); s.State != coordination.StateOpen && !errors.Is(err, coordination.ErrSessionClosed) {
				t.Fatalf("message after close: %v, want ErrSessionClosed", err)
			}
		})
	}
}

func TestThirtyMinuteBoundary(t *testing.T) {
	limit := coordination.DefaultLimits().MaxDuration
	if limit != 30*time.Minute {
		t.Fatalf("default MaxDuration %s, want 30m", limit)
	}
	tests := []struct {
		name     string
		at       time.Duration
		tick     bool
		escalate bool
	}{
		{"a message just before the deadline counts", limit - time.Nanosecond, false, false},
		{"a message at the deadline escalates instead", limit, false, true},
		{"a message after the deadline escalates instead", limit + time.Hour, false, true},
		{"a tick just before the deadline does nothing", limit - time.Nanosecond, true, false},
		{"a tick at the deadline escalates", limit, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTable(t)
			open(t, tb, "a", "b", "c")
			at := t0.Add(tt.at)
			var ch coordination.Change
			if tt.tick {
				changes := tb.Tick(at)
				if len(changes) > 1 {
					t.Fatalf("Tick = %+v", changes)
				}
				if len(changes) == 1 {
					ch = changes[0]
				}
			} else {
				var err error
				if ch, err = tb.Add("s", msg("a:proposal"), at); err != nil {
					t.Fatal(err)
				}
				if ch.Accepted == tt.escalate {
					t.Fatalf("Accepted = %v at %s", ch.Accepted, tt.at)
				}
			}
			s, _ := tb.Get("s")
			if ch.Closed != tt.escalate || (s.State == coordination.StateEscalated) != tt.escalate {
				t.Fatalf("at %s: closed %v state %s, want escalation %v", tt.at, ch.Closed, s.State, tt.escalate)
			}
			if tt.escalate && (s.Outcome != "no consensus within 30m0s" || !s.ClosedAt.Equal(at)) {
				t.Fatalf("outcome %q at %s", s.Outcome, s.ClosedAt)
			}
		})
	}
}

func TestOpenRefusals(t *testing.T) {
	req := func(mod func(*coordination.OpenRequest)) coordination.OpenRequest {
		r := coordination.OpenRequest{ID: "s", Kind: coordination.KindPlanning, TaskKeys: []string{"task/board/a/1"}, Participants: []string{"a", "b"}}
		mod(&r)
		return r
	}
	tests := []struct {
		name string
		req  coordination.OpenRequest
		want string
	}{
		{"six participants", req(func(r *coordination.OpenRequest) { r.Participants = []string{"a", "b", "c", "d", "e", "f"} }),
			"participants: 6 exceed the limit of 5"},
		{"no participants", req(func(r *coordination.OpenRequest) { r.Participants = nil }), "participants"},
		{"a participant twice", req(func(r *coordination.OpenRequest) { r.Participants = []string{"a", "b", "a"} }), "participants[2]"},
		{"an empty participant", req(func(r *coordination.OpenRequest) { r.Participants = []string{"a", " "} }), "participants[1]"},
		{"unknown kind", req(func(r *coordination.OpenRequest) { r.Kind = "chat" }), "kind"},
		{"no tasks", req(func(r *coordination.OpenRequest) { r.TaskKeys = nil }), "task_keys"},
		{"no id", req(func(r *coordination.OpenRequest) { r.ID = "" }), "session_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTable(t)
			_, err := tb.Open(tt.req, t0)
			if err == nil || !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, want an ErrInvalid naming %q", err, tt.want)
			}
			if len(tb.List()) != 0 {
				t.Fatal("a refused session is in the table")
			}
		})
	}
	tb := newTable(t)
	five := req(func(r *coordination.OpenRequest) { r.Participants = []string{"a", "b", "c", "d", "e"} })
	if _, err := tb.Open(five, t0); err != nil {
		t.Fatalf("five participants: %v", err)
	}
	if _, err := tb.Open(five, t0); err == nil || !strings.Contains(err.Error(), "already open") {
		t.Fatalf("same id again: %v", err)
	}
	for _, kind := range []coordination.Kind{coordination.KindDependency, coordination.KindConflict, coordination.KindPlanning} {
		r := req(func(r *coordination.OpenRequest) { r.ID, r.Kind = string(kind), kind })
		if _, err := tb.Open(r, t0); err != nil {
			t.Errorf("kind %s: %v", kind, err)
		}
	}
}

func TestAddRefusals(t *testing.T) {
	tb := newTable(t)
	open(t, tb, "a", "b", "c")
	if _, err := tb.Add("nope", msg("a:note"), t0); !errors.Is(err, coordination.ErrUnknownSession) {
		t.Errorf("unknown session: %v", err)
	}
	if _, err := tb.Add("s", msg("mallory:agreement"), t0); !errors.Is(err, coordination.ErrNotParticipant) {
		t.Errorf("outsider: %v", err)
	}
	if _, err := tb.Add("s", msg("a:seed"), t0); !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(err.Error(), "kind") {
		t.Errorf("unknown kind: %v", err)
	}
	m := msg("b:agreement")
	m.ID = "m1"
	if ch, err := tb.Add("s", m, t0); err != nil || !ch.Accepted {
		t.Fatalf("first copy: %+v %v", ch, err)
	}
	ch, err := tb.Add("s", m, t0.Add(time.Second))
	if err != nil || ch.Accepted || !ch.Duplicate || len(ch.Session.Messages) != 1 {
		t.Fatalf("re-sent copy: %+v %v, want a duplicate that changes nothing", ch, err)
	}
	s, _ := tb.Get("s")
	if len(s.Messages) != 1 || !s.LastActivity.Equal(t0) {
		t.Fatalf("session after refusals: %+v", s)
	}
}

func TestProposalBecomesThePlan(t *testing.T) {
	tb := newTable(t)
	open(t, tb, "a", "b", "c")
	for i, text := range []string{"first plan", "second plan"} {
		m := coordination.Message{From: "a", Kind: coordination.Proposal, Text: text}
		if _, err := tb.Add("s", m, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := tb.Add("s", coordination.Message{From: "b", Kind: coordination.Objection, Text: "no"}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := tb.Get("s"); s.Plan != "second plan" {
		t.Fatalf("Plan = %q", s.Plan)
	}
}

func TestCleanup(t *testing.T) {
	tb := newTable(t)
	every := 10 * time.Minute
	for i, id := range []string{"resolved-old", "resolved-new", "open-young", "open-old"} {
		at := t0
		if id == "open-old" {
			at = t0.Add(-40 * time.Minute)
		}
		if _, err := tb.Open(coordination.OpenRequest{ID: id, Kind: coordination.KindDependency, TaskKeys: []string{fmt.Sprintf("task/board/r/%d", i+1)},
			Participants: []string{"a", "b"}}, at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tb.Add("resolved-old", msg("b:agreement"), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Add("resolved-new", msg("b:agreement"), t0.Add(every)); err != nil {
		t.Fatal(err)
	}
	escalated, removed := tb.Cleanup(t0.Add(every), every)
	if len(escalated) != 1 || escalated[0].Session.ID != "open-old" || escalated[0].Session.State != coordination.StateEscalated {
		t.Fatalf("escalated = %+v, want open-old", escalated)
	}
	if fmt.Sprint(removed) != "[resolved-old]" {
		t.Fatalf("removed = %v, want the session closed one interval ago", removed)
	}
	var left []string
	for _, s := range tb.List() {
		left = append(left, s.ID)
	}
	if fmt.Sprint(left) != "[open-old open-young resolved-new]" {
		t.Fatalf("left = %v", left)
	}
	_, removed = tb.Cleanup(t0.Add(2*every), every)
	if fmt.Sprint(removed) != "[open-old resolved-new]" {
		t.Fatalf("second sweep removed %v", removed)
	}
}

func TestCloseFromOutside(t *testing.T) {
	tb := newTable(t)
	open(t, tb, "a", "b")
	if !tb.Close("s", coordination.StateResolved, "decided elsewhere", t0) {
		t.Fatal("Close of an open session returned false")
	}
	if tb.Close("s", coordination.StateEscalated, "again", t0) || tb.Close("nope", coordination.StateResolved, "", t0) {
		t.Fatal("Close of a closed or unknown session returned true")
	}
	if s, _ := tb.Get("s"); s.State != coordination.StateResolved || s.Outcome != "decided elsewhere" {
		t.Fatalf("session %+v", s)
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, mod := range []func(*coordination.Limits){
		func(l *coordination.Limits) { l.MaxParticipants = 0 },
		func(l *coordination.Limits) { l.MaxDuration = 0 },
		func(l *coordination.Limits) { l.MaxMessages = 0 },
		func(l *coordination.Limits) { l.ConsensusWindow = 0 },
	} {
		l := coordination.DefaultLimits()
		mod(&l)
		if _, err := coordination.NewTable(l); err == nil || !errors.Is(err, chorus.ErrInvalid) {
			t.Errorf("NewTable(%+v) = %v", l, err)
		}
	}
	d := coordination.DefaultLimits()
	if d.MaxParticipants != 5 || d.MaxMessages != 10 || d.ConsensusWindow != 3 {
		t.Fatalf("defaults %+v differ from SPEC section 7", d)
	}
}
