package openai

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

// DefaultTimeout bounds one Chat call when Config.Timeout is zero: long
// completions from a busy server take a minute or more.
const DefaultTimeout = 120 * time.Second

// Config describes one model on the endpoint.
type Config = chat.Config

// DefaultConfig returns a Config with every tunable at its default; only
// Endpoint, Model and the key source are left to fill.
func DefaultConfig() Config {
	return Config{Timeout: DefaultTimeout, Retry: chat.DefaultRetryPolicy()}
}

// Client talks to one OpenAI-compatible endpoint.
type Client struct {
	call  *chat.Caller
	model string
}

// New validates cfg, reads the API key if one is configured (through
// getenv, os.Getenv when nil) and returns a client sending through hc (a
// plain http.Client when nil).
func New(cfg Config, hc *http.Client, getenv func(string) string) (*Client, error) {
	call, err := chat.NewCaller(chat.Wire{Provider: "openai", Prefix: "v1", Path: "chat/completions", DefaultTimeout: DefaultTimeout, Classify: classify}, cfg, hc, getenv)
	if err != nil {
		return nil, err
	}
	return &Client{model: cfg.Model, call: call}, nil
}

// Wire format of /v1/chat/completions.
type (
	chatRequest struct {
		Model          string          `json:"model"`
		Messages       []chat.Message  `json:"messages"`
		Stream         bool            `json:"stream"`
		MaxTokens      int             `json:"max_tokens,omitempty"`
		Temperature    *float64        `json:"temperature,omitempty"`
		ResponseFormat *responseFormat `json:"response_format,omitempty"`
		StreamOptions  *streamOptions  `json:"stream_options,omitempty"`
	}
	responseFormat struct {
		Type string `json:"type"`
	}
	streamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	}
	// completion is a reply or, with Delta instead of Message, a stream
	// chunk.
	completion struct {
		ID      string   `json:"id"`
		Object  string   `json:"object"`
		Model   string   `json:"model"`
		Choices []choice `json:"choices"`
		Usage   *usage   `json:"usage"`
		// Error is an error object sent in place of a reply or chunk.
		Error json.RawMessage `json:"error"`
	}
	choice struct {
		Index        int           `json:"index"`
		Message      *chat.Message `json:"message"`
		Delta        *chat.Message `json:"delta"`
		FinishReason *string       `json:"finish_reason"`
	}
	usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	apiError struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
	}
)

// maxLine bounds one line of a streamed reply.
const maxLine = 4 << 20

// Chat sends req and returns the whole reply. With req.Stream the reply is
// read as Server-Sent Events and the delta fragments are joined.
func (c *Client) Chat(ctx context.Context, req chat.Request) (chat.Response, error) {
	model := req.Model
	if model == "" {
		model = c.model
	}
	if err := req.Validate(); err != nil {
		return chat.Response{}, fmt.Errorf("openai chat with model %q at %s: %w: %w", model, c.call.Endpoint, chat.ErrBadRequest, err)
	}
	if model == "" {
		return chat.Response{}, fmt.Errorf("openai chat at %s: %w: model: must be set in the request or the client", c.call.Endpoint, chat.ErrBadRequest)
	}
	body := chatRequest{
		Model:       model,
		Messages:    req.Messages,
		Stream:      req.Stream,
		MaxTokens:   req.MaxTokens,
		Temperature: req.Temperature,
	}
	if req.JSON {
		body.ResponseFormat = &responseFormat{Type: "json_object"}
	}
	if req.Stream {
		body.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return chat.Response{}, fmt.Errorf("openai chat with model %q at %s: %w: %w", model, c.call.Endpoint, chat.ErrBadRequest, err)
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
	var m completion
	if err := json.Unmarshal(b, &m); err != nil {
		return chat.Response{}, fmt.Errorf("%w: reply is not a chat completion JSON object (is the endpoint right?): %s", chat.ErrMalformedReply, chat.Snippet(b))
	}
	if err := replyError(m.Error); err != nil {
		return chat.Response{}, err
	}
	if len(m.Choices) == 0 {
		return chat.Response{}, fmt.Errorf("%w: reply has no choices (is the endpoint right?): %s", chat.ErrMalformedReply, chat.Snippet(b))
	}
	ch := m.Choices[0]
	if ch.Message == nil {
		return chat.Response{}, fmt.Errorf("%w: reply's first choice has no message: %s", chat.ErrMalformedReply, chat.Snippet(b))
	}
	out := chat.Response{Model: m.Model, Content: ch.Message.Content}
	if ch.FinishReason != nil {
		out.FinishReason = *ch.FinishReason
	}
	if m.Usage != nil {
		out.PromptTokens, out.CompletionTokens = m.Usage.PromptTokens, m.Usage.CompletionTokens
	}
	return out, nil
}

func decodeStream(r io.Reader) (chat.Response, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var (
		out     chat.Response
		content strings.Builder
	)
	for n := 1; sc.Scan(); n++ {
		// Only data fields matter; comments (":"), event, id and retry
		// fields and blank separators are skipped.
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			out.Content = content.String()
			return out, nil
		}
		var m completion
		if err := json.Unmarshal(data, &m); err != nil {
			return chat.Response{}, fmt.Errorf("%w: event on line %d is not a JSON chunk: %s", chat.ErrMalformedReply, n, chat.Snippet(data))
		}
		if err := replyError(m.Error); err != nil {
			return chat.Response{}, err
		}
		if m.Model != "" {
			out.Model = m.Model
		}
		for _, ch := range m.Choices {
			if ch.Index != 0 {
				continue
			}
			if ch.Delta != nil {
				content.WriteString(ch.Delta.Content)
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				out.FinishReason = *ch.FinishReason
			}
		}
		if m.Usage != nil {
			out.PromptTokens, out.CompletionTokens = m.Usage.PromptTokens, m.Usage.CompletionTokens
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return chat.Response{}, fmt.Errorf("%w: stream line longer than %d bytes", chat.ErrMalformedReply, maxLine)
	case err != nil:
		return chat.Response{}, fmt.Errorf("%w: reading the stream: %w", chat.ErrUnreachable, err)
	}
	return chat.Response{}, fmt.Errorf("%w: stream ended without data: [DONE] (is the endpoint right?)", chat.ErrMalformedReply)
}

// replyError reads an error object sent with status 200, in a reply or in
// a stream; nil when raw is absent or null.
func replyError(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	detail, notFound := errorDetail(raw)
	if notFound {
		return fmt.Errorf("%w: error in reply: %s", chat.ErrModelNotFound, detail)
	}
	return fmt.Errorf("%w: error in reply: %s", chat.ErrServer, detail)
}

// errorDetail renders an "error" member, an object {"message","type",
// "code"} or a bare string, and reports whether it says model_not_found.
func errorDetail(raw json.RawMessage) (detail string, notFound bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, false
	}
	var e apiError
	if json.Unmarshal(raw, &e) != nil {
		return chat.Snippet(raw), false
	}
	var code string
	if json.Unmarshal(e.Code, &code) != nil {
		code = strings.Trim(string(e.Code), `"`)
	}
	var extra []string
	if e.Type != "" {
		extra = append(extra, "type "+e.Type)
	}
	if code != "" && code != "null" {
		extra = append(extra, "code "+code)
	}
	detail = e.Message
	if len(extra) > 0 {
		detail += " (" + strings.Join(extra, ", ") + ")"
	}
	return detail, code == "model_not_found"
}

// classify reads an error reply, {"error":{"message","type","code"}}.
func classify(status int, body []byte) error {
	var m struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &m) == nil && len(m.Error) > 0 && string(m.Error) != "null" {
		detail, notFound := errorDetail(m.Error)
		return chat.StatusError(status, notFound, detail)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return chat.StatusError(status, false, "")
	}
	return chat.StatusError(status, false, "not an OpenAI error object (is the endpoint right?): "+chat.Snippet(body))
}

// String describes the client without its API key.
func (c *Client) String() string {
	if c == nil {
		return "openai.Client(nil)"
	}
	return fmt.Sprintf("openai.Client{model: %q, %s}", c.model, c.call)
}

// GoString is String: the key is never printed.
func (c *Client) GoString() string { return c.String() }

// Format makes every fmt verb print String.
func (c *Client) Format(f fmt.State, verb rune) { io.WriteString(f, c.String()) }

// LogValue describes the client for slog without its API key.
func (c *Client) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("openai.Client(nil)")
	}
	return slog.GroupValue(append([]slog.Attr{slog.String("model", c.model)}, c.call.LogAttrs()...)...)
}
