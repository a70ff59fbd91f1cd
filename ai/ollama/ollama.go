package ollama

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"chorus/ai/internal/chat"
)

// DefaultTimeout bounds one Chat call when Config.Timeout is zero: a local
// model on a small machine may take a minute to load and answer.
const DefaultTimeout = 120 * time.Second

// Config describes one model on the endpoint.
type Config = chat.Config

// DefaultConfig returns a Config with every tunable at its default; only
// Endpoint and Model are left to fill.
func DefaultConfig() Config {
	return Config{Timeout: DefaultTimeout, Retry: chat.DefaultRetryPolicy()}
}

// Client talks to one Ollama server.
type Client struct {
	call  *chat.Caller
	model string
}

// New validates cfg, reads the API key if one is configured (through
// getenv, os.Getenv when nil) and returns a client sending through hc (a
// plain http.Client when nil).
func New(cfg Config, hc *http.Client, getenv func(string) string) (*Client, error) {
	call, err := chat.NewCaller(chat.Wire{Provider: "ollama", Prefix: "api", Path: "chat", DefaultTimeout: DefaultTimeout, Classify: classify}, cfg, hc, getenv)
	if err != nil {
		return nil, err
	}
	return &Client{model: cfg.Model, call: call}, nil
}

// Wire format of /api/chat.
type (
	chatRequest struct {
		Model    string         `json:"model"`
		Messages []chat.Message `json:"messages"`
		// Stream is always sent: Ollama streams when it is absent.
		Stream  bool     `json:"stream"`
		Format  string   `json:"format,omitempty"`
		Options *options `json:"options,omitempty"`
	}
	options struct {
		Temperature *float64 `json:"temperature,omitempty"`
		NumPredict  int      `json:"num_predict,omitempty"`
	}
	chatReply struct {
		Model           string        `json:"model"`
		CreatedAt       string        `json:"created_at"`
		Message         *chat.Message `json:"message"`
		Done            bool          `json:"done"`
		DoneReason      string        `json:"done_reason"`
		PromptEvalCount int           `json:"prompt_eval_count"`
		EvalCount       int           `json:"eval_count"`
		Error           string        `json:"error"`
	}
)

// maxLine bounds one line of a streamed reply.
const maxLine = 4 << 20

// Chat sends req and returns the whole reply. With req.Stream the reply is
// read as newline-delimited JSON and the fragments are joined.
func (c *Client) Chat(ctx context.Context, req chat.Request) (chat.Response, error) {
	model := req.Model
	if model == "" {
		model = c.model
	}
	if err := req.Validate(); err != nil {
		return chat.Response{}, fmt.Errorf("ollama chat with model %q at %s: %w: %w", model, c.call.Endpoint, chat.ErrBadRequest, err)
	}
	if model == "" {
		return chat.Response{}, fmt.Errorf("ollama chat at %s: %w: model: must be set in the request or the client", c.call.Endpoint, chat.ErrBadRequest)
	}
	body := chatRequest{Model: model, Messages: req.Messages, Stream: req.Stream}
	if req.JSON {
		body.Format = "json"
	}
	if req.Temperature != nil || req.MaxTokens > 0 {
		body.Options = &options{Temperature: req.Temperature, NumPredict: req.MaxTokens}
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return chat.Response{}, fmt.Errorf("ollama chat with model %q at %s: %w: %w", model, c.call.Endpoint, chat.ErrBadRequest, err)
	}

	var resp chat.Response
	decode := func(r io.Reader) (err error) {
		if req.Stream {
			resp, err = decodeStream(r)
		} else {
			resp, err = decodeReply(r)
		}
		return err
	}
	if err := c.call.Post(ctx, model, payload, req.Stream, decode); err != nil {
		return chat.Response{}, err
	}
	if resp.Model == "" {
		resp.Model = model
	}
	return resp, nil
}

func decodeReply(r io.Reader) (chat.Response, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return chat.Response{}, fmt.Errorf("%w: %w", chat.ErrUnreachable, err)
	}
	var m chatReply
	if err := json.Unmarshal(b, &m); err != nil {
		return chat.Response{}, fmt.Errorf("%w: reply is not an /api/chat JSON object (is the endpoint right?): %s", chat.ErrMalformedReply, chat.Snippet(b))
	}
	if m.Error != "" {
		return chat.Response{}, fmt.Errorf("%w: error in reply: %s", chat.ErrServer, m.Error)
	}
	if m.Message == nil {
		return chat.Response{}, fmt.Errorf("%w: reply has no message (is the endpoint right?): %s", chat.ErrMalformedReply, chat.Snippet(b))
	}
	return response(m, m.Message.Content), nil
}

func decodeStream(r io.Reader) (chat.Response, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var content strings.Builder
	model := ""
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var m chatReply
		if err := json.Unmarshal(line, &m); err != nil {
			return chat.Response{}, fmt.Errorf("%w: stream line %d is not a JSON object (is the endpoint right?): %s", chat.ErrMalformedReply, n, chat.Snippet(line))
		}
		if m.Error != "" {
			return chat.Response{}, fmt.Errorf("%w: error in stream: %s", chat.ErrServer, m.Error)
		}
		if m.Message != nil {
			content.WriteString(m.Message.Content)
		}
		if m.Model != "" {
			model = m.Model
		}
		if m.Done {
			m.Model = model
			return response(m, content.String()), nil
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return chat.Response{}, fmt.Errorf("%w: stream line longer than %d bytes", chat.ErrMalformedReply, maxLine)
	case err != nil:
		return chat.Response{}, fmt.Errorf("%w: reading the stream: %w", chat.ErrUnreachable, err)
	}
	return chat.Response{}, fmt.Errorf("%w: stream ended before a done message", chat.ErrMalformedReply)
}

func response(m chatReply, content string) chat.Response {
	return chat.Response{
		Model:            m.Model,
		Content:          content,
		PromptTokens:     m.PromptEvalCount,
		CompletionTokens: m.EvalCount,
		FinishReason:     m.DoneReason,
	}
}

// classify reads an error reply, {"error":"..."}; 404 means the model is
// not pulled.
func classify(status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return chat.StatusError(status, false, e.Error)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return chat.StatusError(status, false, "")
	}
	return chat.StatusError(status, false, "not an Ollama error (is the endpoint right?): "+chat.Snippet(body))
}

// String describes the client without its API key.
func (c *Client) String() string {
	if c == nil {
		return "ollama.Client(nil)"
	}
	return fmt.Sprintf("ollama.Client{model: %q, %s}", c.model, c.call)
}

// GoString is String: the key is never printed.
func (c *Client) GoString() string { return c.String() }

// Format makes every fmt verb print String.
func (c *Client) Format(f fmt.State, verb rune) { io.WriteString(f, c.String()) }

// LogValue describes the client for slog without its API key.
func (c *Client) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("ollama.Client(nil)")
	}
	return slog.GroupValue(append([]slog.Attr{slog.String("model", c.model)}, c.call.LogAttrs()...)...)
}
