package chat

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"chorus"
)

func TestRetryWait(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 5, Initial: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		name       string
		failed     int
		retryAfter time.Duration
		lo, hi     time.Duration
		ok         bool
	}{
		{"first wait is Initial, jittered", 1, -1, 50 * time.Millisecond, 100 * time.Millisecond, true},
		{"doubles", 2, -1, 100 * time.Millisecond, 200 * time.Millisecond, true},
		{"doubles again", 3, -1, 200 * time.Millisecond, 400 * time.Millisecond, true},
		{"capped at Max", 10, -1, 500 * time.Millisecond, time.Second, true},
		{"huge attempt count does not overflow", 200, -1, 500 * time.Millisecond, time.Second, true},
		{"Retry-After longer than backoff wins", 1, 700 * time.Millisecond, 700 * time.Millisecond, 700 * time.Millisecond, true},
		{"Retry-After shorter than backoff", 3, 10 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, true},
		{"Retry-After equal to Max", 1, time.Second, time.Second, time.Second, true},
		{"Retry-After beyond Max ends retries", 1, 2 * time.Second, 2 * time.Second, 2 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 50 {
				d, ok := p.wait(tt.failed, tt.retryAfter)
				if ok != tt.ok || d < tt.lo || d > tt.hi {
					t.Fatalf("wait(%d, %s) = %s, %v; want %s..%s, %v", tt.failed, tt.retryAfter, d, ok, tt.lo, tt.hi, tt.ok)
				}
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", -1},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 7 ", 7 * time.Second},
		{"-3", -1},
		{"soon", -1},
		{"99999999999", 24 * time.Hour},
		{now.Add(30 * time.Second).Format(http1123), 30 * time.Second},
		{now.Add(-time.Minute).Format(http1123), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestRetryPolicyDefaultsAndValidate(t *testing.T) {
	if got, want := (RetryPolicy{}).WithDefaults(), DefaultRetryPolicy(); got != want {
		t.Errorf("zero policy with defaults = %+v, want %+v", got, want)
	}
	if got := (RetryPolicy{Initial: 10 * time.Second}).WithDefaults(); got.Max != 10*time.Second {
		t.Errorf("Max under a large Initial = %s, want it raised to Initial", got.Max)
	}
	tests := []struct {
		p     RetryPolicy
		field string
	}{
		{RetryPolicy{MaxAttempts: -1}, "retry.max_attempts"},
		{RetryPolicy{Initial: -time.Second}, "retry.initial"},
		{RetryPolicy{Initial: time.Second, Max: time.Millisecond}, "retry.max"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(fmt.Sprint(err), tt.field) {
			t.Errorf("Validate(%+v) = %v, want an invalid error naming %s", tt.p, err, tt.field)
		}
	}
	if err := DefaultRetryPolicy().Validate(); err != nil {
		t.Errorf("default policy: %v", err)
	}
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		status   int
		notFound bool
		want     error
	}{
		{400, false, ErrBadRequest},
		{400, true, ErrModelNotFound},
		{401, false, ErrUnauthorized},
		{403, false, ErrUnauthorized},
		{404, false, ErrModelNotFound},
		{422, false, ErrBadRequest},
		{429, false, ErrRateLimited},
		{500, false, ErrServer},
		{503, false, ErrServer},
		{302, false, ErrMalformedReply},
	}
	for _, tt := range tests {
		err := StatusError(tt.status, tt.notFound, "detail")
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d: detail", tt.status)) {
			t.Errorf("StatusError(%d, %v) = %v, want %v", tt.status, tt.notFound, err, tt.want)
		}
	}
}

func TestSnippet(t *testing.T) {
	got := Snippet([]byte("<html>\n  <body>\x00Not\tFound</body>" + strings.Repeat("x", 500)))
	if strings.ContainsAny(got, "\n\t\x00") || !strings.HasPrefix(got, `"<html> <body> Not Found</body>`) || !strings.HasSuffix(got, `..."`) {
		t.Errorf("Snippet = %s", got)
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, ok := range []string{"http://localhost:11434", "https://api.openai.com/v1"} {
		if _, err := ParseEndpoint(ok); err != nil {
			t.Errorf("ParseEndpoint(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "localhost:11434", "ftp://host", "http://", "http://user:hunter2@[::1"} {
		_, err := ParseEndpoint(bad)
		if !errors.Is(err, chorus.ErrInvalid) || !strings.Contains(fmt.Sprint(err), "endpoint") {
			t.Errorf("ParseEndpoint(%q) = %v, want an invalid error naming endpoint", bad, err)
		}
		if strings.Contains(fmt.Sprint(err), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	_, err := ParseEndpoint("ftp://user:hunter2@host")
	if strings.Contains(fmt.Sprint(err), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
}
