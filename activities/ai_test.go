package activities_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"chorus"
	"chorus/activities"
	"chorus/ai"
	"chorus/budget"
	"chorus/sandbox"
)

// scriptedModel answers with canned replies in order and records requests.
type scriptedModel struct {
	replies []string
	err     error
	reqs    []ai.Request
}

func (m *scriptedModel) Chat(_ context.Context, req ai.Request) (ai.Response, error) {
	m.reqs = append(m.reqs, req)
	if m.err != nil {
		return ai.Response{}, m.err
	}
	if len(m.reqs) > len(m.replies) {
		return ai.Response{}, fmt.Errorf("unexpected call %d", len(m.reqs))
	}
	return ai.Response{Model: req.Model, Content: m.replies[len(m.reqs)-1], PromptTokens: 30, CompletionTokens: 10}, nil
}

// shellRunner "runs" commands by writing their text to a file named in
// the command ("touch X" creates X) and exiting 0, or 1 for "false".
type shellRunner struct{ runs int }

func (r *shellRunner) Run(_ context.Context, spec sandbox.Spec) (sandbox.Result, error) {
	r.runs++
	script := spec.Command[len(spec.Command)-1]
	for _, line := range strings.Split(script, "\n") {
		if name, ok := strings.CutPrefix(line, "touch "); ok {
			if err := os.WriteFile(filepath.Join(spec.Workspace, name), []byte("made by "+line+"\n"), 0o644); err != nil {
				return sandbox.Result{}, err
			}
		}
		if line == "false" {
			return sandbox.Result{ExitCode: 1, OutputTail: "failed\n"}, nil
		}
	}
	return sandbox.Result{OutputTail: "ok\n", Usage: sandbox.Usage{CPUTimeMS: 3, PeakMemoryBytes: 1 << 20}}, nil
}

var aiAct *activities.AI

func runAI(t *testing.T, a *activities.AI, in activities.AIInput) (chorus.Result, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(aiAct.ExecuteAI, in)
	if err != nil {
		return chorus.Result{}, err
	}
	var res chorus.Result
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func newAI(t *testing.T, m activities.Chatter, limits budget.Limits) (*activities.AI, string) {
	t.Helper()
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "README.md"), []byte("demo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &activities.AI{
		Models:       map[string]activities.Chatter{"m": m},
		Runner:       &shellRunner{},
		DataDir:      t.TempDir(),
		Limits:       sandbox.Spec{Image: "img"},
		Budget:       limits,
		Repositories: map[string]string{"demo": repo},
		Logger:       discardLogger(),
	}, repo
}

var aiIn = activities.AIInput{ExecuteInput: activities.ExecuteInput{Key: key, AgentID: "a", AgentRole: "developer", Repository: "demo", Title: "Implement x", Description: "make x"}, Model: "m"}

func TestAILoopRunsCommandsUntilDone(t *testing.T) {
	m := &scriptedModel{replies: []string{
		`{"commands": ["touch x.txt"], "done": false, "summary": "making x"}`,
		"```json\n{\"commands\": [], \"done\": true, \"summary\": \"x is made\"}\n```",
	}}
	a, repo := newAI(t, m, budget.Limits{Tokens: 1000, Steps: 5})
	res, err := runAI(t, a, aiIn)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Success || res.ExecutionType != chorus.ExecAI || res.Model != "m" || res.TokensUsed != 80 || res.Message != "ai: x is made" {
		t.Fatalf("result = %+v", res)
	}
	if strings.Join(res.FilesGenerated, ",") != "README.md,x.txt" || strings.Join(res.CommandsExecuted, ",") != "touch x.txt" {
		t.Fatalf("files %q commands %q", res.FilesGenerated, res.CommandsExecuted)
	}
	// The model saw the task and the repository, and got the output back.
	if first := m.reqs[0].Messages[1].Content; !strings.Contains(first, "make x") || !strings.Contains(first, "README.md") {
		t.Fatalf("first prompt: %q", first)
	}
	if fb := m.reqs[1].Messages[len(m.reqs[1].Messages)-1].Content; !strings.HasPrefix(fb, "exit code 0") {
		t.Fatalf("feedback: %q", fb)
	}
	if !m.reqs[0].JSON || m.reqs[0].MaxTokens != 1000 || m.reqs[1].MaxTokens != 960 {
		t.Fatalf("requests: json %v, max tokens %d then %d", m.reqs[0].JSON, m.reqs[0].MaxTokens, m.reqs[1].MaxTokens)
	}
	diff, err := os.ReadFile(res.Artifacts["diff"])
	if err != nil || !strings.Contains(string(diff), "b/x.txt") || strings.Contains(string(diff), "README") {
		t.Fatalf("diff %v:\n%s", err, diff)
	}
	if _, err := os.Stat(filepath.Join(repo, "x.txt")); !os.IsNotExist(err) {
		t.Fatal("the source repository was modified")
	}
	transcript, err := os.ReadFile(res.TranscriptRef)
	if err != nil || strings.Count(string(transcript), "\n") != 5 { // system, task, reply, feedback, reply
		t.Fatalf("transcript (%v):\n%s", err, transcript)
	}
}

func appErr(t *testing.T, err error) (string, bool) {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		return "", false
	}
	return ae.Type(), ae.NonRetryable()
}

func TestAIGarbageGetsOneCorrection(t *testing.T) {
	m := &scriptedModel{replies: []string{"sure, I will do it", `{"commands": [], "done": true, "summary": "nothing to do"}`}}
	a, _ := newAI(t, m, budget.Limits{})
	res, err := runAI(t, a, aiIn)
	if err != nil || !res.Success || len(m.reqs) != 2 {
		t.Fatalf("corrected reply: %+v %v after %d calls", res, err, len(m.reqs))
	}
	if c := m.reqs[1].Messages[len(m.reqs[1].Messages)-1].Content; !strings.Contains(c, "not usable") {
		t.Fatalf("correction message: %q", c)
	}

	m = &scriptedModel{replies: []string{"sure", `{"cmds": ["ls"]}`}}
	a, _ = newAI(t, m, budget.Limits{})
	_, err = runAI(t, a, aiIn)
	if typ, nonRetryable := appErr(t, err); typ != activities.ErrTypeModelGarbage || !nonRetryable || len(m.reqs) != 2 {
		t.Fatalf("garbage twice: %v (%s) after %d calls", err, typ, len(m.reqs))
	}
}

func TestAIBudgetStopsBeforeTheCall(t *testing.T) {
	// Two steps allowed; the model never says done.
	m := &scriptedModel{replies: []string{`{"commands": ["touch a"], "done": false}`, `{"commands": ["touch b"], "done": false}`, `{"commands": ["touch c"], "done": false}`}}
	a, _ := newAI(t, m, budget.Limits{Steps: 2})
	_, err := runAI(t, a, aiIn)
	if typ, nonRetryable := appErr(t, err); typ != activities.ErrTypeBudgetExhausted || !nonRetryable || !strings.Contains(err.Error(), "task steps: 2 of 2") {
		t.Fatalf("err = %v", err)
	}
	if len(m.reqs) != 2 {
		t.Fatalf("model called %d times, want 2 (the third call is refused before it is made)", len(m.reqs))
	}

	// A day already spent: not even one call.
	m = &scriptedModel{replies: []string{`{"commands": [], "done": true}`}}
	a, _ = newAI(t, m, budget.Limits{})
	daily, err := budget.OpenDaily(filepath.Join(t.TempDir(), "d.json"), budget.DailyLimits{Calls: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := daily.Charge(10); err != nil {
		t.Fatal(err)
	}
	a.Daily = daily
	_, err = runAI(t, a, aiIn)
	if typ, _ := appErr(t, err); typ != activities.ErrTypeBudgetExhausted || len(m.reqs) != 0 {
		t.Fatalf("err = %v after %d calls", err, len(m.reqs))
	}
}

func TestAIClientErrors(t *testing.T) {
	cases := []struct {
		err       error
		typ       string
		retryable bool
	}{
		{fmt.Errorf("ollama http://x: model m: %w", ai.ErrModelNotFound), activities.ErrTypeModelUnavailable, false},
		{fmt.Errorf("openai: %w", ai.ErrUnauthorized), activities.ErrTypeModelUnavailable, false},
		{fmt.Errorf("ollama: %w", ai.ErrMalformedReply), activities.ErrTypeModelGarbage, false},
		{fmt.Errorf("ollama: %w", ai.ErrUnreachable), "", true},
		{fmt.Errorf("openai: %w", ai.ErrRateLimited), "", true},
	}
	for _, c := range cases {
		a, _ := newAI(t, &scriptedModel{err: c.err}, budget.Limits{})
		_, err := runAI(t, a, aiIn)
		typ, nonRetryable := appErr(t, err)
		if err == nil || nonRetryable == c.retryable || (c.typ != "" && typ != c.typ) {
			t.Errorf("%v: got %v (type %q, non-retryable %v)", c.err, err, typ, nonRetryable)
		}
	}
	a, _ := newAI(t, &scriptedModel{}, budget.Limits{})
	in := aiIn
	in.Model = "other"
	if _, err := runAI(t, a, in); err == nil || !strings.Contains(err.Error(), `model "other" is not configured`) {
		t.Fatalf("unknown model: %v", err)
	}
}

func TestAIFailingCommandsAreAResult(t *testing.T) {
	m := &scriptedModel{replies: []string{`{"commands": ["false"], "done": true, "summary": "tried"}`}}
	a, _ := newAI(t, m, budget.Limits{})
	res, err := runAI(t, a, aiIn)
	if err != nil || res.Success || res.ExitCode != 1 || !strings.Contains(res.Message, "exit code 1") {
		t.Fatalf("result = %+v, %v", res, err)
	}
}

func TestMockNeverReportsRealWork(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Mock{})
	var m *activities.Mock
	v, err := env.ExecuteActivity(m.ExecuteMock, activities.MockInput{ExecuteInput: aiIn.ExecuteInput})
	if err != nil {
		t.Fatal(err)
	}
	var res chorus.Result
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.Success || res.ExecutionType != chorus.ExecMock || len(res.CommandsExecuted) != 0 || !strings.Contains(res.Message, "simulated") {
		t.Fatalf("mock result = %+v", res)
	}
}

func TestAITranscriptIsRedacted(t *testing.T) {
	secret := "sk-" + strings.Repeat("x7", 20)
	m := &scriptedModel{replies: []string{`{"commands": [], "done": true, "summary": "the key is ` + secret + `"}`}}
	a, _ := newAI(t, m, budget.Limits{})
	a.Redact = func(s string) string { return strings.ReplaceAll(s, secret, "[REDACTED]") }
	res, err := runAI(t, a, aiIn)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(res.TranscriptRef)
	if err != nil || strings.Contains(string(b), secret) || !strings.Contains(string(b), "[REDACTED]") {
		t.Fatalf("transcript (%v):\n%s", err, b)
	}
}
