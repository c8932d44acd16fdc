package router

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Match them with [errors.Is]; the router wraps them with
// the tier and replica they concern.
var (
	// ErrSaturated means a tier (or a backend, for example with HTTP 429
	// or 503) had no room for the request within its queue and deadline.
	ErrSaturated = errors.New("router: saturated")
	// ErrCircuitOpen means every replica of a tier had its circuit breaker
	// open.
	ErrCircuitOpen = errors.New("router: circuit open")
	// ErrPredictedLate means the tier was skipped because its queue wait
	// plus its recent TTFT p95 exceeded the request's remaining deadline.
	ErrPredictedLate = errors.New("router: predicted to miss the deadline")
	// ErrTruncated means a stream ended after at least one token had been
	// returned, without a finish reason. The error is a [*TruncatedError]
	// whose cause is the stall guard's error or the backend's (for
	// router/openai, openai.ErrIncomplete when the server cut the stream).
	ErrTruncated = errors.New("router: stream truncated")
	// ErrStalled is the cause of a truncation by the stall guard: no token
	// arrived within the tier's StallTimeout.
	ErrStalled = errors.New("router: stream stalled")
	// ErrTooSlow is the cause of a truncation by the stall guard: tokens
	// arrived slower than the tier's MinTokensPerSecond.
	ErrTooSlow = errors.New("router: stream too slow")
	// ErrUnknownTier means Request.Tier named a tier the router does not
	// have.
	ErrUnknownTier = errors.New("router: unknown tier")
	// ErrInvalidRequest means a Request field is out of range (for
	// example a negative MaxTokens).
	ErrInvalidRequest = errors.New("router: invalid request")
	// ErrInvalidOptions means [New] or [Router.Reconfigure] was given an
	// invalid [Options] field; the error is an [*OptionsError] naming it.
	ErrInvalidOptions = errors.New("router: invalid options")
	// ErrClosed is returned by a Router after Close.
	ErrClosed = errors.New("router: closed")
	// ErrEmptyStream means a backend ended a stream without producing any
	// text (with or without a finish reason). The router treats it as a
	// failure before the first token and falls back.
	ErrEmptyStream = errors.New("router: backend ended the stream without output")
)

// TruncatedError reports a stream cut after tokens had reached the caller.
// The router never falls back to another tier at that point; the caller
// decides what to do with the partial line. errors.Is(err, ErrTruncated)
// holds, and Unwrap returns the cause ([ErrStalled], [ErrTooSlow] or the
// backend's error).
type TruncatedError struct {
	Tier    string
	Replica string
	// Tokens is the number of deltas returned before the cut.
	Tokens int
	Cause  error
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("router: stream from %s/%s truncated after %d tokens: %v", e.Tier, e.Replica, e.Tokens, e.Cause)
}

// Is reports whether target is ErrTruncated.
func (e *TruncatedError) Is(target error) bool { return target == ErrTruncated }

// Unwrap returns the cause of the truncation.
func (e *TruncatedError) Unwrap() error { return e.Cause }

// AttemptError is the failure of one tier while routing a request.
type AttemptError struct {
	Tier    string
	Replica string // empty when no replica was chosen
	Err     error
}

func (e *AttemptError) Error() string {
	if e.Replica == "" {
		return fmt.Sprintf("tier %s: %v", e.Tier, e.Err)
	}
	return fmt.Sprintf("tier %s replica %s: %v", e.Tier, e.Replica, e.Err)
}

// Unwrap returns the attempt's error.
func (e *AttemptError) Unwrap() error { return e.Err }

// RouteError is returned when no tier of the chain produced a first token.
// It lists every attempt in order; errors.Is and errors.As look through all
// of them (for example errors.Is(err, ErrSaturated)).
type RouteError struct {
	Receipt  Receipt
	Attempts []*AttemptError
}

func (e *RouteError) Error() string {
	var b strings.Builder
	b.WriteString("router: no tier served the request")
	for i, a := range e.Attempts {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(a.Error())
	}
	return b.String()
}

// Unwrap returns the attempts' errors.
func (e *RouteError) Unwrap() []error {
	errs := make([]error, len(e.Attempts))
	for i, a := range e.Attempts {
		errs[i] = a
	}
	return errs
}

// SaturatedError is a refusal for lack of capacity: what a backend returns
// when it refuses a request (HTTP 429 or 503 from an OpenAI-compatible
// server), and what the router returns for a request its tier could not
// admit (queue full, or not admitted by the tier and the replicas' limiters
// within QueueTimeout). It matches [ErrSaturated]; the router falls back
// without counting it against the replica's circuit breaker.
type SaturatedError struct {
	// RetryAfter is the server's hint, zero when it gave none.
	RetryAfter time.Duration
	Err        error
}

func (e *SaturatedError) Error() string {
	if e.Err == nil {
		return ErrSaturated.Error()
	}
	return "router: saturated: " + e.Err.Error()
}

// Is reports whether target is ErrSaturated.
func (e *SaturatedError) Is(target error) bool { return target == ErrSaturated }

// Unwrap returns the backend's error.
func (e *SaturatedError) Unwrap() error { return e.Err }

// ErrorKind classifies failures in [Stats].
type ErrorKind int

// Error kinds counted by [Stats].
const (
	KindSaturated ErrorKind = iota
	KindCircuitOpen
	KindPredictedLate
	KindBackend
	KindTruncated
	KindDeadline
	KindCancelled
	numKinds
)

func (k ErrorKind) String() string {
	switch k {
	case KindSaturated:
		return "saturated"
	case KindCircuitOpen:
		return "circuit_open"
	case KindPredictedLate:
		return "predicted_late"
	case KindBackend:
		return "backend"
	case KindTruncated:
		return "truncated"
	case KindDeadline:
		return "deadline"
	case KindCancelled:
		return "cancelled"
	}
	return "unknown"
}
