package gitea

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"chorus"
	"chorus/provider/internal/forge"
	"chorus/secret"
)

// The JSON of Gitea's REST API (/api/v1, see its swagger at
// /api/swagger), the fields chorus reads.
type (
	user struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
	}
	label struct {
		ID    int64  `json:"id"`
		Name  string `json:"name"`
		Color string `json:"color"`
	}
	issue struct {
		Number    int       `json:"number"`
		Title     string    `json:"title"`
		Body      string    `json:"body"`
		State     string    `json:"state"`
		Labels    []label   `json:"labels"`
		Assignees []user    `json:"assignees"`
		User      user      `json:"user"`
		CreatedAt time.Time `json:"created_at"`
		UpdatedAt time.Time `json:"updated_at"`
		// PullRequest is set only on pull requests.
		PullRequest *struct {
			Merged bool `json:"merged"`
		} `json:"pull_request"`
	}
	comment struct {
		ID        int64     `json:"id"`
		Body      string    `json:"body"`
		User      user      `json:"user"`
		CreatedAt time.Time `json:"created_at"`
	}
	// errorBody is Gitea's APIError answer.
	errorBody struct {
		Message string   `json:"message"`
		URL     string   `json:"url"`
		Errors  []string `json:"errors"`
	}
	createCommentOption struct {
		Body string `json:"body"`
	}
	issueLabelsOption struct {
		Labels []int64 `json:"labels"`
	}
	createLabelOption struct {
		Name        string `json:"name"`
		Color       string `json:"color"`
		Description string `json:"description"`
	}
	editIssueOption struct {
		State     *string   `json:"state,omitempty"`
		Assignees *[]string `json:"assignees,omitempty"`
	}
)

func (i issue) toForge() forge.Issue {
	is := forge.Issue{
		Number: i.Number, Title: i.Title, Body: i.Body, Open: i.State == "open", Author: i.User.Login,
		CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt, IsPull: i.PullRequest != nil,
	}
	for _, l := range i.Labels {
		is.Labels = append(is.Labels, l.Name)
	}
	for _, a := range i.Assignees {
		is.Assignees = append(is.Assignees, a.Login)
	}
	return is
}

// pageLimit is Gitea's default MAX_RESPONSE_ITEMS.
const pageLimit = "50"

// api implements forge.API over Gitea's REST endpoints. Gitea adds and
// removes issue labels by ID, so the IDs of the labels chorus uses are
// looked up (and the labels created when missing) once per repository.
type api struct {
	t *forge.Transport

	mu     sync.Mutex
	labels map[string]map[string]int64 // repo -> label name -> ID
}

// apiRoot returns the /api/v1 root of a Gitea server URL.
func apiRoot(base string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil {
		return nil, fmt.Errorf("%w: url: %w", chorus.ErrInvalid, err)
	}
	if !strings.HasSuffix(u.Path, "/api/v1") {
		u = u.JoinPath("api", "v1")
	}
	return u, nil
}

func newTransport(cfg Config, token secret.Secret) (*forge.Transport, error) {
	base, err := apiRoot(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &forge.Transport{
		Provider:    ProviderName,
		Base:        base,
		HTTP:        hc,
		AuthScheme:  "token",
		Token:       token,
		Header:      http.Header{"Accept": {"application/json"}, "User-Agent": {"chorus"}},
		Retry:       cfg.Retry,
		RateLimited: rateLimited,
		DecodeError: decodeError,
		Logger:      cfg.Logger,
	}, nil
}

// rateLimited: Gitea (or the proxy in front of it) answers 429; the wait
// is its Retry-After, else X-RateLimit-Reset (epoch seconds), else a few
// seconds.
func rateLimited(resp *http.Response, _ []byte, now time.Time) (time.Duration, bool) {
	if resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	if d := forge.RetryAfter(resp.Header, now); d >= 0 {
		return d, true
	}
	if d := forge.ResetWait(resp.Header, "X-RateLimit-Reset", now); d >= 0 {
		return d, true
	}
	return 5 * time.Second, true
}

func decodeError(body []byte) forge.ErrorBody {
	var e errorBody
	if json.Unmarshal(body, &e) != nil {
		return forge.ErrorBody{}
	}
	return forge.ErrorBody{Message: e.Message, DocURL: e.URL, Details: e.Errors}
}

func (a *api) Login(ctx context.Context) (string, error) {
	var u user
	if _, err := a.t.Do(ctx, forge.Call{Method: http.MethodGet, Path: "user", Retry: true}, &u); err != nil {
		return "", err
	}
	return u.Login, nil
}

func (a *api) issue(ctx context.Context, repo string, number int) (issue, error) {
	var i issue
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodGet, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number)), Retry: true}, &i)
	return i, err
}

func (a *api) Issue(ctx context.Context, repo string, number int) (forge.Issue, error) {
	i, err := a.issue(ctx, repo, number)
	if err != nil {
		return forge.Issue{}, err
	}
	return i.toForge(), nil
}

func (a *api) OpenIssues(ctx context.Context, repo, lbl string, limit int) ([]forge.Issue, error) {
	q := url.Values{"state": {"open"}, "type": {"issues"}, "labels": {lbl}, "limit": {pageLimit}, "page": {"1"}}
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

func (a *api) Comments(ctx context.Context, repo string, number int) ([]forge.Comment, error) {
	all, err := forge.GetAll[comment](ctx, a.t, forge.Call{Method: http.MethodGet, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number), "comments"), Retry: true}, 0)
	if err != nil {
		return nil, err
	}
	out := make([]forge.Comment, len(all))
	for i, c := range all {
		out[i] = forge.Comment{ID: c.ID, Author: c.User.Login, Body: c.Body, CreatedAt: c.CreatedAt}
	}
	return out, nil
}

func (a *api) Comment(ctx context.Context, repo string, number int, body string) (forge.Comment, error) {
	var c comment
	if _, err := a.t.Do(ctx, forge.Call{Method: http.MethodPost, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number), "comments"), Body: createCommentOption{Body: body}}, &c); err != nil {
		return forge.Comment{}, err
	}
	return forge.Comment{ID: c.ID, Author: c.User.Login, Body: c.Body, CreatedAt: c.CreatedAt}, nil
}

func (a *api) DeleteComment(ctx context.Context, repo string, id int64) error {
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodDelete, Path: forge.RepoPath(repo, "issues", "comments", strconv.FormatInt(id, 10)), Retry: true}, nil)
	return ignoreStatus(err, http.StatusNotFound)
}

// labelID returns the ID of the repository label name, creating the label
// when the repository has none of that name.
func (a *api) labelID(ctx context.Context, repo, name string) (int64, error) {
	a.mu.Lock()
	id, ok := a.labels[repo][name]
	a.mu.Unlock()
	if ok {
		return id, nil
	}
	if id, ok, err := a.findLabel(ctx, repo, name); err != nil || ok {
		return id, err
	}
	var l label
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodPost, Path: forge.RepoPath(repo, "labels"),
		Body: createLabelOption{Name: name, Color: "#ededed", Description: "managed by chorus"}}, &l)
	if err != nil {
		// Another agent may have created it meanwhile.
		if id, ok, ferr := a.findLabel(ctx, repo, name); ferr == nil && ok {
			return id, nil
		}
		return 0, fmt.Errorf("create label %q: %w", name, err)
	}
	a.remember(repo, l)
	return l.ID, nil
}

func (a *api) findLabel(ctx context.Context, repo, name string) (int64, bool, error) {
	q := url.Values{"limit": {pageLimit}, "page": {"1"}}
	all, err := forge.GetAll[label](ctx, a.t, forge.Call{Method: http.MethodGet, Path: forge.RepoPath(repo, "labels"), Query: q, Retry: true}, 0)
	if err != nil {
		return 0, false, fmt.Errorf("list labels: %w", err)
	}
	var id int64
	found := false
	for _, l := range all {
		a.remember(repo, l)
		if l.Name == name && !found {
			id, found = l.ID, true
		}
	}
	return id, found, nil
}

func (a *api) remember(repo string, l label) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.labels == nil {
		a.labels = map[string]map[string]int64{}
	}
	if a.labels[repo] == nil {
		a.labels[repo] = map[string]int64{}
	}
	if _, ok := a.labels[repo][l.Name]; !ok {
		a.labels[repo][l.Name] = l.ID
	}
}

func (a *api) forget(repo, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.labels[repo], name)
}

func (a *api) AddLabels(ctx context.Context, repo string, number int, names ...string) error {
	ids := make([]int64, 0, len(names))
	for _, n := range names {
		id, err := a.labelID(ctx, repo, n)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodPost, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number), "labels"), Body: issueLabelsOption{Labels: ids}, Retry: true}, nil)
	var apiErr *forge.APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnprocessableEntity {
		// A label deleted since it was looked up.
		for _, n := range names {
			a.forget(repo, n)
		}
	}
	return err
}

func (a *api) RemoveLabel(ctx context.Context, repo string, number int, name string) error {
	id, err := a.labelID(ctx, repo, name)
	if err != nil {
		return err
	}
	_, err = a.t.Do(ctx, forge.Call{Method: http.MethodDelete, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number), "labels", strconv.FormatInt(id, 10)), Retry: true}, nil)
	// 422: the label no longer exists, so it is not on the issue either.
	if ignoreStatus(err, http.StatusUnprocessableEntity) == nil && err != nil {
		a.forget(repo, name)
		return nil
	}
	return ignoreStatus(err, http.StatusNotFound)
}

// setAssignees replaces the assignee list (Gitea's PATCH replaces it).
func (a *api) setAssignees(ctx context.Context, repo string, number int, change func([]string) []string) error {
	i, err := a.issue(ctx, repo, number)
	if err != nil {
		return err
	}
	var cur []string
	for _, u := range i.Assignees {
		cur = append(cur, u.Login)
	}
	next := change(slices.Clone(cur))
	if slices.Equal(cur, next) {
		return nil
	}
	if next == nil {
		next = []string{}
	}
	_, err = a.t.Do(ctx, forge.Call{Method: http.MethodPatch, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number)), Body: editIssueOption{Assignees: &next}, Retry: true}, nil)
	return err
}

func (a *api) Assign(ctx context.Context, repo string, number int, login string) error {
	return a.setAssignees(ctx, repo, number, func(l []string) []string {
		if !slices.Contains(l, login) {
			l = append(l, login)
		}
		return l
	})
}

func (a *api) Unassign(ctx context.Context, repo string, number int, login string) error {
	return a.setAssignees(ctx, repo, number, func(l []string) []string {
		return slices.DeleteFunc(l, func(s string) bool { return s == login })
	})
}

func (a *api) Close(ctx context.Context, repo string, number int, _ forge.CloseReason) error {
	closed := "closed"
	_, err := a.t.Do(ctx, forge.Call{Method: http.MethodPatch, Path: forge.RepoPath(repo, "issues", strconv.Itoa(number)), Body: editIssueOption{State: &closed}, Retry: true}, nil)
	return err
}

func ignoreStatus(err error, status int) error {
	var apiErr *forge.APIError
	if errors.As(err, &apiErr) && apiErr.Status == status {
		return nil
	}
	return err
}
