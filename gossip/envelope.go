package gossip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"

	"chorus"
)

// Limits applied by Decode (SPEC section 5).
const (
	// Version is the envelope version this package speaks.
	Version = 1
	// MaxMessageBytes bounds an encoded message.
	MaxMessageBytes = 1 << 20
	// MaxAge is how old a message may be when it arrives: longer than any
	// sane propagation delay, short enough to keep replays useless.
	MaxAge = 5 * time.Minute
	// MaxClockSkew is how far in the future a timestamp may be, to allow
	// for clocks that are not quite in step.
	MaxClockSkew = 30 * time.Second
	// MaxHops bounds how often a message may be forwarded.
	MaxHops = 3
)

// Priority is how urgent a message is.
type Priority string

// Priorities; an envelope may also leave its priority empty.
const (
	PriorityLow    Priority = "low"
	PriorityMedium Priority = "medium"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Valid reports whether p is one of the four priorities.
func (p Priority) Valid() bool {
	switch p {
	case PriorityLow, PriorityMedium, PriorityHigh, PriorityUrgent:
		return true
	}
	return false
}

// Envelope wraps every message.
type Envelope struct {
	Type    MessageType `json:"type"`
	Version int         `json:"version"`
	// From is the sender's peer id.
	From     string `json:"from"`
	FromRole string `json:"from_role,omitempty"`
	// ToRoles, when set, addresses the message to agents of these roles.
	ToRoles           []string `json:"to_roles,omitempty"`
	RequiredExpertise []string `json:"required_expertise,omitempty"`
	ProjectID         string   `json:"project_id,omitempty"`
	Priority          Priority `json:"priority,omitempty"`
	// ThreadID groups the messages of one conversation.
	ThreadID  string    `json:"thread_id,omitempty"`
	Timestamp time.Time `json:"timestamp"`
	// HopCount is how often the message has been forwarded.
	HopCount int `json:"hop_count"`
	// Data is the typed body, a JSON object; see DecodeData. In an
	// envelope handed to a Subscribe handler it shares the received
	// message's bytes: read it, never write to it.
	Data json.RawMessage `json:"data,omitempty"`

	// body is Data already decoded and checked by the topic validator, so
	// DecodeData in a handler does not parse it again. Decode leaves it nil.
	body Body
}

// RejectReason says why a message was refused; it labels the rejection
// counter.
type RejectReason string

// Rejection reasons.
const (
	RejectMalformed   RejectReason = "malformed"
	RejectOversized   RejectReason = "oversized"
	RejectUnknownType RejectReason = "unknown_type"
	RejectStale       RejectReason = "stale"
	RejectOverHop     RejectReason = "over_hop"
)

// RejectError is returned by Decode, Encode and DecodeData for a message
// that must not reach application code. It wraps chorus.ErrInvalid.
type RejectError struct {
	Reason RejectReason
	// Detail names the field and what is wrong with it.
	Detail string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("gossip: message rejected (%s): %s", e.Reason, e.Detail)
}

// Unwrap makes every RejectError match chorus.ErrInvalid.
func (e *RejectError) Unwrap() error { return chorus.ErrInvalid }

func reject(reason RejectReason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Decode parses and checks a received message as of now. It returns a
// *RejectError for anything the package doc says is refused.
func Decode(b []byte, now time.Time) (Envelope, error) { return decode(b, now, false) }

// decode is Decode; with alias, the envelope's Data shares b (the
// validator's case: a received message's bytes are never written to).
func decode(b []byte, now time.Time, alias bool) (Envelope, error) {
	if len(b) > MaxMessageBytes {
		return Envelope{}, reject(RejectOversized, "%d bytes exceeds the limit of %d", len(b), MaxMessageBytes)
	}
	if !utf8.Valid(b) {
		return Envelope{}, reject(RejectMalformed, "not valid UTF-8")
	}
	var e Envelope
	if err := strictDecode(b, &e, alias); err != nil {
		return Envelope{}, reject(RejectMalformed, "%v", err)
	}
	if err := normalize(&e); err != nil {
		return Envelope{}, err
	}
	if err := check(e); err != nil {
		return Envelope{}, err
	}
	switch age := now.Sub(e.Timestamp); {
	case age > MaxAge:
		return Envelope{}, reject(RejectStale, "timestamp %s is %s old, limit %s", e.Timestamp.Format(time.RFC3339), age, MaxAge)
	case -age > MaxClockSkew:
		return Envelope{}, reject(RejectStale, "timestamp %s is %s in the future, limit %s", e.Timestamp.Format(time.RFC3339), -age, MaxClockSkew)
	}
	return e, nil
}

// Encode checks e and returns its wire form. A zero Version is set to
// Version; the timestamp is not checked for freshness.
func Encode(e Envelope) ([]byte, error) {
	if e.Version == 0 {
		e.Version = Version
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return nil, reject(RejectMalformed, "data: not valid JSON")
	}
	if err := check(e); err != nil {
		return nil, err
	}
	if err := checkData(e.Data); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep data byte-identical across a round trip
	if err := enc.Encode(e); err != nil {
		return nil, reject(RejectMalformed, "%v", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxMessageBytes {
		return nil, reject(RejectOversized, "%d bytes exceeds the limit of %d", len(b), MaxMessageBytes)
	}
	return b, nil
}

// normalize puts a decoded envelope in the one form Encode reproduces.
func normalize(e *Envelope) error {
	e.Timestamp = e.Timestamp.UTC()
	if len(e.ToRoles) == 0 {
		e.ToRoles = nil
	}
	if len(e.RequiredExpertise) == 0 {
		e.RequiredExpertise = nil
	}
	if string(e.Data) == "null" {
		e.Data = nil
	}
	if err := checkData(e.Data); err != nil {
		return err
	}
	if len(e.Data) > 0 && !compact(e.Data) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Data); err != nil {
			return reject(RejectMalformed, "data: %v", err)
		}
		e.Data = buf.Bytes()
	}
	return nil
}

func checkData(d json.RawMessage) error {
	if len(d) == 0 {
		return nil
	}
	if t := bytes.TrimLeft(d, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return reject(RejectMalformed, "data: must be a JSON object")
	}
	return nil
}

// check applies the content rules shared by Decode and Encode.
func check(e Envelope) error {
	switch {
	case e.Version != Version:
		return reject(RejectMalformed, "version: %d is not supported, want %d", e.Version, Version)
	case e.Type == "":
		return reject(RejectMalformed, "type: missing")
	case !e.Type.Valid():
		return reject(RejectUnknownType, "type: %.64q is not a known message type", e.Type)
	case e.From == "":
		return reject(RejectMalformed, "from: missing")
	case e.Priority != "" && !e.Priority.Valid():
		return reject(RejectMalformed, "priority: %.64q must be low, medium, high or urgent", e.Priority)
	case e.HopCount < 0:
		return reject(RejectMalformed, "hop_count: %d is negative", e.HopCount)
	case e.HopCount > MaxHops:
		return reject(RejectOverHop, "hop_count: %d exceeds the limit of %d", e.HopCount, MaxHops)
	case e.Timestamp.IsZero():
		return reject(RejectMalformed, "timestamp: missing")
	}
	return nil
}

// DecodeData decodes e.Data into v strictly (unknown fields are refused)
// and, when v has a Validate method, runs it. Failures are *RejectError
// with reason malformed.
func (e Envelope) DecodeData(v any) error {
	if e.body != nil {
		// Decoded by the validator: copy it when v is the same body type.
		// Slices in the copy are shared with other handlers of the
		// message; handlers treat bodies as read-only.
		if dst := reflect.ValueOf(v); dst.Kind() == reflect.Pointer && !dst.IsNil() && dst.Type() == reflect.TypeOf(e.body) {
			dst.Elem().Set(reflect.ValueOf(e.body).Elem())
			return nil
		}
	}
	if len(e.Data) == 0 {
		return reject(RejectMalformed, "data: missing for %s", e.Type)
	}
	if err := strictUnmarshal(e.Data, v); err != nil {
		return reject(RejectMalformed, "data of %s: %v", e.Type, err)
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return reject(RejectMalformed, "data of %s: %v", e.Type, err)
		}
	}
	return nil
}
