package giteatest

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
	"time"

	"chorus/provider/internal/fakeforge"
)

// Route names for Fault.Route and Requests (paths below /api/v1).
const (
	RouteUser          = "GET /user"
	RouteListIssues    = "GET /repos/{owner}/{repo}/issues"
	RouteGetIssue      = "GET /repos/{owner}/{repo}/issues/{index}"
	RouteEditIssue     = "PATCH /repos/{owner}/{repo}/issues/{index}"
	RouteListComments  = "GET /repos/{owner}/{repo}/issues/{index}/comments"
	RouteCreateComment = "POST /repos/{owner}/{repo}/issues/{index}/comments"
	RouteDeleteComment = "DELETE /repos/{owner}/{repo}/issues/comments/{id}"
	RouteAddLabels     = "POST /repos/{owner}/{repo}/issues/{index}/labels"
	RouteRemoveLabel   = "DELETE /repos/{owner}/{repo}/issues/{index}/labels/{id}"
	RouteListLabels    = "GET /repos/{owner}/{repo}/labels"
	RouteCreateLabel   = "POST /repos/{owner}/{repo}/labels"
)

// Paging as Gitea's defaults: DEFAULT_PAGING_NUM and MAX_RESPONSE_ITEMS.
const (
	DefaultPageSize = 30
	MaxPageSize     = 50
)

// Server is the fake Gitea.
type Server struct {
	store *fakeforge.Store
	srv   *httptest.Server
}

// NewServer starts a fake on a loopback port. Close it when done.
func NewServer() *Server {
	s := &Server{store: fakeforge.NewStore()}
	mux := http.NewServeMux()
	for _, r := range []struct {
		route string
		h     func(w http.ResponseWriter, r *http.Request, login string)
	}{
		{RouteUser, s.getUser},
		{RouteListIssues, s.listIssues},
		{RouteGetIssue, s.getIssue},
		{RouteEditIssue, s.editIssue},
		{RouteListComments, s.listComments},
		{RouteCreateComment, s.createComment},
		{RouteDeleteComment, s.deleteComment},
		{RouteAddLabels, s.addLabels},
		{RouteRemoveLabel, s.removeLabel},
		{RouteListLabels, s.listLabels},
		{RouteCreateLabel, s.createLabel},
	} {
		method, path, _ := strings.Cut(r.route, " ")
		mux.HandleFunc(method+" /api/v1"+path, s.wrap(r.route, r.h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.notFound(w) })
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the server's root, to be used as the provider's url (the API is
// under /api/v1).
func (s *Server) URL() string { return s.srv.URL }

func (s *Server) swagger() string { return s.srv.URL + "/api/swagger" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddToken makes token authenticate as login.
func (s *Server) AddToken(token, login string) { s.store.AddToken(token, login) }

// AddRepo creates the repository "owner/name".
func (s *Server) AddRepo(fullName string) { s.store.AddRepo(fullName) }

// NewIssue describes an issue to create.
type NewIssue = fakeforge.NewIssue

// CreateIssue adds an issue (creating its labels in the repository) and
// returns its number; it panics on an unknown repository.
func (s *Server) CreateIssue(fullName string, in NewIssue) int {
	if in.Author == "" {
		in.Author = "gitea-user"
	}
	n, err := s.store.CreateIssue(fullName, in)
	if err != nil {
		panic(fmt.Sprintf("giteatest: create issue in %s: %v", fullName, err))
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

// Fault makes requests fail; see fakeforge.Fault. Gitea answers a rate
// limit with 429 (RateLimit or RetryAfter set).
type Fault = fakeforge.Fault

// Inject queues a fault for the next matching requests.
func (s *Server) Inject(f Fault) { s.store.Inject(f) }

// Interleave holds comment writes whose body matches until n have arrived
// on one issue, or within has passed.
func (s *Server) Interleave(n int, within time.Duration, match func(body string) bool) {
	s.store.Interleave(n, within, match)
}

// Interleaved returns how many times n matching writers were in flight on
// one issue together.
func (s *Server) Interleaved() int { return s.store.Interleaved() }

// Requests returns how many requests a route received ("" = all).
func (s *Server) Requests(route string) int { return s.store.Requests(route) }

func (s *Server) wrap(route string, h func(w http.ResponseWriter, r *http.Request, login string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "token ")
		if !ok {
			token, ok = strings.CutPrefix(auth, "Bearer ")
		}
		if !ok || token == "" {
			s.writeError(w, http.StatusUnauthorized, "token is required")
			return
		}
		login, ok := s.store.Login(token)
		if !ok {
			s.writeError(w, http.StatusUnauthorized, "user does not exist")
			return
		}
		if f, ok := s.store.Take(route); ok {
			s.fail(w, f)
			return
		}
		h(w, r, login)
	}
}

func (s *Server) fail(w http.ResponseWriter, f Fault) {
	h := w.Header()
	switch {
	case f.RateLimit || f.RetryAfter > 0:
		h.Set("X-RateLimit-Limit", "100")
		h.Set("X-RateLimit-Remaining", "0")
		if f.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
		}
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(f.ResetAfter).Unix(), 10))
		s.writeError(w, http.StatusTooManyRequests, "rate limit exceeded")
	case f.Status == http.StatusNotFound:
		s.notFound(w)
	default:
		s.writeError(w, f.Status, http.StatusText(f.Status))
	}
}

// apiError is Gitea's error answer (services/context/api.go).
type apiError struct {
	Message string   `json:"message"`
	URL     string   `json:"url"`
	Errors  []string `json:"errors,omitempty"`
}

// notFoundError is Gitea's 404 answer, which always carries "errors".
type notFoundError struct {
	Errors  []string `json:"errors"`
	Message string   `json:"message"`
	URL     string   `json:"url"`
}

func (s *Server) writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Message: msg, URL: s.swagger()})
}

func (s *Server) notFound(w http.ResponseWriter, errs ...string) {
	if errs == nil {
		errs = []string{}
	}
	writeJSON(w, http.StatusNotFound, notFoundError{Errors: errs, Message: "The target couldn't be found.", URL: s.swagger()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, fakeforge.ErrNoRepo), errors.Is(err, fakeforge.ErrNoIssue), errors.Is(err, fakeforge.ErrNoComment):
		s.notFound(w, err.Error())
	case errors.Is(err, fakeforge.ErrNoLabel):
		s.writeError(w, http.StatusUnprocessableEntity, "label does not exist")
	case errors.Is(err, fakeforge.ErrExists):
		s.writeError(w, http.StatusConflict, "label already exists")
	default:
		s.writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func repoName(r *http.Request) string { return r.PathValue("owner") + "/" + r.PathValue("repo") }

func (s *Server) index(w http.ResponseWriter, r *http.Request) (int, bool) {
	n, err := strconv.Atoi(r.PathValue("index"))
	if err != nil || n <= 0 {
		s.notFound(w)
		return 0, false
	}
	return n, true
}

func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		s.writeError(w, http.StatusUnprocessableEntity, "[]: "+err.Error())
		return false
	}
	return true
}

// page applies page and limit to n items and sets X-Total-Count and Link.
func (s *Server) page(w http.ResponseWriter, r *http.Request, n int) (lo, hi int) {
	q := r.URL.Query()
	limit, page := DefaultPageSize, 1
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		limit = min(v, MaxPageSize)
	}
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	last := max((n+limit-1)/limit, 1)
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("limit", strconv.Itoa(limit))
		q.Set("page", strconv.Itoa(p))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(page-1, "prev"))
	}
	h := w.Header()
	if len(links) > 0 {
		h.Set("Link", strings.Join(links, ","))
	}
	h.Set("X-Total-Count", strconv.Itoa(n))
	h.Set("Access-Control-Expose-Headers", "X-Total-Count, Link")
	lo = min((page-1)*limit, n)
	return lo, min(lo+limit, n)
}

func (s *Server) getUser(w http.ResponseWriter, _ *http.Request, login string) {
	writeJSON(w, http.StatusOK, s.user(login))
}

func (s *Server) listIssues(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	f := fakeforge.Filter{State: q.Get("state")}
	switch f.State {
	case "", "open", "closed", "all":
	default:
		s.writeError(w, http.StatusUnprocessableEntity, "invalid state")
		return
	}
	switch q.Get("type") {
	case "issues":
		f.Pulls = "issues"
	case "pulls":
		f.Pulls = "pulls"
	}
	if l := q.Get("labels"); l != "" {
		f.Labels = strings.Split(l, ",")
	}
	issues, err := s.store.Issues(repoName(r), f)
	if err != nil {
		s.storeError(w, err)
		return
	}
	// Newest first, as Gitea sorts by default.
	for i, j := 0, len(issues)-1; i < j; i, j = i+1, j-1 {
		issues[i], issues[j] = issues[j], issues[i]
	}
	lo, hi := s.page(w, r, len(issues))
	out := make([]issueJSON, 0, hi-lo)
	for _, is := range issues[lo:hi] {
		out = append(out, s.issueJSON(repoName(r), is))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getIssue(w http.ResponseWriter, r *http.Request, _ string) {
	n, ok := s.index(w, r)
	if !ok {
		return
	}
	is, err := s.store.Issue(repoName(r), n)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.issueJSON(repoName(r), is))
}

// editIssueOption is Gitea's EditIssueOption, the fields the fake honours.
type editIssueOption struct {
	Title     *string   `json:"title"`
	Body      *string   `json:"body"`
	Assignees *[]string `json:"assignees"`
	State     *string   `json:"state"`
}

func (s *Server) editIssue(w http.ResponseWriter, r *http.Request, _ string) {
	n, ok := s.index(w, r)
	if !ok {
		return
	}
	var in editIssueOption
	if !s.decode(w, r, &in) {
		return
	}
	u := fakeforge.Update{Title: in.Title, Body: in.Body, Assignees: in.Assignees}
	if in.State != nil {
		switch *in.State {
		case "open", "closed":
			open := *in.State == "open"
			u.Open = &open
		default:
			s.writeError(w, http.StatusUnprocessableEntity, "[State]: invalid state")
			return
		}
	}
	is, err := s.store.UpdateIssue(repoName(r), n, u)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.issueJSON(repoName(r), is))
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request, _ string) {
	n, ok := s.index(w, r)
	if !ok {
		return
	}
	cs, err := s.store.Comments(repoName(r), n)
	if err != nil {
		s.storeError(w, err)
		return
	}
	out := make([]commentJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, s.commentJSON(repoName(r), c))
	}
	writeJSON(w, http.StatusOK, out)
}

// createIssueCommentOption is Gitea's CreateIssueCommentOption.
type createIssueCommentOption struct {
	Body string `json:"body"`
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request, login string) {
	n, ok := s.index(w, r)
	if !ok {
		return
	}
	var in createIssueCommentOption
	if !s.decode(w, r, &in) {
		return
	}
	if strings.TrimSpace(in.Body) == "" {
		s.writeError(w, http.StatusUnprocessableEntity, "[Body]: Required")
		return
	}
	s.store.Hold(r.Context(), repoName(r), n, in.Body)
	c, err := s.store.AddComment(repoName(r), n, login, in.Body)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.commentJSON(repoName(r), c))
}

func (s *Server) deleteComment(w http.ResponseWriter, r *http.Request, _ string) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.notFound(w)
		return
	}
	if err := s.store.DeleteComment(repoName(r), id); err != nil {
		s.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// issueLabelsOption is Gitea's IssueLabelsOption: label IDs, or names of
// labels that exist (unknown names are skipped, as Gitea does).
type issueLabelsOption struct {
	Labels []json.RawMessage `json:"labels"`
}

func (s *Server) addLabels(w http.ResponseWriter, r *http.Request, _ string) {
	n, ok := s.index(w, r)
	if !ok {
		return
	}
	var in issueLabelsOption
	if !s.decode(w, r, &in) {
		return
	}
	var names []string
	for _, raw := range in.Labels {
		var id int64
		var name string
		switch {
		case json.Unmarshal(raw, &id) == nil:
			l, err := s.store.LabelByID(repoName(r), id)
			if err != nil {
				// Gitea's GetLabelsByIDs skips IDs it does not find.
				continue
			}
			names = append(names, l.Name)
		case json.Unmarshal(raw, &name) == nil:
			labels, _ := s.store.Labels(repoName(r))
			for _, l := range labels {
				if l.Name == name {
					names = append(names, name)
				}
			}
		default:
			s.writeError(w, http.StatusBadRequest, "a label must be an integer or a string")
			return
		}
	}
	is, err := s.store.AddLabels(repoName(r), n, names, false)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.labelsJSON(repoName(r), is.Labels))
}

func (s *Server) removeLabel(w http.ResponseWriter, r *http.Request, _ string) {
	n, ok := s.index(w, r)
	if !ok {
		return
	}
	if _, err := s.store.Issue(repoName(r), n); err != nil {
		s.storeError(w, err)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, http.StatusUnprocessableEntity, "label does not exist")
		return
	}
	l, err := s.store.LabelByID(repoName(r), id)
	if err != nil {
		s.storeError(w, err)
		return
	}
	// Removing a label the issue does not carry succeeds.
	if _, err := s.store.RemoveLabel(repoName(r), n, l.Name); err != nil && !errors.Is(err, fakeforge.ErrNoLabel) {
		s.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listLabels(w http.ResponseWriter, r *http.Request, _ string) {
	labels, err := s.store.Labels(repoName(r))
	if err != nil {
		s.storeError(w, err)
		return
	}
	lo, hi := s.page(w, r, len(labels))
	out := make([]labelJSON, 0, hi-lo)
	for _, l := range labels[lo:hi] {
		out = append(out, s.labelJSON(repoName(r), l))
	}
	writeJSON(w, http.StatusOK, out)
}

// createLabelOption is Gitea's CreateLabelOption.
type createLabelOption struct {
	Name        string `json:"name"`
	Color       string `json:"color"`
	Description string `json:"description"`
}

func (s *Server) createLabel(w http.ResponseWriter, r *http.Request, _ string) {
	var in createLabelOption
	if !s.decode(w, r, &in) {
		return
	}
	color := strings.TrimPrefix(in.Color, "#")
	if strings.TrimSpace(in.Name) == "" {
		s.writeError(w, http.StatusUnprocessableEntity, "[Name]: Required")
		return
	}
	if _, err := hex.DecodeString(color); err != nil || len(color) != 6 {
		s.writeError(w, http.StatusUnprocessableEntity, "invalid color")
		return
	}
	l, err := s.store.CreateLabel(repoName(r), in.Name, color, in.Description)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.labelJSON(repoName(r), l))
}

// Delivery describes a webhook delivery for Deliver.
type Delivery struct {
	// URL is the hook's address (the chorus ops server's /webhooks/gitea).
	URL string
	// Secret signs the body; empty sends no signature.
	Secret string
	// Event is X-Gitea-Event ("issues"); EventType is X-Gitea-Event-Type
	// ("issues", "issue_label"), defaulting to Event.
	Event     string
	EventType string
	// Action is the payload's action ("opened", "label_updated").
	Action string
	// Repository and Number name the stored issue the payload carries.
	Repository string
	Number     int
}

// Deliver posts a webhook delivery shaped as Gitea sends it and returns
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
	et := d.EventType
	if et == "" {
		et = d.Event
	}
	uuid := hex.EncodeToString(id[:])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Go-http-client/1.1")
	req.Header.Set("X-Gitea-Delivery", uuid)
	req.Header.Set("X-Gitea-Event", d.Event)
	req.Header.Set("X-Gitea-Event-Type", et)
	req.Header.Set("X-GitHub-Event", d.Event)
	if d.Secret != "" {
		sig := Sign(d.Secret, body)
		req.Header.Set("X-Gitea-Signature", sig)
		req.Header.Set("X-Hub-Signature-256", "sha256="+sig)
	}
	return http.DefaultClient.Do(req)
}

// Sign returns the hex HMAC-SHA256 of body, as in X-Gitea-Signature.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Payload builds the JSON body of an "issues" delivery.
func (s *Server) Payload(d Delivery) ([]byte, error) {
	is, err := s.store.Issue(d.Repository, d.Number)
	if err != nil {
		return nil, err
	}
	id, full, err := s.store.RepoID(d.Repository)
	if err != nil {
		return nil, err
	}
	return json.Marshal(issuePayloadJSON{Action: d.Action, Number: is.Number, Issue: s.issueJSON(full, is),
		Repository: s.repoJSON(id, full), Sender: s.user(is.Author)})
}
