package activities_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"chorus"
	"chorus/activities"
	"chorus/sandbox"
)

// fakeTracker is an in-memory provider.
type fakeTracker struct {
	mu     sync.Mutex
	holder map[chorus.TaskKey]string
	fence  map[chorus.TaskKey]int64
	done   map[chorus.TaskKey]chorus.Result
	err    error
}

func newFakeTracker() *fakeTracker {
	return &fakeTracker{holder: map[chorus.TaskKey]string{}, fence: map[chorus.TaskKey]int64{}, done: map[chorus.TaskKey]chorus.Result{}}
}

func (f *fakeTracker) Claim(_ context.Context, k chorus.TaskKey, agent string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	if h, ok := f.holder[k]; ok && h != agent {
		return 0, fmt.Errorf("held by %s: %w", h, chorus.ErrAlreadyClaimed)
	}
	if _, ok := f.holder[k]; !ok {
		f.fence[k]++
	}
	f.holder[k] = agent
	return f.fence[k], nil
}
func (f *fakeTracker) Release(_ context.Context, k chorus.TaskKey, fence int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.holder, k)
	return nil
}
func (f *fakeTracker) Start(_ context.Context, k chorus.TaskKey, fence int64) error {
	return f.check(k, fence)
}
func (f *fakeTracker) Complete(_ context.Context, k chorus.TaskKey, fence int64, r chorus.Result) error {
	if err := f.check(k, fence); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done[k] = r
	return nil
}
func (f *fakeTracker) Fail(_ context.Context, k chorus.TaskKey, fence int64, reason string) error {
	return f.check(k, fence)
}
func (f *fakeTracker) Cancel(_ context.Context, k chorus.TaskKey, reason string) error { return nil }
func (f *fakeTracker) check(k chorus.TaskKey, fence int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fence[k] != fence {
		return fmt.Errorf("fence %d is not %d: %w", fence, f.fence[k], chorus.ErrFenced)
	}
	return nil
}

const key = "task/board/demo/1"

func appErrType(t *testing.T, err error) string {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an application error", err)
	}
	if !ae.NonRetryable() {
		t.Fatalf("error %v is retryable, want non-retryable", err)
	}
	return ae.Type()
}

func TestProviderClaimConflictIsNonRetryable(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	tr := newFakeTracker()
	env.RegisterActivity(&activities.Provider{Tasks: tr})

	v, err := env.ExecuteActivity(prov.Claim, activities.ClaimInput{Key: key, AgentID: "a"})
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	var out activities.ClaimOutput
	if err := v.Get(&out); err != nil || out.Fence != 1 {
		t.Fatalf("fence = %d (%v), want 1", out.Fence, err)
	}
	_, err = env.ExecuteActivity(prov.Claim, activities.ClaimInput{Key: key, AgentID: "b"})
	if got := appErrType(t, err); got != activities.ErrTypeAlreadyClaimed {
		t.Fatalf("type = %s, want %s", got, activities.ErrTypeAlreadyClaimed)
	}
	_, err = env.ExecuteActivity(prov.MarkWorking, activities.FenceInput{Key: key, Fence: 7})
	if got := appErrType(t, err); got != activities.ErrTypeFenced {
		t.Fatalf("type = %s, want %s", got, activities.ErrTypeFenced)
	}
	_, err = env.ExecuteActivity(prov.Claim, activities.ClaimInput{Key: "nonsense", AgentID: "b"})
	if got := appErrType(t, err); got != activities.ErrTypeInvalid {
		t.Fatalf("type = %s, want %s", got, activities.ErrTypeInvalid)
	}
}

func TestProviderTransientErrorIsRetryable(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	tr := newFakeTracker()
	tr.err = errors.New("connection refused")
	env.RegisterActivity(&activities.Provider{Tasks: tr})
	_, err := env.ExecuteActivity(prov.Claim, activities.ClaimInput{Key: key, AgentID: "a"})
	var ae *temporal.ApplicationError
	if err == nil || (errors.As(err, &ae) && ae.NonRetryable()) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
}

// fakeRunner writes files into the workspace and returns a canned result.
type fakeRunner struct {
	files map[string]string
	res   sandbox.Result
	err   error
	spec  sandbox.Spec
}

func (f *fakeRunner) Run(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error) {
	f.spec = spec
	if f.err != nil {
		return sandbox.Result{}, f.err
	}
	for name, body := range f.files {
		p := filepath.Join(spec.Workspace, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return sandbox.Result{}, err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return sandbox.Result{}, err
		}
	}
	if spec.OutputPath != "" {
		if err := os.WriteFile(spec.OutputPath, []byte(f.res.OutputTail), 0o644); err != nil {
			return sandbox.Result{}, err
		}
	}
	spec.OnOutput([]byte(f.res.OutputTail))
	return f.res, nil
}

func execute(t *testing.T, r sandbox.Runner, in activities.ExecuteInput) (chorus.Result, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Executor{Runner: r, DataDir: t.TempDir(), Limits: sandbox.Spec{Image: "img"}})
	v, err := env.ExecuteActivity(exe.Execute, in)
	if err != nil {
		return chorus.Result{}, err
	}
	var res chorus.Result
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

const body = "Build it.\n\n```sh\n# make the file\nmkdir -p out\necho hi > out/a.txt\n```\n"

func TestExecuteSuccess(t *testing.T) {
	r := &fakeRunner{files: map[string]string{"out/a.txt": "hi\n", "b.txt": "x"}, res: sandbox.Result{OutputTail: "line1\nline2\n", Usage: sandbox.Usage{CPUTimeMS: 5}}}
	res, err := execute(t, r, activities.ExecuteInput{Key: key, AgentID: "a", Description: body})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Success || res.ExecutionType != chorus.ExecScripted || res.ExitCode != 0 {
		t.Fatalf("result = %+v", res)
	}
	if want := []string{"mkdir -p out", "echo hi > out/a.txt"}; !reflect.DeepEqual(res.CommandsExecuted, want) {
		t.Fatalf("commands = %q, want %q", res.CommandsExecuted, want)
	}
	if want := []string{"b.txt", "out/a.txt"}; !reflect.DeepEqual(res.FilesGenerated, want) {
		t.Fatalf("files = %q, want %q", res.FilesGenerated, want)
	}
	if res.OutputTail != "line1\nline2" || res.ResourceUsage.CPUTimeMS != 5 {
		t.Fatalf("tail %q usage %+v", res.OutputTail, res.ResourceUsage)
	}
	if b, err := os.ReadFile(res.OutputRef); err != nil || string(b) != "line1\nline2\n" {
		t.Fatalf("output ref %s: %q %v", res.OutputRef, b, err)
	}
	if r.spec.Command[0] != "/bin/sh" || !strings.Contains(r.spec.Command[3], "echo hi") {
		t.Fatalf("command = %q", r.spec.Command)
	}
	if !slices.Contains(r.spec.Env, "TASK_ID="+key) || !slices.Contains(r.spec.Env, "AGENT_ID=a") {
		t.Fatalf("env = %q", r.spec.Env)
	}
}

func TestExecuteFailureIsAResult(t *testing.T) {
	res, err := execute(t, &fakeRunner{res: sandbox.Result{ExitCode: 3, OutputTail: "boom"}}, activities.ExecuteInput{Key: key, Description: body})
	if err != nil {
		t.Fatal(err)
	}
	if res.Success || res.ExitCode != 3 || !strings.Contains(res.Message, "exit code 3") {
		t.Fatalf("result = %+v", res)
	}
	res, err = execute(t, &fakeRunner{res: sandbox.Result{ExitCode: 137, TimedOut: true}}, activities.ExecuteInput{Key: key, Description: body, Timeout: 5e9})
	if err != nil {
		t.Fatal(err)
	}
	if res.Success || !strings.Contains(res.Message, "timed out after 5s") {
		t.Fatalf("result = %+v", res)
	}
}

func TestExecuteNoRunnableContent(t *testing.T) {
	_, err := execute(t, &fakeRunner{}, activities.ExecuteInput{Key: key, Description: "just words"})
	if got := appErrType(t, err); got != activities.ErrTypeNoRunnableContent {
		t.Fatalf("type = %s", got)
	}
}

func TestExecuteSandboxErrorIsRetryable(t *testing.T) {
	_, err := execute(t, &fakeRunner{err: errors.New("daemon gone")}, activities.ExecuteInput{Key: key, Description: body})
	var ae *temporal.ApplicationError
	if err == nil || (errors.As(err, &ae) && ae.NonRetryable()) {
		t.Fatalf("err = %v, want retryable", err)
	}
}

func TestExtractScript(t *testing.T) {
	cases := []struct{ in, want string }{
		{"none", ""},
		{"```go\nfmt.Println()\n```", ""},
		{"```sh\necho a\n```", "echo a"},
		{"x\n```bash\necho a\n```\ny\n```shell\necho b\n```", "echo a\necho b"},
		{"```sh\n\n```", ""},
	}
	for _, c := range cases {
		if got := activities.ExtractScript(c.in); got != c.want {
			t.Errorf("ExtractScript(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Activities are referenced through nil pointers, as the workflow does.
var (
	prov *activities.Provider
	exe  *activities.Executor
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type fakeAuditor struct {
	mu      sync.Mutex
	entries []string
}

func (f *fakeAuditor) Record(_ context.Context, typ string, data any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := data.(activities.AuditRecord)
	f.entries = append(f.entries, fmt.Sprintf("%s %s fence=%d %s", typ, r.Key, r.Fence, r.Reason))
	return nil
}

func TestProviderAuditsStateChanges(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	aud := &fakeAuditor{}
	env.RegisterActivity(&activities.Provider{Tasks: newFakeTracker(), Audit: aud})
	if _, err := env.ExecuteActivity(prov.Claim, activities.ClaimInput{Key: key, AgentID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(prov.MarkWorking, activities.FenceInput{Key: key, Fence: 1}); err != nil {
		t.Fatal(err)
	}
	// A refused change is not audited.
	if _, err := env.ExecuteActivity(prov.Complete, activities.CompleteInput{Key: key, Fence: 9}); err == nil {
		t.Fatal("stale fence accepted")
	}
	if _, err := env.ExecuteActivity(prov.Fail, activities.FailInput{Key: key, Fence: 1, Reason: "exit 3"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"task_claimed " + key + " fence=1 ", "task_progress " + key + " fence=1 ", "task_failed " + key + " fence=1 exit 3"}
	if !reflect.DeepEqual(aud.entries, want) {
		t.Fatalf("audit = %q, want %q", aud.entries, want)
	}
}
