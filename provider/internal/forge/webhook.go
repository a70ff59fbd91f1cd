package forge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"

	"chorus"
	"chorus/secret"
)

// HookEvent is a decoded webhook delivery about an issue.
type HookEvent struct {
	// Action is the forge's action ("opened", "labeled", ...).
	Action string
	// Repository is the "owner/name" the issue belongs to.
	Repository string
	Issue      Issue
}

// Hook is the webhook handler both forges share: it reads the body within
// MaxBody, checks the HMAC-SHA256 signature in constant time, decodes the
// event and starts a task for an issue that became startable. It is safe
// for concurrent use.
type Hook struct {
	Provider string
	Secret   secret.Secret
	MaxBody  int64
	// Signature returns the hex HMAC-SHA256 the delivery carries ("" when
	// absent).
	Signature func(h http.Header) string
	// Event returns the event name of the delivery.
	Event func(h http.Header) string
	// Ping names the event that only checks the hook ("" for none).
	Ping string
	// Decode decodes an issue event; known is false for an event (or an
	// action) the hook ignores.
	Decode func(event string, body []byte) (ev HookEvent, known bool, err error)
	// Triggers are the actions that may make an issue startable.
	Triggers []string
	Tracker  *Tracker
	Start    func(context.Context, chorus.Task) error
	Logger   *slog.Logger
}

// HookReply is the JSON answer to a delivery that started a task.
type HookReply struct {
	Started string `json:"started,omitempty"`
	Ignored string `json:"ignored,omitempty"`
}

func (h *Hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	if !ValidSignature(h.Secret, body, h.Signature(r.Header)) {
		h.Logger.Warn("webhook signature rejected", "provider", h.Provider, "remote", r.RemoteAddr)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	event := h.Event(r.Header)
	if h.Ping != "" && event == h.Ping {
		writeReply(w, http.StatusOK, HookReply{Ignored: "pong"})
		return
	}
	ev, known, err := h.Decode(event, body)
	if err != nil {
		http.Error(w, "malformed payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !known || !slices.Contains(h.Triggers, ev.Action) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	repo, ok := h.Tracker.Configured(ev.Repository)
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	task, ok := h.Tracker.Startable(repo, ev.Issue)
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := h.Start(r.Context(), task); err != nil {
		h.Logger.Warn("webhook could not start a task", "provider", h.Provider, "key", task.Key().String(), "error", err)
		http.Error(w, "could not start the task; polling will retry", http.StatusInternalServerError)
		return
	}
	h.Logger.Info("webhook started a task", "provider", h.Provider, "key", task.Key().String(), "action", ev.Action)
	writeReply(w, http.StatusAccepted, HookReply{Started: task.Key().String()})
}

func writeReply(w http.ResponseWriter, status int, v HookReply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ValidSignature reports whether sig is the hex HMAC-SHA256 of body under
// key, comparing in constant time. An unset key or an empty or
// malformed signature is never valid.
func ValidSignature(key secret.Secret, body []byte, sig string) bool {
	if !key.IsSet() || sig == "" {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, Sign(key, body))
}

// Sign returns the HMAC-SHA256 of body under key.
func Sign(key secret.Secret, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(key.Reveal()))
	m.Write(body)
	return m.Sum(nil)
}
