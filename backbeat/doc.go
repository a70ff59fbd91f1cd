// Package backbeat is the cluster's operation telemetry (SPEC section 12):
// a pulse the admin publishes every beat, a beat clock on every worker
// locked to it, and StatusClaims about each operation the workers drive,
// summarised by the admin once a bar.
//
// The model. Time is counted in beats at a tempo (beats per minute: 2 in
// production, a beat every 30 s; faster in dev and tests) and beats are
// grouped in bars (120 beats by default, an hour at 2 BPM). Each bar has
// three phases by position: plan for the first quarter, execute for the
// middle half, review for the last quarter (beats 0-29, 30-89 and 90-119
// of a 120-beat bar; see PhaseOf). A bar's frames and its report carry the
// window id "<cluster_id>/bar/<bar>".
//
// The package has four pure cores, none with a clock, goroutine or I/O of
// its own (time is passed in, so tests run on a virtual clock), and one
// driver:
//
//   - Pulse (admin): the beat schedule. Beat n is due one interval of beat
//     n-1's tempo after beat n-1 was due, however late the driver wakes,
//     so the schedule does not drift; a driver more than a beat late skips
//     the beats in between (beat_index keeps counting elapsed beats). A
//     tempo change is stepped: each beat moves at most ±10 % from the one
//     before (StepTempo). Each frame has hlc (an HLC reading), deadline_at
//     (when the next beat is due) and tempo_bpm (the tempo of its interval).
//   - Follower (every worker): the beat clock. It anchors on the latest
//     frame and its arrival time, corrected by a quarter of each frame's
//     error (LockGain); it expects frame n at anchor + (schedule(n) -
//     schedule(anchor)), where a frame's schedule time is deadline_at minus
//     one interval of its tempo, so lost frames and tempo changes do not
//     disturb the expectation. tempo_drift_ms is arrival minus expectation.
//     With no frame for MissedBeats (3) expected beats it is degraded: it
//     keeps counting beats on its own clock at the last tempo heard, and
//     the next frame locks it again. A frame a quarter of a beat or more
//     off, or with a beat index that goes backwards, starts a new timeline
//     (a relock) instead of being averaged in.
//   - Tracker (every worker): each operation (task key) through queued,
//     claimed, planning, executing, reviewing, done, with a beat budget
//     counted down every beat (overrun flagged once), emitting StatusClaims
//     on every change and once a bar (see Tracker for the cadence).
//   - Aggregator (admin): a bar's claims cut into a BarReport when the
//     next bar begins: agents heard, the latest claim per operation counted
//     by state, overruns, the largest drift reported, the tempo.
//
// Node drives the cores over the gossip topic CHORUS/backbeat/v1. While
// its IsAdmin says so it publishes the pulse (continuing the timeline its
// own beat clock holds, so the beat index runs on across a change of
// admin), aggregates claims and publishes a BarReport per bar; always it
// follows the pulse (as admin, its own frames, locally), beats its tracker
// from its beat clock and publishes its claims. Messages published before
// the gossip mesh forms are lost; the design tolerates lost frames (they
// are counted as missed and the beat clock runs on) and lost claims (every
// active operation claims again each bar).
//
// Invariants:
//   - A pulse's beat_index increases by at least one per frame; its tempo
//     changes by at most 10 % between consecutive frames.
//   - A follower's beat index never decreases except on a relock to a
//     timeline whose beat index went back.
//   - An operation's phase never moves backwards except to claimed (the
//     task placed again); beats_left is never negative and overrun, once
//     set, stays set.
//   - Every claim and report the node publishes passes its gossip Validate.
//
// Concurrency: HLC is safe for concurrent use. Pulse, Follower, Tracker
// and Aggregator are plain state machines, not safe for concurrent use.
// Node guards them with one mutex; its methods (Advance, Finish,
// SetBlocked, SetHelping, Snapshot, Check) are safe from any goroutine,
// before, during and after Run. Run must not be called twice at once; it
// may be called again after it returned. Received messages are handed from
// the subscription's goroutine to Run's through a bounded inbox (a full
// inbox drops, counted).
package backbeat
