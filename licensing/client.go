package licensing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"chorus"
)

// Client speaks the authority's HTTP API. It satisfies Authority (the
// gate's view) and adds the operator actions. Build it with NewClient.
type Client struct {
	base  string
	hc    *http.Client
	admin string
}

// NewClient returns a client of the authority at baseURL (the URL that
// /activate is relative to). hc nil means a client with no timeout of its
// own (the ctx bounds every call). adminToken may be empty when no
// operator action is used.
func NewClient(baseURL string, hc *http.Client, adminToken string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: license server: %q is not an http(s) URL", chorus.ErrInvalid, baseURL)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc, admin: adminToken}, nil
}

// URL is the authority's base URL.
func (c *Client) URL() string { return c.base }

// RemoteError is a refusal from the authority. It unwraps to the sentinel
// of its code (ErrRevoked, ErrSeatsExhausted, chorus.ErrInvalid, ...).
type RemoteError struct {
	Status int
	Body   ErrorBody
}

func (e *RemoteError) Error() string { return e.Body.Error }

// Unwrap returns the sentinel matching the code, and ErrUnreachable for a
// 5xx (the authority could not answer the question).
func (e *RemoteError) Unwrap() error {
	for _, c := range codes {
		if c.code == e.Body.Code {
			return c.err
		}
	}
	if e.Status >= 500 {
		return ErrUnreachable
	}
	return nil
}

// Activate implements Authority.
func (c *Client) Activate(ctx context.Context, req ActivateRequest) (Grant, error) {
	var g Grant
	err := c.do(ctx, http.MethodPost, "/activate", req, &g, false)
	return g, err
}

// Heartbeat implements Authority.
func (c *Client) Heartbeat(ctx context.Context, req HeartbeatRequest) (Grant, error) {
	var g Grant
	err := c.do(ctx, http.MethodPost, "/heartbeat", req, &g, false)
	return g, err
}

// Deactivate implements Authority.
func (c *Client) Deactivate(ctx context.Context, req DeactivateRequest) error {
	return c.do(ctx, http.MethodPost, "/deactivate", req, nil, false)
}

// Issue creates a license (admin).
func (c *Client) Issue(ctx context.Context, req IssueRequest) (License, error) {
	var l License
	err := c.do(ctx, http.MethodPost, "/licenses", req, &l, true)
	return l, err
}

// Revoke revokes a license (admin).
func (c *Client) Revoke(ctx context.Context, id string) (License, error) {
	if err := CheckLicenseID(id); err != nil {
		return License{}, fmt.Errorf("revoke license: %w", err)
	}
	var l License
	err := c.do(ctx, http.MethodPost, "/licenses/"+url.PathEscape(id)+"/revoke", nil, &l, true)
	return l, err
}

// Status returns the authority's info and one license (id set, no admin
// token needed) or, with the admin token, every license.
func (c *Client) Status(ctx context.Context, id string) (StatusResponse, error) {
	path := "/status"
	if id != "" {
		if err := CheckLicenseID(id); err != nil {
			return StatusResponse{}, fmt.Errorf("license status: %w", err)
		}
		path += "?license_id=" + url.QueryEscape(id)
	}
	var s StatusResponse
	err := c.do(ctx, http.MethodGet, path, nil, &s, id == "" && c.admin != "")
	return s, err
}

// do sends one request. Transport failures and 5xx answers wrap
// ErrUnreachable; 4xx answers are RemoteErrors.
func (c *Client) do(ctx context.Context, method, path string, in, out any, admin bool) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if admin {
		if c.admin == "" {
			return fmt.Errorf("%s %s: %w: no admin token (env CHORUS_LICENSE_ADMIN_TOKEN or --admin-token-file)", method, path, ErrUnauthorized)
		}
		req.Header.Set("Authorization", "Bearer "+c.admin)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("license authority at %s: %w: %v", c.base, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return fmt.Errorf("license authority at %s: %w: read reply: %v", c.base, ErrUnreachable, err)
	}
	if resp.StatusCode >= 300 {
		re := &RemoteError{Status: resp.StatusCode}
		if json.Unmarshal(b, &re.Body) != nil || re.Body.Error == "" {
			re.Body = ErrorBody{Error: fmt.Sprintf("license authority at %s answered %s (is that a license server?)", c.base, resp.Status), Code: CodeInternal}
			if resp.StatusCode < 500 {
				// Not our API at all (a 404 from another server):
				// nobody answered the question.
				re.Status = http.StatusBadGateway
			}
		}
		return re
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("license authority at %s: %w: bad reply to %s %s: %v", c.base, ErrUnreachable, method, path, err)
	}
	return nil
}

// isRefusal reports whether err is the authority's answer (a definitive
// no) rather than a failure to get one.
func isRefusal(err error) bool {
	if errors.Is(err, ErrUnreachable) {
		return false
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return true
		}
	}
	return false
}
