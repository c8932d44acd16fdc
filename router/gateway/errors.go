package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bodybroker/sdk/router"
)

// Sentinel errors. The gateway answers each with the HTTP status and
// OpenAI error object that OpenAI's clients expect; [Options.OnError]
// receives them wrapped, for errors.Is.
var (
	// ErrInvalidRequest means the request body is not a valid request
	// (HTTP 400, type "invalid_request_error"). The error is a
	// [*RequestError] naming the field.
	ErrInvalidRequest = errors.New("gateway: invalid request")
	// ErrTooLarge means the body exceeded Options.MaxRequestBytes
	// (HTTP 413).
	ErrTooLarge = errors.New("gateway: request body too large")
	// ErrUnauthenticated means the request carried no API key, or one the
	// authenticator refused (HTTP 401, code "invalid_api_key").
	ErrUnauthenticated = errors.New("gateway: unauthenticated")
	// ErrModelNotFound means the model names no tier, responsibility or
	// alias, or one the caller's key may not use (HTTP 404, code
	// "model_not_found"; like OpenAI, the gateway does not say which).
	ErrModelNotFound = errors.New("gateway: model not found")
	// ErrRateLimited means the caller's key is over its rate (HTTP 429
	// with Retry-After, code "rate_limit_exceeded").
	ErrRateLimited = errors.New("gateway: rate limited")
	// ErrClosed is returned by Close after the first call; a closed
	// gateway answers HTTP 503.
	ErrClosed = errors.New("gateway: closed")
)

// RequestError is a request body the gateway could not accept. It matches
// [ErrInvalidRequest].
type RequestError struct {
	// Param is the offending field as OpenAI names it ("messages[2].role"),
	// empty when the body as a whole is wrong.
	Param   string
	Message string
}

func (e *RequestError) Error() string {
	if e.Param == "" {
		return "gateway: invalid request: " + e.Message
	}
	return "gateway: invalid request: " + e.Param + ": " + e.Message
}

// Is reports whether target is ErrInvalidRequest.
func (e *RequestError) Is(target error) bool { return target == ErrInvalidRequest }

func invalid(param, format string, args ...any) error {
	return &RequestError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// apiError is an error as the gateway answers it: the HTTP status and the
// fields of OpenAI's error object.
type apiError struct {
	status     int
	typ        string
	code       string
	param      string
	message    string
	retryAfter time.Duration
	err        error // what Options.OnError sees
}

// OpenAI's error types.
const (
	typeInvalid = "invalid_request_error"
	typeAuth    = "authentication_error"
	typeRate    = "rate_limit_error"
	typeServer  = "server_error"
)

func errorFor(err error) *apiError {
	var re *RequestError
	switch {
	case errors.As(err, &re):
		return &apiError{status: http.StatusBadRequest, typ: typeInvalid, param: re.Param, message: re.Message, err: err}
	case errors.Is(err, ErrTooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, typ: typeInvalid, code: "request_too_large", message: strings.TrimPrefix(err.Error(), "gateway: "), err: err}
	case errors.Is(err, ErrUnauthenticated):
		return &apiError{status: http.StatusUnauthorized, typ: typeAuth, code: "invalid_api_key", message: "missing or invalid API key", err: err}
	case errors.Is(err, ErrModelNotFound), errors.Is(err, router.ErrUnknownTier):
		return &apiError{status: http.StatusNotFound, typ: typeInvalid, param: "model", code: "model_not_found",
			message: "the model does not exist or you do not have access to it", err: fmt.Errorf("%w: %w", ErrModelNotFound, err)}
	case errors.Is(err, router.ErrInvalidRequest):
		return &apiError{status: http.StatusBadRequest, typ: typeInvalid, message: strings.TrimPrefix(err.Error(), "router: "), err: fmt.Errorf("%w: %w", ErrInvalidRequest, err)}
	case errors.Is(err, ErrClosed), errors.Is(err, router.ErrClosed):
		return &apiError{status: http.StatusServiceUnavailable, typ: typeServer, code: "unavailable", message: "the gateway is shutting down", err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusGatewayTimeout, typ: typeServer, code: "timeout", message: "no tier answered before the deadline", err: err}
	}
	var route *router.RouteError
	if errors.As(err, &route) {
		return routeError(route)
	}
	var trunc *router.TruncatedError
	if errors.As(err, &trunc) {
		return &apiError{status: http.StatusBadGateway, typ: typeServer, code: "stream_truncated", message: truncatedMessage(trunc), err: err}
	}
	return &apiError{status: http.StatusInternalServerError, typ: typeServer, message: "internal error", err: err}
}

// routeError maps a request no tier served: 429 when every attempt was
// refused for capacity (with the largest Retry-After a backend hinted, or
// one second), 503 when a tier was down.
func routeError(e *router.RouteError) *apiError {
	saturated := len(e.Attempts) > 0
	var retry time.Duration
	for _, a := range e.Attempts {
		if !errors.Is(a.Err, router.ErrSaturated) {
			saturated = false
		}
		var se *router.SaturatedError
		if errors.As(a.Err, &se) {
			retry = max(retry, se.RetryAfter)
		}
	}
	if retry == 0 {
		retry = time.Second
	}
	if saturated {
		return &apiError{status: http.StatusTooManyRequests, typ: typeRate, code: "saturated",
			message: "every tier that could serve this model is at capacity; retry later", retryAfter: retry, err: e}
	}
	return &apiError{status: http.StatusServiceUnavailable, typ: typeServer, code: "unavailable",
		message: "every tier that could serve this model is unavailable; retry later", retryAfter: retry, err: e}
}

// truncatedMessage says why a stream was cut without passing on what the
// backend said (Options.OnError gets the whole error).
func truncatedMessage(e *router.TruncatedError) string {
	why := "the model server failed"
	switch {
	case errors.Is(e, router.ErrStalled):
		why = "the model stalled"
	case errors.Is(e, router.ErrTooSlow):
		why = "the model was too slow"
	}
	return fmt.Sprintf("the reply was cut after %d tokens: %s", e.Tokens, why)
}

// appendErrorObject appends {"error":{...}}.
func appendErrorObject(b []byte, e *apiError) []byte {
	b = append(b, `{"error":{"message":`...)
	b = appendString(b, e.message)
	b = append(b, `,"type":`...)
	b = appendString(b, e.typ)
	b = append(b, `,"param":`...)
	b = appendNullable(b, e.param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, e.code)
	return append(b, "}}"...)
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// writeError answers e before any of the response was written.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(e.status)
	w.Write(append(appendErrorObject(make([]byte, 0, 256), e), '\n'))
}
