package giteatest

import (
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"chorus/provider/internal/fakeforge"
)

// The JSON Gitea answers with (modules/structs in Gitea's source).
type (
	userJSON struct {
		ID        int64     `json:"id"`
		Login     string    `json:"login"`
		LoginName string    `json:"login_name"`
		SourceID  int64     `json:"source_id"`
		FullName  string    `json:"full_name"`
		Email     string    `json:"email"`
		AvatarURL string    `json:"avatar_url"`
		HTMLURL   string    `json:"html_url"`
		Language  string    `json:"language"`
		IsAdmin   bool      `json:"is_admin"`
		LastLogin time.Time `json:"last_login"`
		Created   time.Time `json:"created"`
		Active    bool      `json:"active"`
		UserName  string    `json:"username"`
	}
	labelJSON struct {
		ID          int64  `json:"id"`
		Name        string `json:"name"`
		Exclusive   bool   `json:"exclusive"`
		IsArchived  bool   `json:"is_archived"`
		Color       string `json:"color"`
		Description string `json:"description"`
		URL         string `json:"url"`
	}
	repoMetaJSON struct {
		ID       int64  `json:"id"`
		Name     string `json:"name"`
		Owner    string `json:"owner"`
		FullName string `json:"full_name"`
	}
	pullRequestMetaJSON struct {
		Merged  bool   `json:"merged"`
		HTMLURL string `json:"html_url"`
	}
	issueJSON struct {
		ID               int64                `json:"id"`
		URL              string               `json:"url"`
		HTMLURL          string               `json:"html_url"`
		Number           int                  `json:"number"`
		User             userJSON             `json:"user"`
		OriginalAuthor   string               `json:"original_author"`
		OriginalAuthorID int64                `json:"original_author_id"`
		Title            string               `json:"title"`
		Body             string               `json:"body"`
		Ref              string               `json:"ref"`
		Assets           []struct{}           `json:"assets"`
		Labels           []labelJSON          `json:"labels"`
		Milestone        *struct{}            `json:"milestone"`
		Assignee         *userJSON            `json:"assignee"`
		Assignees        []userJSON           `json:"assignees"`
		State            string               `json:"state"`
		IsLocked         bool                 `json:"is_locked"`
		Comments         int                  `json:"comments"`
		CreatedAt        time.Time            `json:"created_at"`
		UpdatedAt        time.Time            `json:"updated_at"`
		ClosedAt         *time.Time           `json:"closed_at"`
		DueDate          *time.Time           `json:"due_date"`
		PullRequest      *pullRequestMetaJSON `json:"pull_request"`
		Repository       repoMetaJSON         `json:"repository"`
		PinOrder         int                  `json:"pin_order"`
	}
	commentJSON struct {
		ID               int64      `json:"id"`
		HTMLURL          string     `json:"html_url"`
		PullRequestURL   string     `json:"pull_request_url"`
		IssueURL         string     `json:"issue_url"`
		User             userJSON   `json:"user"`
		OriginalAuthor   string     `json:"original_author"`
		OriginalAuthorID int64      `json:"original_author_id"`
		Body             string     `json:"body"`
		Assets           []struct{} `json:"assets"`
		CreatedAt        time.Time  `json:"created_at"`
		UpdatedAt        time.Time  `json:"updated_at"`
	}
	repositoryJSON struct {
		ID       int64    `json:"id"`
		Owner    userJSON `json:"owner"`
		Name     string   `json:"name"`
		FullName string   `json:"full_name"`
		Private  bool     `json:"private"`
		HTMLURL  string   `json:"html_url"`
		CloneURL string   `json:"clone_url"`
	}
	issuePayloadJSON struct {
		Action     string         `json:"action"`
		Number     int            `json:"number"`
		Issue      issueJSON      `json:"issue"`
		Repository repositoryJSON `json:"repository"`
		Sender     userJSON       `json:"sender"`
		CommitID   string         `json:"commit_id"`
	}
)

func userID(login string) int64 {
	h := fnv.New32a()
	h.Write([]byte(login))
	return int64(h.Sum32()%100_000) + 1
}

func (s *Server) user(login string) userJSON {
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return userJSON{ID: userID(login), Login: login, FullName: login, Email: login + "@noreply.localhost",
		AvatarURL: s.URL() + "/avatars/" + login, HTMLURL: s.URL() + "/" + login, LastLogin: t, Created: t, Active: true, UserName: login}
}

func (s *Server) labelJSON(repo string, l Label) labelJSON {
	return labelJSON{ID: l.ID, Name: l.Name, Color: l.Color, Description: l.Description,
		URL: s.URL() + "/api/v1/repos/" + repo + "/labels/" + strconv.FormatInt(l.ID, 10)}
}

// Label is a stored repository label.
type Label = fakeforge.Label

func (s *Server) labelsJSON(repo string, names []string) []labelJSON {
	labels, _ := s.store.Labels(repo)
	out := []labelJSON{}
	for _, n := range names {
		for _, l := range labels {
			if l.Name == n {
				out = append(out, s.labelJSON(repo, l))
			}
		}
	}
	return out
}

func (s *Server) repoJSON(id int64, full string) repositoryJSON {
	owner, name, _ := strings.Cut(full, "/")
	return repositoryJSON{ID: id, Owner: s.user(owner), Name: name, FullName: full,
		HTMLURL: s.URL() + "/" + full, CloneURL: s.URL() + "/" + full + ".git"}
}

func (s *Server) issueJSON(repo string, is Issue) issueJSON {
	id, full, _ := s.store.RepoID(repo)
	owner, name, _ := strings.Cut(full, "/")
	kind := "issues"
	if is.IsPull {
		kind = "pulls"
	}
	out := issueJSON{
		ID: is.ID, URL: s.URL() + "/api/v1/repos/" + full + "/issues/" + strconv.Itoa(is.Number),
		HTMLURL: s.URL() + "/" + full + "/" + kind + "/" + strconv.Itoa(is.Number),
		Number:  is.Number, User: s.user(is.Author), Title: is.Title, Body: is.Body, Assets: []struct{}{},
		Labels: s.labelsJSON(full, is.Labels), State: "open", Comments: len(is.Comments),
		CreatedAt: is.CreatedAt, UpdatedAt: is.UpdatedAt,
		Repository: repoMetaJSON{ID: id, Name: name, Owner: owner, FullName: full},
	}
	if !is.Open {
		out.State = "closed"
		c := is.ClosedAt
		out.ClosedAt = &c
	}
	// Gitea sends "assignees": null when there are none.
	for _, a := range is.Assignees {
		out.Assignees = append(out.Assignees, s.user(a))
	}
	if len(out.Assignees) > 0 {
		a := out.Assignees[0]
		out.Assignee = &a
	}
	if is.IsPull {
		out.PullRequest = &pullRequestMetaJSON{HTMLURL: out.HTMLURL}
	}
	return out
}

func (s *Server) commentJSON(repo string, c Comment) commentJSON {
	_, full, _ := s.store.RepoID(repo)
	issueURL := s.URL() + "/" + full + "/issues/" + strconv.Itoa(c.Issue)
	return commentJSON{ID: c.ID, HTMLURL: issueURL + "#issuecomment-" + strconv.FormatInt(c.ID, 10), IssueURL: issueURL,
		User: s.user(c.Author), Body: c.Body, Assets: []struct{}{}, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}
