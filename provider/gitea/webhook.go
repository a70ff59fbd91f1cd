package gitea

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"chorus"
	"chorus/provider/internal/forge"
)

// Webhook headers and events, as Gitea sends them (services/webhook in
// Gitea's source: X-Gitea-Event is the event group, "issues" for label
// changes too, and X-Gitea-Event-Type the precise type).
const (
	HeaderEvent     = "X-Gitea-Event"
	HeaderEventType = "X-Gitea-Event-Type"
	HeaderSignature = "X-Gitea-Signature"
	HeaderDelivery  = "X-Gitea-Delivery"
	EventIssues     = "issues"
)

// issuePayload is the payload of an "issues" delivery, the fields chorus
// reads.
type issuePayload struct {
	Action     string `json:"action"`
	Number     int    `json:"number"`
	Issue      issue  `json:"issue"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// Webhook returns the handler for POST /webhooks/gitea. It checks
// X-Gitea-Signature (hex HMAC-SHA256 of the body under the webhook secret,
// in constant time; bad or missing: 401), and on an "issues" delivery
// (opened, reopened, label_updated) of a configured repository
// whose issue is startable (open, labelled as a task, not in progress or
// done) calls start and answers 202; any other delivery gets 204. start is
// expected to be idempotent per task (intake.Starter is: the workflow ID
// is the task key), since Gitea may deliver an event more than once and
// the Poller finds the same issue again.
func (t *Tracker) Webhook(start func(context.Context, chorus.Task) error) (http.Handler, error) {
	if !t.webhook.IsSet() {
		return nil, ErrNoWebhookSecret
	}
	if start == nil {
		return nil, fmt.Errorf("gitea: webhook: %w: start: must not be nil", chorus.ErrInvalid)
	}
	return &forge.Hook{
		Provider:  ProviderName,
		Secret:    t.webhook,
		MaxBody:   t.cfg.MaxWebhookBody,
		Signature: func(h http.Header) string { return strings.TrimSpace(h.Get(HeaderSignature)) },
		Event:     func(h http.Header) string { return h.Get(HeaderEvent) },
		Decode:    decodeEvent,
		Triggers:  []string{"opened", "reopened", "label_updated"},
		Tracker:   t.t,
		Start:     start,
		Logger:    t.cfg.Logger,
	}, nil
}

func decodeEvent(event string, body []byte) (forge.HookEvent, bool, error) {
	if event != EventIssues {
		return forge.HookEvent{}, false, nil
	}
	var ev issuePayload
	if err := json.Unmarshal(body, &ev); err != nil {
		return forge.HookEvent{}, false, err
	}
	if ev.Repository.FullName == "" || ev.Issue.Number <= 0 {
		return forge.HookEvent{}, false, fmt.Errorf("issues event without repository.full_name or issue.number")
	}
	return forge.HookEvent{Action: ev.Action, Repository: ev.Repository.FullName, Issue: ev.Issue.toForge()}, true, nil
}
