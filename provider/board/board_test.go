package board_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus"
	"chorus/provider/board"
)

// api is what Board and Client have in common; the same tests run against
// both to show the Client has the Board's semantics.
type api interface {
	Add(ctx context.Context, t chorus.Task) (chorus.Task, bool, error)
	Get(ctx context.Context, key chorus.TaskKey) (chorus.Task, error)
	List(ctx context.Context, f board.Filter) ([]chorus.Task, error)
	Claim(ctx context.Context, key chorus.TaskKey, agentID string) (int64, error)
	Start(ctx context.Context, key chorus.TaskKey, fence int64) error
	Complete(ctx context.Context, key chorus.TaskKey, fence int64, r chorus.Result) error
	Fail(ctx context.Context, key chorus.TaskKey, fence int64, reason string) error
	Cancel(ctx context.Context, key chorus.TaskKey, reason string) error
	Release(ctx context.Context, key chorus.TaskKey, fence int64) error
	Events(ctx context.Context, key chorus.TaskKey) ([]board.Event, error)
	Completions(ctx context.Context, key chorus.TaskKey) (int, error)
}

var (
	_ api = (*board.Board)(nil)
	_ api = (*board.Client)(nil)
)

// openBoard opens a board in a new file under t.TempDir and closes it when
// the test ends.
func openBoard(t *testing.T) (*board.Board, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "board.db")
	b, err := board.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b, path
}

// serve serves b over HTTP for the test and returns a client for it.
func serve(t *testing.T, b *board.Board) *board.Client {
	t.Helper()
	srv := httptest.NewServer(b.Handler())
	t.Cleanup(srv.Close)
	return board.NewClient(srv.URL, srv.Client())
}

// backends runs fn once against a fresh Board and once against a Client of
// another fresh Board.
func backends(t *testing.T, fn func(t *testing.T, p api)) {
	t.Run("board", func(t *testing.T) {
		b, _ := openBoard(t)
		fn(t, b)
	})
	t.Run("client", func(t *testing.T) {
		b, _ := openBoard(t)
		fn(t, serve(t, b))
	})
}

func mustAdd(t *testing.T, p api, task chorus.Task) chorus.Task {
	t.Helper()
	got, created, err := p.Add(context.Background(), task)
	if err != nil {
		t.Fatalf("Add(%q): %v", task.Title, err)
	}
	if !created {
		t.Fatalf("Add(%q): created = false, want true", task.Title)
	}
	return got
}

func TestAddGet(t *testing.T) {
	backends(t, func(t *testing.T, p api) {
		ctx := context.Background()
		before := time.Now().UTC()
		in := chorus.Task{
			Title:       "Fix the login bug",
			Description: "users cannot log in",
			Labels:      []string{"bug", "p1"},
			Priority:    7,
			Role:        "backend",
			Expertise:   []string{"go", "sql"},
			ProjectID:   "proj-1",
			// Server-assigned fields are ignored.
			Number:   99,
			State:    chorus.StateCompleted,
			Assignee: "someone",
			Fence:    42,
		}
		got, created, err := p.Add(ctx, in)
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
		if !created {
			t.Errorf("created = false, want true")
		}
		want := chorus.Task{
			Provider:    board.ProviderName,
			Repository:  board.DefaultRepository,
			Number:      1,
			Title:       in.Title,
			Description: in.Description,
			State:       chorus.StateOpen,
			Labels:      in.Labels,
			Priority:    in.Priority,
			Role:        in.Role,
			Expertise:   in.Expertise,
			Type:        chorus.TypeBugFix,
			ProjectID:   in.ProjectID,
			CreatedAt:   got.CreatedAt,
			UpdatedAt:   got.CreatedAt,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Add returned\n%+v\nwant\n%+v", got, want)
		}
		if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().UTC()) || got.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt = %v, want UTC now", got.CreatedAt)
		}
		stored, err := p.Get(ctx, got.Key())
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !reflect.DeepEqual(stored, want) {
			t.Errorf("Get returned\n%+v\nwant\n%+v", stored, want)
		}
		if got.Key().String() != "task/board/default/1" {
			t.Errorf("key = %s, want task/board/default/1", got.Key())
		}

		explicit := mustAdd(t, p, chorus.Task{Title: "whatever", Repository: "acme/web", Type: chorus.TypeReview})
		if explicit.Type != chorus.TypeReview {
			t.Errorf("Type = %q, want the given %q kept", explicit.Type, chorus.TypeReview)
		}
	})
}

func TestAddNumbersPerRepository(t *testing.T) {
	backends(t, func(t *testing.T, p api) {
		adds := []struct {
			repo string
			want string
		}{
			{"acme/web", "task/board/acme/web/1"},
			{"acme/web", "task/board/acme/web/2"},
			{"tools", "task/board/tools/1"},
			{"", "task/board/default/1"},
			{"acme/web", "task/board/acme/web/3"},
			{"tools", "task/board/tools/2"},
		}
		for i, a := range adds {
			got := mustAdd(t, p, chorus.Task{Title: "task " + string(rune('a'+i)), Repository: a.repo})
			if got.Key().String() != a.want {
				t.Errorf("add %d to %q: key %s, want %s", i, a.repo, got.Key(), a.want)
			}
		}
	})
}

func TestAddDeduplicatesSubmissions(t *testing.T) {
	backends(t, func(t *testing.T, p api) {
		ctx := context.Background()
		first := mustAdd(t, p, chorus.Task{Title: "Deploy", Description: "to staging", Repository: "acme/web"})

		tests := []struct {
			name        string
			task        chorus.Task
			wantCreated bool
		}{
			{"same submission", chorus.Task{Title: "Deploy", Description: "to staging", Repository: "acme/web"}, false},
			{"other fields do not matter", chorus.Task{Title: "Deploy", Description: "to staging", Repository: "acme/web", Priority: 9, Labels: []string{"x"}}, false},
			{"other description", chorus.Task{Title: "Deploy", Description: "to production", Repository: "acme/web"}, true},
			{"other repository", chorus.Task{Title: "Deploy", Description: "to staging", Repository: "acme/api"}, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, created, err := p.Add(ctx, tt.task)
				if err != nil {
					t.Fatalf("Add: %v", err)
				}
				if created != tt.wantCreated {
					t.Errorf("created = %v, want %v", created, tt.wantCreated)
				}
				if !tt.wantCreated && !reflect.DeepEqual(got, first) {
					t.Errorf("Add returned %+v, want the existing %+v", got, first)
				}
			})
		}

		// A claimed task still counts as the same submission, and so does a
		// finished one: the same task never runs twice.
		fence, err := p.Claim(ctx, first.Key(), "agent-a")
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		if _, created, err := p.Add(ctx, chorus.Task{Title: "Deploy", Description: "to staging", Repository: "acme/web"}); err != nil || created {
			t.Fatalf("Add while claimed: created=%v err=%v, want existing task", created, err)
		}
		if err := p.Complete(ctx, first.Key(), fence, chorus.Result{Success: true}); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		again, created, err := p.Add(ctx, chorus.Task{Title: "Deploy", Description: "to staging", Repository: "acme/web"})
		if err != nil || created {
			t.Fatalf("Add after completion: created=%v err=%v, want the existing task", created, err)
		}
		if again.Key() != first.Key() || again.State != chorus.StateCompleted {
			t.Errorf("Add after completion returned %s (%s), want %s completed", again.Key(), again.State, first.Key())
		}
	})
}

// TestConcurrentAddDeduplicates submits the same task many times at once
// through two Boards on one file: one submission creates it, the others
// get it back.
func TestConcurrentAddDeduplicates(t *testing.T) {
	b1, path := openBoard(t)
	b2, err := board.Open(path)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	t.Cleanup(func() { b2.Close() })
	type outcome struct {
		key     chorus.TaskKey
		created bool
		err     error
	}
	const submissions = 16
	var (
		wg       sync.WaitGroup
		ready    = make(chan struct{})
		outcomes = make(chan outcome, submissions)
	)
	for i := range submissions {
		b := []*board.Board{b1, b2}[i%2]
		wg.Go(func() {
			<-ready
			task, created, err := b.Add(context.Background(), chorus.Task{Title: "once", Description: "only once", Repository: "acme/web"})
			outcomes <- outcome{task.Key(), created, err}
		})
	}
	close(ready)
	wg.Wait()
	close(outcomes)
	created := 0
	for o := range outcomes {
		if o.err != nil {
			t.Errorf("Add: %v", o.err)
			continue
		}
		if o.created {
			created++
		}
		if o.key.String() != "task/board/acme/web/1" {
			t.Errorf("Add returned %s, want task/board/acme/web/1", o.key)
		}
	}
	if created != 1 {
		t.Errorf("%d submissions created the task, want 1", created)
	}
}

func TestAddRejectsInvalidTasks(t *testing.T) {
	tests := []struct {
		name      string
		task      chorus.Task
		wantField string
	}{
		{"empty title", chorus.Task{Title: "  "}, "title"},
		{"priority too high", chorus.Task{Title: "t", Priority: chorus.MaxPriority + 1}, "priority"},
		{"negative priority", chorus.Task{Title: "t", Priority: -1}, "priority"},
		{"bad repository", chorus.Task{Title: "t", Repository: "a/b/c"}, "repository"},
		{"other provider", chorus.Task{Title: "t", Provider: "github"}, "provider"},
	}
	backends(t, func(t *testing.T, p api) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := p.Add(context.Background(), tt.task)
				if !errors.Is(err, chorus.ErrInvalid) {
					t.Fatalf("Add: err = %v, want ErrInvalid", err)
				}
				if !strings.Contains(err.Error(), tt.wantField+":") {
					t.Errorf("error %q does not name field %q", err, tt.wantField)
				}
			})
		}
		if got, err := p.List(context.Background(), board.Filter{}); err != nil || len(got) != 0 {
			t.Errorf("after refused adds List = %v, %v; want nothing stored", got, err)
		}
	})
}

func TestGetMissing(t *testing.T) {
	backends(t, func(t *testing.T, p api) {
		ctx := context.Background()
		tests := []struct {
			name string
			key  chorus.TaskKey
			want error
		}{
			{"no such number", chorus.TaskKey{Provider: board.ProviderName, Repository: "default", Number: 7}, chorus.ErrNotFound},
			{"no such repository", chorus.TaskKey{Provider: board.ProviderName, Repository: "acme/none", Number: 1}, chorus.ErrNotFound},
			{"other provider", chorus.TaskKey{Provider: "github", Repository: "default", Number: 1}, chorus.ErrInvalid},
			{"zero number", chorus.TaskKey{Provider: board.ProviderName, Repository: "default"}, chorus.ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := p.Get(ctx, tt.key); !errors.Is(err, tt.want) {
					t.Errorf("Get(%s): err = %v, want %v", tt.key, err, tt.want)
				}
			})
		}
	})
}

func TestList(t *testing.T) {
	backends(t, func(t *testing.T, p api) {
		ctx := context.Background()
		// Added in this order, so created_at ascends down the list.
		adds := []chorus.Task{
			{Title: "low old", Priority: 1, Repository: "r1"},    // r1/1
			{Title: "high", Priority: 9, Repository: "r1"},       // r1/2
			{Title: "mid old", Priority: 5, Repository: "r1"},    // r1/3
			{Title: "mid new", Priority: 5, Repository: "r2"},    // r2/1: older number, newer task
			{Title: "high later", Priority: 9, Repository: "r2"}, // r2/2
			{Title: "to claim", Priority: 5, Repository: "r1"},   // r1/4
			{Title: "to cancel", Priority: 10, Repository: "r1"}, // r1/5
			{Title: "low new", Priority: 1, Repository: "r2"},    // r2/3
		}
		var keys []chorus.TaskKey
		for _, a := range adds {
			keys = append(keys, mustAdd(t, p, a).Key())
		}
		if _, err := p.Claim(ctx, keys[5], "agent-a"); err != nil {
			t.Fatalf("Claim: %v", err)
		}
		if err := p.Cancel(ctx, keys[6], "not needed"); err != nil {
			t.Fatalf("Cancel: %v", err)
		}

		tests := []struct {
			name   string
			filter board.Filter
			want   []string
		}{
			{"all", board.Filter{}, []string{"to cancel", "high", "high later", "mid old", "mid new", "to claim", "low old", "low new"}},
			{"open", board.Filter{States: []chorus.TaskState{chorus.StateOpen}}, []string{"high", "high later", "mid old", "mid new", "low old", "low new"}},
			{"open or claimed", board.Filter{States: []chorus.TaskState{chorus.StateOpen, chorus.StateClaimed}}, []string{"high", "high later", "mid old", "mid new", "to claim", "low old", "low new"}},
			{"cancelled", board.Filter{States: []chorus.TaskState{chorus.StateCancelled}}, []string{"to cancel"}},
			{"repository", board.Filter{Repository: "r2"}, []string{"high later", "mid new", "low new"}},
			{"repository and state", board.Filter{Repository: "r1", States: []chorus.TaskState{chorus.StateOpen}}, []string{"high", "mid old", "low old"}},
			{"limit", board.Filter{Limit: 2}, []string{"to cancel", "high"}},
			{"no match", board.Filter{Repository: "nothing"}, []string{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := p.List(ctx, tt.filter)
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				titles := []string{}
				for _, task := range got {
					titles = append(titles, task.Title)
				}
				if !reflect.DeepEqual(titles, tt.want) {
					t.Errorf("List(%+v) = %q, want %q", tt.filter, titles, tt.want)
				}
			})
		}
	})
}

func TestListDefaultLimit(t *testing.T) {
	b, _ := openBoard(t)
	for i := range board.DefaultLimit + 5 {
		mustAdd(t, b, chorus.Task{Title: fmt.Sprintf("task %d", i)})
	}
	got, err := b.List(context.Background(), board.Filter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) != board.DefaultLimit {
		t.Errorf("List returned %d tasks, want DefaultLimit %d", len(got), board.DefaultLimit)
	}
}

func TestListRejectsInvalidFilters(t *testing.T) {
	tests := []struct {
		name      string
		filter    board.Filter
		wantField string
	}{
		{"unknown state", board.Filter{States: []chorus.TaskState{"done"}}, "state"},
		{"negative limit", board.Filter{Limit: -1}, "limit"},
		{"limit too large", board.Filter{Limit: board.MaxLimit + 1}, "limit"},
		{"bad repository", board.Filter{Repository: "a b"}, "repository"},
	}
	backends(t, func(t *testing.T, p api) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := p.List(context.Background(), tt.filter)
				if !errors.Is(err, chorus.ErrInvalid) {
					t.Fatalf("List: err = %v, want ErrInvalid", err)
				}
				if !strings.Contains(err.Error(), tt.wantField+":") {
					t.Errorf("error %q does not name field %q", err, tt.wantField)
				}
			})
		}
	})
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dir with space?#%", "board.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := board.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the board is not stored at the path given: %v", err)
	}
	done := mustAdd(t, b, chorus.Task{Title: "done", Repository: "acme/web"})
	open := mustAdd(t, b, chorus.Task{Title: "open", Repository: "acme/web", Labels: []string{"l"}})
	fence, err := b.Claim(ctx, done.Key(), "agent-a")
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	result := chorus.Result{Success: true, Message: "ok", ExecutionType: chorus.ExecScripted, CommandsExecuted: []string{"make"}, ExitCode: 0}
	if err := b.Complete(ctx, done.Key(), fence, result); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	wantTasks, err := b.List(ctx, board.Filter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	wantEvents, err := b.Events(ctx, done.Key())
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b, err = board.Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer b.Close()
	gotTasks, err := b.List(ctx, board.Filter{})
	if err != nil {
		t.Fatalf("List after reopen: %v", err)
	}
	if !reflect.DeepEqual(gotTasks, wantTasks) {
		t.Errorf("tasks after reopen\n%+v\nwant\n%+v", gotTasks, wantTasks)
	}
	gotEvents, err := b.Events(ctx, done.Key())
	if err != nil {
		t.Fatalf("Events after reopen: %v", err)
	}
	if !reflect.DeepEqual(gotEvents, wantEvents) {
		t.Errorf("events after reopen\n%+v\nwant\n%+v", gotEvents, wantEvents)
	}
	got, err := b.Get(ctx, done.Key())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Result == nil || !reflect.DeepEqual(*got.Result, result) {
		t.Errorf("result after reopen = %+v, want %+v", got.Result, result)
	}
	// The sequence survives too: the next task in the repository is 3.
	next := mustAdd(t, b, chorus.Task{Title: "next", Repository: "acme/web"})
	if next.Number != open.Number+1 {
		t.Errorf("next number after reopen = %d, want %d", next.Number, open.Number+1)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	_, path := openBoard(t)
	if err := setUserVersion(path, 99); err != nil {
		t.Fatal(err)
	}
	b, err := board.Open(path)
	if err == nil {
		b.Close()
		t.Fatal("Open succeeded on a file with a newer schema")
	}
	if !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("error %q does not mention the schema version", err)
	}
}

// setUserVersion writes the schema version of the file at path directly.
func setUserVersion(path string, v int) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	_, err = db.Exec(fmt.Sprintf("PRAGMA user_version = %d", v))
	return errors.Join(err, db.Close())
}

// TestOpenMigratesVersion1 opens a file written before allow_hosts and
// model existed: its tasks survive and new tasks carry both.
func TestOpenMigratesVersion1(t *testing.T) {
	b, path := openBoard(t)
	ctx := context.Background()
	old, _, err := b.Add(ctx, chorus.Task{Title: "from version 1", Repository: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("ALTER TABLE tasks DROP COLUMN model; ALTER TABLE tasks DROP COLUMN allow_hosts; PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	b, err = board.Open(path)
	if err != nil {
		t.Fatalf("open a version 1 file: %v", err)
	}
	defer b.Close()
	got, err := b.Get(ctx, old.Key())
	if err != nil || got.Title != "from version 1" || got.AllowHosts != nil {
		t.Fatalf("old task after migration: %+v, %v", got, err)
	}
	added, _, err := b.Add(ctx, chorus.Task{Title: "networked", Repository: "demo", AllowHosts: []string{"proxy.golang.org:443"}, Model: "llama3"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, added.Key()); err != nil || len(got.AllowHosts) != 1 || got.AllowHosts[0] != "proxy.golang.org:443" || got.Model != "llama3" {
		t.Fatalf("new task: %+v, %v", got, err)
	}
}
