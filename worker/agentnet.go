package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"chorus"
	"chorus/activities"
	"chorus/gossip"
	"chorus/selection"
)

// This file is the mesh's side of the task workflow: the candidates the
// selection step scores, the claim announcement and the HMMM room of each
// task, and progress messages.

// roomIdle is how long a room may be silent before this node leaves it.
const roomIdle = time.Hour

// Candidates implements activities.PeerSource: this agent (when the node
// runs one) first, then the peers the registry knows.
func (m *mesh) Candidates() []selection.Candidate {
	var out []selection.Candidate
	if m.agent != nil {
		out = append(out, selection.Candidate{AgentID: m.agent.ID, PeerID: m.node.ID(), Role: m.agent.Role, Expertise: m.agent.Expertise,
			CurrentTasks: int(m.running.n.Load()), MaxTasks: m.agent.MaxTasks, Performance: m.running.performance()})
	}
	for _, p := range m.registry.Snapshot() {
		if p.MaxTasks < 1 || p.Role == "" {
			continue // heard only its availability so far: no role to score
		}
		out = append(out, selection.Candidate{AgentID: p.AgentID, PeerID: p.PeerID, Role: p.Role, Expertise: p.Expertise,
			CurrentTasks: p.CurrentTasks, MaxTasks: p.MaxTasks, Performance: p.Performance})
	}
	return out
}

// bestScore is the score of the best agent this node knows for a task,
// qualified or not (0 when it knows none): intake's ordering.
func (m *mesh) bestScore(t chorus.Task) float64 {
	_, scores, _ := selection.Best(selection.Requirement{Role: t.Role, Expertise: t.Expertise}, m.Candidates(), nil)
	if len(scores) == 0 {
		return 0
	}
	return scores[0].Score
}

// AnnounceClaim implements activities.Announcer: task_progress (claimed)
// with the claim time and the estimated completion, then the seed of the
// task's HMMM room, which this node joins for the task's life. Both are
// best effort: a failure is logged.
func (m *mesh) AnnounceClaim(ctx context.Context, in activities.AcceptInput, estimate time.Time) error {
	claimed := in.Claimed
	if claimed.IsZero() {
		claimed = time.Now()
	}
	prog := gossip.TaskProgress{TaskKey: in.Key, AgentID: in.AgentID, Status: chorus.StateClaimed, Fence: in.Fence, At: claimed.UTC(), EstimatedCompletion: estimate.UTC()}
	if err := m.coord.PublishBody(ctx, prog, gossip.Envelope{ThreadID: in.Key}); err != nil {
		m.logger.Warn("publishing the claim failed", "task", in.Key, "error", err)
	}
	text := fmt.Sprintf("claimed by %s (fence %d): %s", in.AgentID, in.Fence, in.Title)
	if err := m.post(ctx, activities.RoomPost{Key: in.Key, Issue: in.Number, AgentID: in.AgentID, Kind: "seed", Text: text}, 0); err != nil {
		m.logger.Warn("seeding the task's room failed", "task", in.Key, "error", err)
		return err
	}
	m.record(ctx, "collaboration", networkEvent{PeerID: m.node.ID(), AgentID: in.AgentID, Task: in.Key, Room: gossip.IssueRoom(in.Number), Detail: "room seeded"})
	return nil
}

// PostToRoom implements activities.RoomPoster. It waits (briefly) for
// someone in the room, since a post to an empty mesh reaches nobody; with
// nobody there it posts anyway, and the message stays in this node's room.
func (m *mesh) PostToRoom(ctx context.Context, p activities.RoomPost) error {
	if err := m.post(ctx, p, 10*time.Second); err != nil {
		return err
	}
	if p.Kind == "offer" {
		m.record(ctx, "task_help_received", networkEvent{PeerID: m.node.ID(), AgentID: p.AgentID, Task: p.Key, Room: gossip.IssueRoom(p.Issue), Detail: p.Text})
	}
	return nil
}

func (m *mesh) post(ctx context.Context, p activities.RoomPost, wait time.Duration) error {
	room, err := m.node.JoinRoom(p.Issue)
	if err != nil {
		return err
	}
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		if err := room.WaitPeers(wctx, 1); err != nil {
			m.logger.Info("nobody in the room yet; posting anyway", "room", gossip.IssueRoom(p.Issue))
		}
		cancel()
	}
	return room.Post(ctx, p.Key, gossip.MetaDiscussion{TaskKey: p.Key, AgentID: p.AgentID, Kind: p.Kind, Text: p.Text})
}

// PublishProgress implements activities.ProgressPublisher: task_progress,
// and task_complete when the task ended.
func (m *mesh) PublishProgress(ctx context.Context, ev activities.ProgressEvent) {
	now := time.Now().UTC()
	agent := ev.AgentID
	if agent == "" {
		agent = "unknown"
	}
	if err := m.coord.PublishBody(ctx, gossip.TaskProgress{TaskKey: ev.Key, AgentID: agent, Status: ev.Status, Fence: ev.Fence, At: now},
		gossip.Envelope{ThreadID: ev.Key}); err != nil {
		m.logger.Debug("publishing progress failed", "task", ev.Key, "error", err)
	}
	if !ev.Status.Terminal() {
		return
	}
	done := gossip.TaskComplete{TaskKey: ev.Key, AgentID: agent, Fence: ev.Fence, CompletedAt: now, Message: ev.Reason}
	if ev.Result != nil {
		done.Success, done.ExecutionType, done.DurationMS, done.Message = ev.Result.Success, ev.Result.ExecutionType, ev.Result.DurationMS, ev.Result.Message
	}
	if ph := m.phases.Load(); ph != nil {
		ph.completed(done) // a node does not hear its own messages
	}
	if err := m.coord.PublishBody(ctx, done, gossip.Envelope{ThreadID: ev.Key}); err != nil {
		m.logger.Debug("publishing completion failed", "task", ev.Key, "error", err)
	}
}

// leaveIdleRooms leaves the rooms silent for roomIdle.
func (m *mesh) leaveIdleRooms() {
	for _, issue := range m.node.Rooms() {
		if r, ok := m.node.Room(issue); ok && time.Since(r.LastActivity()) > roomIdle {
			if err := m.node.LeaveRoom(issue); err != nil {
				m.logger.Warn("leaving an idle room failed", "room", gossip.IssueRoom(issue), "error", err)
			}
		}
	}
}

// roomReply is GET /api/v1/rooms/{issue}.
type roomReply struct {
	Topic    string               `json:"topic"`
	Issue    int                  `json:"issue"`
	Messages []gossip.RoomMessage `json:"messages"`
}

// serveRoom answers GET /api/v1/rooms/{issue}: the messages this node kept
// from the issue's room.
func (m *mesh) serveRoom(w http.ResponseWriter, r *http.Request) {
	issue, err := strconv.Atoi(r.PathValue("issue"))
	if err != nil || issue < 1 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("issue: %q must be a positive number", r.PathValue("issue"))})
		return
	}
	room, ok := m.node.Room(issue)
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("room %s: not joined by this node", gossip.IssueRoom(issue))})
		return
	}
	writeJSON(w, http.StatusOK, roomReply{Topic: gossip.IssueRoom(issue), Issue: issue, Messages: room.Messages()})
}

// apiError is the body of a failed ops API request.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
