//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeOllama speaks Ollama's /api/chat (non-streaming): the first reply
// proposes commands, the next one, after seeing exit code 0, is done.
func fakeOllama(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/chat" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		var req struct {
			Model    string `json:"model"`
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
			Stream *bool  `json:"stream"`
			Format string `json:"format"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		calls.Add(1)
		last := req.Messages[len(req.Messages)-1].Content
		content := `{"commands": ["echo hello from the model > hello.txt", "cat README.md"], "done": false, "summary": "writing hello.txt"}`
		if strings.HasPrefix(last, "exit code 0") {
			content = `{"commands": [], "done": true, "summary": "wrote hello.txt"}`
		}
		w.Header().Set("Content-Type", "application/json")
		type message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		}
		json.NewEncoder(w).Encode(struct {
			Model           string  `json:"model"`
			CreatedAt       string  `json:"created_at"`
			Message         message `json:"message"`
			Done            bool    `json:"done"`
			DoneReason      string  `json:"done_reason"`
			PromptEvalCount int     `json:"prompt_eval_count"`
			EvalCount       int     `json:"eval_count"`
		}{req.Model, time.Now().UTC().Format(time.RFC3339Nano), message{"assistant", content}, true, "stop", 50, 20})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

type aiResult struct {
	TaskKey string `json:"task_key"`
	Status  string `json:"status"`
	Result  struct {
		Success          bool              `json:"success"`
		ExecutionType    string            `json:"execution_type"`
		Model            string            `json:"model"`
		TokensUsed       int               `json:"tokens_used"`
		CommandsExecuted []string          `json:"commands_executed"`
		FilesGenerated   []string          `json:"files_generated"`
		TranscriptRef    string            `json:"transcript_ref"`
		Artifacts        map[string]string `json:"artifacts"`
		Ladder           []struct {
			Rung    string `json:"rung"`
			Outcome string `json:"outcome"`
			Reason  string `json:"reason"`
		} `json:"ladder"`
	} `json:"result"`
}

func writeConfig(t *testing.T, endpoint, repo string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	cfg := fmt.Sprintf("agent:\n  models:\n    - {name: fake-coder, provider: ollama, endpoint: %q}\nexecution:\n  repositories:\n    - {name: demo, path: %q}\n", endpoint, repo)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAIRungRunsModelCommands(t *testing.T) {
	srv, calls := fakeOllama(t)
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "README.md"), []byte("demo repository\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, "--config", writeConfig(t, srv.URL, repo))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, errOut, code := c.starterCmd(ctx, "submit", "--json", "--wait", "--repo", "demo", "--title", "Implement a greeting", "--body", "Write hello.txt.")
	var r aiResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
		t.Fatalf("submit: exit %d, %v: %s %s", code, err, out, errOut)
	}
	res := r.Result
	if !res.Success || res.ExecutionType != "ai" || res.Model != "fake-coder" || res.TokensUsed != 140 || calls.Load() != 2 {
		t.Fatalf("result = %+v (model calls %d)", res, calls.Load())
	}
	if len(res.Ladder) != 1 || res.Ladder[0].Rung != "ai:fake-coder" || res.Ladder[0].Outcome != "succeeded" {
		t.Fatalf("ladder = %+v", res.Ladder)
	}
	if strings.Join(res.FilesGenerated, ",") != "README.md,hello.txt" || len(res.CommandsExecuted) != 2 {
		t.Fatalf("files %q commands %q", res.FilesGenerated, res.CommandsExecuted)
	}
	diff, err := os.ReadFile(res.Artifacts["diff"])
	if err != nil || !strings.Contains(string(diff), "b/hello.txt") || !strings.Contains(string(diff), "+hello from the model") || strings.Contains(string(diff), "README") {
		t.Fatalf("diff artifact %q: %v\n%s", res.Artifacts["diff"], err, diff)
	}
	transcript, err := os.ReadFile(res.TranscriptRef)
	if err != nil || strings.Count(string(transcript), `"kind":"reply"`) != 2 {
		t.Fatalf("transcript %q: %v\n%s", res.TranscriptRef, err, transcript)
	}
	// The repository the workspace was copied from is untouched.
	if _, err := os.Stat(filepath.Join(repo, "hello.txt")); !os.IsNotExist(err) {
		t.Fatalf("the source repository was modified: %v", err)
	}
	c.recordHistory(ctx, r.TaskKey, "ladder_ai")
}

func TestModelDownFallsToScripted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	c := startCluster(t, "--config", writeConfig(t, down, t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, errOut, code := c.starterCmd(ctx, "submit", "--json", "--wait", "--title", "scripted after all", "--body", "```sh\necho scripted\n```")
	var r aiResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
		t.Fatalf("submit: exit %d, %v: %s %s", code, err, out, errOut)
	}
	l := r.Result.Ladder
	if r.Result.ExecutionType != "scripted" || len(l) != 2 || l[0].Rung != "ai:fake-coder" || l[0].Outcome != "skipped" ||
		!strings.Contains(l[0].Reason, "unreachable") || l[1].Rung != "scripted" || l[1].Outcome != "succeeded" {
		t.Fatalf("result = %+v", r.Result)
	}
	c.recordHistory(ctx, r.TaskKey, "ladder_model_down")
}
