package chat

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"chorus"
)

// RetryPolicy bounds the retries of one chat call. Zero fields take the
// defaults of DefaultRetryPolicy.
type RetryPolicy struct {
	// MaxAttempts counts every try, the first included; 1 disables
	// retries.
	MaxAttempts int
	// Initial is the wait before the first retry; each later wait doubles,
	// with jitter.
	Initial time.Duration
	// Max caps every wait. A Retry-After longer than Max ends the retries
	// at once rather than stall the fallback ladder or retry too soon.
	Max time.Duration
}

// DefaultRetryPolicy returns the policy used where none is given.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		// MaxAttempts: a blip is retried twice; a real outage moves on to
		// the alternate model within seconds.
		MaxAttempts: 3,
		// Initial: long enough for a restarting server to come back.
		Initial: 500 * time.Millisecond,
		// Max: a task waits at most this long between tries of one model.
		Max: 5 * time.Second,
	}
}

// WithDefaults returns p with zero fields set from DefaultRetryPolicy.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.MaxAttempts == 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.Initial == 0 {
		p.Initial = d.Initial
	}
	if p.Max == 0 {
		p.Max = max(d.Max, p.Initial)
	}
	return p
}

// Validate checks p after defaults and names the bad field.
func (p RetryPolicy) Validate() error {
	p = p.WithDefaults()
	var errs []error
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("%w: retry.max_attempts: must be at least 1, got %d", chorus.ErrInvalid, p.MaxAttempts))
	}
	if p.Initial < 0 {
		errs = append(errs, fmt.Errorf("%w: retry.initial: must not be negative, got %s", chorus.ErrInvalid, p.Initial))
	}
	if p.Max < p.Initial {
		errs = append(errs, fmt.Errorf("%w: retry.max: must be at least retry.initial (%s), got %s", chorus.ErrInvalid, p.Initial, p.Max))
	}
	return errors.Join(errs...)
}

// wait returns how long to wait after the failed-th failed attempt (1 for
// the first), given the server's Retry-After (negative when it sent none).
// ok is false when the server asks for longer than Max.
func (p RetryPolicy) wait(failed int, retryAfter time.Duration) (d time.Duration, ok bool) {
	if retryAfter > p.Max {
		return retryAfter, false
	}
	d = p.Initial
	for i := 1; i < failed && d < p.Max; i++ {
		if d > p.Max/2 {
			d = p.Max
			break
		}
		d *= 2
	}
	d = min(d, p.Max)
	// Equal jitter: clients that failed together do not retry together.
	if d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	return max(d, retryAfter), true
}

// parseRetryAfter reads a Retry-After header, either delay-seconds or an
// HTTP date. It returns a negative duration when the header is absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return -1
		}
		if n > int64(24*time.Hour/time.Second) {
			return 24 * time.Hour
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return -1
	}
	return max(t.Sub(now), 0)
}
