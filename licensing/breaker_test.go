package licensing

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at      time.Duration // since t0
		op      string        // allow, fail, ok
		want    bool          // allow's answer, or failure's "opened"
		wantNow BreakerState  // state after the step
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"opens after 5 consecutive failures", []step{
			{0, "fail", false, BreakerClosed}, {1, "fail", false, BreakerClosed}, {2, "fail", false, BreakerClosed},
			{3, "fail", false, BreakerClosed}, {4, "fail", true, BreakerOpen}, {5, "allow", false, BreakerOpen},
		}},
		{"a success resets the count", []step{
			{0, "fail", false, BreakerClosed}, {0, "fail", false, BreakerClosed}, {0, "fail", false, BreakerClosed},
			{0, "fail", false, BreakerClosed}, {0, "ok", false, BreakerClosed}, {0, "fail", false, BreakerClosed},
			{0, "allow", true, BreakerClosed},
		}},
		{"half-open probe after the cooldown, success closes", []step{
			{0, "fail", false, BreakerClosed}, {0, "fail", false, BreakerClosed}, {0, "fail", false, BreakerClosed},
			{0, "fail", false, BreakerClosed}, {0, "fail", true, BreakerOpen},
			{29 * time.Second, "allow", false, BreakerOpen},
			{30 * time.Second, "allow", true, BreakerHalfOpen},
			{30 * time.Second, "allow", false, BreakerHalfOpen}, // one probe at a time
			{31 * time.Second, "ok", false, BreakerClosed},
			{31 * time.Second, "allow", true, BreakerClosed},
		}},
		{"a failed probe re-opens for another cooldown", []step{
			{0, "fail", false, BreakerClosed}, {0, "fail", false, BreakerClosed}, {0, "fail", false, BreakerClosed},
			{0, "fail", false, BreakerClosed}, {0, "fail", true, BreakerOpen},
			{30 * time.Second, "allow", true, BreakerHalfOpen},
			{31 * time.Second, "fail", true, BreakerOpen},
			{60 * time.Second, "allow", false, BreakerOpen},
			{61 * time.Second, "allow", true, BreakerHalfOpen},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := breaker{threshold: 5, cooldown: 30 * time.Second}
			for i, s := range c.steps {
				now := t0.Add(s.at)
				var got bool
				switch s.op {
				case "allow":
					got = b.allow(now)
				case "fail":
					got = b.failure(now)
				case "ok":
					b.success()
				}
				if got != s.want || b.state != s.wantNow {
					t.Fatalf("step %d (%s at %s): got %v state %s, want %v state %s", i, s.op, s.at, got, b.state, s.want, s.wantNow)
				}
			}
		})
	}
}
