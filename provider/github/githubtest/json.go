package githubtest

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"
)

// The JSON GitHub answers with (https://docs.github.com/rest/issues).
type (
	userJSON struct {
		Login     string `json:"login"`
		ID        int64  `json:"id"`
		NodeID    string `json:"node_id"`
		AvatarURL string `json:"avatar_url"`
		URL       string `json:"url"`
		HTMLURL   string `json:"html_url"`
		Type      string `json:"type"`
		SiteAdmin bool   `json:"site_admin"`
	}
	labelJSON struct {
		ID          int64   `json:"id"`
		NodeID      string  `json:"node_id"`
		URL         string  `json:"url"`
		Name        string  `json:"name"`
		Description *string `json:"description"`
		Color       string  `json:"color"`
		Default     bool    `json:"default"`
	}
	pullRequestJSON struct {
		URL      string `json:"url"`
		HTMLURL  string `json:"html_url"`
		DiffURL  string `json:"diff_url"`
		PatchURL string `json:"patch_url"`
	}
	issueJSON struct {
		ID                int64            `json:"id"`
		NodeID            string           `json:"node_id"`
		URL               string           `json:"url"`
		RepositoryURL     string           `json:"repository_url"`
		LabelsURL         string           `json:"labels_url"`
		CommentsURL       string           `json:"comments_url"`
		EventsURL         string           `json:"events_url"`
		HTMLURL           string           `json:"html_url"`
		Number            int              `json:"number"`
		State             string           `json:"state"`
		StateReason       *string          `json:"state_reason"`
		Title             string           `json:"title"`
		Body              *string          `json:"body"`
		User              userJSON         `json:"user"`
		Labels            []labelJSON      `json:"labels"`
		Assignee          *userJSON        `json:"assignee"`
		Assignees         []userJSON       `json:"assignees"`
		Milestone         *struct{}        `json:"milestone"`
		Locked            bool             `json:"locked"`
		ActiveLockReason  *string          `json:"active_lock_reason"`
		Comments          int              `json:"comments"`
		PullRequest       *pullRequestJSON `json:"pull_request,omitempty"`
		ClosedAt          *time.Time       `json:"closed_at"`
		CreatedAt         time.Time        `json:"created_at"`
		UpdatedAt         time.Time        `json:"updated_at"`
		AuthorAssociation string           `json:"author_association"`
	}
	commentJSON struct {
		ID                int64     `json:"id"`
		NodeID            string    `json:"node_id"`
		URL               string    `json:"url"`
		HTMLURL           string    `json:"html_url"`
		Body              string    `json:"body"`
		User              userJSON  `json:"user"`
		CreatedAt         time.Time `json:"created_at"`
		UpdatedAt         time.Time `json:"updated_at"`
		IssueURL          string    `json:"issue_url"`
		AuthorAssociation string    `json:"author_association"`
	}
	repositoryJSON struct {
		ID       int64    `json:"id"`
		NodeID   string   `json:"node_id"`
		Name     string   `json:"name"`
		FullName string   `json:"full_name"`
		Private  bool     `json:"private"`
		Owner    userJSON `json:"owner"`
		HTMLURL  string   `json:"html_url"`
		URL      string   `json:"url"`
	}
	issuesEventJSON struct {
		Action     string         `json:"action"`
		Issue      issueJSON      `json:"issue"`
		Label      *labelJSON     `json:"label,omitempty"`
		Repository repositoryJSON `json:"repository"`
		Sender     userJSON       `json:"sender"`
	}
	pingJSON struct {
		Zen    string `json:"zen"`
		HookID int64  `json:"hook_id"`
	}
)

func nodeID(prefix string, id int64) string {
	return prefix + base64.RawURLEncoding.EncodeToString([]byte("chorus:"+strconv.FormatInt(id, 10)))
}

// userID is a stable ID per login.
func userID(login string) int64 {
	h := fnv.New32a()
	h.Write([]byte(login))
	return int64(h.Sum32()%1_000_000) + 1
}

func (s *Server) user(login string) userJSON {
	id := userID(login)
	return userJSON{Login: login, ID: id, NodeID: nodeID("U_", id), AvatarURL: fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", id),
		URL: s.URL() + "/users/" + login, HTMLURL: "https://github.com/" + login, Type: "User"}
}

func (s *Server) labelsJSON(repo string, names []string) []labelJSON {
	labels, _ := s.store.Labels(repo)
	out := make([]labelJSON, 0, len(names))
	for _, n := range names {
		for _, l := range labels {
			if l.Name == n {
				out = append(out, labelJSON{ID: l.ID, NodeID: nodeID("LA_", l.ID), URL: s.URL() + "/repos/" + repo + "/labels/" + n,
					Name: n, Color: l.Color})
			}
		}
	}
	return out
}

func (s *Server) issueJSON(repo string, is Issue) issueJSON {
	api := s.URL() + "/repos/" + repo + "/issues/" + strconv.Itoa(is.Number)
	out := issueJSON{
		ID: is.ID, NodeID: nodeID("I_", is.ID), URL: api, RepositoryURL: s.URL() + "/repos/" + repo,
		LabelsURL: api + "/labels{/name}", CommentsURL: api + "/comments", EventsURL: api + "/events",
		HTMLURL: "https://github.com/" + repo + "/issues/" + strconv.Itoa(is.Number),
		Number:  is.Number, State: "open", Title: is.Title, User: s.user(is.Author),
		Labels: s.labelsJSON(repo, is.Labels), Assignees: []userJSON{}, Comments: len(is.Comments),
		CreatedAt: is.CreatedAt, UpdatedAt: is.UpdatedAt, AuthorAssociation: "OWNER",
	}
	if is.Body != "" {
		b := is.Body
		out.Body = &b
	}
	if !is.Open {
		out.State = "closed"
		c := is.ClosedAt
		out.ClosedAt = &c
	}
	if is.StateReason != "" {
		r := is.StateReason
		out.StateReason = &r
	}
	for _, a := range is.Assignees {
		out.Assignees = append(out.Assignees, s.user(a))
	}
	if len(out.Assignees) > 0 {
		a := out.Assignees[0]
		out.Assignee = &a
	}
	if is.IsPull {
		pr := "https://github.com/" + repo + "/pull/" + strconv.Itoa(is.Number)
		out.PullRequest = &pullRequestJSON{URL: s.URL() + "/repos/" + repo + "/pulls/" + strconv.Itoa(is.Number),
			HTMLURL: pr, DiffURL: pr + ".diff", PatchURL: pr + ".patch"}
	}
	return out
}

func (s *Server) commentJSON(repo string, c Comment) commentJSON {
	return commentJSON{
		ID: c.ID, NodeID: nodeID("IC_", c.ID), URL: s.URL() + "/repos/" + repo + "/issues/comments/" + strconv.FormatInt(c.ID, 10),
		HTMLURL: fmt.Sprintf("https://github.com/%s/issues/%d#issuecomment-%d", repo, c.Issue, c.ID),
		Body:    c.Body, User: s.user(c.Author), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		IssueURL: s.URL() + "/repos/" + repo + "/issues/" + strconv.Itoa(c.Issue), AuthorAssociation: "CONTRIBUTOR",
	}
}
