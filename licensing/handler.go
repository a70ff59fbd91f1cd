package licensing

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"chorus"
)

// maxBodyBytes bounds a request body; every request is a few hundred bytes.
const maxBodyBytes = 64 << 10

// Error codes in ErrorBody.Code, one per sentinel.
const (
	CodeInvalid        = "invalid"
	CodeBadToken       = "bad_token"
	CodeUnauthorized   = "unauthorized"
	CodeUnknownLicense = "unknown_license"
	CodeRevoked        = "revoked"
	CodeExpired        = "expired"
	CodeWrongCluster   = "wrong_cluster"
	CodeSeatsExhausted = "seats_exhausted"
	CodeLeaseLost      = "lease_lost"
	CodeInternal       = "internal"
)

// codes maps sentinels to codes and HTTP statuses, most specific first.
var codes = []struct {
	err    error
	code   string
	status int
}{
	{chorus.ErrInvalid, CodeInvalid, http.StatusBadRequest},
	{ErrBadToken, CodeBadToken, http.StatusUnauthorized},
	{ErrUnauthorized, CodeUnauthorized, http.StatusUnauthorized},
	{ErrUnknownLicense, CodeUnknownLicense, http.StatusNotFound},
	{ErrRevoked, CodeRevoked, http.StatusForbidden},
	{ErrExpired, CodeExpired, http.StatusForbidden},
	{ErrWrongCluster, CodeWrongCluster, http.StatusForbidden},
	{ErrSeatsExhausted, CodeSeatsExhausted, http.StatusConflict},
	{ErrLeaseLost, CodeLeaseLost, http.StatusConflict},
}

// ErrorBody is every error response.
type ErrorBody struct {
	// Error is the message, naming the field or the license.
	Error string `json:"error"`
	// Code is one of the Code* constants.
	Code string `json:"code"`
	// Field is the JSON field at fault, for CodeInvalid.
	Field string `json:"field,omitempty"`
}

// StatusResponse is GET /status.
type StatusResponse struct {
	Authority AuthorityInfo `json:"authority"`
	// Licenses holds the license asked for with ?license_id=, or, with
	// the admin token, every license.
	Licenses []LicenseStatus `json:"licenses,omitempty"`
}

// Handler serves the authority's HTTP API:
//
//	POST /activate                 ActivateRequest   -> Grant
//	POST /heartbeat                HeartbeatRequest  -> Grant
//	POST /deactivate               DeactivateRequest -> {"released": true}
//	GET  /status[?license_id=ID]   StatusResponse (every license with the admin token)
//	POST /licenses                 IssueRequest -> License        (admin)
//	POST /licenses/{id}/revoke     -> License                     (admin)
//
// Admin requests carry "Authorization: Bearer <AdminToken>". Errors are
// ErrorBody with a 4xx or 5xx status.
func (a *Authority) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /activate", func(w http.ResponseWriter, r *http.Request) {
		var req ActivateRequest
		if !decode(w, r, &req) {
			return
		}
		g, err := a.Activate(r.Context(), req)
		reply(w, http.StatusOK, g, err)
	})
	mux.HandleFunc("POST /heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var req HeartbeatRequest
		if !decode(w, r, &req) {
			return
		}
		g, err := a.Heartbeat(r.Context(), req)
		reply(w, http.StatusOK, g, err)
	})
	mux.HandleFunc("POST /deactivate", func(w http.ResponseWriter, r *http.Request) {
		var req DeactivateRequest
		if !decode(w, r, &req) {
			return
		}
		err := a.Deactivate(r.Context(), req)
		reply(w, http.StatusOK, struct {
			Released bool `json:"released"`
		}{true}, err)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		resp := StatusResponse{Authority: a.Info()}
		if id := r.URL.Query().Get("license_id"); id != "" {
			st, err := a.Status(r.Context(), id)
			if err != nil {
				writeError(w, err)
				return
			}
			resp.Licenses = []LicenseStatus{st}
			reply(w, http.StatusOK, resp, nil)
			return
		}
		if r.Header.Get("Authorization") != "" {
			if err := a.admin(r); err != nil {
				writeError(w, fmt.Errorf("status: %w", err))
				return
			}
			ls, err := a.List(r.Context())
			if err != nil {
				writeError(w, err)
				return
			}
			resp.Licenses = ls
		}
		reply(w, http.StatusOK, resp, nil)
	})
	mux.HandleFunc("POST /licenses", func(w http.ResponseWriter, r *http.Request) {
		if err := a.admin(r); err != nil {
			writeError(w, fmt.Errorf("issue license: %w", err))
			return
		}
		var req IssueRequest
		if !decode(w, r, &req) {
			return
		}
		l, err := a.Issue(r.Context(), req)
		reply(w, http.StatusCreated, l, err)
	})
	mux.HandleFunc("POST /licenses/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		if err := a.admin(r); err != nil {
			writeError(w, fmt.Errorf("revoke license: %w", err))
			return
		}
		l, err := a.Revoke(r.Context(), r.PathValue("id"))
		reply(w, http.StatusOK, l, err)
	})
	return mux
}

// admin checks the bearer token in constant time.
func (a *Authority) admin(r *http.Request) error {
	if a.cfg.AdminToken == "" {
		return fmt.Errorf("%w: this authority has no admin token configured, so operator actions are only available in process", ErrUnauthorized)
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.cfg.AdminToken)) != 1 {
		return fmt.Errorf("%w: send \"Authorization: Bearer <admin token>\" with this authority's admin token", ErrUnauthorized)
	}
	return nil
}

// decode reads one JSON object strictly into v; on failure it answers 400
// naming the field and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	field := "body"
	var ute *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ute):
		field = ute.Field
		err = fmt.Errorf("must be a JSON %s, got %s", ute.Type, ute.Value)
	case errors.As(err, &mbe):
		err = fmt.Errorf("larger than %d bytes", maxBodyBytes)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		err = errors.New("unknown field")
	case errors.Is(err, io.EOF):
		err = errors.New("empty; want a JSON object")
	}
	writeError(w, &FieldError{Field: field, Msg: err.Error()})
	return false
}

func reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, status, v)
}

func writeError(w http.ResponseWriter, err error) {
	body := ErrorBody{Error: err.Error(), Code: CodeInternal}
	status := http.StatusInternalServerError
	for _, c := range codes {
		if errors.Is(err, c.err) {
			body.Code, status = c.code, c.status
			break
		}
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		body.Field = fe.Field
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
