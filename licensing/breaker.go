package licensing

import "time"

// BreakerState is the state of the gate's circuit breaker.
type BreakerState int

// Breaker states. The numbers are the chorus_licensing_breaker_state gauge.
const (
	// BreakerClosed: requests go to the authority.
	BreakerClosed BreakerState = 0
	// BreakerHalfOpen: the cooldown is over and one probe may go out; its
	// outcome closes or re-opens the breaker.
	BreakerHalfOpen BreakerState = 1
	// BreakerOpen: too many consecutive failures; requests fail at once
	// with ErrBreakerOpen until the cooldown is over.
	BreakerOpen BreakerState = 2
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

// breaker is a pure circuit breaker: no clock, no goroutines; the caller
// passes the time. Only failures to reach the authority count; a refusal
// is an answer and counts as success.
type breaker struct {
	threshold int
	cooldown  time.Duration

	state    BreakerState
	failures int // consecutive, while closed
	openedAt time.Time
	probing  bool // a half-open probe is out
}

// allow reports whether a request may go out at now. After the cooldown
// the first call becomes the half-open probe; others are refused until it
// reports.
func (b *breaker) allow(now time.Time) bool {
	switch b.state {
	case BreakerOpen:
		if now.Sub(b.openedAt) < b.cooldown {
			return false
		}
		b.state, b.probing = BreakerHalfOpen, true
		return true
	case BreakerHalfOpen:
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
	return true
}

// success closes the breaker.
func (b *breaker) success() {
	b.state, b.failures, b.probing = BreakerClosed, 0, false
}

// failure records a failed request at now; opened reports whether this
// failure opened the breaker.
func (b *breaker) failure(now time.Time) (opened bool) {
	b.probing = false
	switch b.state {
	case BreakerHalfOpen:
		b.state, b.openedAt = BreakerOpen, now
		return true
	case BreakerClosed:
		b.failures++
		if b.failures >= b.threshold {
			b.state, b.openedAt, b.failures = BreakerOpen, now, 0
			return true
		}
	}
	return false
}

// at is the state as seen at now: an open breaker whose cooldown is over
// reports half-open (the next request is the probe).
func (b *breaker) at(now time.Time) BreakerState {
	if b.state == BreakerOpen && now.Sub(b.openedAt) >= b.cooldown {
		return BreakerHalfOpen
	}
	return b.state
}

// retryIn is how long until a request may go out again (0: now).
func (b *breaker) retryIn(now time.Time) time.Duration {
	if b.state != BreakerOpen {
		return 0
	}
	return max(0, b.cooldown-now.Sub(b.openedAt))
}
