package coordination_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"chorus"
	"chorus/ai"
	"chorus/ai/ollama"
	"chorus/ai/openai"
	"chorus/coordination"
	"chorus/gossip"
)

// dependentPair is two tasks and the api_contract alert between them.
func dependentPair(t *testing.T) coordination.PlanInput {
	t.Helper()
	api := task("acme/api", 1, "Define the user API", "GET /users returns id and name")
	web := task("acme/web", 2, "Implement the signup page", "calls the backend")
	d, _ := coordination.NewDetector(nil)
	alerts := d.Detect([]chorus.Task{api, web}, t0)
	if len(alerts) != 1 {
		t.Fatalf("alerts = %+v", alerts)
	}
	// Tasks in the "wrong" order: the plan must still put the API first.
	return coordination.PlanInput{Kind: coordination.KindDependency, Tasks: []chorus.Task{web, api}, Dependencies: alerts}
}

var tiny = ai.RetryPolicy{MaxAttempts: 2, Initial: time.Millisecond, Max: 2 * time.Millisecond}

// llm is a model server speaking the Ollama or OpenAI wire format; it
// answers every chat with content and records the prompts.
type llm struct {
	*httptest.Server
	mu      sync.Mutex
	prompts []string
}

func newLLM(t *testing.T, wire string, content string) *llm {
	t.Helper()
	l := &llm{}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []struct{ Role, Content string } `json:"messages"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("request body: %v", err)
		}
		l.mu.Lock()
		for _, m := range req.Messages {
			if m.Role == "user" {
				l.prompts = append(l.prompts, m.Content)
			}
		}
		l.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		c, _ := json.Marshal(content)
		switch {
		case wire == "ollama" && r.URL.Path == "/api/chat":
			io.WriteString(w, `{"model":"llama3.1:8b","created_at":"2026-03-01T12:00:00Z","message":{"role":"assistant","content":`+string(c)+`},"done":true,"done_reason":"stop","prompt_eval_count":120,"eval_count":60}`)
		case wire == "openai" && r.URL.Path == "/v1/chat/completions":
			io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":`+string(c)+`},"finish_reason":"stop"}],"usage":{"prompt_tokens":120,"completion_tokens":60,"total_tokens":180}}`)
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *llm) prompt(t *testing.T) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.prompts) == 0 {
		t.Fatal("the model was never asked")
	}
	return l.prompts[len(l.prompts)-1]
}

func ollamaModel(t *testing.T, endpoint string) coordination.Model {
	t.Helper()
	cfg := ollama.DefaultConfig()
	cfg.Endpoint, cfg.Model, cfg.Retry, cfg.Timeout = endpoint, "llama3.1:8b", tiny, 5*time.Second
	c, err := ollama.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return coordination.Model{Name: "llama3.1:8b", Client: c}
}

func openaiModel(t *testing.T, endpoint string) coordination.Model {
	t.Helper()
	cfg := openai.DefaultConfig()
	cfg.Endpoint, cfg.Model, cfg.Retry, cfg.Timeout = endpoint, "gpt-4o-mini", tiny, 5*time.Second
	c, err := openai.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return coordination.Model{Name: "gpt-4o-mini", Client: c}
}

func planner(t *testing.T, models ...coordination.Model) *coordination.Planner {
	t.Helper()
	cfg := coordination.DefaultPlannerConfig()
	cfg.Models = models
	p, err := coordination.NewPlanner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var wantOrder = []string{"task/board/acme/api/1", "task/board/acme/web/2"}

func TestTemplatePlanWithoutModel(t *testing.T) {
	in := dependentPair(t)
	in.Objections = []string{"c: I am already working on task/board/acme/web/2"}
	p := planner(t).Plan(context.Background(), in)
	if !p.Template || p.Model != "" || p.Why != "no model is configured" {
		t.Fatalf("plan %+v, want a template because no model is configured", p)
	}
	if !reflect.DeepEqual(p.Order, wantOrder) {
		t.Fatalf("order %q, want the API first", p.Order)
	}
	for _, want := range []string{coordination.TemplateMarker, "no model is configured",
		`1. task/board/acme/api/1 (acme/api): "Define the user API"`,
		`2. task/board/acme/web/2 (acme/web): "Implement the signup page", after task/board/acme/api/1`,
		"api_contract: agree on the API contract", "already working on task/board/acme/web/2"} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("template plan lacks %q:\n%s", want, p.Text)
		}
	}
	if !strings.HasPrefix(p.Text, coordination.TemplateMarker) {
		t.Errorf("template plan does not start with the marker:\n%s", p.Text)
	}
}

func TestPlanFromModel(t *testing.T) {
	reply := `{"order": ["task/board/acme/api/1", "task/board/acme/web/2"], "plan": "1. Publish the /users contract.\n2. Build the signup page against it."}`
	for _, wire := range []string{"ollama", "openai"} {
		t.Run(wire, func(t *testing.T) {
			srv := newLLM(t, wire, reply)
			m := ollamaModel(t, srv.URL)
			if wire == "openai" {
				m = openaiModel(t, srv.URL)
			}
			p := planner(t, m).Plan(context.Background(), dependentPair(t))
			if p.Template || p.Model != m.Name || p.Text != "1. Publish the /users contract.\n2. Build the signup page against it." ||
				!reflect.DeepEqual(p.Order, wantOrder) {
				t.Fatalf("plan %+v", p)
			}
			prompt := srv.prompt(t)
			for _, want := range []string{"Session kind: dependency", "task/board/acme/api/1 (repository acme/api)", `"Define the user API"`,
				"GET /users returns id and name", "task/board/acme/web/2 (repository acme/web) depends on task/board/acme/api/1 (repository acme/api): rule api_contract, confidence 0.80"} {
				if !strings.Contains(prompt, want) {
					t.Errorf("prompt lacks %q:\n%s", want, prompt)
				}
			}
		})
	}
}

func TestPlanFallsBackToTheTemplate(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connection refused from now on
	tests := []struct {
		name    string
		models  func(t *testing.T) []coordination.Model
		wantWhy string
	}{
		{"unreachable model", func(t *testing.T) []coordination.Model { return []coordination.Model{ollamaModel(t, deadURL)} }, "unreachable"},
		{"garbage reply", func(t *testing.T) []coordination.Model {
			return []coordination.Model{ollamaModel(t, newLLM(t, "ollama", "Sure! Here is a plan: do the API first.").URL)}
		}, "not the JSON object"},
		{"empty plan", func(t *testing.T) []coordination.Model {
			return []coordination.Model{ollamaModel(t, newLLM(t, "ollama", `{"order": [], "plan": "  "}`).URL)}
		}, "no plan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planner(t, tt.models(t)...).Plan(context.Background(), dependentPair(t))
			if !p.Template || !strings.Contains(p.Why, tt.wantWhy) || !strings.Contains(p.Why, "llama3.1:8b") ||
				!strings.HasPrefix(p.Text, coordination.TemplateMarker) || !reflect.DeepEqual(p.Order, wantOrder) {
				t.Fatalf("plan %+v, want a template naming the model and %q", p, tt.wantWhy)
			}
		})
	}
}

func TestPlanTriesTheNextModel(t *testing.T) {
	bad := newLLM(t, "ollama", "not json")
	good := newLLM(t, "openai", `{"order": ["task/board/acme/web/2"], "plan": "API first, then the page."}`)
	p := planner(t, ollamaModel(t, bad.URL), openaiModel(t, good.URL)).Plan(context.Background(), dependentPair(t))
	if p.Template || p.Model != "gpt-4o-mini" || p.Text != "API first, then the page." {
		t.Fatalf("plan %+v, want the second model's", p)
	}
	// The reply's order left a task out, so the dependency order is used.
	if !reflect.DeepEqual(p.Order, wantOrder) {
		t.Fatalf("order %q, want the dependency order", p.Order)
	}
}

func TestPlanOrderFromModelWhenComplete(t *testing.T) {
	srv := newLLM(t, "ollama", `{"order": ["task/board/acme/web/2", "task/board/acme/api/1"], "plan": "page first behind a flag"}`)
	p := planner(t, ollamaModel(t, srv.URL)).Plan(context.Background(), dependentPair(t))
	if want := []string{"task/board/acme/web/2", "task/board/acme/api/1"}; !reflect.DeepEqual(p.Order, want) {
		t.Fatalf("order %q, want the model's %q", p.Order, want)
	}
}

func TestDependencyOrderWithChainAndCycle(t *testing.T) {
	a, b, c := task("r/a", 1, "a", ""), task("r/b", 1, "b", ""), task("r/c", 1, "c", "")
	alert := func(task, dep chorus.Task) gossip.DependencyAlert {
		return gossip.DependencyAlert{Rule: "x", Task: gossip.TaskRef{TaskKey: task.Key().String()}, DependsOn: gossip.TaskRef{TaskKey: dep.Key().String()}}
	}
	// a waits for b, b waits for c: c, b, a.
	chain := planner(t).Plan(context.Background(), coordination.PlanInput{Kind: coordination.KindPlanning, Tasks: []chorus.Task{a, b, c},
		Dependencies: []gossip.DependencyAlert{alert(a, b), alert(b, c)}})
	if want := []string{c.Key().String(), b.Key().String(), a.Key().String()}; !reflect.DeepEqual(chain.Order, want) {
		t.Fatalf("chain order %q, want %q", chain.Order, want)
	}
	// a and b wait for each other: broken at the smallest key, every task once.
	cycle := planner(t).Plan(context.Background(), coordination.PlanInput{Kind: coordination.KindConflict, Tasks: []chorus.Task{a, b},
		Dependencies: []gossip.DependencyAlert{alert(a, b), alert(b, a)}})
	if want := []string{a.Key().String(), b.Key().String()}; !reflect.DeepEqual(cycle.Order, want) {
		t.Fatalf("cycle order %q, want %q", cycle.Order, want)
	}
}

func TestPlannerConfigValidate(t *testing.T) {
	cfg := coordination.DefaultPlannerConfig()
	cfg.Timeout = 0
	if _, err := coordination.NewPlanner(cfg); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("zero timeout: %v", err)
	}
	cfg = coordination.DefaultPlannerConfig()
	cfg.Models = []coordination.Model{{Name: "m"}}
	if _, err := coordination.NewPlanner(cfg); err == nil || !strings.Contains(err.Error(), "Models[0]") {
		t.Fatalf("model without client: %v", err)
	}
}
