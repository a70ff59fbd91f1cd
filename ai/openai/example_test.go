package openai_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"chorus/ai"
	"chorus/ai/openai"
)

// A streamed completion from an OpenAI-compatible server: the fragments
// arrive as Server-Sent Events and Chat returns them joined, with the usage
// from the final chunk. The key comes from the variable the config names.
func ExampleNew() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk-example" {
			http.Error(w, `{"error":{"message":"missing key","type":"invalid_request_error","code":"invalid_api_key"}}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []string{
			`{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"git "},"finish_reason":null}]}`,
			`{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"status"},"finish_reason":"stop"}]}`,
			`{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`,
			`[DONE]`,
		} {
			io.WriteString(w, "data: "+ev+"\n\n")
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()

	cfg := openai.DefaultConfig()
	cfg.Endpoint = srv.URL + "/v1"
	cfg.Model = "gpt-4o-mini"
	cfg.APIKeyEnv = "OPENAI_API_KEY"
	getenv := func(name string) string { return map[string]string{"OPENAI_API_KEY": "sk-example"}[name] }
	c, err := openai.New(cfg, nil, getenv)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := c.Chat(context.Background(), ai.Request{
		Messages: []ai.Message{{Role: ai.RoleUser, Content: "Which command shows the working tree?"}},
		Stream:   true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q %d tokens, %s\n", resp.Content, resp.TotalTokens(), resp.FinishReason)
	fmt.Println("key printed:", strings.Contains(fmt.Sprint(c), "sk-example"))
	// Output:
	// "git status" 11 tokens, stop
	// key printed: false
}
