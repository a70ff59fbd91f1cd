package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"chorus"
	"chorus/secret"
)

// RetryPolicy bounds the retries of one REST call.
type RetryPolicy struct {
	// MaxAttempts counts every try, the first included; 1 disables
	// retries.
	MaxAttempts int
	// Initial is the backoff before the first retry of a 5xx or transport
	// error; each later one doubles, with jitter.
	Initial time.Duration
	// Max caps one backoff.
	Max time.Duration
	// MaxWait is the longest rate-limit wait honoured in place. A server
	// that asks for longer (a primary limit resetting in 40 minutes)
	// fails the call at once with a *RateLimitError instead of holding
	// an activity past its timeout; the activity's own retry comes back
	// later.
	MaxWait time.Duration
}

// DefaultRetryPolicy returns the policy used where none is given.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		// MaxAttempts: a blip or a short secondary limit is retried;
		// a real outage surfaces within seconds.
		MaxAttempts: 4,
		// Initial: long enough for a load balancer to pick another
		// backend.
		Initial: 250 * time.Millisecond,
		// Max: one call stays well inside a 30 s activity timeout.
		Max: 5 * time.Second,
		// MaxWait: a secondary rate limit asks for a minute or less;
		// waiting longer than this would outlive the activity.
		MaxWait: 20 * time.Second,
	}
}

// Validate names the bad field.
func (p RetryPolicy) Validate() error {
	var errs []error
	if p.MaxAttempts < 1 || p.MaxAttempts > 20 {
		errs = append(errs, fmt.Errorf("%w: retry.max_attempts: must be between 1 and 20, got %d", chorus.ErrInvalid, p.MaxAttempts))
	}
	if p.Initial <= 0 {
		errs = append(errs, fmt.Errorf("%w: retry.initial: must be positive, got %s", chorus.ErrInvalid, p.Initial))
	}
	if p.Max < p.Initial {
		errs = append(errs, fmt.Errorf("%w: retry.max: must be at least retry.initial (%s), got %s", chorus.ErrInvalid, p.Initial, p.Max))
	}
	if p.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("%w: retry.max_wait: must not be negative, got %s", chorus.ErrInvalid, p.MaxWait))
	}
	return errors.Join(errs...)
}

// backoff returns the wait after the failed-th failed attempt (1 for the
// first): Initial doubled per attempt, capped at Max, with equal jitter so
// that clients that failed together do not retry together.
func (p RetryPolicy) backoff(failed int) time.Duration {
	d := p.Initial
	for i := 1; i < failed && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	return d
}

// Transport sends REST calls to one forge: it adds the token and the
// provider's headers, retries what may be retried, waits out rate limits
// within RetryPolicy.MaxWait, and turns error responses into *APIError.
// It is safe for concurrent use; its fields must not change after the
// first call.
type Transport struct {
	// Provider names the forge in errors ("github").
	Provider string
	// Base is the API root; request paths are relative to it.
	Base *url.URL
	// HTTP sends the requests.
	HTTP *http.Client
	// AuthScheme precedes the token in the Authorization header
	// ("Bearer", "token").
	AuthScheme string
	Token      secret.Secret
	// Header is added to every request (Accept, API version).
	Header http.Header
	Retry  RetryPolicy
	// RateLimited reports whether resp is a rate-limit refusal and how
	// long to wait before trying again.
	RateLimited func(resp *http.Response, body []byte, now time.Time) (wait time.Duration, limited bool)
	// DecodeError reads the provider's error body.
	DecodeError func(body []byte) ErrorBody
	// Logger receives a warning per retry; nil discards.
	Logger *slog.Logger
}

// ErrorBody is the part of a forge's error response an APIError carries.
type ErrorBody struct {
	Message string
	// DocURL is GitHub's documentation_url or Gitea's url.
	DocURL string
	// Details are the validation errors, one string each.
	Details []string
}

// Call is one REST request.
type Call struct {
	Method string
	// Path is relative to Transport.Base, its segments already escaped
	// (see PathOf). URL, when set, is used instead (a next page).
	Path  string
	URL   *url.URL
	Query url.Values
	// Body, when not nil, is sent as JSON.
	Body any
	// Retry marks a call that may be sent again after a 5xx answer or a
	// transport error because repeating it cannot do anything twice.
	// Rate-limit refusals are retried either way: the server did not
	// process the request.
	Retry bool
}

// PathOf joins path segments, escaping each.
func PathOf(segments ...string) string {
	esc := make([]string, len(segments))
	for i, s := range segments {
		esc[i] = url.PathEscape(s)
	}
	return strings.Join(esc, "/")
}

// RepoPath is PathOf("repos", owner, name, rest...) for a repository given
// as "owner/name".
func RepoPath(repo string, rest ...string) string {
	owner, name, _ := strings.Cut(repo, "/")
	return PathOf(append([]string{"repos", owner, name}, rest...)...)
}

// maxBody bounds a response body read into memory.
const maxBody = 8 << 20

// Do sends c and decodes a 2xx JSON answer into out (when out is not nil
// and the answer has a body). It returns the answer's headers.
func (t *Transport) Do(ctx context.Context, c Call, out any) (http.Header, error) {
	u, err := t.target(c)
	if err != nil {
		return nil, err
	}
	var payload []byte
	if c.Body != nil {
		if payload, err = json.Marshal(c.Body); err != nil {
			return nil, fmt.Errorf("%s: %s %s: encode body: %w", t.Provider, c.Method, u.Path, err)
		}
	}
	policy := t.Retry
	if policy.MaxAttempts == 0 {
		policy = DefaultRetryPolicy()
	}
	for attempt := 1; ; attempt++ {
		resp, body, err := t.once(ctx, c.Method, u, payload)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %s %s: %w", t.Provider, c.Method, u.Path, context.Cause(ctx))
			}
			err = fmt.Errorf("%s: %s %s: %s", t.Provider, c.Method, u.Path, t.Token.Scrub(err.Error()))
			if !c.Retry || attempt >= policy.MaxAttempts {
				return nil, err
			}
			wait = policy.backoff(attempt)
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			if out != nil && resp.StatusCode != http.StatusNoContent && len(bytes.TrimSpace(body)) > 0 {
				if err := json.Unmarshal(body, out); err != nil {
					return nil, fmt.Errorf("%s: %s %s: decode answer: %w", t.Provider, c.Method, u.Path, err)
				}
			}
			return resp.Header, nil
		default:
			apiErr := t.apiError(c.Method, u, resp, body)
			if d, limited := t.rateLimited(resp, body); limited {
				rl := &RateLimitError{API: apiErr, Wait: d}
				if d > policy.MaxWait || attempt >= policy.MaxAttempts {
					return nil, rl
				}
				wait = d
				err = rl
				break
			}
			if resp.StatusCode < 500 || !c.Retry || attempt >= policy.MaxAttempts {
				return nil, apiErr
			}
			wait = policy.backoff(attempt)
			if ra := retryAfter(resp.Header, time.Now()); ra > wait && ra <= policy.MaxWait {
				wait = ra
			}
			err = apiErr
		}
		t.logger().LogAttrs(ctx, slog.LevelWarn, "forge request retried",
			slog.String("provider", t.Provider), slog.String("method", c.Method), slog.String("path", u.Path),
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.String("error", err.Error()))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("%s: %s %s: waiting to retry after %w: %w", t.Provider, c.Method, u.Path, err, context.Cause(ctx))
		case <-timer.C:
		}
	}
}

// target resolves the call's URL; a next-page URL must point at the API's
// own scheme and host, so that the token is never sent anywhere else.
func (t *Transport) target(c Call) (*url.URL, error) {
	if c.URL != nil {
		if c.URL.Scheme != t.Base.Scheme || c.URL.Host != t.Base.Host {
			return nil, fmt.Errorf("%s: %s %s: refusing to follow a link to another host %s", t.Provider, c.Method, c.URL.Path, c.URL.Host)
		}
		return c.URL, nil
	}
	u, err := url.Parse(strings.TrimSuffix(t.Base.String(), "/") + "/" + strings.TrimPrefix(c.Path, "/"))
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", t.Provider, c.Method, c.Path, err)
	}
	if len(c.Query) > 0 {
		u.RawQuery = c.Query.Encode()
	}
	return u, nil
}

func (t *Transport) once(ctx context.Context, method string, u *url.URL, payload []byte) (*http.Response, []byte, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range t.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if t.Token.IsSet() {
		req.Header.Set("Authorization", t.AuthScheme+" "+t.Token.Reveal())
	}
	hc := t.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read answer: %w", err)
	}
	if len(data) > maxBody {
		return nil, nil, fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	return resp, data, nil
}

func (t *Transport) rateLimited(resp *http.Response, body []byte) (time.Duration, bool) {
	if t.RateLimited == nil {
		return 0, false
	}
	return t.RateLimited(resp, body, time.Now())
}

func (t *Transport) apiError(method string, u *url.URL, resp *http.Response, body []byte) *APIError {
	e := &APIError{Provider: t.Provider, Method: method, Path: u.Path, Status: resp.StatusCode}
	if t.DecodeError != nil {
		eb := t.DecodeError(body)
		e.Message, e.DocURL = t.Token.Scrub(eb.Message), eb.DocURL
		for _, d := range eb.Details {
			e.Details = append(e.Details, t.Token.Scrub(d))
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

func (t *Transport) logger() *slog.Logger {
	if t.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Logger
}

// APIError is an error answer of a forge's REST API.
type APIError struct {
	Provider string
	Method   string
	Path     string
	Status   int
	ErrorBody
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %s: %d %s", e.Provider, e.Method, e.Path, e.Status, e.Message)
	if len(e.Details) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(e.Details, "; "))
	}
	if e.DocURL != "" {
		fmt.Fprintf(&b, " (see %s)", e.DocURL)
	}
	return b.String()
}

// Unwrap maps the status to the chorus sentinels callers branch on: 404 and
// 410 are chorus.ErrNotFound, 400 and 422 chorus.ErrInvalid.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound, http.StatusGone:
		return chorus.ErrNotFound
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return chorus.ErrInvalid
	}
	return nil
}

// RateLimitError is a call refused for rate limiting that was not retried
// (the wait was longer than RetryPolicy.MaxWait, or the attempts ran out).
type RateLimitError struct {
	API *APIError
	// Wait is how long the server asked to wait.
	Wait time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited for %s: %s", e.Wait.Round(time.Second), e.API.Error())
}

func (e *RateLimitError) Unwrap() error { return e.API }

// retryAfter reads a Retry-After header (delay-seconds or an HTTP date);
// it returns a negative duration when the header is absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return -1
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return -1
		}
		return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return -1
	}
	return max(t.Sub(now), 0)
}

// RetryAfter is retryAfter for the providers' rate-limit rules.
func RetryAfter(h http.Header, now time.Time) time.Duration { return retryAfter(h, now) }

// ResetWait reads an epoch-seconds reset header (x-ratelimit-reset) and
// returns the wait until then, at least one second past it so a clock a
// little behind the server's does not retry early; negative when absent.
func ResetWait(h http.Header, name string, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get(name))
	if v == "" {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return max(time.Unix(n, 0).Sub(now), 0) + time.Second
}

// GetAll fetches every page of a list call, following the Link header's
// rel="next" (GitHub, Gitea) or, without one, the page/limit parameters
// against X-Total-Count (Gitea), until a page is short or empty. limit > 0
// stops after that many items.
func GetAll[T any](ctx context.Context, t *Transport, c Call, limit int) ([]T, error) {
	var all []T
	for pages := 1; ; pages++ {
		var page []T
		h, err := t.Do(ctx, c, &page)
		if err != nil {
			return all, err
		}
		all = append(all, page...)
		if limit > 0 && len(all) >= limit {
			return all[:limit], nil
		}
		if len(page) == 0 {
			return all, nil
		}
		next, err := nextPage(t, c, h, len(all))
		if err != nil || next == nil {
			return all, err
		}
		if pages >= maxPages {
			return all, fmt.Errorf("%s: %s %s: more than %d pages", t.Provider, c.Method, next.Path, maxPages)
		}
		c = Call{Method: c.Method, URL: next, Retry: c.Retry}
	}
}

// maxPages stops a server whose Link headers never end.
const maxPages = 1000

func nextPage(t *Transport, c Call, h http.Header, seen int) (*url.URL, error) {
	cur, err := t.target(c)
	if err != nil {
		return nil, err
	}
	if link := NextLink(h.Get("Link")); link != "" {
		u, err := cur.Parse(link)
		if err != nil {
			return nil, fmt.Errorf("%s: %s %s: bad Link header: %w", t.Provider, c.Method, cur.Path, err)
		}
		return u, nil
	}
	total, err := strconv.Atoi(h.Get("X-Total-Count"))
	if err != nil || seen >= total {
		return nil, nil
	}
	q := cur.Query()
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil {
		page = 1
	}
	q.Set("page", strconv.Itoa(page+1))
	next := *cur
	next.RawQuery = q.Encode()
	return &next, nil
}

// NextLink returns the rel="next" target of an RFC 8288 Link header, or "".
func NextLink(header string) string {
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		end := strings.Index(part, ">")
		if !strings.HasPrefix(part, "<") || end < 0 {
			continue
		}
		target := part[1:end]
		for _, param := range strings.Split(part[end+1:], ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(param), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
				continue
			}
			for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
				if strings.EqualFold(rel, "next") {
					return target
				}
			}
		}
	}
	return ""
}
