package election

import (
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"chorus/gossip"
)

// Trigger is why an election started.
type Trigger string

// The five triggers of SPEC section 6.
const (
	// TriggerHeartbeatTimeout: a follower heard no heartbeat for Timeout.
	TriggerHeartbeatTimeout Trigger = "heartbeat_timeout"
	// TriggerNoAdmin: a new node heard no admin within StartupWait.
	TriggerNoAdmin Trigger = "no_admin"
	// TriggerSplitBrain: an admin saw another admin of its own term and
	// won the tie; the election gives the survivor a term of its own.
	TriggerSplitBrain Trigger = "split_brain"
	// TriggerQuorum: the admin lost its majority and stepped down; nodes
	// without an admin elect again once a majority is back.
	TriggerQuorum Trigger = "quorum"
	// TriggerManual: an operator asked for an election.
	TriggerManual Trigger = "manual"
)

// Triggers returns the five triggers.
func Triggers() []Trigger {
	return []Trigger{TriggerHeartbeatTimeout, TriggerNoAdmin, TriggerSplitBrain, TriggerQuorum, TriggerManual}
}

// Kind says what a Msg is.
type Kind int

const (
	// KindCandidacy puts Node forward for Term with Score.
	KindCandidacy Kind = iota + 1
	// KindVote is Node's vote for Candidate in Term; a follower also sends
	// one for its admin after each heartbeat, which is how the admin counts
	// its majority.
	KindVote
	// KindWinner announces Node as admin of Term, with Votes.
	KindWinner
	// KindHeartbeat is admin Node's proof of life in Term, number Seq.
	KindHeartbeat

	// KindManual, given to Step, asks for an election now (TriggerManual).
	// It is refused (KindRefused) while an election runs and within the
	// stability window.
	KindManual

	// KindStartLeading: this node became admin of Term.
	KindStartLeading
	// KindStopLeading: this node is no longer admin of Term.
	KindStopLeading
	// KindAdminChanged: the admin this node follows is now Node ("" for
	// none) in Term.
	KindAdminChanged
	// KindElectionStarted: this node started an election for Term because
	// of Trigger.
	KindElectionStarted
	// KindSplitBrain: this node saw Node act as admin of Term while another
	// admin was current.
	KindSplitBrain
	// KindQuorumLost: this node, admin of Term, stepped down because its
	// majority went silent.
	KindQuorumLost
	// KindRefused: a manual trigger was refused, for Reason.
	KindRefused
)

var kindNames = map[Kind]string{
	KindCandidacy: "candidacy", KindVote: "vote", KindWinner: "winner", KindHeartbeat: "heartbeat", KindManual: "manual",
	KindStartLeading: "start_leading", KindStopLeading: "stop_leading", KindAdminChanged: "admin_changed",
	KindElectionStarted: "election_started", KindSplitBrain: "split_brain", KindQuorumLost: "quorum_lost", KindRefused: "refused",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Wire reports whether messages of this kind travel on the election topic.
func (k Kind) Wire() bool { return k >= KindCandidacy && k <= KindHeartbeat }

// Msg is what goes into and comes out of a Machine: the four wire messages
// (each one of the election bodies of package gossip), the manual trigger,
// and events for the driver.
type Msg struct {
	Kind Kind
	// From is the peer that sent a received message (the driver sets it
	// from the signed envelope). Outgoing messages are from this node.
	From string
	Term uint64
	// Node is the candidate of a candidacy, the voter of a vote, the winner
	// of a winner, the admin of a heartbeat, and the admin of
	// KindAdminChanged and KindSplitBrain. A received message whose Node is
	// not its sender is ignored: a peer speaks only for itself.
	Node string
	// Candidate is the node a vote is for.
	Candidate  string
	Score      float64
	Components gossip.ScoreComponents
	Trigger    Trigger
	// Override marks a candidacy every node joins even while it hears a
	// live admin (manual and split-brain elections); others are joined only
	// by nodes without one.
	Override bool
	Votes    int
	Seq      uint64
	Reason   string
}

// Role is a node's part in the election.
type Role string

// Roles.
const (
	RoleFollower  Role = "follower"
	RoleCandidate Role = "candidate"
	RoleAdmin     Role = "admin"
)

// Machine is the election of one node as a pure state machine: Step takes a
// received message (or a manual trigger), Tick one tick of time, and both
// return the messages to send and the events that happened. It has no
// goroutines, clock, randomness or I/O; see the package doc for the rules.
// A Machine is not safe for concurrent use: one goroutine owns it.
type Machine struct {
	id string
	// In ticks.
	heartbeat, timeout, lease, stability, startup, collect, roundTimeout, resend, backoff, memberTTL, jitter int64
	tick                                                                                                     time.Duration

	now   int64
	comps gossip.ScoreComponents
	score float64

	term    uint64 // highest admin term accepted: the fencing token
	maxTerm uint64 // highest term in any message
	joined  uint64 // highest election term taken part in

	admin      string
	adminScore float64
	adminSince int64 // when this node adopted the current admin and term
	lastBeat   int64 // last heartbeat (or winner) of the current admin
	leading    bool
	seq        uint64
	nextBeat   int64
	quick      int   // extra heartbeats, Resend apart, right after a win
	lastAnswer int64 // last heartbeat sent in answer to a stray candidacy
	supporters map[string]int64

	round       *round
	nextRound   int64
	retry       Trigger // trigger of the next election after a failed one
	started     bool    // the start-up wait is over, or an admin or election was heard
	lacking     bool    // no quorum since lackingAt (a lost lease or a failed election)
	lackingAt   int64
	lastTrigger Trigger
	conflictKey string // the last split brain reported, reported once

	members map[string]member
	scores  map[string]scoreEntry
	// peers is how many peers the node is connected to (SetPeers): a floor
	// for the member count, since a node that just started has heard
	// nobody yet.
	peers int
	// pending holds the candidacies of the highest term ignored because
	// the admin still seemed alive; when the admin then times out, this
	// node joins that election, with all those candidates, instead of
	// starting a competing one.
	pending   map[string]Msg
	pendingAt int64
}

// member is a peer heard on the election topic.
type member struct {
	first, last int64 // ticks
}

type scoreEntry struct {
	score float64
	comps gossip.ScoreComponents
	term  uint64
	at    int64
}

// round is one election this node takes part in.
type round struct {
	term       uint64
	trigger    Trigger
	override   bool
	collectEnd int64
	deadline   int64
	nextResend int64
	score      float64 // this node's score, fixed for the round
	cands      map[string]float64
	voted      string
	votes      map[string]bool // voters for this node
}

// New returns the machine of node cfg.ID, a follower that knows no admin.
func New(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Machine{
		id:           cfg.ID,
		tick:         cfg.Tick,
		heartbeat:    cfg.ticks(cfg.Heartbeat),
		timeout:      cfg.ticks(cfg.Timeout),
		lease:        cfg.ticks(cfg.Timeout - cfg.Heartbeat/2),
		stability:    int64(cfg.Stability / cfg.Tick),
		startup:      cfg.ticks(cfg.StartupWait),
		collect:      cfg.ticks(cfg.Collect),
		roundTimeout: cfg.ticks(cfg.RoundTimeout),
		resend:       cfg.ticks(cfg.Resend),
		backoff:      cfg.ticks(cfg.Backoff),
		memberTTL:    cfg.ticks(cfg.MemberTTL),
		term:         cfg.Term,
		maxTerm:      cfg.Term,
		joined:       cfg.Term,
		members:      map[string]member{},
		scores:       map[string]scoreEntry{},
		supporters:   map[string]int64{},
		lastAnswer:   -1 << 62,
	}
	// Jitter from the id, not from a random source: the machine stays
	// deterministic and nodes still spread their retries.
	h := fnv.New64a()
	h.Write([]byte(cfg.ID))
	m.jitter = int64(h.Sum64() % uint64(m.backoff+1))
	return m, nil
}

// SetComponents sets this node's score components; the score of an election
// already running does not change.
func (m *Machine) SetComponents(c gossip.ScoreComponents) {
	m.comps = clampComponents(c)
	m.score = Score(m.comps)
}

// SetPeers tells the machine how many peers the node is connected to. The
// quorum counts at least that many members besides this one, so a node
// that has just (re)started, and heard nobody yet, cannot elect itself
// while it is connected to a cluster.
func (m *Machine) SetPeers(n int) { m.peers = max(0, n) }

// Leading reports whether this node is the admin.
func (m *Machine) Leading() bool { return m.leading }

// Term is the highest admin term this node has accepted.
func (m *Machine) Term() uint64 { return m.term }

// Tick advances time by one tick.
func (m *Machine) Tick() []Msg {
	m.now++
	m.expire()
	var out []Msg
	if m.leading {
		if !m.leaseHeld() {
			out = m.loseQuorum(out)
		} else if m.now >= m.nextBeat {
			out = m.beat(out)
		}
	} else if m.admin != "" && m.now-m.lastBeat >= m.timeout {
		out = m.setAdmin(out, "", m.term, 0)
		if m.round == nil {
			if c, ok := m.pendingElection(); ok {
				// Another node timed out a moment earlier: join its election.
				pending := m.pending
				out = append(out, m.join(c)...)
				for id, p := range pending {
					if p.Term == c.Term {
						m.round.cands[id] = p.Score
					}
				}
			} else {
				out = m.startRound(out, TriggerHeartbeatTimeout, false)
			}
		}
	}
	switch {
	case m.round != nil:
		out = m.advance(out)
	case m.leading || m.admin != "":
	case !m.started:
		if m.now >= m.startup {
			m.started = true
			out = m.startRound(out, TriggerNoAdmin, false)
		}
	default:
		if m.lacking && m.heardSince(m.lackingAt) >= m.quorum() {
			// Quorum restored: elect now rather than at the next retry.
			out = m.startRound(out, TriggerQuorum, false)
		} else if m.now >= m.nextRound {
			out = m.startRound(out, m.retry, false)
		}
	}
	return out
}

// Step takes one received wire message, or a KindManual trigger.
func (m *Machine) Step(msg Msg) []Msg {
	if msg.Kind == KindManual {
		return m.manual()
	}
	if !msg.Kind.Wire() || msg.From == "" || msg.From == m.id || msg.Node != msg.From || msg.Term == 0 {
		return nil
	}
	if p, ok := m.members[msg.From]; ok {
		p.last = m.now
		m.members[msg.From] = p
	} else {
		m.members[msg.From] = member{first: m.now, last: m.now}
	}
	m.maxTerm = max(m.maxTerm, msg.Term)
	switch msg.Kind {
	case KindCandidacy:
		return m.stepCandidacy(msg)
	case KindVote:
		return m.stepVote(msg)
	case KindWinner:
		return m.stepAdmin(msg, false)
	case KindHeartbeat:
		return m.stepAdmin(msg, true)
	}
	return nil
}

func (m *Machine) stepCandidacy(c Msg) []Msg {
	m.scores[c.Node] = scoreEntry{score: c.Score, comps: c.Components, term: c.Term, at: m.now}
	if c.Node == m.admin && !m.leading && !c.Override && c.Term > m.term {
		// The admin itself stands for a later term: it restarted (with its
		// saved term) or stepped down, so it is no longer the admin. (A
		// candidacy of its own term is a leftover of the election it won,
		// overtaken by its winner message: GossipSub does not keep order.)
		var out []Msg
		out = m.setAdmin(out, "", m.term, 0)
		if c.Term > m.joined {
			return append(out, m.join(c)...)
		}
		m.started = true
		return m.startRound(out, TriggerHeartbeatTimeout, false)
	}
	if c.Term <= m.term {
		// An election for a term that already has an admin: a newcomer or
		// a node that missed heartbeats. The admin tells it.
		return m.answer(nil)
	}
	if r := m.round; r != nil {
		switch {
		case c.Term == r.term:
			r.cands[c.Node] = c.Score
		case c.Term > r.term && (c.Override || !m.adminLive()):
			return m.join(c)
		case c.Term > r.term:
			return m.answer(nil)
		default:
			// An older election: let its candidate hear ours soon.
			r.nextResend = m.now
		}
		return nil
	}
	if c.Term <= m.joined {
		if m.admin != "" {
			// A straggler of an election that ended; the admin answers.
			return m.answer(nil)
		}
		// An election this node already voted in (or an older one): start
		// a fresh one the sender can join.
		m.started = true
		return m.startRound(nil, c.Trigger, false)
	}
	if m.adminLive() && !c.Override {
		// This node's admin is alive; the admin itself answers.
		if !m.leading {
			m.addPending(c)
		}
		return m.answer(nil)
	}
	return m.join(c)
}

func (m *Machine) stepVote(v Msg) []Msg {
	if v.Candidate != m.id {
		return nil
	}
	if r := m.round; r != nil && v.Term == r.term {
		r.votes[v.Node] = true
		return m.checkWin(nil)
	}
	if m.leading && v.Term == m.term {
		m.supporters[v.Node] = m.now
	}
	return nil
}

// stepAdmin handles a winner or a heartbeat: a node acting as admin.
func (m *Machine) stepAdmin(a Msg, heartbeat bool) []Msg {
	var out []Msg
	if heartbeat && m.leading && m.round == nil {
		out = m.splitBrain(out, a.Node, a.Term)
	}
	if a.Term < m.term {
		if !m.leading && m.admin != "" && heartbeat {
			// A deposed admin still heartbeating.
			out = m.splitBrain(out, a.Node, a.Term)
		}
		return m.answer(out)
	}
	if r := m.round; r != nil && r.override && a.Term < r.term {
		// The admin this election replaces; it steps down when it votes.
		return out
	}
	if a.Term == m.term && m.admin != "" && m.admin != a.Node {
		return m.conflict(out, a)
	}
	out = m.setAdmin(out, a.Node, a.Term, a.Score)
	if heartbeat {
		// Endorse the admin: its majority is counted from these.
		out = append(out, Msg{Kind: KindVote, Term: a.Term, Node: m.id, Candidate: a.Node})
	}
	return out
}

// conflict resolves two admins of one term: the higher score wins, then
// the smaller peer id. The loser follows the winner; the winner starts a
// split-brain election (stepping down meanwhile) so that the next admin
// has a term of its own.
func (m *Machine) conflict(out []Msg, a Msg) []Msg {
	out = m.splitBrain(out, a.Node, a.Term)
	if better(a.Node, a.Score, m.admin, m.adminScore) {
		return m.setAdmin(out, a.Node, a.Term, a.Score)
	}
	if m.leading {
		// Tell the loser at once, then elect under a new term: two admins
		// of one term cannot be told apart by their fencing tokens.
		m.lastAnswer = -1 << 62
		out = m.answer(out)
		if m.round == nil {
			out = m.startRound(out, TriggerSplitBrain, true)
		}
	}
	return out
}

func (m *Machine) splitBrain(out []Msg, other string, term uint64) []Msg {
	key := fmt.Sprintf("%s/%d", other, term)
	if other == m.id || key == m.conflictKey {
		return out
	}
	m.conflictKey = key
	return append(out, Msg{Kind: KindSplitBrain, Node: other, Term: term})
}

func (m *Machine) manual() []Msg {
	if m.round != nil {
		return []Msg{{Kind: KindRefused, Reason: fmt.Sprintf("an election for term %d is already running", m.round.term)}}
	}
	if m.admin != "" && m.now-m.adminSince < m.stability {
		left := time.Duration(m.stability-(m.now-m.adminSince)) * m.tick
		return []Msg{{Kind: KindRefused, Reason: fmt.Sprintf("stability window: admin %s took term %d less than %s ago (%s left)",
			m.admin, m.term, time.Duration(m.stability)*m.tick, left)}}
	}
	m.started = true
	return m.startRound(nil, TriggerManual, true)
}

// setAdmin makes node (or nobody, "") the admin this node follows.
func (m *Machine) setAdmin(out []Msg, node string, term uint64, score float64) []Msg {
	if m.leading && node != m.id {
		m.leading = false
		out = append(out, Msg{Kind: KindStopLeading, Term: m.term})
	}
	changed := node != m.admin || term != m.term
	m.term = max(m.term, term)
	m.admin, m.adminScore = node, score
	if node != "" {
		m.lastBeat = m.now
		m.round = nil
		m.started = true
		m.lacking = false
	}
	if changed {
		m.adminSince = m.now
		out = append(out, Msg{Kind: KindAdminChanged, Node: node, Term: m.term})
	}
	return out
}

func (m *Machine) adminLive() bool {
	return m.admin != "" && (m.leading || m.now-m.lastBeat < m.timeout)
}

// startRound starts an election for the next term.
func (m *Machine) startRound(out []Msg, trigger Trigger, override bool) []Msg {
	term := max(m.maxTerm, m.joined, m.term) + 1
	m.maxTerm = term
	if override && m.admin != "" {
		// A manual or split-brain election replaces the admin: it steps
		// down now, so the winner never overlaps with it.
		out = m.setAdmin(out, "", m.term, 0)
	}
	m.newRound(term, trigger, override)
	out = append(out, Msg{Kind: KindElectionStarted, Term: term, Trigger: trigger})
	return append(out, m.candidacy())
}

// join takes part in the election another node started.
func (m *Machine) join(c Msg) []Msg {
	m.started = true
	var out []Msg
	if c.Override && m.admin != "" {
		// The admin is being replaced: it steps down now (so the winner
		// never overlaps with it) and until the election ends this node
		// follows nobody.
		out = m.setAdmin(out, "", m.term, 0)
	}
	m.newRound(c.Term, c.Trigger, c.Override)
	m.round.cands[c.Node] = c.Score
	return append(out, m.candidacy())
}

// addPending keeps a candidacy ignored while the admin seemed alive.
func (m *Machine) addPending(c Msg) {
	for _, p := range m.pending {
		if c.Term < p.Term {
			return
		}
		if c.Term > p.Term {
			m.pending = nil
		}
		break
	}
	if m.pending == nil {
		m.pending = map[string]Msg{}
	}
	m.pending[c.Node] = c
	m.pendingAt = m.now
}

// pendingElection returns a candidacy of the pending election, if it is
// recent and newer than any this node took part in.
func (m *Machine) pendingElection() (Msg, bool) {
	if m.now-m.pendingAt >= m.roundTimeout {
		return Msg{}, false
	}
	for _, id := range sortedKeys(m.pending) {
		if c := m.pending[id]; c.Term > m.joined {
			return c, true
		}
	}
	return Msg{}, false
}

func (m *Machine) newRound(term uint64, trigger Trigger, override bool) {
	m.joined = term
	m.pending = nil
	m.lastTrigger = trigger
	m.round = &round{
		term: term, trigger: trigger, override: override,
		collectEnd: m.now + m.collect, deadline: m.now + m.roundTimeout, nextResend: m.now + m.resend,
		score: m.score, cands: map[string]float64{m.id: m.score}, votes: map[string]bool{},
	}
}

func (m *Machine) candidacy() Msg {
	r := m.round
	return Msg{Kind: KindCandidacy, Term: r.term, Node: m.id, Score: r.score, Components: m.comps, Trigger: r.trigger, Override: r.override}
}

// advance moves the running election on by one tick.
func (m *Machine) advance(out []Msg) []Msg {
	r := m.round
	if r.voted == "" && m.now >= r.collectEnd {
		out = m.vote(out)
		if m.round == nil {
			return out
		}
	}
	if m.now >= r.deadline {
		return m.failRound(out)
	}
	if m.now >= r.nextResend {
		r.nextResend = m.now + m.resend
		out = append(out, m.candidacy())
		if r.voted != "" {
			out = append(out, Msg{Kind: KindVote, Term: r.term, Node: m.id, Candidate: r.voted})
		}
	}
	return out
}

// vote casts this node's only vote of the round, for the best candidate it
// has seen.
func (m *Machine) vote(out []Msg) []Msg {
	r := m.round
	best, bestScore := "", -1.0
	for _, id := range sortedKeys(r.cands) {
		if s := r.cands[id]; best == "" || better(id, s, best, bestScore) {
			best, bestScore = id, s
		}
	}
	r.voted = best
	out = append(out, Msg{Kind: KindVote, Term: r.term, Node: m.id, Candidate: best})
	if best != m.id {
		return out
	}
	r.votes[m.id] = true
	return m.checkWin(out)
}

func (m *Machine) checkWin(out []Msg) []Msg {
	r := m.round
	known, _ := m.counts()
	if len(r.votes) < known/2+1 {
		return out
	}
	if m.leading {
		out = append(out, Msg{Kind: KindStopLeading, Term: m.term})
	}
	m.leading = true
	m.round = nil
	m.lacking = false
	m.supporters = map[string]int64{}
	for v := range r.votes {
		if v != m.id {
			m.supporters[v] = m.now
		}
	}
	out = append(out, Msg{Kind: KindStartLeading, Term: r.term})
	out = m.setAdmin(out, m.id, r.term, r.score)
	out = append(out, Msg{Kind: KindWinner, Term: r.term, Node: m.id, Score: r.score, Votes: len(r.votes)})
	// Two more heartbeats right away, so one lost winner costs a Resend,
	// not a Heartbeat.
	m.quick = 2
	return m.beat(out)
}

func (m *Machine) failRound(out []Msg) []Msg {
	r := m.round
	m.round = nil
	known, live := m.counts()
	m.retry = r.trigger
	pause := m.backoff + m.jitter
	if live < known/2+1 {
		// No election can succeed; try at heartbeat pace (others count this
		// node as live from its candidacies) and elect as soon as a
		// majority is back.
		m.lacking, m.lackingAt, m.retry = true, m.now, TriggerQuorum
		pause = m.heartbeat + m.jitter
	}
	m.nextRound = m.now + pause
	return out
}

func (m *Machine) beat(out []Msg) []Msg {
	m.seq++
	next := m.heartbeat
	if m.quick > 0 {
		m.quick--
		next = m.resend
	}
	m.nextBeat = m.now + next
	return append(out, Msg{Kind: KindHeartbeat, Term: m.term, Node: m.id, Seq: m.seq, Score: m.adminScore})
}

// answer sends a heartbeat out of turn, at most once per Resend, when this
// node is the admin.
func (m *Machine) answer(out []Msg) []Msg {
	if !m.leading || m.now-m.lastAnswer < m.resend {
		return out
	}
	m.lastAnswer = m.now
	m.seq++
	return append(out, Msg{Kind: KindHeartbeat, Term: m.term, Node: m.id, Seq: m.seq, Score: m.adminScore})
}

// leaseHeld reports whether a majority of the members (counting this node)
// endorsed the admin within the lease, Timeout minus half a Heartbeat: two
// heartbeats' endorsements fit in it, and in a clean partition it runs out
// half a heartbeat before the followers on the other side time out.
func (m *Machine) leaseHeld() bool {
	// Members heard of only: the connected-peer floor keeps a node from
	// winning alone, but an admin does not step down for a peer that just
	// connected and has not spoken yet.
	known := 1
	for _, p := range m.members {
		if m.now-p.last < m.memberTTL {
			known++
		}
	}
	n := 1
	for id, p := range m.members {
		if m.now-p.last >= m.memberTTL {
			continue
		}
		// A supporter within the lease, or a member first heard within it
		// (a newcomer that has not endorsed yet).
		if at, ok := m.supporters[id]; (ok && m.now-at < m.lease) || m.now-p.first < m.lease {
			n++
		}
	}
	return n >= known/2+1
}

func (m *Machine) loseQuorum(out []Msg) []Msg {
	term := m.term
	out = append(out, Msg{Kind: KindQuorumLost, Term: term})
	out = m.setAdmin(out, "", term, 0)
	m.lacking, m.lackingAt, m.retry = true, m.now, TriggerQuorum
	m.nextRound = m.now + m.heartbeat + m.jitter
	return out
}

// counts returns how many members (this node included) were heard within
// MemberTTL, at least the connected peers plus one, and how many within
// Timeout.
func (m *Machine) counts() (known, live int) {
	known, live = 1, 1
	for _, p := range m.members {
		age := m.now - p.last
		if age < m.memberTTL {
			known++
		}
		if age < m.timeout {
			live++
		}
	}
	return max(known, m.peers+1), live
}

// quorum is a majority of the members.
func (m *Machine) quorum() int {
	known, _ := m.counts()
	return known/2 + 1
}

// heardSince counts the members heard after tick t, this node included.
func (m *Machine) heardSince(t int64) int {
	n := 1
	for _, p := range m.members {
		if p.last > t {
			n++
		}
	}
	return n
}

func (m *Machine) expire() {
	for id, p := range m.members {
		if m.now-p.last >= m.memberTTL {
			delete(m.members, id)
			delete(m.supporters, id)
		}
	}
	for id, e := range m.scores {
		if m.now-e.at >= m.memberTTL {
			delete(m.scores, id)
		}
	}
}

// Snapshot is a machine's state at one moment; durations are in ticks.
type Snapshot struct {
	ID      string
	Role    Role
	Admin   string
	Term    uint64
	MaxTerm uint64
	Leading bool
	// AdminScore is the admin's score from its heartbeats.
	AdminScore float64
	// SinceHeartbeat is how many ticks ago the admin was last heard (0 when
	// this node leads), -1 without an admin.
	SinceHeartbeat int64
	// StableFor is how many ticks of the stability window are left.
	StableFor int64
	// Election is the running election, nil when none runs.
	Election *ElectionState
	// LastTrigger is the trigger of the last election this node took part in.
	LastTrigger Trigger
	// Known and Live count members heard within MemberTTL and Timeout,
	// this node included; Quorum is a majority of Known.
	Known, Live, Quorum int
	// Score and Components are this node's.
	Score      float64
	Components gossip.ScoreComponents
	// Candidates are the other nodes' latest candidacies, best first.
	Candidates []Candidate
}

// ElectionState is a running election.
type ElectionState struct {
	Term    uint64
	Trigger Trigger
	// Voted is the candidate this node voted for, "" before it voted.
	Voted string
	// Candidates is how many candidacies this node has seen, its own included.
	Candidates int
	// Votes is how many votes this node received.
	Votes int
}

// Candidate is one node's latest candidacy.
type Candidate struct {
	ID         string
	Score      float64
	Components gossip.ScoreComponents
	Term       uint64
	// Age is how many ticks ago it was heard.
	Age int64
}

// Snapshot returns the machine's state.
func (m *Machine) Snapshot() Snapshot {
	known, live := m.counts()
	s := Snapshot{ID: m.id, Role: RoleFollower, Admin: m.admin, Term: m.term, MaxTerm: m.maxTerm, Leading: m.leading,
		AdminScore: m.adminScore, SinceHeartbeat: -1, LastTrigger: m.lastTrigger, Known: known, Live: live, Quorum: known/2 + 1,
		Score: m.score, Components: m.comps}
	if m.admin != "" {
		s.SinceHeartbeat = m.now - m.lastBeat
		if m.leading {
			s.SinceHeartbeat = 0
		}
		s.StableFor = max(0, m.stability-(m.now-m.adminSince))
	}
	switch {
	case m.leading:
		s.Role = RoleAdmin
	case m.round != nil:
		s.Role = RoleCandidate
	}
	if r := m.round; r != nil {
		s.Election = &ElectionState{Term: r.term, Trigger: r.trigger, Voted: r.voted, Candidates: len(r.cands), Votes: len(r.votes)}
	}
	for _, id := range sortedKeys(m.scores) {
		e := m.scores[id]
		s.Candidates = append(s.Candidates, Candidate{ID: id, Score: e.score, Components: e.comps, Term: e.term, Age: m.now - e.at})
	}
	slices.SortStableFunc(s.Candidates, func(a, b Candidate) int {
		if better(a.ID, a.Score, b.ID, b.Score) {
			return -1
		}
		return 1
	})
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
