package board_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"chorus"
	"chorus/provider/board"
)

// TestClientMapsErrors checks that every sentinel survives the trip over
// HTTP, with the status and code the API documents.
func TestClientMapsErrors(t *testing.T) {
	ctx := context.Background()
	b, _ := openBoard(t)
	c := serve(t, b)
	key := mustAdd(t, c, chorus.Task{Title: "t"}).Key()
	if _, err := c.Claim(ctx, key, "agent-a"); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	missing := chorus.TaskKey{Provider: board.ProviderName, Repository: "default", Number: 99}

	tests := []struct {
		name       string
		call       func() error
		want       error
		wantStatus int
		wantCode   string
	}{
		{"not found", func() error { _, err := c.Get(ctx, missing); return err }, chorus.ErrNotFound, http.StatusNotFound, "not_found"},
		{"already claimed", func() error { _, err := c.Claim(ctx, key, "agent-b"); return err }, chorus.ErrAlreadyClaimed, http.StatusConflict, "already_claimed"},
		{"fenced", func() error { return c.Start(ctx, key, 2) }, chorus.ErrFenced, http.StatusConflict, "fenced"},
		{"invalid", func() error { _, _, err := c.Add(ctx, chorus.Task{}); return err }, chorus.ErrInvalid, http.StatusBadRequest, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, other := range []error{chorus.ErrNotFound, chorus.ErrAlreadyClaimed, chorus.ErrFenced, chorus.ErrInvalid} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("err = %v also matches %v", err, other)
				}
			}
			var apiErr *board.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err %T is not an *APIError", err)
			}
			if apiErr.StatusCode != tt.wantStatus || apiErr.Code != tt.wantCode {
				t.Errorf("status %d code %q, want %d %q", apiErr.StatusCode, apiErr.Code, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

// TestClientErrorMessagesMatchBoard checks that a Client error reads the
// same as the Board error it stands for.
func TestClientErrorMessagesMatchBoard(t *testing.T) {
	ctx := context.Background()
	b, _ := openBoard(t)
	c := serve(t, b)
	key := mustAdd(t, b, chorus.Task{Title: "t"}).Key()
	if _, err := b.Claim(ctx, key, "agent-a"); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	_, boardErr := b.Claim(ctx, key, "agent-b")
	_, clientErr := c.Claim(ctx, key, "agent-b")
	if boardErr == nil || clientErr == nil || boardErr.Error() != clientErr.Error() {
		t.Errorf("board error %q, client error %q, want the same message", boardErr, clientErr)
	}
}

func TestClientNonBoardErrorMapsToNoSentinel(t *testing.T) {
	b, _ := openBoard(t)
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	// A base URL that misses the API: the mux answers 404 in plain text.
	c := board.NewClient(srv.URL+"/wrong/", nil)
	_, err := c.Get(context.Background(), chorus.TaskKey{Provider: board.ProviderName, Repository: "default", Number: 1})
	if err == nil {
		t.Fatal("Get through a wrong base URL succeeded")
	}
	if errors.Is(err, chorus.ErrNotFound) {
		t.Errorf("a missing route reads as ErrNotFound: %v", err)
	}
	var apiErr *board.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Errorf("err = %v, want an *APIError with status 404", err)
	}
}

func TestAddStatus(t *testing.T) {
	b, _ := openBoard(t)
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	body := `{"title": "Write docs", "repository": "acme/web"}`
	for i, want := range []int{http.StatusCreated, http.StatusOK} {
		resp, err := http.Post(srv.URL+"/api/v1/tasks", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var reply struct {
			Task    chorus.Task `json:"task"`
			Created bool        `json:"created"`
		}
		err = json.NewDecoder(resp.Body).Decode(&reply)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("decode reply: %v", err)
		}
		if resp.StatusCode != want || reply.Created != (want == http.StatusCreated) {
			t.Errorf("submission %d: status %d created %v, want %d", i+1, resp.StatusCode, reply.Created, want)
		}
		if reply.Task.Key().String() != "task/board/acme/web/1" || reply.Task.Type != chorus.TypeDocs {
			t.Errorf("submission %d: task %s type %q, want task/board/acme/web/1 of type %q", i+1, reply.Task.Key(), reply.Task.Type, chorus.TypeDocs)
		}
	}
}

// TestHandlerRejectsBadRequests sends raw requests a Client would never
// send and checks each is a 400 naming the problem.
func TestHandlerRejectsBadRequests(t *testing.T) {
	b, _ := openBoard(t)
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	key := mustAdd(t, b, chorus.Task{Title: "t", Repository: "acme/web"}).Key().String()

	tests := []struct {
		name     string
		method   string
		target   string
		body     string
		wantText string
	}{
		{"unknown task field", "POST", "/api/v1/tasks", `{"title": "t", "titel": "typo"}`, `unknown field "titel"`},
		{"unknown claim field", "POST", "/api/v1/task/claim", `{"key": "` + key + `", "agent": "a"}`, `unknown field "agent"`},
		{"body too large", "POST", "/api/v1/tasks", `{"title": "t", "description": "` + strings.Repeat("x", board.MaxBodyBytes) + `"}`, "larger than 1048576 bytes"},
		{"empty body", "POST", "/api/v1/task/claim", ``, "body: must be a JSON object"},
		{"trailing data", "POST", "/api/v1/task/start", `{"key": "` + key + `", "fence": 1} {}`, "unexpected data after the JSON object"},
		{"wrong type", "POST", "/api/v1/task/start", `{"key": "` + key + `", "fence": "one"}`, "fence"},
		{"missing key", "POST", "/api/v1/task/claim", `{"agent_id": "a"}`, "key: must not be empty"},
		{"malformed key", "GET", "/api/v1/task?key=task/board/acme/web/x", ``, "must be a positive integer"},
		{"other provider", "GET", "/api/v1/task?key=task/github/acme/web/1", ``, `provider "github"`},
		{"missing result", "POST", "/api/v1/task/complete", `{"key": "` + key + `", "fence": 1}`, "result: must be present"},
		{"unknown query parameter", "GET", "/api/v1/tasks?states=open", ``, `unknown parameter "states"`},
		{"bad limit", "GET", "/api/v1/tasks?limit=ten", ``, "limit:"},
		{"unknown state", "GET", "/api/v1/tasks?state=done", ``, "state:"},
		{"missing agent", "POST", "/api/v1/task/claim", `{"key": "` + key + `"}`, "agent_id: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			var reply struct {
				Error string `json:"error"`
				Code  string `json:"code"`
			}
			if err := json.Unmarshal(raw, &reply); err != nil {
				t.Fatalf("reply %q is not a JSON error: %v", raw, err)
			}
			if resp.StatusCode != http.StatusBadRequest || reply.Code != "invalid" {
				t.Errorf("status %d code %q, want 400 invalid (reply %s)", resp.StatusCode, reply.Code, raw)
			}
			if !strings.Contains(reply.Error, tt.wantText) {
				t.Errorf("error %q does not contain %q", reply.Error, tt.wantText)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
		})
	}
	// None of the refused requests changed the task.
	got, err := b.Events(context.Background(), mustParse(t, key))
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(got) != 1 {
		t.Errorf("events after refused requests = %+v, want only created", got)
	}
}

// TestClientRoundTripsEverything checks that a task read through the
// Client equals the one the Board stores, result included.
func TestClientRoundTripsEverything(t *testing.T) {
	ctx := context.Background()
	b, _ := openBoard(t)
	c := serve(t, b)
	task, _, err := c.Add(ctx, chorus.Task{
		Title: "Refactor the parser", Description: "split it", Repository: "acme/web",
		Labels: []string{"a", "b"}, Priority: 3, Role: "dev", Expertise: []string{"go"}, ProjectID: "p",
	})
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	fence, err := c.Claim(ctx, task.Key(), "agent-a")
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if err := c.Start(ctx, task.Key(), fence); err != nil {
		t.Fatalf("Start: %v", err)
	}
	result := chorus.Result{
		Success: true, Message: "done", ExecutionType: chorus.ExecScripted, DurationMS: 1234,
		CommandsExecuted: []string{"go test ./..."}, FilesGenerated: []string{"out.txt"},
		OutputTail: "ok\n", OutputRef: "file:///logs/1", AgentID: "agent-a",
		ResourceUsage: chorus.ResourceUsage{CPUTimeMS: 10, PeakMemoryBytes: 1 << 20},
	}
	if err := c.Complete(ctx, task.Key(), fence, result); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	fromBoard, err := b.Get(ctx, task.Key())
	if err != nil {
		t.Fatalf("Board.Get: %v", err)
	}
	fromClient, err := c.Get(ctx, task.Key())
	if err != nil {
		t.Fatalf("Client.Get: %v", err)
	}
	if !equalJSON(t, fromBoard, fromClient) {
		t.Errorf("client sees\n%+v\nboard stores\n%+v", fromClient, fromBoard)
	}
	if fromClient.Result == nil || !equalJSON(t, *fromClient.Result, result) {
		t.Errorf("result = %+v, want %+v", fromClient.Result, result)
	}
	list, err := c.List(ctx, board.Filter{States: []chorus.TaskState{chorus.StateCompleted}, Repository: "acme/web", Limit: 5})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 1 || !equalJSON(t, list[0], fromBoard) {
		t.Errorf("List = %+v, want just the completed task", list)
	}
	boardEvents, err := b.Events(ctx, task.Key())
	if err != nil {
		t.Fatalf("Board.Events: %v", err)
	}
	clientEvents, err := c.Events(ctx, task.Key())
	if err != nil {
		t.Fatalf("Client.Events: %v", err)
	}
	if !equalJSON(t, boardEvents, clientEvents) || len(clientEvents) != 4 {
		t.Errorf("client events %+v, board events %+v", clientEvents, boardEvents)
	}
}

// equalJSON compares two values by their JSON form, which is what crosses
// the wire.
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

func mustParse(t *testing.T, s string) chorus.TaskKey {
	t.Helper()
	k, err := chorus.ParseTaskKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
