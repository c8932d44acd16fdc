package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bodybroker/sdk/router"
)

// Sentinel errors, wrapped by [*StreamError].
var (
	// ErrMalformed means a stream chunk or response body was not the JSON
	// the OpenAI API defines.
	ErrMalformed = errors.New("openai: malformed response")
	// ErrIncomplete means the server's response ended before it was
	// complete: a stream whose connection closed or reset before
	// "data: [DONE]", or that sent [DONE] before a finish reason; a
	// non-streaming body cut while it was read. It says nothing about
	// whether tokens had reached the caller; the router reports a cut
	// after the first token as router.ErrTruncated, with this error as
	// the cause.
	ErrIncomplete = errors.New("openai: incomplete response")
	// ErrRedirect means the server redirected the request to another host
	// (or scheme), which a Model refuses so that its API key never leaves
	// the configured server.
	ErrRedirect = errors.New("openai: redirect to another host refused")
	// ErrClosed is returned by a Model after Close and by a stream's Recv
	// after its Close.
	ErrClosed = errors.New("openai: closed")
)

// APIError is an error reported by the server: an HTTP status with an
// OpenAI error body, or an error payload inside a stream (StatusCode 0).
// HTTP 429 and 503 come wrapped in a *router.SaturatedError, so that
// errors.Is(err, router.ErrSaturated) holds and the router falls back
// without counting a breaker failure.
type APIError struct {
	StatusCode int
	Type       string
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("openai: ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	} else {
		b.WriteString("error in stream")
	}
	if e.Type != "" {
		b.WriteString(" (" + e.Type + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// StreamError reports a response that could not be read to its end: an
// incomplete one ([ErrIncomplete]) or a malformed chunk ([ErrMalformed]).
// Unwrap returns the sentinel and the underlying cause.
type StreamError struct {
	Kind  error  // ErrIncomplete or ErrMalformed
	Data  string // the offending chunk (malformed), at most 256 bytes
	Cause error
}

func (e *StreamError) Error() string {
	s := e.Kind.Error()
	if e.Data != "" {
		s += fmt.Sprintf(" (chunk %q)", e.Data)
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the kind and the cause.
func (e *StreamError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

func malformed(data []byte, cause error) *StreamError {
	if len(data) > 256 {
		data = data[:256]
	}
	return &StreamError{Kind: ErrMalformed, Data: string(data), Cause: cause}
}

// errorBody is the error object of OpenAI ({"error": {...}}) and of older
// vLLM versions ({"object": "error", "message": ...}).
type errorBody struct {
	Object  string          `json:"object"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
	Error   *errorBody      `json:"error"`
}

func (b *errorBody) apiError(status int) *APIError {
	e := b
	for depth := 0; e.Error != nil && e.Message == "" && depth < 3; depth++ {
		e = e.Error
	}
	code := strings.Trim(string(e.Code), `"`)
	if code == "null" {
		code = ""
	}
	return &APIError{StatusCode: status, Type: e.Type, Code: code, Message: e.Message}
}

// httpError builds the error for a non-200 response from its body.
func httpError(resp *http.Response, body []byte) error {
	var eb errorBody
	ae := &APIError{StatusCode: resp.StatusCode}
	if json.Unmarshal(body, &eb) == nil && (eb.Error != nil || eb.Message != "") {
		ae = eb.apiError(resp.StatusCode)
	} else if len(body) > 0 {
		msg := string(body)
		if len(msg) > 256 {
			msg = msg[:256]
		}
		ae.Message = strings.TrimSpace(msg)
	}
	ae.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		return &router.SaturatedError{RetryAfter: ae.RetryAfter, Err: ae}
	}
	return ae
}

// MaxRetryAfter is the longest Retry-After hint an [APIError] (and a
// router.SaturatedError) reports; a longer one is clamped to it.
const MaxRetryAfter = time.Hour

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || secs > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}
