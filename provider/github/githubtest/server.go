package githubtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"chorus/provider/internal/fakeforge"
)

// Documentation URLs GitHub puts in its error bodies.
const (
	docsRoot      = "https://docs.github.com/rest"
	docsRateLimit = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
)

// RateLimit is the x-ratelimit-limit every response reports.
const RateLimit = 5000

// Route names for Fault.Route and Requests: the method and path pattern
// of each endpoint, as GitHub's documentation writes them.
const (
	RouteUser            = "GET /user"
	RouteListIssues      = "GET /repos/{owner}/{repo}/issues"
	RouteGetIssue        = "GET /repos/{owner}/{repo}/issues/{number}"
	RouteUpdateIssue     = "PATCH /repos/{owner}/{repo}/issues/{number}"
	RouteListComments    = "GET /repos/{owner}/{repo}/issues/{number}/comments"
	RouteCreateComment   = "POST /repos/{owner}/{repo}/issues/{number}/comments"
	RouteDeleteComment   = "DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}"
	RouteAddLabels       = "POST /repos/{owner}/{repo}/issues/{number}/labels"
	RouteRemoveLabel     = "DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}"
	RouteAddAssignees    = "POST /repos/{owner}/{repo}/issues/{number}/assignees"
	RouteRemoveAssignees = "DELETE /repos/{owner}/{repo}/issues/{number}/assignees"
)

// Server is the fake GitHub API.
type Server struct {
	store *fakeforge.Store
	srv   *httptest.Server
	used  atomic.Int64
	reqID atomic.Int64
}

// NewServer starts a fake on a loopback port. Close it when done.
func NewServer() *Server {
	s := &Server{store: fakeforge.NewStore()}
	mux := http.NewServeMux()
	for _, r := range []struct {
		pattern string
		h       func(w http.ResponseWriter, r *http.Request, login string)
	}{
		{RouteUser, s.getUser},
		{RouteListIssues, s.listIssues},
		{RouteGetIssue, s.getIssue},
		{RouteUpdateIssue, s.updateIssue},
		{RouteListComments, s.listComments},
		{RouteCreateComment, s.createComment},
		{RouteAddLabels, s.addLabels},
		{RouteRemoveLabel, s.removeLabel},
		{RouteAddAssignees, s.addAssignees},
	} {
		mux.HandleFunc(r.pattern, s.wrap(r.pattern, r.h))
	}
	// These two overlap as ServeMux patterns (issues/comments/assignees
	// matches both), so one handler tells them apart, under each route's
	// own name.
	deleteComment := s.wrap(RouteDeleteComment, s.deleteComment)
	removeAssignees := s.wrap(RouteRemoveAssignees, s.removeAssignees)
	mux.HandleFunc("DELETE /repos/{owner}/{repo}/issues/{a}/{b}", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.PathValue("a") == "comments":
			r.SetPathValue("comment_id", r.PathValue("b"))
			deleteComment(w, r)
		case r.PathValue("b") == "assignees":
			r.SetPathValue("number", r.PathValue("a"))
			removeAssignees(w, r)
		default:
			s.headers(w)
			writeError(w, http.StatusNotFound, "Not Found", docsRoot)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.headers(w)
		writeError(w, http.StatusNotFound, "Not Found", docsRoot)
	})
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the API root, to be used as the provider's url.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddToken makes token authenticate as login.
func (s *Server) AddToken(token, login string) { s.store.AddToken(token, login) }

// AddRepo creates the repository "owner/name".
func (s *Server) AddRepo(fullName string) { s.store.AddRepo(fullName) }

// NewIssue describes an issue to create.
type NewIssue = fakeforge.NewIssue

// CreateIssue adds an issue and returns its number; it panics on an
// unknown repository (a test's own mistake).
func (s *Server) CreateIssue(fullName string, in NewIssue) int {
	if in.Author == "" {
		in.Author = "octocat"
	}
	n, err := s.store.CreateIssue(fullName, in)
	if err != nil {
		panic(fmt.Sprintf("githubtest: create issue in %s: %v", fullName, err))
	}
	return n
}

// Issue is a stored issue.
type Issue = fakeforge.Issue

// Comment is a stored comment.
type Comment = fakeforge.Comment

// Issue returns the stored issue.
func (s *Server) Issue(fullName string, number int) (Issue, error) {
	return s.store.Issue(fullName, number)
}

// AddComment adds a comment by author, as a human would.
func (s *Server) AddComment(fullName string, number int, author, body string) (Comment, error) {
	return s.store.AddComment(fullName, number, author, body)
}

// Comments returns the issue's comments, oldest first.
func (s *Server) Comments(fullName string, number int) ([]Comment, error) {
	return s.store.Comments(fullName, number)
}

// SetOpen closes (or reopens) an issue as a human would.
func (s *Server) SetOpen(fullName string, number int, open bool) error {
	_, err := s.store.UpdateIssue(fullName, number, fakeforge.Update{Open: &open})
	return err
}

// Fault makes requests fail; see fakeforge.Fault.
type Fault = fakeforge.Fault

// Inject queues a fault for the next matching requests.
func (s *Server) Inject(f Fault) { s.store.Inject(f) }

// Interleave holds comment writes whose body matches until n have arrived
// on one issue, or within has passed; see fakeforge.Store.Interleave.
func (s *Server) Interleave(n int, within time.Duration, match func(body string) bool) {
	s.store.Interleave(n, within, match)
}

// Interleaved returns how many times n matching writers were in flight on
// one issue together.
func (s *Server) Interleaved() int { return s.store.Interleaved() }

// Requests returns how many requests a route pattern received ("" = all).
func (s *Server) Requests(route string) int { return s.store.Requests(route) }

// wrap authenticates, applies faults and sets the headers every answer
// carries.
func (s *Server) wrap(route string, h func(w http.ResponseWriter, r *http.Request, login string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.headers(w)
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			token, ok = strings.CutPrefix(auth, "token ")
		}
		if !ok || token == "" {
			writeError(w, http.StatusUnauthorized, "Requires authentication", docsRoot)
			return
		}
		login, ok := s.store.Login(token)
		if !ok {
			writeError(w, http.StatusUnauthorized, "Bad credentials", docsRoot)
			return
		}
		if f, ok := s.store.Take(route); ok {
			s.fail(w, f)
			return
		}
		h(w, r, login)
	}
}

func (s *Server) headers(w http.ResponseWriter) {
	used := s.used.Add(1)
	h := w.Header()
	h.Set("X-Ratelimit-Limit", strconv.Itoa(RateLimit))
	h.Set("X-Ratelimit-Remaining", strconv.FormatInt(max(RateLimit-used, 0), 10))
	h.Set("X-Ratelimit-Used", strconv.FormatInt(used, 10))
	h.Set("X-Ratelimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	h.Set("X-Ratelimit-Resource", "core")
	h.Set("X-Github-Media-Type", "github.v3; format=json")
	h.Set("X-Github-Api-Version-Selected", "2022-11-28")
	h.Set("X-Github-Request-Id", fmt.Sprintf("0000:%04X:%06X", 0xC0DE, s.reqID.Add(1)))
}

// fail answers as GitHub does for the fault.
func (s *Server) fail(w http.ResponseWriter, f Fault) {
	h := w.Header()
	switch {
	case f.RateLimit:
		reset := f.ResetAfter
		h.Set("X-Ratelimit-Remaining", "0")
		h.Set("X-Ratelimit-Used", strconv.Itoa(RateLimit))
		h.Set("X-Ratelimit-Reset", strconv.FormatInt(time.Now().Add(reset).Unix(), 10))
		status := f.Status
		if status == 0 {
			status = http.StatusForbidden
		}
		writeError(w, status, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID "+h.Get("X-Github-Request-Id")+".", docsRateLimit)
	case f.RetryAfter > 0:
		h.Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
		status := f.Status
		if status == 0 {
			status = http.StatusForbidden
		}
		writeError(w, status, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", docsRateLimit+"#about-secondary-rate-limits")
	case f.Status == http.StatusUnprocessableEntity:
		writeValidation(w, "Issue", "body", "invalid", "")
	case f.Status == http.StatusNotFound:
		writeError(w, http.StatusNotFound, "Not Found", docsRoot)
	case f.Status >= 500:
		writeError(w, f.Status, "Server Error", "")
	default:
		writeError(w, f.Status, http.StatusText(f.Status), docsRoot)
	}
}

// errorBody is GitHub's error answer.
type errorBody struct {
	Message          string            `json:"message"`
	Errors           []validationError `json:"errors,omitempty"`
	DocumentationURL string            `json:"documentation_url,omitempty"`
	Status           string            `json:"status"`
}

type validationError struct {
	Resource string `json:"resource"`
	Field    string `json:"field"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg, doc string) {
	writeJSON(w, status, errorBody{Message: msg, DocumentationURL: doc, Status: strconv.Itoa(status)})
}

func writeValidation(w http.ResponseWriter, resource, field, code, msg string) {
	writeJSON(w, http.StatusUnprocessableEntity, errorBody{Message: "Validation Failed",
		Errors:           []validationError{{Resource: resource, Field: field, Code: code, Message: msg}},
		DocumentationURL: docsRoot, Status: "422"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// storeError answers a store error as GitHub would.
func storeError(w http.ResponseWriter, err error, doc string) {
	switch {
	case errors.Is(err, fakeforge.ErrNoRepo), errors.Is(err, fakeforge.ErrNoIssue), errors.Is(err, fakeforge.ErrNoComment):
		writeError(w, http.StatusNotFound, "Not Found", doc)
	case errors.Is(err, fakeforge.ErrNoLabel):
		writeError(w, http.StatusNotFound, "Label does not exist", doc)
	default:
		writeError(w, http.StatusInternalServerError, err.Error(), "")
	}
}

func repoName(r *http.Request) string { return r.PathValue("owner") + "/" + r.PathValue("repo") }

func number(w http.ResponseWriter, r *http.Request) (int, bool) {
	n, err := strconv.Atoi(r.PathValue("number"))
	if err != nil || n <= 0 {
		writeError(w, http.StatusNotFound, "Not Found", docsRoot)
		return 0, false
	}
	return n, true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", docsRoot)
		return false
	}
	return true
}

// page applies per_page and page to n items and sets the Link header; it
// returns the slice bounds.
func (s *Server) page(w http.ResponseWriter, r *http.Request, n int) (lo, hi int, ok bool) {
	q := r.URL.Query()
	per, page := 30, 1
	if v := q.Get("per_page"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 {
			writeValidation(w, "Search", "per_page", "invalid", "")
			return 0, 0, false
		}
		per = min(p, 100)
	}
	if v := q.Get("page"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 {
			p = 1
		}
		page = p
	}
	last := max((n+per-1)/per, 1)
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("per_page", strconv.Itoa(per))
		q.Set("page", strconv.Itoa(p))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	lo = min((page-1)*per, n)
	return lo, min(lo+per, n), true
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, login string) {
	writeJSON(w, http.StatusOK, s.user(login))
}

func (s *Server) listIssues(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && state != "open" && state != "closed" && state != "all" {
		writeValidation(w, "Issue", "state", "invalid", "")
		return
	}
	f := fakeforge.Filter{State: state}
	if l := q.Get("labels"); l != "" {
		f.Labels = strings.Split(l, ",")
	}
	issues, err := s.store.Issues(repoName(r), f)
	if err != nil {
		storeError(w, err, docsRoot+"/issues/issues#list-repository-issues")
		return
	}
	if q.Get("direction") != "asc" {
		for i, j := 0, len(issues)-1; i < j; i, j = i+1, j-1 {
			issues[i], issues[j] = issues[j], issues[i]
		}
	}
	lo, hi, ok := s.page(w, r, len(issues))
	if !ok {
		return
	}
	out := make([]issueJSON, 0, hi-lo)
	for _, is := range issues[lo:hi] {
		out = append(out, s.issueJSON(repoName(r), is))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getIssue(w http.ResponseWriter, r *http.Request, _ string) {
	n, ok := number(w, r)
	if !ok {
		return
	}
	is, err := s.store.Issue(repoName(r), n)
	if err != nil {
		storeError(w, err, docsRoot+"/issues/issues#get-an-issue")
		return
	}
	writeJSON(w, http.StatusOK, s.issueJSON(repoName(r), is))
}

// issueUpdate is the body of PATCH .../issues/{number}.
type issueUpdate struct {
	State       *string   `json:"state"`
	StateReason *string   `json:"state_reason"`
	Title       *string   `json:"title"`
	Body        *string   `json:"body"`
	Assignees   *[]string `json:"assignees"`
}

func (s *Server) updateIssue(w http.ResponseWriter, r *http.Request, _ string) {
	n, ok := number(w, r)
	if !ok {
		return
	}
	var in issueUpdate
	if !decode(w, r, &in) {
		return
	}
	u := fakeforge.Update{Title: in.Title, Body: in.Body, Assignees: in.Assignees, StateReason: in.StateReason}
	if in.State != nil {
		switch *in.State {
		case "open", "closed":
			open := *in.State == "open"
			u.Open = &open
		default:
			writeValidation(w, "Issue", "state", "invalid", "")
			return
		}
	}
	if in.StateReason != nil {
		switch *in.StateReason {
		case "completed", "not_planned", "reopened":
		default:
			writeValidation(w, "Issue", "state_reason", "invalid", "")
			return
		}
	}
	is, err := s.store.UpdateIssue(repoName(r), n, u)
	if err != nil {
		storeError(w, err, docsRoot+"/issues/issues#update-an-issue")
		return
	}
	writeJSON(w, http.StatusOK, s.issueJSON(repoName(r), is))
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request, _ string) {
	n, ok := number(w, r)
	if !ok {
		return
	}
	cs, err := s.store.Comments(repoName(r), n)
	if err != nil {
		storeError(w, err, docsRoot+"/issues/comments#list-issue-comments")
		return
	}
	lo, hi, ok := s.page(w, r, len(cs))
	if !ok {
		return
	}
	out := make([]commentJSON, 0, hi-lo)
	for _, c := range cs[lo:hi] {
		out = append(out, s.commentJSON(repoName(r), c))
	}
	writeJSON(w, http.StatusOK, out)
}

// commentBody is the body of POST .../comments.
type commentBody struct {
	Body *string `json:"body"`
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request, login string) {
	n, ok := number(w, r)
	if !ok {
		return
	}
	var in commentBody
	if !decode(w, r, &in) {
		return
	}
	if in.Body == nil || strings.TrimSpace(*in.Body) == "" {
		writeValidation(w, "IssueComment", "body", "missing_field", "")
		return
	}
	if len(*in.Body) > 65536 {
		writeValidation(w, "IssueComment", "body", "custom", "body is too long (maximum is 65536 characters)")
		return
	}
	s.store.Hold(r.Context(), repoName(r), n, *in.Body)
	c, err := s.store.AddComment(repoName(r), n, login, *in.Body)
	if err != nil {
		storeError(w, err, docsRoot+"/issues/comments#create-an-issue-comment")
		return
	}
	w.Header().Set("Location", s.commentJSON(repoName(r), c).URL)
	writeJSON(w, http.StatusCreated, s.commentJSON(repoName(r), c))
}

func (s *Server) deleteComment(w http.ResponseWriter, r *http.Request, _ string) {
	id, err := strconv.ParseInt(r.PathValue("comment_id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "Not Found", docsRoot)
		return
	}
	if err := s.store.DeleteComment(repoName(r), id); err != nil {
		storeError(w, err, docsRoot+"/issues/comments#delete-an-issue-comment")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// labelsBody is the body of POST .../labels.
type labelsBody struct {
	Labels []string `json:"labels"`
}

func (s *Server) addLabels(w http.ResponseWriter, r *http.Request, _ string) {
	n, ok := number(w, r)
	if !ok {
		return
	}
	var in labelsBody
	if !decode(w, r, &in) {
		return
	}
	if len(in.Labels) == 0 {
		writeValidation(w, "Label", "labels", "missing_field", "")
		return
	}
	is, err := s.store.AddLabels(repoName(r), n, in.Labels, true)
	if err != nil {
		storeError(w, err, docsRoot+"/issues/labels#add-labels-to-an-issue")
		return
	}
	writeJSON(w, http.StatusOK, s.labelsJSON(repoName(r), is.Labels))
}

func (s *Server) removeLabel(w http.ResponseWriter, r *http.Request, _ string) {
	n, ok := number(w, r)
	if !ok {
		return
	}
	is, err := s.store.RemoveLabel(repoName(r), n, r.PathValue("name"))
	if err != nil {
		storeError(w, err, docsRoot+"/issues/labels#remove-a-label-from-an-issue")
		return
	}
	writeJSON(w, http.StatusOK, s.labelsJSON(repoName(r), is.Labels))
}

// assigneesBody is the body of the assignees endpoints.
type assigneesBody struct {
	Assignees []string `json:"assignees"`
}

func (s *Server) addAssignees(w http.ResponseWriter, r *http.Request, _ string) {
	s.changeAssignees(w, r, true)
}

func (s *Server) removeAssignees(w http.ResponseWriter, r *http.Request, _ string) {
	s.changeAssignees(w, r, false)
}

func (s *Server) changeAssignees(w http.ResponseWriter, r *http.Request, add bool) {
	n, ok := number(w, r)
	if !ok {
		return
	}
	var in assigneesBody
	if !decode(w, r, &in) {
		return
	}
	var is Issue
	var err error
	status := http.StatusOK
	if add {
		if len(in.Assignees) > 10 {
			writeValidation(w, "Issue", "assignees", "invalid", "at most 10 assignees")
			return
		}
		is, err = s.store.ChangeAssignees(repoName(r), n, in.Assignees, nil)
		status = http.StatusCreated
	} else {
		is, err = s.store.ChangeAssignees(repoName(r), n, nil, in.Assignees)
	}
	if err != nil {
		storeError(w, err, docsRoot+"/issues/assignees")
		return
	}
	writeJSON(w, status, s.issueJSON(repoName(r), is))
}

// Delivery describes a webhook delivery for Deliver.
type Delivery struct {
	// URL is the hook's address (the chorus ops server's
	// /webhooks/github).
	URL string
	// Secret signs the body; empty sends no signature.
	Secret string
	// Event is the X-GitHub-Event ("issues", "ping", ...).
	Event string
	// Action is the payload's action ("opened", "labeled").
	Action string
	// Repository and Number name the stored issue the payload carries.
	Repository string
	Number     int
	// Label is the label of a "labeled" action.
	Label string
}

// Deliver posts a webhook delivery shaped as GitHub sends it and returns
// the hook's answer.
func (s *Server) Deliver(ctx context.Context, d Delivery) (*http.Response, error) {
	body, err := s.Payload(d)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/chorus-fake")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", hex.EncodeToString(id[:]))
	req.Header.Set("X-GitHub-Hook-ID", "1")
	if d.Secret != "" {
		req.Header.Set("X-Hub-Signature-256", "sha256="+Sign(d.Secret, body))
	}
	return http.DefaultClient.Do(req)
}

// Sign returns the hex HMAC-SHA256 of body, as in X-Hub-Signature-256.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Payload builds the JSON body of a delivery.
func (s *Server) Payload(d Delivery) ([]byte, error) {
	if d.Event == "ping" {
		return json.Marshal(pingJSON{Zen: "Keep it logically awesome.", HookID: 1})
	}
	is, err := s.store.Issue(d.Repository, d.Number)
	if err != nil {
		return nil, err
	}
	id, full, err := s.store.RepoID(d.Repository)
	if err != nil {
		return nil, err
	}
	owner, name, _ := strings.Cut(full, "/")
	ev := issuesEventJSON{Action: d.Action, Issue: s.issueJSON(full, is),
		Repository: repositoryJSON{ID: id, NodeID: nodeID("R_", id), Name: name, FullName: full, Owner: s.user(owner),
			HTMLURL: "https://github.com/" + full, URL: s.URL() + "/repos/" + full},
		Sender: s.user(is.Author)}
	if d.Label != "" {
		l := s.labelsJSON(full, []string{d.Label})[0]
		ev.Label = &l
	}
	return json.Marshal(ev)
}
