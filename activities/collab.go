package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"chorus/selection"
)

// HelpRequest asks peers for help with a task (SPEC section 3, step 3).
type HelpRequest struct {
	Key       string   `json:"task_key"`
	AgentID   string   `json:"agent_id"`
	Roles     []string `json:"roles"`
	Expertise []string `json:"required_expertise,omitempty"`
	Priority  int      `json:"priority"`
	// Issue is the task's number: its HMMM room, which helpers join.
	Issue int `json:"issue,omitempty"`
}

// HelpOffer is a peer's answer; it reaches the task's workflow as the
// help_offer signal.
type HelpOffer struct {
	AgentID   string   `json:"agent_id"`
	PeerID    string   `json:"peer_id,omitempty"`
	Role      string   `json:"role"`
	Expertise []string `json:"expertise,omitempty"`
}

// HelpPublisher sends a help request to the peers of the required roles.
type HelpPublisher interface {
	PublishHelpRequest(ctx context.Context, req HelpRequest) error
}

// Collaborator holds the collaboration step's activities and the
// escalation of tasks no agent takes.
type Collaborator struct {
	Publisher   HelpPublisher
	Rooms       RoomPoster
	Escalations Escalator
	// Metrics, when set, counts the requests.
	Metrics *Metrics
}

// RequestHelp publishes the request. Offers come back as signals, not as
// its result.
func (c *Collaborator) RequestHelp(ctx context.Context, req HelpRequest) error {
	if c.Publisher == nil {
		return fmt.Errorf("request help for %s: this worker has no gossip node", req.Key)
	}
	err := c.Publisher.PublishHelpRequest(ctx, req)
	c.Metrics.helpRequested(err)
	if err != nil {
		return fmt.Errorf("request help for %s: %w", req.Key, err)
	}
	return nil
}

// RoomPost is one message for a task's HMMM room (gossip.IssueRoom of the
// task's number).
type RoomPost struct {
	Key     string `json:"key"`
	Issue   int    `json:"issue"`
	AgentID string `json:"agent_id"`
	// Kind is seed, offer, note, ...; see gossip.MetaDiscussion.
	Kind string `json:"kind"`
	Text string `json:"text"`
}

// RoomPoster posts to a task's HMMM room.
type RoomPoster interface {
	PostToRoom(ctx context.Context, p RoomPost) error
}

// ReflectInput reflects one help offer into the task's room.
type ReflectInput struct {
	Key     string    `json:"key"`
	Issue   int       `json:"issue"`
	AgentID string    `json:"agent_id"`
	Offer   HelpOffer `json:"offer"`
}

// ReflectOffer posts a help offer the workflow received into the task's
// HMMM room, so the helpers (who joined the room when offering) and anyone
// following the issue see who is involved.
func (c *Collaborator) ReflectOffer(ctx context.Context, in ReflectInput) error {
	if c.Rooms == nil {
		return fmt.Errorf("reflect offer for %s: this worker has no gossip node", in.Key)
	}
	text := fmt.Sprintf("%s (role %s", in.Offer.AgentID, in.Offer.Role)
	if len(in.Offer.Expertise) > 0 {
		text += ", expertise " + strings.Join(in.Offer.Expertise, ", ")
	}
	text += ") offers help"
	if err := c.Rooms.PostToRoom(ctx, RoomPost{Key: in.Key, Issue: in.Issue, AgentID: in.AgentID, Kind: "offer", Text: text}); err != nil {
		return fmt.Errorf("reflect offer for %s: %w", in.Key, err)
	}
	return nil
}

// EscalateInput reports a task no agent qualified for within the bound.
type EscalateInput struct {
	Key    string                `json:"key"`
	Reason string                `json:"reason"`
	Waited time.Duration         `json:"waited"`
	Scores []selection.Breakdown `json:"scores,omitempty"`
}

// Escalator hands a problem to humans: an escalation_trigger on the HMMM
// topic and an escalation entry in the audit log.
type Escalator interface {
	Escalate(ctx context.Context, in EscalateInput) error
}

// Escalate reports the task as needing a human.
func (c *Collaborator) Escalate(ctx context.Context, in EscalateInput) error {
	if c.Escalations == nil {
		return fmt.Errorf("escalate %s: this worker has no gossip node", in.Key)
	}
	if err := c.Escalations.Escalate(ctx, in); err != nil {
		return fmt.Errorf("escalate %s: %w", in.Key, err)
	}
	return nil
}
