package forge

import (
	"testing"

	"chorus"
)

func mark(id int64, author string, m marker) Comment {
	return Comment{ID: id, Author: author, Body: "text\n\n" + m.encode()}
}

func TestReplay(t *testing.T) {
	const bot = "bot"
	claim := func(id int64, agent string) Comment { return mark(id, bot, marker{Op: opClaim, Agent: agent}) }
	op := func(id int64, o string, fence int64) Comment {
		return mark(id, bot, marker{Op: o, Agent: "x", Fence: fence})
	}
	tests := []struct {
		name     string
		log      []Comment
		open     bool
		state    chorus.TaskState
		holder   string
		fence    int64
		effectOf opFence // must have taken effect, when set
	}{
		{"empty", nil, true, chorus.StateOpen, "", 0, opFence{}},
		{"one claim", []Comment{claim(10, "a")}, true, chorus.StateClaimed, "a", 10, opFence{opClaim, 10}},
		{"earliest claim wins", []Comment{claim(12, "b"), claim(11, "a")}, true, chorus.StateClaimed, "a", 11, opFence{opClaim, 11}},
		{"claims by others do not count", []Comment{mark(9, "mallory", marker{Op: opClaim, Agent: "m"}), claim(10, "a")}, true, chorus.StateClaimed, "a", 10, opFence{}},
		{"a comment without a marker", []Comment{{ID: 5, Author: bot, Body: "hello <!-- chorus nope -->"}}, true, chorus.StateOpen, "", 0, opFence{}},
		{"start", []Comment{claim(10, "a"), op(11, opStart, 10)}, true, chorus.StateWorking, "a", 10, opFence{opStart, 10}},
		{"start with another fence is void", []Comment{claim(10, "a"), op(11, opStart, 9)}, true, chorus.StateClaimed, "a", 10, opFence{}},
		{"release reopens, keeps the fence", []Comment{claim(10, "a"), op(11, opRelease, 10)}, true, chorus.StateOpen, "", 10, opFence{opRelease, 10}},
		{"a claim made while held stays void after the release", []Comment{claim(10, "a"), claim(11, "b"), op(12, opRelease, 10)}, true, chorus.StateOpen, "", 10, opFence{}},
		{"claim after release gets a higher fence", []Comment{claim(10, "a"), op(11, opRelease, 10), claim(12, "b")}, true, chorus.StateClaimed, "b", 12, opFence{opClaim, 12}},
		{"complete", []Comment{claim(10, "a"), op(11, opStart, 10), op(12, opComplete, 10)}, true, chorus.StateCompleted, "a", 10, opFence{opComplete, 10}},
		{"stale complete is void", []Comment{claim(10, "a"), op(11, opRelease, 10), claim(12, "b"), op(13, opComplete, 10)}, true, chorus.StateClaimed, "b", 12, opFence{}},
		{"a second complete is void", []Comment{claim(10, "a"), op(11, opComplete, 10), op(12, opComplete, 10)}, true, chorus.StateCompleted, "a", 10, opFence{opComplete, 10}},
		{"holder fail", []Comment{claim(10, "a"), op(11, opFail, 10)}, true, chorus.StateFailed, "a", 10, opFence{opFail, 10}},
		{"operator cancel fences the holder out", []Comment{claim(10, "a"), mark(11, bot, marker{Op: opCancel})}, true, chorus.StateCancelled, "a", 11, opFence{opCancel, 0}},
		{"complete after cancel is void", []Comment{claim(10, "a"), mark(11, bot, marker{Op: opCancel}), op(12, opComplete, 10)}, true, chorus.StateCancelled, "a", 11, opFence{}},
		{"operator fail", []Comment{mark(11, bot, marker{Op: opFail, Reason: "r"})}, true, chorus.StateFailed, "", 11, opFence{opFail, 0}},
		{"closed by a human", []Comment{claim(10, "a")}, false, chorus.StateCancelled, "a", -1, opFence{}},
		{"closed after completion stays completed", []Comment{claim(10, "a"), op(11, opComplete, 10)}, false, chorus.StateCompleted, "a", 10, opFence{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := replay(tt.log, bot, tt.open)
			if v.state != tt.state || v.holder != tt.holder || v.fence != tt.fence {
				t.Fatalf("replay = state %s holder %q fence %d, want %s %q %d", v.state, v.holder, v.fence, tt.state, tt.holder, tt.fence)
			}
			if tt.effectOf != (opFence{}) {
				if _, ok := v.effective[tt.effectOf]; !ok {
					t.Fatalf("%v did not take effect: %v", tt.effectOf, v.effective)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		v       view
		fence   int64
		done    chorus.TaskState
		proceed bool
		err     error
	}{
		{"start a claimed task", view{state: chorus.StateClaimed, fence: 5}, 5, chorus.StateWorking, true, nil},
		{"start again", view{state: chorus.StateWorking, fence: 5}, 5, chorus.StateWorking, false, nil},
		{"complete working", view{state: chorus.StateWorking, fence: 5}, 5, chorus.StateCompleted, true, nil},
		{"complete again", view{state: chorus.StateCompleted, fence: 5}, 5, chorus.StateCompleted, false, nil},
		{"stale fence", view{state: chorus.StateClaimed, fence: 6}, 5, chorus.StateCompleted, false, chorus.ErrFenced},
		{"released fence", view{state: chorus.StateOpen, fence: 5}, 5, chorus.StateCompleted, false, chorus.ErrFenced},
		{"release again", view{state: chorus.StateOpen, fence: 5}, 5, chorus.StateOpen, false, nil},
		{"complete a failed task", view{state: chorus.StateFailed, fence: 5}, 5, chorus.StateCompleted, false, chorus.ErrInvalid},
		{"start a completed task", view{state: chorus.StateCompleted, fence: 5}, 5, chorus.StateWorking, false, chorus.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proceed, err := tt.v.check(tt.fence, tt.done)
			if proceed != tt.proceed || (tt.err == nil) != (err == nil) || (tt.err != nil && !errorsIs(err, tt.err)) {
				t.Fatalf("check = %v, %v; want %v, %v", proceed, err, tt.proceed, tt.err)
			}
		})
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	m := marker{Op: opComplete, Agent: "a<b>-->", Fence: 7, Result: &resultMark{Success: true, Message: "x --> y"}}
	got, ok := parseMarker("human text\n\n" + m.encode())
	if !ok || got.Op != m.Op || got.Agent != m.Agent || got.Fence != 7 || got.Result.Message != "x --> y" {
		t.Fatalf("parse(encode) = %+v, %v", got, ok)
	}
	for _, body := range []string{"", "no marker", "<!-- chorus {not json} -->", `<!-- chorus {"agent":"a"} -->`} {
		if _, ok := parseMarker(body); ok {
			t.Errorf("parseMarker(%q) found a marker", body)
		}
	}
}
