package dialogue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/identity"
)

// HTTP paths served by [Service.HTTPHandler]: the gRPC method names, so a
// client can switch transports without renaming anything.
const (
	PathSay       = "/" + ServiceName + "/Say"
	PathStreamSay = "/" + ServiceName + "/StreamSay"
)

// HTTPHandler returns the HTTP/JSON fallback for clients without a gRPC
// stack, with the same authentication ("Authorization: Bearer <token>"),
// limits and error codes as the gRPC service:
//
//   - POST [PathSay]: body a SayRequest in protojson, answer a SayResponse.
//   - POST [PathStreamSay]: body a StreamSayRequest; answer a
//     Server-Sent Events stream, one "data:" event per StreamSayResponse
//     (protojson, one line) until the one whose chunk is final. An error
//     after the stream has started arrives as an "event: error" whose data
//     is the error object below; the stream then ends.
//
// Errors are JSON {"code": "permission_denied", "message": "..."} with the
// HTTP status grpc-gateway uses for that code (400, 401, 403, 429, 503,
// 504, ...); so are routing errors: an unknown path is 404 "not_found",
// another method than POST is 405 "unimplemented" with "Allow: POST". Bodies larger than Limits.MaxMessageBytes are refused. When the
// client disconnects, the backend request is cancelled. Each event of a
// StreamSay answer must be taken by the connection within
// opts.SendTimeout (default [DefaultSendTimeout]), enforced with a write
// deadline: a client that stops reading (or pipelines requests behind a
// stream it does not read) has its stream ended and its backend request
// cancelled ([ErrSlowClient]). For a StreamSay answer these deadlines
// replace the http.Server's WriteTimeout, and they are cleared when the
// stream ends, so a keep-alive connection's next request starts afresh.
// opts.Authenticator is required: without one, HTTPHandler returns an
// [*OptionsError] rather than failing every request.
func (s *Service) HTTPHandler(opts HandlerOptions) (http.Handler, error) {
	if err := opts.validate(true); err != nil {
		return nil, err
	}
	h := &httpHandler{s: s, auth: opts.Authenticator, log: opts.Logger, sendTimeout: opts.SendTimeout}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathSay, h.say)
	mux.HandleFunc("POST "+PathStreamSay, h.streamSay)
	// Routing errors answer the same JSON as every other error, not
	// net/http's plain text.
	notAllowed := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, httpError{
			Code: codeName(codes.Unimplemented), Message: "method " + r.Method + " not allowed; use POST",
		})
	}
	mux.HandleFunc(PathSay, notAllowed)
	mux.HandleFunc(PathStreamSay, notAllowed)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, httpError{
			Code: codeName(codes.NotFound), Message: "no such path; the dialogue service serves POST " + PathSay + " and " + PathStreamSay,
		})
	})
	return h.recover(mux), nil
}

type httpHandler struct {
	s           *Service
	auth        identity.Authenticator
	log         *slog.Logger
	sendTimeout time.Duration
}

var (
	jsonOut = protojson.MarshalOptions{UseProtoNames: false, EmitUnpopulated: false}
	jsonIn  = protojson.UnmarshalOptions{DiscardUnknown: true}
)

func (h *httpHandler) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("dialogue: panic in HTTP handler", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// begin authenticates and decodes the body into m.
func (h *httpHandler) begin(w http.ResponseWriter, r *http.Request, m proto.Message) (context.Context, bool) {
	id, err := identity.FromHeader(r.Context(), h.auth, r.Header.Get("Authorization"))
	if err != nil {
		writeError(w, err)
		return nil, false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, &FieldError{Field: "Content-Type", Reason: "must be application/json"})
		return nil, false
	}
	limit := int64(h.s.opts.Limits.MaxMessageBytes)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, &FieldError{Field: "body", Reason: "larger than the message size limit", TooLarge: true})
		} else {
			writeError(w, &FieldError{Field: "body", Reason: "unreadable"})
		}
		return nil, false
	}
	if err := jsonIn.Unmarshal(body, m); err != nil {
		writeError(w, &FieldError{Field: "body", Reason: "not a valid JSON message: " + err.Error()})
		return nil, false
	}
	return identity.NewContext(r.Context(), id), true
}

func (h *httpHandler) say(w http.ResponseWriter, r *http.Request) {
	var req dialoguev1.SayRequest
	ctx, ok := h.begin(w, r, &req)
	if !ok {
		return
	}
	resp, err := h.s.Say(ctx, req.GetUtterance())
	if err != nil {
		writeError(w, err)
		return
	}
	b, err := jsonOut.Marshal(resp)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (h *httpHandler) streamSay(w http.ResponseWriter, r *http.Request) {
	var req dialoguev1.StreamSayRequest
	ctx, ok := h.begin(w, r, &req)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	// Each event gets sendTimeout to reach the connection. Where the
	// writer cannot take deadlines (http.ErrNotSupported), events are
	// unbounded. Clear the deadline at the end: without a WriteTimeout,
	// net/http would keep it for the connection's next request.
	deadlines := rc.SetWriteDeadline(time.Time{}) == nil
	if deadlines {
		defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	}
	deadline := func() {
		if deadlines {
			_ = rc.SetWriteDeadline(time.Now().Add(h.sendTimeout))
		}
	}
	// write writes b and flushes it to the client within the deadline.
	write := func(b []byte) error {
		deadline()
		_, err := w.Write(b)
		if err == nil {
			err = rc.Flush()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			h.s.slowClients.Add(1)
			return fmt.Errorf("%w: an event waited %v: %w", ErrSlowClient, h.sendTimeout, err)
		}
		return err
	}
	started := false
	var buf bytes.Buffer
	err := h.s.StreamSay(ctx, req.GetUtterance(), func(c *dialoguev1.Chunk) error {
		if !started {
			started = true
			hd := w.Header()
			hd.Set("Content-Type", "text/event-stream")
			hd.Set("Cache-Control", "no-cache")
			hd.Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
		}
		b, err := jsonOut.Marshal(&dialoguev1.StreamSayResponse{Chunk: c})
		if err != nil {
			return err
		}
		buf.Reset()
		buf.WriteString("data: ")
		buf.Write(b)
		buf.WriteString("\n\n")
		return write(buf.Bytes())
	})
	if err == nil {
		return
	}
	if !started {
		deadline()
		writeError(w, err)
		return
	}
	if r.Context().Err() != nil || errors.Is(err, ErrSlowClient) {
		return // the client has gone, or is not listening
	}
	b, _ := json.Marshal(errorBody(err))
	_ = write([]byte("event: error\ndata: " + string(b) + "\n\n"))
}

type httpError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorBody(err error) httpError {
	c := Code(err)
	msg := err.Error()
	if c == codes.Internal {
		msg = "internal error"
	}
	return httpError{Code: codeName(c), Message: msg}
}

// codeName is the snake_case name of a code, as the Connect protocol
// spells them ("permission_denied").
func codeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func writeError(w http.ResponseWriter, err error) {
	if Code(err) == codes.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bodybroker"`)
	}
	writeJSONError(w, httpStatus(Code(err)), errorBody(err))
}

func writeJSONError(w http.ResponseWriter, status int, e httpError) {
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
