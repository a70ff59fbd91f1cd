package fakeforge

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors the fakes turn into their API's status codes.
var (
	ErrNoRepo    = errors.New("repository not found")
	ErrNoIssue   = errors.New("issue not found")
	ErrNoComment = errors.New("comment not found")
	ErrNoLabel   = errors.New("label not found")
	ErrExists    = errors.New("already exists")
)

// Store is the tracker's state.
type Store struct {
	mu       sync.Mutex
	nextID   int64
	repos    map[string]*repo // by lower-case owner/name
	tokens   map[string]string
	faults   []*Fault
	requests map[string]int
	gate     *gate
	full     int // gate groups that filled up: real interleavings
}

type repo struct {
	id       int64
	fullName string
	issues   []*Issue // number i+1 at index i
	labels   []Label
}

// Issue is an issue (or pull request) as stored.
type Issue struct {
	ID          int64
	Number      int
	Title       string
	Body        string
	Open        bool
	StateReason string
	Labels      []string
	Assignees   []string
	Author      string
	IsPull      bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ClosedAt    time.Time
	Comments    []Comment
}

// Comment is an issue comment as stored.
type Comment struct {
	ID        int64
	Issue     int
	Body      string
	Author    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Label is a repository label.
type Label struct {
	ID          int64
	Name        string
	Color       string
	Description string
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{repos: map[string]*repo{}, tokens: map[string]string{}, requests: map[string]int{}}
}

// now is second-precision UTC, as both APIs print times.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

func (s *Store) id() int64 { s.nextID++; return s.nextID }

// AddToken makes token authenticate as login.
func (s *Store) AddToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = login
}

// Login returns the login of token.
func (s *Store) Login(token string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.tokens[token]
	return l, ok
}

// AddRepo creates the repository "owner/name" (a no-op if it exists).
func (s *Store) AddRepo(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.repos[strings.ToLower(fullName)]; !ok {
		s.repos[strings.ToLower(fullName)] = &repo{id: s.id(), fullName: fullName}
	}
}

// RepoID returns the repository's ID and its canonical name.
func (s *Store) RepoID(fullName string) (int64, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(fullName)
	if err != nil {
		return 0, "", err
	}
	return r.id, r.fullName, nil
}

func (s *Store) repo(fullName string) (*repo, error) {
	r, ok := s.repos[strings.ToLower(fullName)]
	if !ok {
		return nil, ErrNoRepo
	}
	return r, nil
}

func (s *Store) issue(fullName string, number int) (*repo, *Issue, error) {
	r, err := s.repo(fullName)
	if err != nil {
		return nil, nil, err
	}
	if number < 1 || number > len(r.issues) {
		return r, nil, ErrNoIssue
	}
	return r, r.issues[number-1], nil
}

// NewIssue is what CreateIssue needs.
type NewIssue struct {
	Title  string
	Body   string
	Labels []string
	Author string
	IsPull bool
	Closed bool
}

// CreateIssue adds an issue (labels are created in the repository as
// needed) and returns its number.
func (s *Store) CreateIssue(fullName string, in NewIssue) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(fullName)
	if err != nil {
		return 0, err
	}
	at := now()
	is := &Issue{ID: s.id(), Number: len(r.issues) + 1, Title: in.Title, Body: in.Body, Open: !in.Closed,
		Author: in.Author, IsPull: in.IsPull, CreatedAt: at, UpdatedAt: at}
	for _, l := range in.Labels {
		s.ensureLabel(r, l)
		if !slices.Contains(is.Labels, l) {
			is.Labels = append(is.Labels, l)
		}
	}
	r.issues = append(r.issues, is)
	return is.Number, nil
}

// Issue returns a copy of the issue.
func (s *Store) Issue(fullName string, number int) (Issue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, is, err := s.issue(fullName, number)
	if err != nil {
		return Issue{}, err
	}
	return is.copy(), nil
}

func (is *Issue) copy() Issue {
	c := *is
	c.Labels = slices.Clone(is.Labels)
	c.Assignees = slices.Clone(is.Assignees)
	c.Comments = slices.Clone(is.Comments)
	return c
}

// Filter selects issues for Issues.
type Filter struct {
	// State is "open", "closed" or "all" ("" = open).
	State string
	// Labels keeps issues carrying every one of these.
	Labels []string
	// Pulls: "" both, "issues" only issues, "pulls" only pull requests.
	Pulls string
}

// Issues lists copies of the matching issues, oldest first.
func (s *Store) Issues(fullName string, f Filter) ([]Issue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(fullName)
	if err != nil {
		return nil, err
	}
	var out []Issue
	for _, is := range r.issues {
		switch f.State {
		case "", "open":
			if !is.Open {
				continue
			}
		case "closed":
			if is.Open {
				continue
			}
		}
		if (f.Pulls == "issues" && is.IsPull) || (f.Pulls == "pulls" && !is.IsPull) {
			continue
		}
		all := true
		for _, l := range f.Labels {
			all = all && slices.Contains(is.Labels, l)
		}
		if all {
			out = append(out, is.copy())
		}
	}
	return out, nil
}

// AddComment appends a comment by author and returns it.
func (s *Store) AddComment(fullName string, number int, author, body string) (Comment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, is, err := s.issue(fullName, number)
	if err != nil {
		return Comment{}, err
	}
	at := now()
	c := Comment{ID: s.id(), Issue: number, Body: body, Author: author, CreatedAt: at, UpdatedAt: at}
	is.Comments = append(is.Comments, c)
	is.UpdatedAt = at
	return c, nil
}

// Comments lists the issue's comments, oldest first.
func (s *Store) Comments(fullName string, number int) ([]Comment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, is, err := s.issue(fullName, number)
	if err != nil {
		return nil, err
	}
	return slices.Clone(is.Comments), nil
}

// Comment returns one comment of the repository by ID.
func (s *Store) Comment(fullName string, id int64) (Comment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(fullName)
	if err != nil {
		return Comment{}, err
	}
	for _, is := range r.issues {
		for _, c := range is.Comments {
			if c.ID == id {
				return c, nil
			}
		}
	}
	return Comment{}, ErrNoComment
}

// DeleteComment removes a comment of the repository by ID.
func (s *Store) DeleteComment(fullName string, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(fullName)
	if err != nil {
		return err
	}
	for _, is := range r.issues {
		for i, c := range is.Comments {
			if c.ID == id {
				is.Comments = slices.Delete(is.Comments, i, i+1)
				return nil
			}
		}
	}
	return ErrNoComment
}

func (s *Store) ensureLabel(r *repo, name string) Label {
	for _, l := range r.labels {
		if l.Name == name {
			return l
		}
	}
	l := Label{ID: s.id(), Name: name, Color: "ededed"}
	r.labels = append(r.labels, l)
	return l
}

// Labels lists the repository's labels.
func (s *Store) Labels(fullName string) ([]Label, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(fullName)
	if err != nil {
		return nil, err
	}
	return slices.Clone(r.labels), nil
}

// CreateLabel adds a repository label; an existing name is ErrExists.
func (s *Store) CreateLabel(fullName, name, color, description string) (Label, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(fullName)
	if err != nil {
		return Label{}, err
	}
	for _, l := range r.labels {
		if l.Name == name {
			return Label{}, ErrExists
		}
	}
	l := Label{ID: s.id(), Name: name, Color: color, Description: description}
	r.labels = append(r.labels, l)
	return l, nil
}

// LabelByID finds a repository label.
func (s *Store) LabelByID(fullName string, id int64) (Label, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(fullName)
	if err != nil {
		return Label{}, err
	}
	for _, l := range r.labels {
		if l.ID == id {
			return l, nil
		}
	}
	return Label{}, ErrNoLabel
}

// AddLabels puts labels on the issue. With create, missing repository
// labels are created (GitHub); without, an unknown name is ErrNoLabel.
func (s *Store) AddLabels(fullName string, number int, names []string, create bool) (Issue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, is, err := s.issue(fullName, number)
	if err != nil {
		return Issue{}, err
	}
	for _, n := range names {
		if !create && !slices.ContainsFunc(r.labels, func(l Label) bool { return l.Name == n }) {
			return Issue{}, ErrNoLabel
		}
	}
	for _, n := range names {
		s.ensureLabel(r, n)
		if !slices.Contains(is.Labels, n) {
			is.Labels = append(is.Labels, n)
		}
	}
	is.UpdatedAt = now()
	return is.copy(), nil
}

// RemoveLabel takes a label off the issue; one not on it is ErrNoLabel.
func (s *Store) RemoveLabel(fullName string, number int, name string) (Issue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, is, err := s.issue(fullName, number)
	if err != nil {
		return Issue{}, err
	}
	i := slices.Index(is.Labels, name)
	if i < 0 {
		return Issue{}, ErrNoLabel
	}
	is.Labels = slices.Delete(is.Labels, i, i+1)
	is.UpdatedAt = now()
	return is.copy(), nil
}

// Update changes an issue: each non-nil field replaces the stored one.
type Update struct {
	Open        *bool
	StateReason *string
	Assignees   *[]string
	Title       *string
	Body        *string
}

// UpdateIssue applies u.
func (s *Store) UpdateIssue(fullName string, number int, u Update) (Issue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, is, err := s.issue(fullName, number)
	if err != nil {
		return Issue{}, err
	}
	at := now()
	if u.Open != nil && *u.Open != is.Open {
		is.Open = *u.Open
		if !is.Open {
			is.ClosedAt = at
		} else {
			is.ClosedAt = time.Time{}
		}
	}
	if u.StateReason != nil {
		is.StateReason = *u.StateReason
	}
	if u.Assignees != nil {
		is.Assignees = nil
		for _, a := range *u.Assignees {
			if !slices.Contains(is.Assignees, a) {
				is.Assignees = append(is.Assignees, a)
			}
		}
	}
	if u.Title != nil {
		is.Title = *u.Title
	}
	if u.Body != nil {
		is.Body = *u.Body
	}
	is.UpdatedAt = at
	return is.copy(), nil
}

// ChangeAssignees adds and removes logins.
func (s *Store) ChangeAssignees(fullName string, number int, add, remove []string) (Issue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, is, err := s.issue(fullName, number)
	if err != nil {
		return Issue{}, err
	}
	for _, a := range add {
		if !slices.Contains(is.Assignees, a) {
			is.Assignees = append(is.Assignees, a)
		}
	}
	is.Assignees = slices.DeleteFunc(is.Assignees, func(a string) bool { return slices.Contains(remove, a) })
	is.UpdatedAt = now()
	return is.copy(), nil
}

// Fault makes the next matching requests fail.
type Fault struct {
	// Route is the handler's pattern ("POST /repos/{owner}/{repo}/issues/{number}/comments");
	// empty matches every route.
	Route string
	// Status is the status answered (429, 403, 500, 502, 404, 422).
	Status int
	// RateLimit answers as the API does when its primary rate limit is
	// used up (remaining 0 and a reset time ResetAfter ahead); RetryAfter
	// > 0 sends a Retry-After header instead (GitHub's secondary limit).
	RateLimit  bool
	ResetAfter time.Duration
	RetryAfter time.Duration
	// Times is how many requests fail; 0 means 1.
	Times int
}

// Inject queues f.
func (s *Store) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times == 0 {
		f.Times = 1
	}
	s.faults = append(s.faults, &f)
}

// Take counts a request to route and returns the first queued fault that
// matches it, if any.
func (s *Store) Take(route string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[route]++
	for i, f := range s.faults {
		if f.Route != "" && f.Route != route {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return *f, true
	}
	return Fault{}, false
}

// Requests returns how many requests route has received ("" = all).
func (s *Store) Requests(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if route != "" {
		return s.requests[route]
	}
	n := 0
	for _, c := range s.requests {
		n += c
	}
	return n
}

// gate holds comment writes that match until n of them arrived on one
// issue, or within passed.
type gate struct {
	n      int
	within time.Duration
	match  func(body string) bool
	groups map[string]*group
}

type group struct {
	count int
	done  chan struct{}
}

// Interleave makes every comment write whose body matches wait, before it
// is stored, until n matching writes have arrived on the same issue or
// within has passed; then all are stored and answered. Each of the n
// writers read the issue before writing, when none of the others' comments
// was stored, and reads it again after its own write, when all are: n
// claimers that all believed the task free, a real conflict. n < 2 turns
// the gate off.
func (s *Store) Interleave(n int, within time.Duration, match func(body string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 2 {
		s.gate = nil
		return
	}
	s.gate = &gate{n: n, within: within, match: match, groups: map[string]*group{}}
}

// Interleaved returns how many gate groups filled up: how many times n
// writers really were in flight on one issue together.
func (s *Store) Interleaved() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full
}

// Hold blocks a comment write per the gate set by Interleave; the fakes
// call it before AddComment.
func (s *Store) Hold(ctx context.Context, fullName string, number int, body string) {
	s.mu.Lock()
	g := s.gate
	if g == nil || !g.match(body) {
		s.mu.Unlock()
		return
	}
	key := strings.ToLower(fullName) + "#" + strconv.Itoa(number)
	grp := g.groups[key]
	if grp == nil {
		grp = &group{done: make(chan struct{})}
		g.groups[key] = grp
	}
	grp.count++
	if grp.count >= g.n {
		close(grp.done)
		delete(g.groups, key)
		s.full++
	}
	within := g.within
	s.mu.Unlock()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case <-grp.done:
	case <-timer.C:
		s.mu.Lock()
		if g.groups[key] == grp {
			delete(g.groups, key)
		}
		s.mu.Unlock()
	case <-ctx.Done():
	}
}
