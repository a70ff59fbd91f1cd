package activities

import (
	"context"
	"fmt"
)

// HelpRequest asks peers for help with a task (SPEC section 3, step 3).
type HelpRequest struct {
	Key       string   `json:"task_key"`
	AgentID   string   `json:"agent_id"`
	Roles     []string `json:"roles"`
	Expertise []string `json:"required_expertise,omitempty"`
	Priority  int      `json:"priority"`
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

// Collaborator is the collaboration step's activity.
type Collaborator struct {
	Publisher HelpPublisher
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
