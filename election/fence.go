package election

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// ErrStaleTerm is returned for an action carrying an admin term older than
// the highest this side has seen: it comes from a deposed admin.
var ErrStaleTerm = errors.New("stale admin term")

// TermHeader is the HTTP request header in which an admin's calls carry its
// term, the fencing token Fence.Guard checks.
const TermHeader = "Chorus-Admin-Term"

// Fence keeps the highest admin term seen and refuses actions of older
// terms. The driver feeds it every term it accepts; a server in front of a
// shared resource feeds it the terms of the requests it admits. The zero
// Fence is ready to use and safe for concurrent use.
type Fence struct {
	mu      sync.Mutex
	highest uint64
}

// Observe raises the highest term seen to term.
func (f *Fence) Observe(term uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.highest = max(f.highest, term)
}

// Highest returns the highest term seen.
func (f *Fence) Highest() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.highest
}

// Check refuses term, with ErrStaleTerm, when a higher one has been seen.
func (f *Fence) Check(term uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkLocked(term)
}

// Admit is Check followed by Observe, atomically: what a shared resource
// does with each fenced request.
func (f *Fence) Admit(term uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked(term); err != nil {
		return err
	}
	f.highest = max(f.highest, term)
	return nil
}

func (f *Fence) checkLocked(term uint64) error {
	if term < f.highest {
		return fmt.Errorf("%w: term %d, but term %d has an admin", ErrStaleTerm, term, f.highest)
	}
	return nil
}

// fenceError is the body of a refused request.
type fenceError struct {
	Error       string `json:"error"`
	HighestTerm uint64 `json:"highest_term"`
}

// Guard admits requests that carry TermHeader only when their term is not
// older than the highest seen (Admit), and answers 409 Conflict otherwise,
// 400 for a header that is not a term. Requests without the header are not
// an admin's and pass.
func (f *Fence) Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get(TermHeader)
		if v == "" {
			next.ServeHTTP(w, r)
			return
		}
		term, err := strconv.ParseUint(v, 10, 64)
		if err == nil && term == 0 {
			err = errors.New("must be at least 1")
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, fenceError{Error: fmt.Sprintf("%s: %q: %v", TermHeader, v, err), HighestTerm: f.Highest()})
			return
		}
		if err := f.Admit(term); err != nil {
			writeJSON(w, http.StatusConflict, fenceError{Error: err.Error(), HighestTerm: f.Highest()})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TermTransport adds TermHeader with Term to every request, so that a
// client used by an admin's duties carries its fencing token.
type TermTransport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	Term uint64
}

// RoundTrip implements http.RoundTripper.
func (t TermTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	r = r.Clone(r.Context())
	r.Header.Set(TermHeader, strconv.FormatUint(t.Term, 10))
	return base.RoundTrip(r)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
