package workflows

import (
	"slices"
	"testing"

	"chorus"
	"chorus/activities"
)

// On the selection path rungs are not retried on a heartbeat timeout (the
// workflow places the task elsewhere; the server honours the
// TemporalTimeout:Heartbeat type, the SDK test suite does not, so this is
// checked on the options) and carry the task's priority. The old path is
// left as it was recorded.
func TestRungOptions(t *testing.T) {
	agent := activities.AgentInfo{ID: "a", TaskQueue: activities.AgentQueue("a")}
	w := &taskRun{policy: DefaultPolicy, task: chorus.Task{Priority: 9}, replaceOnDeath: true}
	for name, o := range map[string]func() []string{
		"execute": func() []string {
			return w.rungOptions(executeOptions(w.policy, agent)).RetryPolicy.NonRetryableErrorTypes
		},
		"ai":   func() []string { return w.rungOptions(aiOptions(agent)).RetryPolicy.NonRetryableErrorTypes },
		"mock": func() []string { return w.rungOptions(mockOptions(agent)).RetryPolicy.NonRetryableErrorTypes },
	} {
		if got := o(); !slices.Contains(got, heartbeatFinal) {
			t.Errorf("%s: non-retryable types %v, want %s", name, got, heartbeatFinal)
		}
	}
	if k := w.rungOptions(executeOptions(w.policy, agent)).Priority.PriorityKey; k != 1 {
		t.Errorf("priority key = %d, want 1 for priority 9", k)
	}
	// The shared policy is not changed.
	if slices.Contains(executeOptions(w.policy, agent).RetryPolicy.NonRetryableErrorTypes, heartbeatFinal) {
		t.Error("rungOptions changed the base options")
	}
	old := &taskRun{policy: DefaultPolicy, task: chorus.Task{Priority: 9}}
	if o := old.rungOptions(executeOptions(old.policy, agent)); slices.Contains(o.RetryPolicy.NonRetryableErrorTypes, heartbeatFinal) || o.Priority.PriorityKey != 0 {
		t.Errorf("old path options changed: %+v", o)
	}
}
