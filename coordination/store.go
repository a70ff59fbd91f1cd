package coordination

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// StoreFile is the store's file name under its directory.
const StoreFile = "coordination.json"

// Escalation is a session handed to humans, as GET /api/v1/escalations
// lists it.
type Escalation struct {
	SessionID     string    `json:"session_id"`
	Kind          string    `json:"kind,omitempty"`
	TaskKeys      []string  `json:"task_keys"`
	Participants  []string  `json:"participants,omitempty"`
	Reason        string    `json:"reason"`
	RequiresHuman bool      `json:"requires_human"`
	Plan          string    `json:"plan,omitempty"`
	Messages      int       `json:"messages"`
	Agreements    int       `json:"agreements"`
	OpenedAt      time.Time `json:"opened_at,omitzero"`
	EscalatedAt   time.Time `json:"escalated_at"`
	// ReportedBy is the peer id that published the escalation_trigger
	// ("" when this node did).
	ReportedBy string `json:"reported_by,omitempty"`
}

// Record is a closed session, kept so that a restarted node neither
// forgets an outcome nor opens a session again for the same tasks.
type Record struct {
	SessionID  string    `json:"session_id"`
	Kind       string    `json:"kind,omitempty"`
	TaskKeys   []string  `json:"task_keys"`
	Outcome    string    `json:"outcome"`
	Plan       string    `json:"plan,omitempty"`
	Template   bool      `json:"template,omitempty"`
	Agreements int       `json:"agreements"`
	ClosedAt   time.Time `json:"closed_at"`
}

// storeState is the file's content.
type storeState struct {
	Version     int          `json:"version"`
	Escalations []Escalation `json:"escalations"`
	Sessions    []Record     `json:"sessions"`
}

const storeVersion = 1

// Store keeps escalations and closed sessions in one JSON file under a
// directory, rewritten whole on every change (written to a temporary
// file, synced, renamed over the old one, directory synced), so a crash
// leaves either the old or the new file. It is safe for concurrent use.
type Store struct {
	path string

	mu    sync.Mutex
	state storeState
}

// OpenStore opens (creating dir) the store in dir. A file that does not
// parse is an error naming it; it is never overwritten.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open coordination store: %w", err)
	}
	s := &Store{path: filepath.Join(dir, StoreFile), state: storeState{Version: storeVersion}}
	data, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("open coordination store: %w", err)
	}
	if err := json.Unmarshal(data, &s.state); err != nil {
		return nil, fmt.Errorf("open coordination store %s: not valid JSON: %w", s.path, err)
	}
	if s.state.Version != storeVersion {
		return nil, fmt.Errorf("open coordination store %s: version %d, this build reads %d", s.path, s.state.Version, storeVersion)
	}
	return s, nil
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// AddEscalation stores e unless an escalation of the same session is
// already there; it reports whether e was added.
func (s *Store) AddEscalation(e Escalation) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.SessionID == "" {
		return false, errors.New("add escalation: session_id: missing")
	}
	if slices.ContainsFunc(s.state.Escalations, func(o Escalation) bool { return o.SessionID == e.SessionID }) {
		return false, nil
	}
	next := s.state
	next.Escalations = append(slices.Clone(s.state.Escalations), e)
	if err := s.save(next); err != nil {
		return false, fmt.Errorf("add escalation %s: %w", e.SessionID, err)
	}
	s.state = next
	return true, nil
}

// AddRecord stores a closed session unless it is already there; it
// reports whether r was added.
func (s *Store) AddRecord(r Record) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.SessionID == "" {
		return false, errors.New("add session record: session_id: missing")
	}
	if slices.ContainsFunc(s.state.Sessions, func(o Record) bool { return o.SessionID == r.SessionID }) {
		return false, nil
	}
	next := s.state
	next.Sessions = append(slices.Clone(s.state.Sessions), r)
	if err := s.save(next); err != nil {
		return false, fmt.Errorf("add session record %s: %w", r.SessionID, err)
	}
	s.state = next
	return true, nil
}

// Escalations returns every escalation, oldest first (by EscalatedAt,
// then session id).
func (s *Store) Escalations() []Escalation {
	s.mu.Lock()
	out := append([]Escalation{}, s.state.Escalations...)
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Escalation) int {
		if c := a.EscalatedAt.Compare(b.EscalatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.SessionID, b.SessionID)
	})
	return out
}

// Escalation returns the escalation of one session.
func (s *Store) Escalation(sessionID string) (Escalation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.state.Escalations, func(e Escalation) bool { return e.SessionID == sessionID })
	if i < 0 {
		return Escalation{}, false
	}
	return s.state.Escalations[i], true
}

// Records returns every closed session, oldest first (by ClosedAt, then
// session id).
func (s *Store) Records() []Record {
	s.mu.Lock()
	out := append([]Record{}, s.state.Sessions...)
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Record) int {
		if c := a.ClosedAt.Compare(b.ClosedAt); c != 0 {
			return c
		}
		return strings.Compare(a.SessionID, b.SessionID)
	})
	return out
}

// save writes st atomically; the caller holds mu.
func (s *Store) save(st storeState) error {
	if st.Escalations == nil {
		st.Escalations = []Escalation{}
	}
	if st.Sessions == nil {
		st.Sessions = []Record{}
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, StoreFile+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		return errors.Join(err, removeIfExists(tmp))
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Handler serves GET /api/v1/escalations (a JSON list, oldest first) and
// GET /api/v1/escalations/{session_id} (one, or 404).
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/escalations", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Escalations())
	})
	mux.HandleFunc("GET /api/v1/escalations/{id}", func(w http.ResponseWriter, r *http.Request) {
		e, ok := s.Escalation(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("session_id: no escalation of session %q", r.PathValue("id"))})
			return
		}
		writeJSON(w, http.StatusOK, e)
	})
	return mux
}

// apiError is the body of an error reply.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
