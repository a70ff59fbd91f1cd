package board

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"chorus"
)

// maxReplyBytes bounds a reply the Client reads: a full page of MaxLimit
// tasks with results fits comfortably.
const maxReplyBytes = 64 << 20

// Client reaches a board served by Board.Handler. Its methods have the
// semantics of the Board methods of the same name, and its errors wrap the
// same chorus sentinels, so errors.Is works across HTTP. A Client is safe
// for concurrent use.
type Client struct {
	baseURL string
	hc      *http.Client
}

// NewClient returns a client for the board served at baseURL (for example
// "http://127.0.0.1:8080"). A nil hc uses a new http.Client with no
// timeout; every call is bounded by its ctx instead.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), hc: hc}
}

// APIError is an error reply from the board API. It unwraps to the chorus
// sentinel its Code names (nil for "internal" or an unknown code).
type APIError struct {
	// StatusCode is the HTTP status of the reply.
	StatusCode int
	// Code is the reply's error code: already_claimed, fenced, invalid,
	// not_found or internal; empty when the reply was not a board error.
	Code string
	// Message is the board's error message, the same text Board's
	// method would have returned.
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Unwrap returns the sentinel e.Code stands for.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case codeAlreadyClaimed:
		return chorus.ErrAlreadyClaimed
	case codeFenced:
		return chorus.ErrFenced
	case codeInvalid:
		return chorus.ErrInvalid
	case codeNotFound:
		return chorus.ErrNotFound
	}
	return nil
}

// Add is Board.Add over HTTP.
func (c *Client) Add(ctx context.Context, t chorus.Task) (task chorus.Task, created bool, err error) {
	var reply addReply
	if err := c.do(ctx, http.MethodPost, pathTasks, nil, t, &reply); err != nil {
		return chorus.Task{}, false, err
	}
	return reply.Task, reply.Created, nil
}

// Get is Board.Get over HTTP.
func (c *Client) Get(ctx context.Context, key chorus.TaskKey) (chorus.Task, error) {
	var reply taskReply
	if err := c.do(ctx, http.MethodGet, pathTask, keyQuery(key), nil, &reply); err != nil {
		return chorus.Task{}, err
	}
	return reply.Task, nil
}

// List is Board.List over HTTP.
func (c *Client) List(ctx context.Context, f Filter) ([]chorus.Task, error) {
	q := url.Values{}
	for _, s := range f.States {
		q.Add("state", string(s))
	}
	if f.Repository != "" {
		q.Set("repo", f.Repository)
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var reply listReply
	if err := c.do(ctx, http.MethodGet, pathTasks, q, nil, &reply); err != nil {
		return nil, err
	}
	return reply.Tasks, nil
}

// Events is Board.Events over HTTP.
func (c *Client) Events(ctx context.Context, key chorus.TaskKey) ([]Event, error) {
	var reply eventsReply
	if err := c.do(ctx, http.MethodGet, pathEvents, keyQuery(key), nil, &reply); err != nil {
		return nil, err
	}
	return reply.Events, nil
}

// Completions is Board.Completions, counted from the task's events.
func (c *Client) Completions(ctx context.Context, key chorus.TaskKey) (int, error) {
	events, err := c.Events(ctx, key)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range events {
		if e.Kind == EventCompleted {
			n++
		}
	}
	return n, nil
}

// Claim is Board.Claim over HTTP.
func (c *Client) Claim(ctx context.Context, key chorus.TaskKey, agentID string) (fence int64, err error) {
	var reply claimReply
	if err := c.do(ctx, http.MethodPost, pathClaim, nil, claimRequest{Key: key.String(), AgentID: agentID}, &reply); err != nil {
		return 0, err
	}
	return reply.Fence, nil
}

// Start is Board.Start over HTTP.
func (c *Client) Start(ctx context.Context, key chorus.TaskKey, fence int64) error {
	return c.do(ctx, http.MethodPost, pathStart, nil, fenceRequest{Key: key.String(), Fence: fence}, nil)
}

// Complete is Board.Complete over HTTP.
func (c *Client) Complete(ctx context.Context, key chorus.TaskKey, fence int64, r chorus.Result) error {
	return c.do(ctx, http.MethodPost, pathComplete, nil, completeRequest{Key: key.String(), Fence: fence, Result: &r}, nil)
}

// Fail is Board.Fail over HTTP.
func (c *Client) Fail(ctx context.Context, key chorus.TaskKey, fence int64, reason string) error {
	return c.do(ctx, http.MethodPost, pathFail, nil, failRequest{Key: key.String(), Fence: fence, Reason: reason}, nil)
}

// Cancel is Board.Cancel over HTTP.
func (c *Client) Cancel(ctx context.Context, key chorus.TaskKey, reason string) error {
	return c.do(ctx, http.MethodPost, pathCancel, nil, cancelRequest{Key: key.String(), Reason: reason}, nil)
}

// Release is Board.Release over HTTP.
func (c *Client) Release(ctx context.Context, key chorus.TaskKey, fence int64) error {
	return c.do(ctx, http.MethodPost, pathRelease, nil, fenceRequest{Key: key.String(), Fence: fence}, nil)
}

func keyQuery(key chorus.TaskKey) url.Values {
	return url.Values{"key": {key.String()}}
}

// do sends one request with in as its JSON body (unless nil) and decodes a
// successful reply into out (unless nil). An error reply becomes an
// *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	u := c.baseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("board client: %s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("board client: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("board client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return fmt.Errorf("board client: %s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return replyError(method, path, resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("board client: %s %s: decode reply: %w", method, path, err)
	}
	return nil
}

// replyError reads an error reply. A reply that is not a board error (a
// proxy's page, a wrong base URL) keeps its status and a short excerpt of
// its body but maps to no sentinel.
func replyError(method, path string, resp *http.Response, data []byte) error {
	var e errorReply
	if err := json.Unmarshal(data, &e); err == nil && e.Error != "" && e.Code != "" {
		return &APIError{StatusCode: resp.StatusCode, Code: e.Code, Message: e.Error}
	}
	excerpt := strings.TrimSpace(string(data))
	if len(excerpt) > 200 {
		excerpt = excerpt[:200] + "..."
	}
	return &APIError{
		StatusCode: resp.StatusCode,
		Message:    fmt.Sprintf("board client: %s %s: %s: %s", method, path, resp.Status, excerpt),
	}
}
