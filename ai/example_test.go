package ai_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"chorus/ai"
)

// A task for a developer agent names no model, so Select puts the model
// configured for the developer role first; New builds its client and Chat
// returns the reply with its token counts. An httptest server stands in for
// Ollama here.
func ExampleNew() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"model":"qwen2.5-coder:7b","created_at":"2025-03-01T12:00:00Z",`+
			`"message":{"role":"assistant","content":"{\"commands\":[\"go test ./...\"]}"},`+
			`"done":true,"done_reason":"stop","prompt_eval_count":42,"eval_count":12}`)
	}))
	defer srv.Close()

	models := []ai.Model{
		{Name: "gpt-4o-mini", Provider: ai.ProviderOpenAI, Endpoint: "https://api.openai.com", APIKeyEnv: "OPENAI_API_KEY"},
		{Name: "qwen2.5-coder:7b", Provider: ai.ProviderOllama, Endpoint: srv.URL, Roles: []string{"developer"}},
	}
	ordered, err := ai.Select(models, "developer", "")
	if err != nil {
		log.Fatal(err)
	}
	primary := ordered[0]
	c, err := ai.New(primary, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := c.Chat(context.Background(), ai.Request{
		Messages: []ai.Message{
			{Role: ai.RoleSystem, Content: "Reply with a JSON object listing shell commands."},
			{Role: ai.RoleUser, Content: "Run the tests."},
		},
		JSON: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("primary:", primary.Name, "alternates:", len(ordered)-1)
	fmt.Println(resp.Content)
	fmt.Println("tokens:", resp.TotalTokens(), "finish:", resp.FinishReason)
	// Output:
	// primary: qwen2.5-coder:7b alternates: 1
	// {"commands":["go test ./..."]}
	// tokens: 54 finish: stop
}
