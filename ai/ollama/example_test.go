package ollama_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"chorus/ai"
	"chorus/ai/ollama"
)

// A model that was never pulled: Ollama answers 404 and Chat returns
// ai.ErrModelNotFound, which the fallback ladder takes as the cue to try
// the alternate model. A pulled model answers normally.
func ExampleNew() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/api/chat" {
			http.NotFound(w, r)
			return
		}
		var req struct{ Model string }
		json.NewDecoder(r.Body).Decode(&req)
		if req.Model != "llama3.1:8b" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":"model %q not found, try pulling it first"}`, req.Model)
			return
		}
		io.WriteString(w, `{"model":"llama3.1:8b","created_at":"2025-03-01T12:00:00Z","message":{"role":"assistant","content":"Done."},"done":true,"done_reason":"stop","prompt_eval_count":8,"eval_count":2}`)
	}))
	defer srv.Close()

	cfg := ollama.DefaultConfig()
	cfg.Endpoint = srv.URL
	cfg.Model = "llama3.1:8b"
	c, err := ollama.New(cfg, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	msgs := []ai.Message{{Role: ai.RoleUser, Content: "Say done."}}

	_, err = c.Chat(context.Background(), ai.Request{Model: "mistral:7b", Messages: msgs})
	fmt.Println("mistral:7b not found:", errors.Is(err, ai.ErrModelNotFound))

	resp, err := c.Chat(context.Background(), ai.Request{Messages: msgs})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Model, resp.Content, resp.PromptTokens, resp.CompletionTokens)
	// Output:
	// mistral:7b not found: true
	// llama3.1:8b Done. 8 2
}
