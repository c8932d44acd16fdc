package router

import "time"

// Limiter is a replica's admission seam: it decides when a queued request
// may start on the replica, counting requests, tokens or both, and learns
// from how each request went. Set it on [Replica.Limiter]; the package
// github.com/bodybroker/sdk/batching provides an adaptive one.
//
// The router keeps one queue per tier; a Limiter never queues. When the
// tier's head request could start on a replica, the router asks that
// replica's Limiter; a refusal leaves the request queued (or lets it try
// another replica), and the router asks again whenever a request ends on
// the tier, or on any replica with a Limiter (one Limiter may gate
// replicas of several tiers that share an engine). A Limiter should admit
// a request when it has nothing in flight; one that refuses then leaves
// the request waiting until its QueueTimeout. Waiting for a Limiter counts toward the tier's QueueTimeout
// and the request's deadline, never toward the stall guard or the TTFT
// statistics; a request the limiters never admit in time fails with a
// [*SaturatedError], which the circuit breaker does not count against the
// replica.
//
// Implementations must be safe for concurrent use (one Limiter may serve a
// replica in several configurations after [Router.Reconfigure]), fast and
// non-blocking: the router calls them with a tier lock held.
type Limiter interface {
	// TryAcquire reports whether the request may start now. True means
	// it has started: it counts as in flight until the matching Release.
	TryAcquire(a Admission) bool
	// Release reports that a request TryAcquire admitted has finished,
	// with the same Admission and how it went.
	Release(a Admission, o LimitOutcome)
}

// Admission describes a request to a [Limiter].
type Admission struct {
	// Tokens is the request's estimated size in tokens: its prompt
	// estimate ([Request.PromptTokens], or one token per 4 bytes of
	// message text when that is zero) plus its reply limit
	// ([Request.MaxTokens] after the tier's defaults).
	Tokens     int
	Importance Importance
}

// LimitOutcome is how an admitted request went, for a [Limiter] to learn
// from. The zero value is a request that ended without a latency signal.
type LimitOutcome struct {
	Result LimitResult
	// TTFT is the time from sending the request to its first token; zero
	// when none arrived. Queueing is not included.
	TTFT time.Duration
	// ITL is the mean gap between later tokens; zero when there were
	// fewer than two.
	ITL time.Duration
	// Total is the time from sending the request to its end.
	Total time.Duration
	// Tokens is the number of reply tokens (text deltas when the backend
	// reported no usage).
	Tokens int
}

// LimitResult classifies a finished request for a [Limiter].
type LimitResult int

const (
	// LimitIgnored: the request ended without a load signal (the caller
	// cancelled, it never started on the backend, or it failed for a
	// reason unrelated to load).
	LimitIgnored LimitResult = iota
	// LimitSucceeded: the request completed; TTFT, ITL and Total apply.
	LimitSucceeded
	// LimitOverloaded: the backend showed overload (it refused with HTTP
	// 429/503, a [*SaturatedError], or stalled).
	LimitOverloaded
)

// promptTokens estimates a request's prompt size in tokens.
func promptTokens(req *Request) int {
	if req.PromptTokens > 0 {
		return req.PromptTokens
	}
	n := 0
	for i := range req.Messages {
		n += len(req.Messages[i].Content)
	}
	return (n + 3) / 4
}

// maxTokensFor is the reply limit prepare will give req on t.
func (t *tierRT) maxTokensFor(req *Request) int {
	m := req.MaxTokens
	if m == 0 || (t.cfg.MaxTokens > 0 && m > t.cfg.MaxTokens) {
		m = t.cfg.MaxTokens
	}
	if m == 0 {
		m = DefaultMaxTokens
	}
	return m
}
