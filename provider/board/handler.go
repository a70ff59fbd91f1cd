package board

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"chorus"
)

// MaxBodyBytes bounds a request body; a task with its description and a
// result with its output tail fit many times over.
const MaxBodyBytes = 1 << 20

// API paths, relative to the server root.
const (
	pathTasks    = "/api/v1/tasks"
	pathTask     = "/api/v1/task"
	pathEvents   = "/api/v1/task/events"
	pathClaim    = "/api/v1/task/claim"
	pathStart    = "/api/v1/task/start"
	pathComplete = "/api/v1/task/complete"
	pathFail     = "/api/v1/task/fail"
	pathCancel   = "/api/v1/task/cancel"
	pathRelease  = "/api/v1/task/release"
)

// Error codes in an error reply; the Client maps them back to the chorus
// sentinels.
const (
	codeAlreadyClaimed = "already_claimed"
	codeFenced         = "fenced"
	codeInvalid        = "invalid"
	codeNotFound       = "not_found"
	codeInternal       = "internal"
)

// Request and reply bodies. Task keys travel in their string form
// (task/board/<repo>/<number>) because a repository may contain a slash.
type (
	addReply struct {
		Task    chorus.Task `json:"task"`
		Created bool        `json:"created"`
	}
	taskReply struct {
		Task chorus.Task `json:"task"`
	}
	listReply struct {
		Tasks []chorus.Task `json:"tasks"`
	}
	eventsReply struct {
		Events []Event `json:"events"`
	}
	claimRequest struct {
		Key     string `json:"key"`
		AgentID string `json:"agent_id"`
	}
	claimReply struct {
		Fence int64 `json:"fence"`
	}
	fenceRequest struct { // start, release
		Key   string `json:"key"`
		Fence int64  `json:"fence"`
	}
	completeRequest struct {
		Key    string         `json:"key"`
		Fence  int64          `json:"fence"`
		Result *chorus.Result `json:"result"`
	}
	failRequest struct {
		Key    string `json:"key"`
		Fence  int64  `json:"fence"`
		Reason string `json:"reason"`
	}
	cancelRequest struct {
		Key    string `json:"key"`
		Reason string `json:"reason"`
	}
	errorReply struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
)

// Handler serves the board's JSON API:
//
//	POST /api/v1/tasks                  chorus.Task          -> {"task", "created"} (201 created, 200 existing)
//	GET  /api/v1/tasks?state=S&repo=R&limit=N                -> {"tasks"}
//	GET  /api/v1/task?key=task/board/R/N                     -> {"task"}
//	GET  /api/v1/task/events?key=K                           -> {"events"}
//	POST /api/v1/task/claim    {"key", "agent_id"}           -> {"fence"}
//	POST /api/v1/task/start    {"key", "fence"}              -> 204
//	POST /api/v1/task/complete {"key", "fence", "result"}    -> 204
//	POST /api/v1/task/fail     {"key", "fence", "reason"}    -> 204
//	POST /api/v1/task/cancel   {"key", "reason"}             -> 204
//	POST /api/v1/task/release  {"key", "fence"}              -> 204
//
// Errors are {"error": message, "code": code} with 400 "invalid", 404
// "not_found", 409 "already_claimed" or "fenced", or 500 "internal". Bodies
// over MaxBodyBytes, with unknown fields or with trailing data, and unknown
// query parameters are refused as invalid.
func (b *Board) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathTasks, b.handleAdd)
	mux.HandleFunc("GET "+pathTasks, b.handleList)
	mux.HandleFunc("GET "+pathTask, b.handleGet)
	mux.HandleFunc("GET "+pathEvents, b.handleEvents)
	mux.HandleFunc("POST "+pathClaim, b.handleClaim)
	mux.HandleFunc("POST "+pathStart, b.handleStart)
	mux.HandleFunc("POST "+pathComplete, b.handleComplete)
	mux.HandleFunc("POST "+pathFail, b.handleFail)
	mux.HandleFunc("POST "+pathCancel, b.handleCancel)
	mux.HandleFunc("POST "+pathRelease, b.handleRelease)
	return mux
}

func (b *Board) handleAdd(w http.ResponseWriter, r *http.Request) {
	var t chorus.Task
	if err := decodeBody(w, r, &t); err != nil {
		writeError(w, err)
		return
	}
	task, created, err := b.Add(r.Context(), t)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, addReply{Task: task, Created: created})
}

func (b *Board) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := onlyParams(q, "state", "repo", "limit"); err != nil {
		writeError(w, err)
		return
	}
	f := Filter{Repository: q.Get("repo")}
	for _, s := range q["state"] {
		f.States = append(f.States, chorus.TaskState(s))
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			writeError(w, fmt.Errorf("%w: limit: %q is not an integer", chorus.ErrInvalid, l))
			return
		}
		f.Limit = n
	}
	tasks, err := b.List(r.Context(), f)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, listReply{Tasks: tasks})
}

func (b *Board) handleGet(w http.ResponseWriter, r *http.Request) {
	key, err := queryKey(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	t, err := b.Get(r.Context(), key)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, taskReply{Task: t})
}

func (b *Board) handleEvents(w http.ResponseWriter, r *http.Request) {
	key, err := queryKey(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	events, err := b.Events(r.Context(), key)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, eventsReply{Events: events})
}

func (b *Board) handleClaim(w http.ResponseWriter, r *http.Request) {
	var req claimRequest
	key, err := decodeKeyed(w, r, &req, &req.Key)
	if err != nil {
		writeError(w, err)
		return
	}
	fence, err := b.Claim(r.Context(), key, req.AgentID)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, claimReply{Fence: fence})
}

func (b *Board) handleStart(w http.ResponseWriter, r *http.Request) {
	var req fenceRequest
	key, err := decodeKeyed(w, r, &req, &req.Key)
	if err == nil {
		err = b.Start(r.Context(), key, req.Fence)
	}
	writeDone(w, err)
}

func (b *Board) handleComplete(w http.ResponseWriter, r *http.Request) {
	var req completeRequest
	key, err := decodeKeyed(w, r, &req, &req.Key)
	if err == nil && req.Result == nil {
		err = fmt.Errorf("%w: result: must be present", chorus.ErrInvalid)
	}
	if err == nil {
		err = b.Complete(r.Context(), key, req.Fence, *req.Result)
	}
	writeDone(w, err)
}

func (b *Board) handleFail(w http.ResponseWriter, r *http.Request) {
	var req failRequest
	key, err := decodeKeyed(w, r, &req, &req.Key)
	if err == nil {
		err = b.Fail(r.Context(), key, req.Fence, req.Reason)
	}
	writeDone(w, err)
}

func (b *Board) handleCancel(w http.ResponseWriter, r *http.Request) {
	var req cancelRequest
	key, err := decodeKeyed(w, r, &req, &req.Key)
	if err == nil {
		err = b.Cancel(r.Context(), key, req.Reason)
	}
	writeDone(w, err)
}

func (b *Board) handleRelease(w http.ResponseWriter, r *http.Request) {
	var req fenceRequest
	key, err := decodeKeyed(w, r, &req, &req.Key)
	if err == nil {
		err = b.Release(r.Context(), key, req.Fence)
	}
	writeDone(w, err)
}

// decodeBody reads exactly one JSON object with only known fields from a
// body of at most MaxBodyBytes into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	switch err := dec.Decode(&json.RawMessage{}); {
	case errors.Is(err, io.EOF):
		return nil
	case tooLarge(err):
		return bodyError(err)
	default:
		return fmt.Errorf("%w: body: unexpected data after the JSON object", chorus.ErrInvalid)
	}
}

func tooLarge(err error) bool {
	var e *http.MaxBytesError
	return errors.As(err, &e)
}

// bodyError turns a decoding error into an invalid-input error naming the
// problem.
func bodyError(err error) error {
	switch {
	case tooLarge(err):
		return fmt.Errorf("%w: body: larger than %d bytes", chorus.ErrInvalid, MaxBodyBytes)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: body: must be a JSON object", chorus.ErrInvalid)
	}
	return fmt.Errorf("%w: body: %s", chorus.ErrInvalid, strings.TrimPrefix(err.Error(), "json: "))
}

// decodeKeyed decodes a request body into v and parses the key it holds.
func decodeKeyed(w http.ResponseWriter, r *http.Request, v any, key *string) (chorus.TaskKey, error) {
	if err := decodeBody(w, r, v); err != nil {
		return chorus.TaskKey{}, err
	}
	return parseKey(*key)
}

// queryKey parses the key query parameter, the only one allowed.
func queryKey(q url.Values) (chorus.TaskKey, error) {
	if err := onlyParams(q, "key"); err != nil {
		return chorus.TaskKey{}, err
	}
	return parseKey(q.Get("key"))
}

func parseKey(s string) (chorus.TaskKey, error) {
	if s == "" {
		return chorus.TaskKey{}, fmt.Errorf("%w: key: must not be empty", chorus.ErrInvalid)
	}
	return chorus.ParseTaskKey(s)
}

// onlyParams refuses query parameters other than names, so a misspelt
// filter is an error rather than silently ignored.
func onlyParams(q url.Values, names ...string) error {
	for p := range q {
		known := false
		for _, n := range names {
			known = known || p == n
		}
		if !known {
			return fmt.Errorf("%w: query: unknown parameter %q", chorus.ErrInvalid, p)
		}
	}
	return nil
}

// writeDone answers a transition: 204 on success, else the error.
func writeDone(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeError answers with the status and code err maps to.
func writeError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, codeInternal
	switch {
	case errors.Is(err, chorus.ErrNotFound):
		status, code = http.StatusNotFound, codeNotFound
	case errors.Is(err, chorus.ErrAlreadyClaimed):
		status, code = http.StatusConflict, codeAlreadyClaimed
	case errors.Is(err, chorus.ErrFenced):
		status, code = http.StatusConflict, codeFenced
	case errors.Is(err, chorus.ErrInvalid):
		status, code = http.StatusBadRequest, codeInvalid
	}
	writeJSON(w, status, errorReply{Error: err.Error(), Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is sent; a failed write means the client has gone and
	// there is no one left to tell.
	_ = json.NewEncoder(w).Encode(v)
}
