package github_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"chorus"
	"chorus/provider/github"
	"chorus/provider/github/githubtest"
)

const hookSecret = "webhook-s3cret"

func hookServer(t *testing.T, s *githubtest.Server) (url string, started func() []chorus.Task) {
	t.Helper()
	tr := newTracker(t, s, func(c *github.Config) {
		c.WebhookSecretEnv = "HOOK"
		c.MaxWebhookBody = 64 << 10
		get := c.Getenv
		c.Getenv = func(k string) string {
			if k == "HOOK" {
				return hookSecret
			}
			return get(k)
		}
	})
	var mu sync.Mutex
	var tasks []chorus.Task
	h, err := tr.Webhook(func(_ context.Context, task chorus.Task) error {
		mu.Lock()
		defer mu.Unlock()
		tasks = append(tasks, task)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/github", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/webhooks/github", func() []chorus.Task {
		mu.Lock()
		defer mu.Unlock()
		return append([]chorus.Task(nil), tasks...)
	}
}

func TestWebhook(t *testing.T) {
	s := newFake(t)
	task := s.CreateIssue(repo, githubtest.NewIssue{Title: "Add a test", Labels: []string{"chorus-task", "priority:8"}})
	plain := s.CreateIssue(repo, githubtest.NewIssue{Title: "just an issue"})
	s.AddRepo("other/repo")
	elsewhere := s.CreateIssue("other/repo", githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	url, started := hookServer(t, s)
	tests := []struct {
		name   string
		d      githubtest.Delivery
		status int
		starts int
	}{
		{"labeled task", githubtest.Delivery{Event: "issues", Action: "labeled", Repository: repo, Number: task, Label: "chorus-task"}, http.StatusAccepted, 1},
		{"opened task", githubtest.Delivery{Event: "issues", Action: "opened", Repository: repo, Number: task}, http.StatusAccepted, 1},
		{"ping", githubtest.Delivery{Event: "ping"}, http.StatusOK, 0},
		{"unknown event", githubtest.Delivery{Event: "issue_comment", Action: "created", Repository: repo, Number: task}, http.StatusNoContent, 0},
		{"other action", githubtest.Delivery{Event: "issues", Action: "edited", Repository: repo, Number: task}, http.StatusNoContent, 0},
		{"not a task", githubtest.Delivery{Event: "issues", Action: "opened", Repository: repo, Number: plain}, http.StatusNoContent, 0},
		{"unconfigured repository", githubtest.Delivery{Event: "issues", Action: "opened", Repository: "other/repo", Number: elsewhere}, http.StatusNoContent, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(started())
			tt.d.URL, tt.d.Secret = url, hookSecret
			resp, err := s.Deliver(context.Background(), tt.d)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %s, want %d", resp.Status, tt.status)
			}
			if got := len(started()) - before; got != tt.starts {
				t.Fatalf("started %d tasks, want %d", got, tt.starts)
			}
		})
	}
	got := started()[0]
	if got.Key().String() != "task/github/acme/api/1" || got.Priority != 8 || got.Title != "Add a test" || got.State != chorus.StateOpen {
		t.Fatalf("started task = %+v", got)
	}
}

func TestWebhookRefuses(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	url, started := hookServer(t, s)
	body, err := s.Payload(githubtest.Delivery{Event: "issues", Action: "opened", Repository: repo, Number: n})
	if err != nil {
		t.Fatal(err)
	}
	post := func(sig string, body []byte) int {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "issues")
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := "sha256=" + githubtest.Sign(hookSecret, body)
	tampered := bytes.Replace(body, []byte(`"opened"`), []byte(`"reopened"`), 1)
	for name, c := range map[string]struct {
		sig    string
		body   []byte
		status int
	}{
		"no signature":       {"", body, http.StatusUnauthorized},
		"wrong secret":       {"sha256=" + githubtest.Sign("guess", body), body, http.StatusUnauthorized},
		"tampered body":      {good, tampered, http.StatusUnauthorized},
		"sha1 only":          {"sha1=" + strings.Repeat("0", 40), body, http.StatusUnauthorized},
		"not hex":            {"sha256=zz", body, http.StatusUnauthorized},
		"too large":          {good, bytes.Repeat([]byte(" "), 65<<10), http.StatusRequestEntityTooLarge},
		"malformed, signed":  {"sha256=" + githubtest.Sign(hookSecret, []byte("{")), []byte("{"), http.StatusBadRequest},
		"valid, as a sanity": {good, body, http.StatusAccepted},
	} {
		if got := post(c.sig, c.body); got != c.status {
			t.Errorf("%s: status %d, want %d", name, got, c.status)
		}
	}
	if n := len(started()); n != 1 {
		t.Fatalf("started %d tasks, want only the valid delivery's", n)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %s", resp.Status)
	}
}

func TestWebhookNeedsASecret(t *testing.T) {
	tr := newTracker(t, newFake(t))
	if _, err := tr.Webhook(func(context.Context, chorus.Task) error { return nil }); !errors.Is(err, github.ErrNoWebhookSecret) {
		t.Fatalf("Webhook without a secret: %v", err)
	}
}

func TestWebhookStartFailureIs500(t *testing.T) {
	s := newFake(t)
	n := s.CreateIssue(repo, githubtest.NewIssue{Title: "t", Labels: []string{"chorus-task"}})
	tr := newTracker(t, s, func(c *github.Config) {
		c.WebhookSecretEnv = "HOOK"
		c.Getenv = func(k string) string { return map[string]string{"HOOK": hookSecret, "GITHUB_TOKEN": token}[k] }
	})
	h, err := tr.Webhook(func(context.Context, chorus.Task) error { return errors.New("temporal is down") })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := s.Deliver(context.Background(), githubtest.Delivery{URL: srv.URL, Secret: hookSecret, Event: "issues", Action: "opened", Repository: repo, Number: n})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply struct{ Started string }
	_ = json.NewDecoder(resp.Body).Decode(&reply)
	if resp.StatusCode != http.StatusInternalServerError || reply.Started != "" {
		t.Fatalf("status %s", resp.Status)
	}
}
