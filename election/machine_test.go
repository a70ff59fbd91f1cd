package election

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"chorus/gossip"
)

// sim is a deterministic network of machines: every tick each running
// machine ticks (in id order), and every wire message is delivered at once
// to every other running node that drop does not cut off.
type sim struct {
	t    *testing.T
	cfg  Config
	ids  []string
	ms   map[string]*Machine
	down map[string]bool
	// side puts nodes in partitions: only nodes of one side are
	// connected. drop loses single messages.
	side map[string]int
	drop func(from, to string, m Msg) bool
	now  int64
	// allowSplit turns off the one-admin-per-term check, for scenarios
	// that make two admins on purpose.
	allowSplit bool
	events     []event // every event (non-wire message)
	wire       []event // every wire message sent
	// leaders is who leads each term, from StartLeading events.
	leaders map[uint64]string
	// maxLeading is the most nodes leading at once, checked after every
	// delivery.
	maxLeading int
	terms      map[string]uint64
}

type event struct {
	node string
	tick int64
	msg  Msg
}

func testConfig() Config { return FastConfig() }

// comps gives every component the value s, so the score is s.
func comps(s float64) gossip.ScoreComponents {
	return gossip.ScoreComponents{Uptime: s, Capabilities: s, Resources: s, Network: s, Experience: s}
}

func newSim(t *testing.T, scores map[string]float64, tweak func(*Config)) *sim {
	t.Helper()
	cfg := testConfig()
	if tweak != nil {
		tweak(&cfg)
	}
	s := &sim{t: t, cfg: cfg, ms: map[string]*Machine{}, down: map[string]bool{}, side: map[string]int{}, leaders: map[uint64]string{}, terms: map[string]uint64{}}
	for id, score := range scores {
		s.ids = append(s.ids, id)
		s.add(id, score, 0)
	}
	slices.Sort(s.ids)
	return s
}

// add starts (or restarts, fresh) node id.
func (s *sim) add(id string, score float64, term uint64) *Machine {
	s.t.Helper()
	cfg := s.cfg
	cfg.ID, cfg.Term = id, term
	m, err := New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	m.SetComponents(comps(score))
	s.ms[id] = m
	delete(s.down, id)
	if !slices.Contains(s.ids, id) {
		s.ids = append(s.ids, id)
		slices.Sort(s.ids)
	}
	return m
}

func (s *sim) connected(a, b string) bool {
	return a != b && !s.down[a] && !s.down[b] && s.side[a] == s.side[b]
}

func (s *sim) tick() {
	s.now++
	for _, id := range s.ids {
		if s.down[id] {
			continue
		}
		peers := 0
		for _, o := range s.ids {
			if s.connected(id, o) {
				peers++
			}
		}
		s.ms[id].SetPeers(peers)
		s.emit(id, s.ms[id].Tick())
	}
}

func (s *sim) step(to string, m Msg) {
	s.emit(to, s.ms[to].Step(m))
}

type queued struct {
	from string
	msg  Msg
}

func (s *sim) emit(from string, out []Msg) {
	queue := []queued{}
	add := func(from string, out []Msg) {
		for _, m := range out {
			if !m.Kind.Wire() {
				s.events = append(s.events, event{from, s.now, m})
				if m.Kind == KindStartLeading {
					if prev, ok := s.leaders[m.Term]; ok && prev != from && !s.allowSplit {
						s.t.Errorf("tick %d: term %d has two admins: %s and %s", s.now, m.Term, prev, from)
					}
					s.leaders[m.Term] = from
				}
				continue
			}
			s.wire = append(s.wire, event{from, s.now, m})
			queue = append(queue, queued{from, m})
		}
		s.check()
	}
	add(from, out)
	for n := 0; len(queue) > 0; n++ {
		if n > 100000 {
			s.t.Fatal("message storm")
		}
		q := queue[0]
		queue = queue[1:]
		for _, to := range s.ids {
			if !s.connected(q.from, to) || (s.drop != nil && s.drop(q.from, to, q.msg)) {
				continue
			}
			m := q.msg
			m.From = q.from
			add(to, s.ms[to].Step(m))
		}
	}
}

// check asserts the invariants after every step: terms never go down.
func (s *sim) check() {
	leading := 0
	for _, id := range s.ids {
		m := s.ms[id]
		if s.down[id] {
			continue
		}
		if m.Leading() {
			leading++
		}
		if m.Term() < s.terms[id] && m.Term() != 0 {
			s.t.Errorf("tick %d: %s term went down from %d to %d", s.now, id, s.terms[id], m.Term())
		}
		s.terms[id] = max(s.terms[id], m.Term())
	}
	s.maxLeading = max(s.maxLeading, leading)
}

// run ticks until cond holds or limit passes; it returns the ticks taken.
func (s *sim) run(limit time.Duration, cond func() bool) (int64, bool) {
	start := s.now
	for n := int64(0); n < int64(limit/s.cfg.Tick); n++ {
		if cond != nil && cond() {
			return s.now - start, true
		}
		s.tick()
	}
	return s.now - start, cond != nil && cond()
}

func (s *sim) runFor(d time.Duration) { s.run(d, nil) }

// agreed returns the admin every running node follows, and whether there
// is exactly one, leading.
func (s *sim) agreed() (string, bool) {
	admin := ""
	for _, id := range s.ids {
		if s.down[id] {
			continue
		}
		a := s.ms[id].Snapshot().Admin
		if a == "" || (admin != "" && a != admin) {
			return "", false
		}
		admin = a
	}
	return admin, admin != "" && !s.down[admin] && s.ms[admin].Leading() && len(s.leading()) == 1
}

func (s *sim) leading() []string {
	var out []string
	for _, id := range s.ids {
		if !s.down[id] && s.ms[id].Leading() {
			out = append(out, id)
		}
	}
	return out
}

func (s *sim) agree(within time.Duration) string {
	s.t.Helper()
	ticks, ok := s.run(within, func() bool { _, ok := s.agreed(); return ok })
	if !ok {
		for _, id := range s.ids {
			snap := s.ms[id].Snapshot()
			s.t.Logf("%s: down=%v role=%s admin=%q term=%d election=%+v known=%d live=%d", id, s.down[id], snap.Role, snap.Admin, snap.Term, snap.Election, snap.Known, snap.Live)
		}
		s.t.Fatalf("tick %d: no single admin after %s", s.now, within)
	}
	a, _ := s.agreed()
	s.t.Logf("tick %d: admin %s (term %d) after %s", s.now, a, s.ms[a].Term(), time.Duration(ticks)*s.cfg.Tick)
	return a
}

// started returns the triggers of the elections started since tick from.
func (s *sim) started(from int64) []Trigger {
	var out []Trigger
	for _, e := range s.events {
		if e.tick >= from && e.msg.Kind == KindElectionStarted {
			out = append(out, e.msg.Trigger)
		}
	}
	return out
}

func (s *sim) count(kind Kind, from int64) int {
	n := 0
	for _, e := range s.events {
		if e.tick >= from && e.msg.Kind == kind {
			n++
		}
	}
	return n
}

func TestScore(t *testing.T) {
	cases := []struct {
		name string
		c    gossip.ScoreComponents
		want float64
	}{
		{"zero", gossip.ScoreComponents{}, 0},
		{"all ones", comps(1), 1},
		{"uptime only", gossip.ScoreComponents{Uptime: 1}, 0.30},
		{"capabilities only", gossip.ScoreComponents{Capabilities: 1}, 0.20},
		{"resources only", gossip.ScoreComponents{Resources: 1}, 0.20},
		{"network only", gossip.ScoreComponents{Network: 1}, 0.15},
		{"experience only", gossip.ScoreComponents{Experience: 1}, 0.15},
		{"mixed", gossip.ScoreComponents{Uptime: 0.5, Capabilities: 0.25, Resources: 1, Network: 0, Experience: 0.4}, 0.15 + 0.05 + 0.2 + 0.06},
		{"clamped above", gossip.ScoreComponents{Uptime: 7, Capabilities: 1, Resources: 1, Network: 1, Experience: 1}, 1},
		{"clamped below and NaN", gossip.ScoreComponents{Uptime: -3, Capabilities: math.NaN(), Resources: 1}, 0.20},
	}
	for _, c := range cases {
		if got := Score(c.c); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: Score = %v, want %v", c.name, got, c.want)
		}
	}
	if !better("a", 0.5, "b", 0.4) || better("a", 0.4, "b", 0.5) || !better("a", 0.5, "b", 0.5) || better("b", 0.5, "a", 0.5) {
		t.Error("better: higher score first, then the smaller peer id")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, name := range []string{ProfileDefault, ProfileFast} {
		cfg, err := ProfileConfig(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ID = "a"
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if d := DefaultConfig(); d.Heartbeat != 5*time.Second || d.Timeout != 15*time.Second || d.Stability != 30*time.Second {
		t.Errorf("default profile = %s/%s/%s, want 5s/15s/30s", d.Heartbeat, d.Timeout, d.Stability)
	}
	if f := FastConfig(); f.Heartbeat != time.Second || f.Timeout != 3*time.Second {
		t.Errorf("fast profile = %s/%s, want 1s/3s", f.Heartbeat, f.Timeout)
	}
	if _, err := ProfileConfig("turbo"); err == nil || !strings.Contains(err.Error(), "turbo") {
		t.Errorf("unknown profile: %v", err)
	}
	bad := []struct {
		tweak func(*Config)
		want  string
	}{
		{func(c *Config) { c.ID = "" }, "ID"},
		{func(c *Config) { c.Tick = 0 }, "Tick"},
		{func(c *Config) { c.Timeout = c.Heartbeat }, "Timeout"},
		{func(c *Config) { c.RoundTimeout = c.Collect }, "RoundTimeout"},
		{func(c *Config) { c.MemberTTL = c.Timeout / 2 }, "MemberTTL"},
		{func(c *Config) { c.Resend = 0 }, "Resend"},
		{func(c *Config) { c.Stability = -time.Second }, "Stability"},
	}
	for _, b := range bad {
		cfg := DefaultConfig()
		cfg.ID = "a"
		b.tweak(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("want an error naming %s, got %v", b.want, err)
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("New accepted a config without a valid %s", b.want)
		}
	}
}

// TestTriggers covers the five triggers on a whole cluster: what starts the
// election, who wins, and that there is never more than one admin.
func TestTriggers(t *testing.T) {
	cfg := testConfig()
	cases := []struct {
		name      string
		scores    map[string]float64
		scenario  func(s *sim) int64 // sets the scene; returns the tick the trigger fires from
		trigger   Trigger
		within    time.Duration // from the scenario's end
		wantAdmin string
	}{
		{
			name:   "no admin at start-up: the best score wins",
			scores: map[string]float64{"a": 0.4, "b": 0.9, "c": 0.6},
			scenario: func(s *sim) int64 {
				return 0
			},
			trigger: TriggerNoAdmin, within: cfg.StartupWait + cfg.RoundTimeout, wantAdmin: "b",
		},
		{
			name:     "no admin at start-up: a single node elects itself",
			scores:   map[string]float64{"solo": 0.1},
			scenario: func(s *sim) int64 { return 0 },
			trigger:  TriggerNoAdmin, within: cfg.StartupWait + cfg.Collect + 2*cfg.Tick, wantAdmin: "solo",
		},
		{
			name:   "heartbeat timeout: the admin dies, the next best takes over",
			scores: map[string]float64{"a": 0.4, "b": 0.9, "c": 0.6, "d": 0.5, "e": 0.3},
			scenario: func(s *sim) int64 {
				s.agree(10 * time.Second)
				s.down["b"] = true
				return s.now
			},
			trigger: TriggerHeartbeatTimeout, within: cfg.Timeout + cfg.Collect + 2*cfg.Tick, wantAdmin: "c",
		},
		{
			name:   "split brain: two admins of one term after a long partition, the higher score stays",
			scores: map[string]float64{"a": 0.9, "b": 0.5, "c": 0.8, "d": 0.4, "e": 0.3},
			scenario: func(s *sim) int64 {
				s.allowSplit = true
				s.partition([]string{"a", "b"}, []string{"c", "d", "e"})
				// Long enough for each side to forget the other and elect.
				s.runFor(cfg.StartupWait + cfg.MemberTTL + 2*cfg.RoundTimeout)
				if l := s.leading(); len(l) != 2 {
					s.t.Fatalf("each side should have elected an admin, leading: %v", l)
				}
				if s.ms["a"].Term() != s.ms["c"].Term() {
					s.t.Fatalf("want one term on both sides, got a:%d c:%d", s.ms["a"].Term(), s.ms["c"].Term())
				}
				s.heal()
				return s.now
			},
			trigger: TriggerSplitBrain, within: cfg.Heartbeat + cfg.RoundTimeout, wantAdmin: "a",
		},
		{
			name:   "quorum lost and restored: the admin alone steps down, elects again when a peer returns",
			scores: map[string]float64{"a": 0.9, "b": 0.5, "c": 0.4},
			scenario: func(s *sim) int64 {
				s.agree(10 * time.Second)
				s.down["b"], s.down["c"] = true, true
				if _, ok := s.run(cfg.Timeout, func() bool { return !s.ms["a"].Leading() }); !ok {
					s.t.Fatal("the admin kept leading without a majority")
				}
				from := s.now
				if s.count(KindQuorumLost, from) != 1 {
					s.t.Fatal("no quorum_lost event")
				}
				s.runFor(3 * cfg.Heartbeat)
				if s.ms["a"].Leading() {
					s.t.Fatal("a node without a majority elected itself")
				}
				s.add("b", 0.5, 0)
				return from
			},
			trigger: TriggerQuorum, within: cfg.StartupWait + cfg.RoundTimeout, wantAdmin: "a",
		},
		{
			name:   "manual: a new election after the stability window; a better node that joined since wins",
			scores: map[string]float64{"a": 0.6, "b": 0.5, "c": 0.4},
			scenario: func(s *sim) int64 {
				s.agree(10 * time.Second)
				s.add("z", 0.99, 0)
				s.runFor(cfg.Stability)
				if a, _ := s.agreed(); a != "a" {
					s.t.Fatalf("a better newcomer must not take over by itself; admin %q", a)
				}
				from := s.now
				s.step("c", Msg{Kind: KindManual})
				return from
			},
			trigger: TriggerManual, within: cfg.RoundTimeout, wantAdmin: "z",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, c.scores, nil)
			from := c.scenario(s)
			if got := s.agree(c.within); got != c.wantAdmin {
				t.Errorf("admin %s, want %s", got, c.wantAdmin)
			}
			if trig := s.started(from); !slices.Contains(trig, c.trigger) {
				t.Errorf("elections started %v, want one by %s", trig, c.trigger)
			}
			for _, tr := range s.started(from) {
				if tr != c.trigger && c.trigger != TriggerSplitBrain {
					t.Errorf("unexpected election by %s", tr)
				}
			}
			if c.trigger != TriggerSplitBrain && s.maxLeading > 1 {
				t.Errorf("%d nodes led at once", s.maxLeading)
			}
			// Settled: nothing changes for a while.
			a, term := c.wantAdmin, s.ms[c.wantAdmin].Term()
			s.runFor(4 * cfg.Heartbeat)
			if got, ok := s.agreed(); !ok || got != a || s.ms[a].Term() != term {
				t.Errorf("not stable: admin %q term %d, want %s term %d", got, s.ms[got].Term(), a, term)
			}
		})
	}
}

func (s *sim) partition(sides ...[]string) {
	for i, ids := range sides {
		for _, id := range ids {
			s.side[id] = i
		}
	}
}

func (s *sim) heal() { s.side = map[string]int{} }

// TestSplitBrainResolution puts an admin of term 5 and score 0.5 in front
// of another admin's heartbeat: the higher term wins, then the higher
// score, then the smaller peer id.
func TestSplitBrainResolution(t *testing.T) {
	cases := []struct {
		name        string
		me          string
		other       string
		term        uint64
		score       float64
		wantLeading bool
		wantAdmin   string
		wantRound   bool // the winner starts a split_brain election (and steps down meanwhile)
	}{
		{"other has the higher term", "m", "o", 6, 0.1, false, "o", false},
		{"other has the lower term", "m", "o", 4, 0.9, true, "m", false},
		{"same term, other scores higher", "m", "o", 5, 0.9, false, "o", false},
		{"same term, other scores lower", "m", "o", 5, 0.1, false, "", true},
		{"same term and score, other's id is smaller", "m", "a", 5, 0.5, false, "a", false},
		{"same term and score, other's id is larger", "m", "z", 5, 0.5, false, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, map[string]float64{}, nil)
			m := s.add(c.me, 0.5, 4)
			s.agree(s.cfg.StartupWait + s.cfg.RoundTimeout)
			if m.Term() != 5 {
				t.Fatalf("term %d, want 5", m.Term())
			}
			out := m.Step(Msg{Kind: KindHeartbeat, From: c.other, Node: c.other, Term: c.term, Score: c.score, Seq: 1})
			if m.Leading() != c.wantLeading {
				t.Errorf("leading = %v, want %v", m.Leading(), c.wantLeading)
			}
			if a := m.Snapshot().Admin; a != c.wantAdmin {
				t.Errorf("admin %q, want %q", a, c.wantAdmin)
			}
			var kinds []Kind
			round := false
			for _, o := range out {
				kinds = append(kinds, o.Kind)
				if o.Kind == KindElectionStarted && o.Trigger == TriggerSplitBrain {
					round = true
				}
				if o.Kind == KindCandidacy && (!o.Override || o.Term != 6) {
					t.Errorf("split-brain candidacy %+v, want an override for term 6", o)
				}
			}
			if !slices.Contains(kinds, KindSplitBrain) {
				t.Errorf("no split_brain event in %v", kinds)
			}
			if round != c.wantRound {
				t.Errorf("split_brain election started = %v, want %v (out %v)", round, c.wantRound, kinds)
			}
			if !c.wantLeading && !slices.Contains(kinds, KindStopLeading) {
				t.Errorf("stepped down without a stop_leading event: %v", kinds)
			}
			if c.wantLeading && c.term < 5 && !slices.Contains(kinds, KindHeartbeat) {
				t.Errorf("the newer admin should answer the stale one at once: %v", kinds)
			}
		})
	}
}

// TestStabilityWindow: no voluntary election within the window, but a dead
// admin is replaced within it.
func TestStabilityWindow(t *testing.T) {
	cfg := testConfig()
	s := newSim(t, map[string]float64{"a": 0.9, "b": 0.5, "c": 0.4}, nil)
	s.agree(10 * time.Second)
	term := s.ms["a"].Term()
	out := s.ms["b"].Step(Msg{Kind: KindManual})
	if len(out) != 1 || out[0].Kind != KindRefused || !strings.Contains(out[0].Reason, "stability window") {
		t.Fatalf("manual trigger within the window = %+v, want refused", out)
	}
	if left := s.ms["b"].Snapshot().StableFor; left <= 0 {
		t.Errorf("StableFor = %d, want ticks left", left)
	}
	// The admin dies well within the window: it is replaced anyway.
	s.runFor(cfg.Heartbeat)
	s.down["a"] = true
	from := s.now
	if got := s.agree(cfg.Timeout + cfg.RoundTimeout); got != "b" {
		t.Errorf("admin %s, want b", got)
	}
	if s.ms["b"].Term() <= term || !slices.Equal(s.started(from)[:1], []Trigger{TriggerHeartbeatTimeout}) {
		t.Errorf("term %d (was %d), elections %v", s.ms["b"].Term(), term, s.started(from))
	}
	// Past the window a manual election is accepted: b, still the best,
	// is re-elected under a new term.
	s.runFor(cfg.Stability)
	term = s.ms["b"].Term()
	from = s.now
	s.step("c", Msg{Kind: KindManual})
	s.run(cfg.RoundTimeout, func() bool { return s.ms["c"].Term() > term })
	if got := s.agree(cfg.RoundTimeout); got != "b" || s.ms["b"].Term() != term+1 {
		t.Errorf("after a manual election: admin %s term %d, want b term %d", got, s.ms["b"].Term(), term+1)
	}
	if s.count(KindStopLeading, from) != 1 || s.count(KindStartLeading, from) != 1 {
		t.Errorf("re-election events: %d stop, %d start; want 1 and 1", s.count(KindStopLeading, from), s.count(KindStartLeading, from))
	}
	// A manual trigger while an election runs is refused too (the admin
	// itself asks first).
	s.runFor(cfg.Stability)
	s.step("b", Msg{Kind: KindManual})
	if out := s.ms["c"].Step(Msg{Kind: KindManual}); len(out) != 1 || out[0].Kind != KindRefused || !strings.Contains(out[0].Reason, "already running") {
		t.Errorf("second manual trigger = %+v", out)
	}
}

// TestQuorumLossPartition: an admin cut off with a minority steps down
// before the majority elects its successor, so two admins never overlap;
// after the partition heals it follows the new admin.
func TestQuorumLossPartition(t *testing.T) {
	cfg := testConfig()
	s := newSim(t, map[string]float64{"a": 0.9, "b": 0.5, "c": 0.6, "d": 0.3, "e": 0.2}, nil)
	s.agree(10 * time.Second)
	s.partition([]string{"a", "b"}, []string{"c", "d", "e"})
	from := s.now
	if got := s.agree0(cfg.Timeout+cfg.RoundTimeout, []string{"c", "d", "e"}, "a"); got != "c" {
		t.Errorf("majority side elected %s, want c", got)
	}
	if s.ms["a"].Leading() || s.count(KindQuorumLost, from) != 1 {
		t.Errorf("minority admin still leading (%v) or no quorum_lost event", s.ms["a"].Leading())
	}
	if s.maxLeading > 1 {
		t.Errorf("%d admins at once during the partition", s.maxLeading)
	}
	// The minority keeps trying, and fails, while the partition lasts.
	s.runFor(3 * cfg.Heartbeat)
	for _, id := range []string{"a", "b"} {
		if s.ms[id].Leading() || s.ms[id].Snapshot().Admin != "" {
			t.Errorf("%s in the minority: leading %v admin %q", id, s.ms[id].Leading(), s.ms[id].Snapshot().Admin)
		}
	}
	s.heal()
	if got := s.agree(cfg.Heartbeat + cfg.RoundTimeout); got != "c" {
		t.Errorf("after healing admin %s, want c", got)
	}
}

// agree0 waits until the given nodes agree on one leading admin other
// than old.
func (s *sim) agree0(within time.Duration, ids []string, old string) string {
	s.t.Helper()
	var admin string
	_, ok := s.run(within, func() bool {
		admin = s.ms[ids[0]].Snapshot().Admin
		for _, id := range ids {
			if s.ms[id].Snapshot().Admin != admin {
				return false
			}
		}
		return admin != "" && admin != old && s.ms[admin].Leading()
	})
	if !ok {
		s.t.Fatalf("%v never agreed", ids)
	}
	return admin
}

// TestTermsAreMonotonicFencingTokens: across failovers and a manual
// election every new admin has a higher term than all before, and no
// node's term ever goes down (sim.check asserts it after every step).
func TestTermsAreMonotonicFencingTokens(t *testing.T) {
	cfg := testConfig()
	s := newSim(t, map[string]float64{"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}, nil)
	var terms []uint64
	for round := 0; round < 3; round++ {
		a := s.agree(cfg.StartupWait + cfg.Timeout + cfg.RoundTimeout)
		terms = append(terms, s.ms[a].Term())
		s.runFor(cfg.Heartbeat)
		s.down[a] = true
		s.runFor(cfg.Tick)
		// Restart it fresh (it lost its state, and its term).
		s.add(a, 0.1, 0)
	}
	for i := 1; i < len(terms); i++ {
		if terms[i] <= terms[i-1] {
			t.Errorf("terms %v are not increasing", terms)
		}
	}
	// A node restarted with its saved term starts above it.
	s2 := newSim(t, map[string]float64{}, nil)
	s2.add("x", 0.5, 41)
	s2.agree(cfg.StartupWait + cfg.RoundTimeout)
	if got := s2.ms["x"].Term(); got != 42 {
		t.Errorf("term after a restart with term 41 = %d, want 42", got)
	}
}

// TestNewcomerDoesNotDisrupt: a node joining a cluster with an admin
// follows it even when it scores higher, and even when the heartbeats of
// its start-up wait are lost (its candidacy is answered by the admin).
func TestNewcomerDoesNotDisrupt(t *testing.T) {
	cfg := testConfig()
	for _, lostStartup := range []bool{false, true} {
		s := newSim(t, map[string]float64{"a": 0.5, "b": 0.4, "c": 0.3}, nil)
		s.agree(10 * time.Second)
		term := s.ms["a"].Term()
		s.add("n", 0.99, 0)
		if lostStartup {
			s.drop = func(from, to string, m Msg) bool { return to == "n" && s.ms["n"].Snapshot().Election == nil }
		}
		from := s.now
		s.run(cfg.StartupWait+cfg.Tick, nil)
		if stood := slices.Contains(s.started(from), TriggerNoAdmin); stood != lostStartup {
			t.Errorf("lost start-up heartbeats %v: newcomer stood for election: %v", lostStartup, stood)
		}
		s.drop = nil
		if got := s.agree(cfg.Resend + cfg.Heartbeat); got != "a" || s.ms["a"].Term() != term {
			t.Errorf("lost start-up heartbeats %v: admin %s term %d, want a term %d", lostStartup, got, s.ms["a"].Term(), term)
		}
		if s.maxLeading > 1 {
			t.Errorf("lost start-up heartbeats %v: %d admins at once", lostStartup, s.maxLeading)
		}
	}
}

// TestMessageLoss: with 30 % of messages lost at random the cluster still
// elects one admin at start-up and replaces it after its death; at 10 %
// the admin keeps its place.
func TestMessageLoss(t *testing.T) {
	cfg := testConfig()
	for seed := uint64(1); seed <= 5; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := newSim(t, map[string]float64{"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6, "e": 0.5}, nil)
		loss := 0.3
		s.drop = func(string, string, Msg) bool { return rng.Float64() < loss }
		first := s.agree(cfg.StartupWait + 10*cfg.RoundTimeout)
		// At 10 % loss the admin keeps its place: its lease needs one
		// endorsement from each of a majority every two heartbeats.
		loss = 0.1
		from := s.now + 1
		s.runFor(20 * cfg.Heartbeat)
		if !s.ms[first].Leading() || s.count(KindStartLeading, from) != 0 {
			t.Errorf("seed %d: admin %s lost its place under 10%% loss", seed, first)
		}
		loss = 0.3
		s.down[first] = true
		second := s.agree(cfg.Timeout + 10*cfg.RoundTimeout)
		if second == first {
			t.Errorf("seed %d: dead admin still agreed on", seed)
		}
		if s.maxLeading > 1 {
			t.Errorf("seed %d: %d admins at once", seed, s.maxLeading)
		}
	}
	// The winner message alone lost: the heartbeats that follow it carry
	// the news within a Resend.
	s := newSim(t, map[string]float64{"a": 0.9, "b": 0.8, "c": 0.7}, nil)
	s.drop = func(_, _ string, m Msg) bool { return m.Kind == KindWinner }
	s.agree(cfg.StartupWait + cfg.Collect + cfg.Resend + 2*cfg.Tick)
}

// TestIgnoresForgedAndStale: a message whose body names another node than
// its sender is ignored, as is a heartbeat of an older term.
func TestIgnoresForgedAndStale(t *testing.T) {
	s := newSim(t, map[string]float64{"a": 0.5, "b": 0.4}, nil)
	admin := s.agree(10 * time.Second)
	m := s.ms["b"]
	term := m.Term()
	if out := m.Step(Msg{Kind: KindWinner, From: "mallory", Node: "a", Term: term + 5, Score: 1}); out != nil || m.Term() != term {
		t.Errorf("forged winner accepted: %v, term %d", out, m.Term())
	}
	if out := m.Step(Msg{Kind: KindHeartbeat, From: "old", Node: "old", Term: term - 1, Score: 1}); m.Snapshot().Admin != admin {
		t.Errorf("stale heartbeat changed the admin: %v", out)
	}
	if out := m.Step(Msg{Kind: KindStartLeading, From: "a", Node: "a", Term: 99}); out != nil || m.Leading() {
		t.Errorf("an event kind was stepped: %v", out)
	}
}

// TestLateTimeoutJoinsTheElection: a follower that hears candidacies while
// its admin still seems alive joins that election when its own timer
// fires, knowing every candidate it heard, and votes for the best.
func TestLateTimeoutJoinsTheElection(t *testing.T) {
	s := newSim(t, map[string]float64{"a": 0.9, "f": 0.1}, nil)
	s.agree(10 * time.Second)
	s.down["a"] = true
	f := s.ms["f"]
	// Just before f times out: two candidacies for the next term.
	s.run(s.cfg.Timeout, func() bool { return f.Snapshot().SinceHeartbeat >= f.timeout-1 })
	term := f.Term() + 1
	for _, c := range []Msg{{Node: "x", Score: 0.8}, {Node: "y", Score: 0.5}} {
		c.Kind, c.From, c.Term, c.Trigger = KindCandidacy, c.Node, term, TriggerHeartbeatTimeout
		if out := f.Step(c); len(out) != 0 {
			t.Fatalf("candidacy while the admin seems alive: %v", out)
		}
	}
	var out []Msg
	for range 2 {
		out = append(out, f.Tick()...)
	}
	if e := f.Snapshot().Election; e == nil || e.Term != term || e.Candidates != 3 {
		t.Fatalf("election %+v, want term %d with 3 candidates", e, term)
	}
	for _, o := range out {
		if o.Kind == KindElectionStarted {
			t.Errorf("started its own election: %+v", o)
		}
	}
	for range int(f.collect) {
		out = append(out, f.Tick()...)
	}
	if v := f.Snapshot().Election; v == nil || v.Voted != "x" {
		t.Errorf("voted %+v, want x (the best candidate heard)", v)
	}
}
