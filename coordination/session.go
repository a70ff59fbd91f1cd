package coordination

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"chorus"
)

// Kind is what a coordination session is about.
type Kind string

// Session kinds (SPEC section 7).
const (
	KindDependency Kind = "dependency"
	KindConflict   Kind = "conflict"
	KindPlanning   Kind = "planning"
)

// Valid reports whether k is one of the three kinds.
func (k Kind) Valid() bool {
	return k == KindDependency || k == KindConflict || k == KindPlanning
}

// MessageKind is what a session message does.
type MessageKind string

// Message kinds a session counts.
const (
	Proposal  MessageKind = "proposal"
	Agreement MessageKind = "agreement"
	Objection MessageKind = "objection"
	Note      MessageKind = "note"
)

// Valid reports whether k is one of the four kinds.
func (k MessageKind) Valid() bool {
	return k == Proposal || k == Agreement || k == Objection || k == Note
}

// State is where a session is.
type State string

// Session states; Resolved and Escalated are final.
const (
	StateOpen      State = "open"
	StateResolved  State = "resolved"
	StateEscalated State = "escalated"
)

// Sentinel errors of Table; callers branch on them.
var (
	// ErrUnknownSession: no session has that id (never opened here, or
	// already cleaned up).
	ErrUnknownSession = errors.New("unknown coordination session")
	// ErrSessionClosed: the session is resolved or escalated.
	ErrSessionClosed = errors.New("coordination session closed")
	// ErrNotParticipant: the sender is not one of the session's
	// participants.
	ErrNotParticipant = errors.New("not a participant of the coordination session")
)

// Limits are the rules of a session (SPEC section 7).
type Limits struct {
	// MaxParticipants bounds the participants of one session.
	MaxParticipants int
	// MaxDuration is how long a session may stay open: at OpenedAt +
	// MaxDuration it is escalated.
	MaxDuration time.Duration
	// MaxMessages is the message count at which a session without
	// consensus is escalated.
	MaxMessages int
	// ConsensusWindow is how many of the latest messages are looked at
	// for agreements.
	ConsensusWindow int
}

// DefaultLimits returns the SPEC's numbers.
func DefaultLimits() Limits {
	return Limits{
		// A discussion among more agents than this does not converge; it
		// needs a human anyway.
		MaxParticipants: 5,
		// Long enough for agents that answer within seconds or a model
		// that takes a minute; short enough that a stuck session reaches
		// a human the same half hour.
		MaxDuration: 30 * time.Minute,
		// Ten messages without consensus means the agents are going round
		// in circles.
		MaxMessages: 10,
		// Consensus must be recent: agreements among the last 3 messages.
		ConsensusWindow: 3,
	}
}

// Validate names the first bad limit.
func (l Limits) Validate() error {
	switch {
	case l.MaxParticipants < 1:
		return fmt.Errorf("%w: MaxParticipants: %d must be at least 1", chorus.ErrInvalid, l.MaxParticipants)
	case l.MaxDuration <= 0:
		return fmt.Errorf("%w: MaxDuration: %s must be positive", chorus.ErrInvalid, l.MaxDuration)
	case l.MaxMessages < 1:
		return fmt.Errorf("%w: MaxMessages: %d must be at least 1", chorus.ErrInvalid, l.MaxMessages)
	case l.ConsensusWindow < 1:
		return fmt.Errorf("%w: ConsensusWindow: %d must be at least 1", chorus.ErrInvalid, l.ConsensusWindow)
	}
	return nil
}

// Message is one message of a session.
type Message struct {
	// ID names the message so a re-sent copy is not counted twice; empty
	// means the message is never re-sent and always counts.
	ID   string      `json:"id,omitempty"`
	From string      `json:"from"`
	Kind MessageKind `json:"kind"`
	Text string      `json:"text,omitempty"`
	At   time.Time   `json:"at"`
}

// OpenRequest is what a session starts from.
type OpenRequest struct {
	ID   string
	Kind Kind
	// TaskKeys are the tasks the session is about.
	TaskKeys []string
	// Participants are agent ids; the owner should be one of them.
	Participants []string
	// Owner is the agent that opened the session and decides its outcome.
	Owner  string
	Reason string
}

// Session is one coordination session. Values returned by Table are copies.
type Session struct {
	ID           string    `json:"session_id"`
	Kind         Kind      `json:"kind"`
	TaskKeys     []string  `json:"task_keys"`
	Participants []string  `json:"participants"`
	Owner        string    `json:"owner,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	State        State     `json:"state"`
	OpenedAt     time.Time `json:"opened_at"`
	LastActivity time.Time `json:"last_activity"`
	ClosedAt     time.Time `json:"closed_at,omitzero"`
	// Outcome says why the session closed.
	Outcome string `json:"outcome,omitempty"`
	// Plan is the text of the latest proposal.
	Plan string `json:"plan,omitempty"`
	// Agreements is the number of distinct participants agreeing within
	// the consensus window, as of the latest message.
	Agreements int       `json:"agreements"`
	Messages   []Message `json:"messages"`
}

// Deadline is when the open session is escalated for its age.
func (s Session) Deadline(l Limits) time.Time { return s.OpenedAt.Add(l.MaxDuration) }

func (s Session) clone() Session {
	s.TaskKeys = slices.Clone(s.TaskKeys)
	s.Participants = slices.Clone(s.Participants)
	s.Messages = slices.Clone(s.Messages)
	return s
}

// Change is the effect of one call on one session.
type Change struct {
	// Session is the session after the call.
	Session Session
	// Accepted: the message was added.
	Accepted bool
	// Duplicate: the message's id was already in the session; nothing
	// changed.
	Duplicate bool
	// Closed: this call resolved or escalated the session.
	Closed bool
}

// Table holds sessions and applies the rules. It is a pure state machine:
// the clock comes in as arguments, it does no I/O, and it is not safe for
// concurrent use (its owner serialises calls).
type Table struct {
	limits   Limits
	sessions map[string]*Session
}

// NewTable returns an empty table applying l.
func NewTable(l Limits) (*Table, error) {
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("coordination limits: %w", err)
	}
	return &Table{limits: l, sessions: make(map[string]*Session)}, nil
}

// Limits returns the table's rules.
func (t *Table) Limits() Limits { return t.limits }

// Open starts a session at now. It refuses a request that has no id, an
// unknown kind, no task key, no participant, a duplicate or empty
// participant, or more than MaxParticipants, naming the field; and an id
// already in the table.
func (t *Table) Open(r OpenRequest, now time.Time) (Session, error) {
	bad := func(field, format string, args ...any) (Session, error) {
		return Session{}, fmt.Errorf("open session %q: %w: %s: %s", r.ID, chorus.ErrInvalid, field, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.TrimSpace(r.ID) == "":
		return bad("session_id", "missing")
	case !r.Kind.Valid():
		return bad("kind", "%q must be dependency, conflict or planning", r.Kind)
	case len(r.TaskKeys) == 0:
		return bad("task_keys", "missing")
	case len(r.Participants) == 0:
		return bad("participants", "at least one is needed")
	case len(r.Participants) > t.limits.MaxParticipants:
		return bad("participants", "%d exceed the limit of %d", len(r.Participants), t.limits.MaxParticipants)
	}
	for i, p := range r.Participants {
		if strings.TrimSpace(p) == "" {
			return bad(fmt.Sprintf("participants[%d]", i), "empty")
		}
		if slices.Index(r.Participants, p) < i {
			return bad(fmt.Sprintf("participants[%d]", i), "%q is listed twice", p)
		}
	}
	if _, ok := t.sessions[r.ID]; ok {
		return bad("session_id", "already open")
	}
	s := &Session{
		ID: r.ID, Kind: r.Kind, TaskKeys: slices.Clone(r.TaskKeys), Participants: slices.Clone(r.Participants),
		Owner: r.Owner, Reason: r.Reason, State: StateOpen, OpenedAt: now, LastActivity: now,
	}
	t.sessions[r.ID] = s
	return s.clone(), nil
}

// Add adds a message at now and applies the rules, in this order:
//
//  1. a closed session refuses it (ErrSessionClosed);
//  2. a session at or past its deadline (OpenedAt + MaxDuration) is
//     escalated and the message is not added;
//  3. a message of unknown kind, or from someone who is not a participant
//     (ErrNotParticipant), is refused; one whose ID is already in the
//     session is a duplicate and changes nothing;
//  4. the message is added; a proposal becomes the session's Plan;
//  5. consensus: when the distinct participants that sent an agreement
//     among the last ConsensusWindow messages number at least
//     len(Participants) - 1, the session is resolved (so consensus on the
//     MaxMessages-th message wins over the count);
//  6. otherwise, at MaxMessages messages the session is escalated.
func (t *Table) Add(id string, m Message, now time.Time) (Change, error) {
	s, ok := t.sessions[id]
	if !ok {
		return Change{}, fmt.Errorf("add to session %q: %w", id, ErrUnknownSession)
	}
	if s.State != StateOpen {
		return Change{Session: s.clone()}, fmt.Errorf("add to session %q: %w (%s)", id, ErrSessionClosed, s.State)
	}
	if !now.Before(s.Deadline(t.limits)) {
		t.escalateForAge(s, now)
		return Change{Session: s.clone(), Closed: true}, nil
	}
	if !m.Kind.Valid() {
		return Change{Session: s.clone()}, fmt.Errorf("add to session %q: %w: kind: %q must be proposal, agreement, objection or note", id, chorus.ErrInvalid, m.Kind)
	}
	if !slices.Contains(s.Participants, m.From) {
		return Change{Session: s.clone()}, fmt.Errorf("add to session %q: %q: %w", id, m.From, ErrNotParticipant)
	}
	if m.ID != "" && slices.ContainsFunc(s.Messages, func(o Message) bool { return o.ID == m.ID }) {
		return Change{Session: s.clone(), Duplicate: true}, nil
	}
	if m.At.IsZero() {
		m.At = now
	}
	s.Messages = append(s.Messages, m)
	s.LastActivity = now
	if m.Kind == Proposal {
		s.Plan = m.Text
	}
	s.Agreements = agreements(s.Messages, t.limits.ConsensusWindow)
	closed := false
	switch {
	case s.Agreements >= len(s.Participants)-1:
		s.State, s.ClosedAt, closed = StateResolved, now, true
		s.Outcome = fmt.Sprintf("consensus: %d of %d participants agreed within the last %d messages",
			s.Agreements, len(s.Participants), t.limits.ConsensusWindow)
	case len(s.Messages) >= t.limits.MaxMessages:
		s.State, s.ClosedAt, closed = StateEscalated, now, true
		s.Outcome = fmt.Sprintf("no consensus after %d messages", len(s.Messages))
	}
	return Change{Session: s.clone(), Accepted: true, Closed: closed}, nil
}

// agreements counts the distinct senders of agreements among the last
// window messages.
func agreements(ms []Message, window int) int {
	if len(ms) > window {
		ms = ms[len(ms)-window:]
	}
	var from []string
	for _, m := range ms {
		if m.Kind == Agreement && !slices.Contains(from, m.From) {
			from = append(from, m.From)
		}
	}
	return len(from)
}

func (t *Table) escalateForAge(s *Session, now time.Time) {
	s.State, s.ClosedAt = StateEscalated, now
	s.Outcome = fmt.Sprintf("no consensus within %s", t.limits.MaxDuration)
}

// Tick escalates every open session at or past its deadline and returns
// them, sorted by id.
func (t *Table) Tick(now time.Time) []Change {
	var out []Change
	for _, s := range t.sessions {
		if s.State == StateOpen && !now.Before(s.Deadline(t.limits)) {
			t.escalateForAge(s, now)
			out = append(out, Change{Session: s.clone(), Closed: true})
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Session.ID, b.Session.ID) })
	return out
}

// Close ends an open session with the outcome decided elsewhere (the
// owner's coordination_complete, seen by a node that mirrors the session).
// It reports whether the session was open.
func (t *Table) Close(id string, state State, outcome string, now time.Time) bool {
	s, ok := t.sessions[id]
	if !ok || s.State != StateOpen || state == StateOpen {
		return false
	}
	s.State, s.ClosedAt, s.Outcome = state, now, outcome
	return true
}

// Cleanup is the periodic sweep of idle sessions: it first escalates open
// sessions past their deadline (as Tick, returned), then forgets closed
// sessions that closed at least retention before now, returning their
// ids sorted. Open sessions are never forgotten.
func (t *Table) Cleanup(now time.Time, retention time.Duration) (escalated []Change, removed []string) {
	escalated = t.Tick(now)
	for id, s := range t.sessions {
		if s.State != StateOpen && !now.Before(s.ClosedAt.Add(retention)) {
			delete(t.sessions, id)
			removed = append(removed, id)
		}
	}
	slices.Sort(removed)
	return escalated, removed
}

// Get returns a copy of the session with id.
func (t *Table) Get(id string) (Session, bool) {
	s, ok := t.sessions[id]
	if !ok {
		return Session{}, false
	}
	return s.clone(), true
}

// List returns copies of all sessions, oldest first (by OpenedAt, then
// id).
func (t *Table) List() []Session {
	out := make([]Session, 0, len(t.sessions))
	for _, s := range t.sessions {
		out = append(out, s.clone())
	}
	slices.SortFunc(out, func(a, b Session) int {
		if c := a.OpenedAt.Compare(b.OpenedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}
