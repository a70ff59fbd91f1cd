package election

import (
	"errors"
	"net/http"
)

// errorReply is the body of a failed request.
type errorReply struct {
	Error string `json:"error"`
}

// Routes registers the election's ops API on mux:
//
//	GET  /api/v1/election          the Status as JSON
//	POST /api/v1/election/trigger  a manual election: 202 with the Status,
//	                               409 when refused, 503 when not running
func (d *Driver) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/election", d.serveStatus)
	mux.HandleFunc("POST /api/v1/election/trigger", d.serveTrigger)
}

func (d *Driver) serveStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, d.Status())
}

func (d *Driver) serveTrigger(w http.ResponseWriter, r *http.Request) {
	err := d.Trigger(r.Context())
	switch {
	case err == nil:
		writeJSON(w, http.StatusAccepted, d.Status())
	case errors.Is(err, ErrRefused):
		writeJSON(w, http.StatusConflict, errorReply{Error: err.Error()})
	case errors.Is(err, ErrNotRunning):
		writeJSON(w, http.StatusServiceUnavailable, errorReply{Error: err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, errorReply{Error: err.Error()})
	}
}
