package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"chorus"
	"chorus/provider/internal/forge"
	"chorus/secret"
)

// The JSON of GitHub's REST API, the fields chorus reads
// (https://docs.github.com/rest/issues).
type (
	user struct {
		Login string `json:"login"`
		ID    int64  `json:"id"`
	}
	label struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	issue struct {
		Number    int       `json:"number"`
		Title     string    `json:"title"`
		Body      *string   `json:"body"`
		State     string    `json:"state"`
		Labels    []label   `json:"labels"`
		Assignees []user    `json:"assignees"`
		User      user      `json:"user"`
		CreatedAt time.Time `json:"created_at"`
		UpdatedAt time.Time `json:"updated_at"`
		// PullRequest is present only on pull requests, which the
		// issues endpoints return too.
		PullRequest *struct {
			URL string `json:"url"`
		} `json:"pull_request"`
	}
	comment struct {
		ID        int64     `json:"id"`
		Body      string    `json:"body"`
		User      user      `json:"user"`
		CreatedAt time.Time `json:"created_at"`
	}
	// errorBody is GitHub's error answer.
	errorBody struct {
		Message          string `json:"message"`
		DocumentationURL string `json:"documentation_url"`
		Errors           []struct {
			Resource string `json:"resource"`
			Field    string `json:"field"`
			Code     string `json:"code"`
			Message  string `json:"message"`
		} `json:"errors"`
	}
	// Request bodies.
	bodyOption struct {
		Body string `json:"body"`
	}
	labelsOption struct {
		Labels []string `json:"labels"`
	}
	assigneesOption struct {
		Assignees []string `json:"assignees"`
	}
	closeOption struct {
		State       string `json:"state"`
		StateReason string `json:"state_reason,omitempty"`
	}
)

func (i issue) toForge() forge.Issue {
	is := forge.Issue{
		Number: i.Number, Title: i.Title, Open: i.State == "open", Author: i.User.Login,
		CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt, IsPull: i.PullRequest != nil,
	}
	if i.Body != nil {
		is.Body = *i.Body
	}
	for _, l := range i.Labels {
		is.Labels = append(is.Labels, l.Name)
	}
	for _, a := range i.Assignees {
		is.Assignees = append(is.Assignees, a.Login)
	}
	return is
}

// perPage is the largest page GitHub serves.
const perPage = "100"

// api implements forge.API over GitHub's REST endpoints.
type api struct{ t *forge.Transport }

func newTransport(cfg Config, token secret.Secret) (*forge.Transport, error) {
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("%w: url: %w", chorus.ErrInvalid, err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &forge.Transport{
		Provider:   ProviderName,
		Base:       base,
		HTTP:       hc,
		AuthScheme: "Bearer",
		Token:      token,
		Header: http.Header{
			"Accept":               {"application/vnd.github+json"},
			"X-Github-Api-Version": {APIVersion},
			"User-Agent":           {"chorus"},
		},
		Retry:       cfg.Retry,
		RateLimited: rateLimited,
		DecodeError: decodeError,
		Logger:      cfg.Logger,
	}, nil
}

// APIVersion is the REST API version chorus speaks.
const APIVersion = "2022-11-28"

// rateLimited follows GitHub's rules: a 403 or 429 with
// x-ratelimit-remaining: 0 waits until x-ratelimit-reset; one with
// retry-after waits that long; a 429, or a 403 saying "rate limit", without
// either waits a minute.
func rateLimited(resp *http.Response, body []byte, now time.Time) (time.Duration, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	h := resp.Header
	if h.Get("X-Ratelimit-Remaining") == "0" {
		if d := forge.ResetWait(h, "X-Ratelimit-Reset", now); d >= 0 {
			return d, true
		}
	}
	if d := forge.RetryAfter(h, now); d >= 0 {
		return d, true
	}
	if resp.StatusCode == http.StatusTooManyRequests || bytes.Contains(bytes.ToLower(body), []byte("rate limit")) {
		return time.Minute, true
	}
	return 0, false
}

func decodeError(body []byte) forge.ErrorBody {
	var e errorBody
	if json.Unmarshal(body, &e) != nil {
		return forge.ErrorBody{}
	}
	out := forge.ErrorBody{Message: e.Message, DocURL: e.DocumentationURL}
	for _, d := range e.Errors {
		var parts []string
		for _, p := range []string{d.Resource, d.Field, d.Code, d.Message} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		out.Details = append(out.Details, strings.Join(parts, " "))
	}
	return out
}

func (a api) Login(ctx context.Context) (string, error) {
	var u user
	if _, err := a.t.Do(ctx, forge.Call{Method: http.MethodGet, Path: "user", Retry: true}, &u); err != nil {
		return "", err
	}
	return u.Login, nil
}

func (a api) Issue(ctx context.Context, repo string, number int) (forge.Issue, error) {
	var i issue
	if _, err := a.t.Do(ctx, forge.Call{Method: http.MethodGet, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number)), Retry: true}, &i); err != nil {
		return forge.Issue{}, err
	}
	return i.toForge(), nil
}

func (a api) OpenIssues(ctx context.Context, repo, lbl string, limit int) ([]forge.Issue, error) {
	q := url.Values{"state": {"open"}, "labels": {lbl}, "per_page": {perPage}, "sort": {"created"}, "direction": {"asc"}}
	all, err := forge.GetAll[issue](ctx, a.t, forge.Call{Method: http.MethodGet, Path: forge.RepoPath(repo, "issues"), Query: q, Retry: true}, limit)
	if err != nil {
		return nil, err
	}
	out := make([]forge.Issue, len(all))
	for i, is := range all {
		out[i] = is.toForge()
	}
	return out, nil
}

func (a api) Comments(ctx context.Context, repo string, number int) ([]forge.Comment, error) {
	q := url.Values{"per_page": {perPage}}
	all, err := forge.GetAll[comment](ctx, a.t, forge.Call{Method: http.MethodGet, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number), "comments"), Query: q, Retry: true}, 0)
	if err != nil {
		return nil, err
	}
	out := make([]forge.Comment, len(all))
	for i, c := range all {
		out[i] = forge.Comment{ID: c.ID, Author: c.User.Login, Body: c.Body, CreatedAt: c.CreatedAt}
	}
	return out, nil
}

func (a api) Comment(ctx context.Context, repo string, number int, body string) (forge.Comment, error) {
	var c comment
	if _, err := a.t.Do(ctx, forge.Call{Method: http.MethodPost, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number), "comments"), Body: bodyOption{Body: body}}, &c); err != nil {
		return forge.Comment{}, err
	}
	return forge.Comment{ID: c.ID, Author: c.User.Login, Body: c.Body, CreatedAt: c.CreatedAt}, nil
}

func (a api) DeleteComment(ctx context.Context, repo string, id int64) error {
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodDelete, Path: forge.RepoPath(repo, "issues", "comments", strconv.FormatInt(id, 10)), Retry: true}, nil)
	return ignoreNotFound(err)
}

func (a api) AddLabels(ctx context.Context, repo string, number int, labels ...string) error {
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodPost, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number), "labels"), Body: labelsOption{Labels: labels}, Retry: true}, nil)
	return err
}

func (a api) RemoveLabel(ctx context.Context, repo string, number int, lbl string) error {
	// 404 "Label does not exist": it is not on the issue.
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodDelete, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number), "labels", lbl), Retry: true}, nil)
	return ignoreNotFound(err)
}

func (a api) Assign(ctx context.Context, repo string, number int, login string) error {
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodPost, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number), "assignees"), Body: assigneesOption{Assignees: []string{login}}, Retry: true}, nil)
	return err
}

func (a api) Unassign(ctx context.Context, repo string, number int, login string) error {
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodDelete, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number), "assignees"), Body: assigneesOption{Assignees: []string{login}}, Retry: true}, nil)
	return err
}

func (a api) Close(ctx context.Context, repo string, number int, reason forge.CloseReason) error {
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodPatch, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number)), Body: closeOption{State: "closed", StateReason: string(reason)}, Retry: true}, nil)
	return err
}

func ignoreNotFound(err error) error {
	var apiErr *forge.APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return nil
	}
	return err
}
