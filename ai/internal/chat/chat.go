package chat

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"chorus"
)

// Sentinel errors. Every error from a client wraps one of them, with the
// endpoint and the model named in the message.
var (
	// ErrUnreachable: no HTTP reply (connection refused, DNS, reset, or no
	// reply within the model's timeout). Retried.
	ErrUnreachable = errors.New("endpoint unreachable")
	// ErrModelNotFound: the server does not know the model (or a task
	// names a model that is not configured). Not retried.
	ErrModelNotFound = errors.New("model not found")
	// ErrMalformedReply: the reply is not the provider's wire format, as
	// when the endpoint is some other web server. Not retried.
	ErrMalformedReply = errors.New("malformed reply")
	// ErrRateLimited: HTTP 429. Retried, honouring Retry-After.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnauthorized: HTTP 401 or 403, a missing or wrong API key. Not
	// retried.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrServer: HTTP 5xx or an error reported inside a reply. Retried.
	ErrServer = errors.New("server error")
	// ErrBadRequest: any other 4xx, or a request refused before sending.
	// Not retried.
	ErrBadRequest = errors.New("bad request")
)

// Message roles.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is one chat call.
type Request struct {
	// Model overrides the client's model when not empty.
	Model    string
	Messages []Message
	// MaxTokens bounds the reply; 0 leaves it to the server.
	MaxTokens int
	// Temperature is sent only when not nil.
	Temperature *float64
	// JSON asks the model for a single JSON object as its reply.
	JSON bool
	// Stream uses the provider's streaming wire format; the reply is still
	// returned whole, once complete.
	Stream bool
}

// Validate checks the request before anything is sent and names the bad
// field.
func (r Request) Validate() error {
	if len(r.Messages) == 0 {
		return errors.New("messages: must not be empty")
	}
	for i, m := range r.Messages {
		switch m.Role {
		case RoleSystem, RoleUser, RoleAssistant:
		default:
			return fmt.Errorf("messages[%d].role: must be %s, %s or %s, got %q", i, RoleSystem, RoleUser, RoleAssistant, m.Role)
		}
	}
	if r.MaxTokens < 0 {
		return fmt.Errorf("max_tokens: must not be negative, got %d", r.MaxTokens)
	}
	if t := r.Temperature; t != nil && (*t < 0 || math.IsNaN(*t) || math.IsInf(*t, 0)) {
		return fmt.Errorf("temperature: must be a non-negative number, got %v", *t)
	}
	return nil
}

// Response is a complete reply.
type Response struct {
	// Model is the model that answered, as the server names it.
	Model   string
	Content string
	// PromptTokens and CompletionTokens are the server's counts; 0 when it
	// sent none.
	PromptTokens     int
	CompletionTokens int
	// FinishReason is why generation stopped ("stop", "length", ...), as
	// the server words it.
	FinishReason string
}

// TotalTokens is the prompt and completion token count together.
func (r Response) TotalTokens() int { return r.PromptTokens + r.CompletionTokens }

// StatusError classifies a non-2xx HTTP status. notFound marks a reply whose
// body says the model does not exist, whatever its status. detail is the
// server's explanation, already cleared of the API key.
func StatusError(status int, notFound bool, detail string) error {
	var kind error
	switch {
	case status == 401 || status == 403:
		kind = ErrUnauthorized
	case status == 404 || notFound:
		kind = ErrModelNotFound
	case status == 429:
		kind = ErrRateLimited
	case status >= 500:
		kind = ErrServer
	case status >= 400:
		kind = ErrBadRequest
	default:
		kind = ErrMalformedReply
	}
	if detail == "" {
		return fmt.Errorf("%w: HTTP %d", kind, status)
	}
	return fmt.Errorf("%w: HTTP %d: %s", kind, status, detail)
}

// snippetLen bounds the part of a foreign body quoted in an error.
const snippetLen = 120

// Snippet returns the start of body as one printable line, for quoting a
// reply that is not in the expected format.
func Snippet(body []byte) string {
	s := strings.ToValidUTF8(string(body[:min(len(body), 4*snippetLen)]), "?")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }), " ")
	if utf8.RuneCountInString(s) > snippetLen {
		s = string([]rune(s)[:snippetLen]) + "..."
	}
	return fmt.Sprintf("%q", s)
}

// ParseEndpoint checks that raw is an absolute http(s) URL. The error names
// the endpoint field but never repeats a password the URL may carry.
func ParseEndpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint: not a valid URL", chorus.ErrInvalid)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: endpoint: must be an http(s) URL, got %q", chorus.ErrInvalid, u.Redacted())
	}
	return u, nil
}
