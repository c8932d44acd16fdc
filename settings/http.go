package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bodybroker/sdk/identity"
)

// HTTP paths served by [Manager.Handler], relative to where it is mounted.
const (
	PathSettings  = "/settings"               // GET: resolved settings; PATCH: write changes
	PathExplain   = "/settings/explain/{key}" // GET: where a key's value came from
	PathReset     = "/settings/reset"         // POST: reset to defaults
	PathPreview   = "/settings/preview"       // POST: begin a preview
	PathPreviewID = "/settings/preview/{id}"  // POST: show values in the preview
	PathConfirm   = "/settings/preview/{id}/confirm"
	PathRevert    = "/settings/preview/{id}/revert"
)

// HandlerOptions configures [Manager.Handler]. The zero value is valid:
// callers are taken from identity.FromContext, set by the server's own
// authentication middleware.
type HandlerOptions struct {
	// Authenticator, if set, identifies the caller from the request's
	// "Authorization: Bearer <token>" header; a request it does not
	// accept is answered 401. When nil, the caller is the identity the
	// request's context carries (identity.NewContext, by a middleware in
	// front of the handler), and a request without one is answered 401.
	//
	// A player (identity.KindPlayer) reads and writes its own settings.
	// A service (identity.KindService) names the player with the
	// "player" query parameter, and its writes are [Manager.SetServer]'s
	// (TagServerOnly keys allowed).
	Authenticator identity.Authenticator
	// MaxBodyBytes bounds a request body; 0 means the Manager's
	// MaxDocumentBytes.
	MaxBodyBytes int
	// Logger receives internal errors; nil means the Manager's logger.
	Logger *slog.Logger
}

// Handler returns an http.Handler for game clients and services:
//
//   - GET [PathSettings]?platform=&device=&mode=: the caller's resolved
//     settings as [Exported] (values, display labels, revisions).
//   - PATCH [PathSettings]: body {"changes":[{"key":…,"value":…,"rev":…}]},
//     as [Manager.Set]; answers the [Result]. "rev" is the key's revision
//     from GET's "revs" (absent or 0: the client saw no stored value; -1:
//     write regardless).
//   - GET [PathExplain]: the key's [Explanation] (same query as GET).
//   - POST [PathReset]: body {"groups":[…]} (empty or absent: all);
//     answers the Result.
//   - POST [PathPreview]: body {"timeout":"30s","values":{…}} (both
//     optional); opens a preview and answers its [PreviewInfo].
//   - POST [PathPreviewID]: body {"values":{…}}: shows them; 204.
//   - POST [PathConfirm]: stores the preview; answers the Result.
//   - POST [PathRevert]: drops the preview; 204.
//
// Errors are the JSON object {"code": "...", "message": "...",
// "problems": [{"key": "...", "code": "...", "reason": "..."}],
// "conflicts": {"key": rev}} with "problems" for validation errors and
// "conflicts" (the keys' current revisions) for conflicts. Codes and
// statuses: invalid_argument 400 (problems' codes: unknown_key,
// wrong_type, out_of_range, not_allowed, binding_conflict, server_only,
// too_large), unauthenticated 401, not_found 404 (no such preview),
// conflict 409, too_large 413, resource_exhausted 429 (too many
// previews), unavailable 503 (closed), internal 500 (message withheld);
// routing errors too: an unknown path is not_found 404, another method
// unimplemented 405 with an Allow header.
// Request bodies are read up to HandlerOptions.MaxBodyBytes.
func (m *Manager) Handler(o HandlerOptions) http.Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = m.opts.MaxDocumentBytes
	}
	if o.Logger == nil {
		o.Logger = m.log
	}
	h := &handler{m: m, o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathSettings, h.auth(h.get))
	mux.HandleFunc("PATCH "+PathSettings, h.auth(h.patch))
	mux.HandleFunc("GET "+PathExplain, h.auth(h.explain))
	mux.HandleFunc("POST "+PathReset, h.auth(h.reset))
	mux.HandleFunc("POST "+PathPreview, h.auth(h.begin))
	mux.HandleFunc("POST "+PathPreviewID, h.auth(h.preview))
	mux.HandleFunc("POST "+PathConfirm, h.auth(h.confirm))
	mux.HandleFunc("POST "+PathRevert, h.auth(h.revert))
	// Routing errors answer the same JSON as every other error, not
	// net/http's plain text.
	for path, allow := range map[string]string{
		PathSettings: "GET, PATCH", PathExplain: "GET", PathReset: "POST",
		PathPreview: "POST", PathPreviewID: "POST", PathConfirm: "POST", PathRevert: "POST",
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, HTTPError{Code: "unimplemented", Message: "method " + r.Method + " not allowed; use " + allow})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, HTTPError{Code: "not_found", Message: "no such path"})
	})
	return mux
}

type handler struct {
	m *Manager
	o HandlerOptions
}

type request struct {
	w      http.ResponseWriter
	r      *http.Request
	player string
	caller identity.Identity
}

func (h *handler) auth(fn func(*request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req := &request{w: w, r: r}
		err := h.authenticate(req)
		if err == nil {
			err = fn(req)
		}
		if err != nil {
			h.writeError(w, err)
		}
	}
}

func (h *handler) authenticate(req *request) error {
	var id identity.Identity
	if h.o.Authenticator != nil {
		var err error
		if id, err = identity.FromHeader(req.r.Context(), h.o.Authenticator, req.r.Header.Get("Authorization")); err != nil {
			return err
		}
		req.r = req.r.WithContext(identity.NewContext(req.r.Context(), id))
	} else if c, ok := identity.FromContext(req.r.Context()); ok {
		id = c
	} else {
		return fmt.Errorf("%w: no identity in the request's context", identity.ErrUnauthenticated)
	}
	req.caller = id
	switch {
	case id.Trusted():
		req.player = req.r.URL.Query().Get("player")
	case id.Kind == identity.KindPlayer:
		req.player = id.ID
	default:
		return identity.ErrUnauthenticated
	}
	return checkPlayer(req.player)
}

func (h *handler) decode(req *request, v any) error {
	if ct := req.r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("%w: Content-Type must be application/json", ErrMalformed)
	}
	b, err := io.ReadAll(io.LimitReader(req.r.Body, int64(h.o.MaxBodyBytes)+1))
	if err != nil {
		return fmt.Errorf("%w: reading the body: %v", ErrMalformed, err)
	}
	if len(b) > h.o.MaxBodyBytes {
		return fmt.Errorf("%w: body over %d bytes", ErrTooLarge, h.o.MaxBodyBytes)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil // an empty body means the defaults
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the body", ErrMalformed)
	}
	return nil
}

func target(r *http.Request) Target {
	q := r.URL.Query()
	return Target{Platform: q.Get("platform"), Device: q.Get("device"), Mode: q.Get("mode")}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (h *handler) get(req *request) error {
	r, err := h.m.Get(req.r.Context(), req.player, target(req.r))
	if err != nil {
		return err
	}
	writeJSON(req.w, http.StatusOK, Export(h.m.schema, r))
	return nil
}

func (h *handler) explain(req *request) error {
	r, err := h.m.Get(req.r.Context(), req.player, target(req.r))
	if err != nil {
		return err
	}
	key := req.r.PathValue("key")
	e, ok := r.Explain(key)
	if !ok {
		return &ValidationError{Problems: []Problem{{Key: key, Reason: "unknown key", Err: ErrUnknownKey}}}
	}
	writeJSON(req.w, http.StatusOK, e)
	return nil
}

func (h *handler) write(req *request, changes []Change) (Result, error) {
	if req.caller.Trusted() {
		return h.m.SetServer(req.r.Context(), req.player, changes)
	}
	return h.m.Set(req.r.Context(), req.player, changes)
}

func (h *handler) patch(req *request) error {
	var body struct {
		Changes []Change `json:"changes"`
	}
	if err := h.decode(req, &body); err != nil {
		return err
	}
	res, err := h.write(req, body.Changes)
	if err != nil {
		return err
	}
	writeJSON(req.w, http.StatusOK, res)
	return nil
}

func (h *handler) reset(req *request) error {
	var body struct {
		Groups []string `json:"groups"`
	}
	if err := h.decode(req, &body); err != nil {
		return err
	}
	res, err := h.m.ResetToDefaults(req.r.Context(), req.player, body.Groups...)
	if err != nil {
		return err
	}
	writeJSON(req.w, http.StatusOK, res)
	return nil
}

func (h *handler) begin(req *request) error {
	var body struct {
		Timeout string         `json:"timeout"`
		Values  map[string]any `json:"values"`
	}
	if err := h.decode(req, &body); err != nil {
		return err
	}
	var timeout time.Duration
	if body.Timeout != "" {
		d, err := time.ParseDuration(body.Timeout)
		if err != nil || d <= 0 || d > 10*time.Minute {
			return &ValidationError{Problems: []Problem{{Key: "timeout", Reason: "want a duration up to 10m", Err: ErrOutOfRange}}}
		}
		timeout = d
	}
	p, err := h.m.Begin(req.r.Context(), req.player, timeout)
	if err != nil {
		return err
	}
	if len(body.Values) > 0 {
		if err := h.m.Preview(req.r.Context(), req.player, p.ID, body.Values); err != nil {
			_ = h.m.Revert(context.WithoutCancel(req.r.Context()), req.player, p.ID)
			return err
		}
	}
	writeJSON(req.w, http.StatusCreated, p)
	return nil
}

func (h *handler) preview(req *request) error {
	var body struct {
		Values map[string]any `json:"values"`
	}
	if err := h.decode(req, &body); err != nil {
		return err
	}
	if err := h.m.Preview(req.r.Context(), req.player, req.r.PathValue("id"), body.Values); err != nil {
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) confirm(req *request) error {
	res, err := h.m.Confirm(req.r.Context(), req.player, req.r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(req.w, http.StatusOK, res)
	return nil
}

func (h *handler) revert(req *request) error {
	if err := h.m.Revert(req.r.Context(), req.player, req.r.PathValue("id")); err != nil {
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

// HTTPError is the JSON error object the handler writes.
type HTTPError struct {
	Code      string           `json:"code"`
	Message   string           `json:"message"`
	Problems  []HTTPProblem    `json:"problems,omitempty"`
	Conflicts map[string]int64 `json:"conflicts,omitempty"`
}

// HTTPProblem is one key's problem in an HTTPError.
type HTTPProblem struct {
	Key    string `json:"key"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

var problemCodes = []struct {
	err  error
	code string
}{
	{ErrUnknownKey, "unknown_key"}, {ErrWrongType, "wrong_type"}, {ErrOutOfRange, "out_of_range"},
	{ErrNotAllowed, "not_allowed"}, {ErrBindingConflict, "binding_conflict"}, {ErrServerOnly, "server_only"},
	{ErrTooLarge, "too_large"},
}

func (h *handler) writeError(w http.ResponseWriter, err error) {
	body := HTTPError{Message: err.Error()}
	status := http.StatusBadRequest
	var ve *ValidationError
	var ce *ConflictError
	switch {
	case errors.Is(err, identity.ErrUnauthenticated):
		status, body.Code, body.Message = http.StatusUnauthorized, "unauthenticated", "unauthenticated"
		w.Header().Set("WWW-Authenticate", `Bearer realm="bodybroker"`)
	case errors.As(err, &ve):
		body.Code = "invalid_argument"
		for _, p := range ve.Problems {
			hp := HTTPProblem{Key: p.Key, Reason: p.Reason, Code: "invalid"}
			for _, pc := range problemCodes {
				if errors.Is(p.Err, pc.err) {
					hp.Code = pc.code
					break
				}
			}
			body.Problems = append(body.Problems, hp)
		}
	case errors.As(err, &ce):
		status, body.Code = http.StatusConflict, "conflict"
		body.Conflicts = map[string]int64{}
		for _, k := range ce.Keys {
			body.Conflicts[k] = ce.Current[k].Rev
		}
	case errors.Is(err, ErrTooLarge):
		status, body.Code = http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrBadPlayer):
		body.Code = "invalid_argument"
	case errors.Is(err, ErrNoPreview):
		status, body.Code = http.StatusNotFound, "not_found"
	case errors.Is(err, ErrPreviewLimit):
		status, body.Code = http.StatusTooManyRequests, "resource_exhausted"
	case errors.Is(err, ErrClosed):
		status, body.Code = http.StatusServiceUnavailable, "unavailable"
	default:
		h.o.Logger.Error("settings: request failed", "err", err)
		status, body.Code, body.Message = http.StatusInternalServerError, "internal", "internal error"
	}
	writeJSON(w, status, body)
}
