package forge

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"

	"chorus"
)

// Marker operations. Each chorus comment carries exactly one marker.
const (
	opClaim    = "claim"
	opStart    = "start"
	opRelease  = "release"
	opComplete = "complete"
	opFail     = "fail"
	opCancel   = "cancel"
)

// marker is the machine-readable part of a chorus comment, kept in an HTML
// comment at its end so that it does not show on the rendered issue:
//
//	<!-- chorus {"op":"claim","agent":"agent-a"} -->
//
// encoding/json escapes '<' and '>', so the JSON can never close the HTML
// comment early.
type marker struct {
	Op string `json:"op"`
	// Agent is the chorus agent (not the forge login) behind the comment.
	Agent string `json:"agent,omitempty"`
	// Fence names the claim a holder's marker belongs to: the ID of the
	// winning claim comment. Claims and operator markers carry none.
	Fence  int64       `json:"fence,omitempty"`
	Result *resultMark `json:"result,omitempty"`
	Reason string      `json:"reason,omitempty"`
}

// resultMark is the summary of a chorus.Result kept in a completion marker.
type resultMark struct {
	Success       bool   `json:"success"`
	Message       string `json:"message,omitempty"`
	ExecutionType string `json:"execution_type,omitempty"`
	DurationMS    int64  `json:"duration_ms,omitempty"`
	ExitCode      int    `json:"exit_code"`
	AgentID       string `json:"agent_id,omitempty"`
}

func (m marker) encode() string {
	b, err := json.Marshal(m)
	if err != nil {
		// marker holds only strings, numbers and bools.
		panic(fmt.Sprintf("encode marker: %v", err))
	}
	return "<!-- chorus " + string(b) + " -->"
}

var markerPattern = regexp.MustCompile(`<!-- chorus (\{[^\n]*?\}) -->`)

// parseMarker returns the marker of a comment body, if it has one.
func parseMarker(body string) (marker, bool) {
	sub := markerPattern.FindStringSubmatch(body)
	if sub == nil {
		return marker{}, false
	}
	var m marker
	if err := json.Unmarshal([]byte(sub[1]), &m); err != nil || m.Op == "" {
		return marker{}, false
	}
	return m, true
}

// opFence names the effect of one marker: an operation and the claim it
// belongs to (the claim's own ID for a claim, 0 for operator markers).
type opFence struct {
	op    string
	fence int64
}

// view is the task's state as its comment log says, replayed in ID order.
type view struct {
	state chorus.TaskState
	// holder and fence are the current claim's agent and fencing token.
	// fence stays after a release or a completion (so a late write with
	// it is told apart from a stale one) and is replaced by the marker's
	// ID when an operator fails or cancels the task, fencing the holder
	// out; a human closing the issue sets it to -1.
	holder    string
	fence     int64
	claimedAt time.Time
	result    *chorus.Result
	reason    string
	// effective maps each marker that took effect to its comment ID.
	effective map[opFence]int64
}

// replay folds the comment log into a view. Only comments by trusted (the
// login of chorus's own token) count, so nobody else can claim, complete
// or fence a task by writing a marker. A marker takes effect only when the
// state before it allows it; every other marker is void and stays void,
// whatever comes later:
//
//   - claim: on an open task. The earliest claim since the task was last
//     open wins; its comment ID is the fence.
//   - start: on a claimed task, with the current fence.
//   - release, complete, fail with a fence: on a claimed or working task,
//     with the current fence.
//   - fail without a fence, cancel (operators): on any task not terminal.
//
// open is the issue's own state: an issue closed without a terminal marker
// was closed by a human and reads as cancelled.
func replay(comments []Comment, trusted string, open bool) view {
	cs := slices.Clone(comments)
	slices.SortFunc(cs, func(a, b Comment) int { return cmpInt64(a.ID, b.ID) })
	v := view{state: chorus.StateOpen, effective: map[opFence]int64{}}
	for _, c := range cs {
		if c.Author != trusted {
			continue
		}
		m, ok := parseMarker(c.Body)
		if !ok {
			continue
		}
		held := v.state == chorus.StateClaimed || v.state == chorus.StateWorking
		switch m.Op {
		case opClaim:
			if v.state != chorus.StateOpen || m.Agent == "" {
				continue
			}
			v.state, v.holder, v.fence, v.claimedAt = chorus.StateClaimed, m.Agent, c.ID, c.CreatedAt
			v.effective[opFence{opClaim, c.ID}] = c.ID
		case opStart:
			if v.state != chorus.StateClaimed || m.Fence != v.fence {
				continue
			}
			v.state = chorus.StateWorking
			v.effective[opFence{opStart, m.Fence}] = c.ID
		case opRelease:
			if !held || m.Fence != v.fence {
				continue
			}
			v.state, v.holder = chorus.StateOpen, ""
			v.effective[opFence{opRelease, m.Fence}] = c.ID
		case opComplete:
			if !held || m.Fence != v.fence {
				continue
			}
			v.state = chorus.StateCompleted
			v.result = m.Result.toResult()
			v.effective[opFence{opComplete, m.Fence}] = c.ID
		case opFail, opCancel:
			done := chorus.StateFailed
			if m.Op == opCancel {
				done = chorus.StateCancelled
			}
			switch {
			case m.Op == opFail && m.Fence != 0:
				if !held || m.Fence != v.fence {
					continue
				}
			case v.state.Terminal():
				continue
			default:
				v.fence = c.ID
			}
			v.state, v.reason = done, m.Reason
			v.effective[opFence{m.Op, m.Fence}] = c.ID
		}
	}
	if !open && !v.state.Terminal() {
		v.state, v.fence, v.reason = chorus.StateCancelled, -1, "the issue was closed"
	}
	return v
}

func (r *resultMark) toResult() *chorus.Result {
	if r == nil {
		return nil
	}
	return &chorus.Result{Success: r.Success, Message: r.Message, ExecutionType: r.ExecutionType,
		DurationMS: r.DurationMS, ExitCode: r.ExitCode, AgentID: r.AgentID}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// check decides whether the holder of fence may move the task to done: it
// returns proceed=true when the transition applies, (false, nil) when it
// was already made, and an error naming why not otherwise. These are the
// board's rules (provider/board), so every provider answers alike.
func (v view) check(fence int64, done chorus.TaskState) (proceed bool, err error) {
	switch {
	case v.fence != fence:
		return false, fmt.Errorf("%w: fence %d is not current (task is %s with fence %d)", chorus.ErrFenced, fence, v.state, v.fence)
	case v.state == done:
		return false, nil
	case v.state.Terminal():
		return false, fmt.Errorf("%w: state: task is %s", chorus.ErrInvalid, v.state)
	case v.state == chorus.StateOpen:
		return false, fmt.Errorf("%w: fence %d was released (task is open)", chorus.ErrFenced, fence)
	case done == chorus.StateWorking && v.state != chorus.StateClaimed:
		return false, fmt.Errorf("%w: state: cannot go from %s to %s", chorus.ErrInvalid, v.state, done)
	}
	return true, nil
}
