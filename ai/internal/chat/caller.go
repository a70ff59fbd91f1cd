package chat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"chorus/secret"
)

// Size limits on what is read from a server.
const (
	// MaxReply bounds a reply body, streamed or not: far above any chat
	// completion, far below what would hurt the agent.
	MaxReply = 32 << 20
	// maxErrorBody bounds the part of an error reply that is read.
	maxErrorBody = 64 << 10
)

// Caller posts JSON to one chat URL with retries. Build it with a composite
// literal; it must not be changed once in use.
type Caller struct {
	// Provider names the wire format in errors and logs ("ollama").
	Provider string
	// Endpoint is the configured endpoint, password redacted, as shown in
	// errors and logs.
	Endpoint string
	// URL is the full URL posted to.
	URL string
	// HTTP sends the requests; nil means a plain http.Client.
	HTTP *http.Client
	// Key, when set, is sent as "Authorization: Bearer <key>".
	Key secret.Secret
	// Retry bounds the retries of one call.
	Retry RetryPolicy
	// Timeout bounds one call, retries included; 0 means no bound beyond
	// the caller's context.
	Timeout time.Duration
	// Logger receives a warning per retry; nil discards.
	Logger *slog.Logger
	// Classify turns a non-2xx reply into an error wrapping a sentinel
	// (usually through StatusError). body is cleared of the key.
	Classify func(status int, body []byte) error
}

// timeoutCause marks the expiry of Caller.Timeout, as opposed to the
// caller's own deadline.
type timeoutCause struct{}

func (timeoutCause) Error() string { return "model timeout" }

// Post sends payload for model and hands a 2xx reply body to decode, which
// returns an error wrapping one of the sentinels or nil. With stream false
// the body is read whole first; with stream true decode reads it as it
// arrives. decode may run once per attempt and must reset what it fills.
//
// Failures classed ErrRateLimited, ErrServer or ErrUnreachable are retried
// under c.Retry until the context is done.
func (c *Caller) Post(ctx context.Context, model string, payload []byte, stream bool, decode func(io.Reader) error) error {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.Timeout, timeoutCause{})
		defer cancel()
	}
	p := c.Retry.WithDefaults()
	for attempt := 1; ; attempt++ {
		retryAfter, err := c.attempt(ctx, payload, stream, decode)
		if err == nil {
			return nil
		}
		if cerr := c.contextError(ctx); cerr != nil {
			return c.wrap(model, attempt, fmt.Errorf("%w (last error: %v)", cerr, err))
		}
		if !retryable(err) || attempt >= p.MaxAttempts {
			return c.wrap(model, attempt, err)
		}
		d, ok := p.wait(attempt, retryAfter)
		if !ok {
			return c.wrap(model, attempt, fmt.Errorf("%w; the server asks to retry after %s, beyond the retry policy's %s", err, d, p.Max))
		}
		c.logger().LogAttrs(ctx, slog.LevelWarn, "ai chat retry",
			slog.String("provider", c.Provider), slog.String("endpoint", c.Endpoint), slog.String("model", model),
			slog.Int("attempt", attempt), slog.Duration("wait", d), slog.String("error", string(c.Key.ScrubBytes([]byte(err.Error())))))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return c.wrap(model, attempt, fmt.Errorf("%w (last error: %v)", c.contextError(ctx), err))
		case <-t.C:
		}
	}
}

func retryable(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrServer) || errors.Is(err, ErrUnreachable)
}

// wrap names the provider, model and endpoint, and clears the key from the
// message, whatever a server or a decoder put in it.
func (c *Caller) wrap(model string, attempts int, err error) error {
	if attempts > 1 {
		err = fmt.Errorf("%s chat with model %q at %s: %w (after %d attempts)", c.Provider, model, c.Endpoint, err, attempts)
	} else {
		err = fmt.Errorf("%s chat with model %q at %s: %w", c.Provider, model, c.Endpoint, err)
	}
	return &scrubbed{err: err, msg: string(c.Key.ScrubBytes([]byte(err.Error())))}
}

// scrubbed is an error whose message has the key cleared; errors.Is and
// errors.As see the original chain.
type scrubbed struct {
	err error
	msg string
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// contextError explains why ctx is done, or returns nil. Expiry of
// c.Timeout counts as ErrUnreachable: the endpoint did not answer in time.
func (c *Caller) contextError(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	cause := context.Cause(ctx)
	if errors.Is(cause, timeoutCause{}) {
		return fmt.Errorf("%w: no reply within %s: %w", ErrUnreachable, c.Timeout, err)
	}
	if cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

func (c *Caller) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// attempt makes one request. retryAfter is the server's Retry-After on 429
// and 503, negative otherwise.
func (c *Caller) attempt(ctx context.Context, payload []byte, stream bool, decode func(io.Reader) error) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(payload))
	if err != nil {
		return -1, fmt.Errorf("%w: build request: %w", ErrBadRequest, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if !stream {
		req.Header.Set("Accept", "application/json")
	}
	if c.Key.IsSet() {
		req.Header.Set("Authorization", "Bearer "+c.Key.Reveal())
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return -1, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer func() {
		// Drain a little so the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
	}()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if rerr != nil {
			return -1, fmt.Errorf("%w: HTTP %d, then reading the body: %w", ErrUnreachable, resp.StatusCode, rerr)
		}
		retryAfter = -1
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		return retryAfter, c.Classify(resp.StatusCode, c.Key.ScrubBytes(body))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return -1, fmt.Errorf("%w: HTTP %d with an HTML page, not a chat reply (is the endpoint right?): %s",
			ErrMalformedReply, resp.StatusCode, Snippet(c.Key.ScrubBytes(head)))
	}

	r := &readErrors{r: io.LimitReader(resp.Body, MaxReply+1)}
	if stream {
		err = decode(r)
	} else {
		var body []byte
		body, err = io.ReadAll(r)
		switch {
		case err != nil:
		case len(body) > MaxReply:
			return -1, fmt.Errorf("%w: reply larger than %d bytes", ErrMalformedReply, MaxReply)
		default:
			err = decode(bytes.NewReader(body))
		}
	}
	if err != nil && r.err != nil {
		return -1, fmt.Errorf("%w: reading the reply: %w", ErrUnreachable, r.err)
	}
	return -1, err
}

// readErrors remembers a read error other than EOF, so that a connection
// failing mid-reply is told apart from a reply in the wrong format.
type readErrors struct {
	r   io.Reader
	err error
}

func (e *readErrors) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// String describes c without the key.
func (c *Caller) String() string {
	if c == nil {
		return "<nil>"
	}
	key := "none"
	if c.Key.IsSet() {
		key = secret.Redacted
	}
	return fmt.Sprintf("provider: %s, endpoint: %s, api_key: %s", c.Provider, c.Endpoint, key)
}

// GoString is String: a Caller is never printed with its key.
func (c *Caller) GoString() string { return c.String() }

// Format makes every fmt verb print String.
func (c *Caller) Format(f fmt.State, verb rune) { io.WriteString(f, c.String()) }

// LogAttrs describes c for slog, without the key.
func (c *Caller) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("provider", c.Provider), slog.String("endpoint", c.Endpoint)}
	if c.Key.IsSet() {
		attrs = append(attrs, slog.String("api_key", secret.Redacted))
	}
	return attrs
}

// LogValue describes c for slog, without the key.
func (c *Caller) LogValue() slog.Value { return slog.GroupValue(c.LogAttrs()...) }
