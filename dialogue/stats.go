package dialogue

import "github.com/bodybroker/sdk/latency"

// Stats is a snapshot of a [Service]'s counters.
type Stats struct {
	// Requests counts calls that passed validation, auth and rate limits.
	Requests uint64
	// Fallbacks counts replies that were fallback lines.
	Fallbacks uint64
	// Interrupted counts replies cut off by barge-in.
	Interrupted uint64
	// Truncated counts replies whose backend failed mid-stream.
	Truncated uint64
	// Failed counts calls that ended in an error (including client
	// cancellation).
	Failed uint64
	// PublishErrors counts events (starts and completions) Options.Events
	// refused.
	PublishErrors uint64
	// Clipped counts replies cut off at Limits.MaxReplyBytes.
	Clipped uint64
	// RateLimited counts requests refused by the per-player rate limit
	// (also counted in Failed).
	RateLimited uint64
	// SlowClients counts calls ended because the client did not accept a
	// reply chunk within the transport's send timeout (ErrSlowClient).
	SlowClients uint64
	// Active is the number of replies in progress.
	Active int64
	// TTFT and Total are latency distributions of replies, measured from
	// the request to the first text and to the end.
	TTFT, Total latency.Summary
}

// Stats returns a snapshot of the service's counters.
func (s *Service) Stats() Stats {
	return Stats{
		Requests:      s.requests.Load(),
		Fallbacks:     s.fallbacks.Load(),
		Interrupted:   s.interrupted.Load(),
		Truncated:     s.truncated.Load(),
		Clipped:       s.clipped.Load(),
		Failed:        s.failed.Load(),
		PublishErrors: s.publishErrors.Load(),
		RateLimited:   s.rateLimited.Load(),
		SlowClients:   s.slowClients.Load(),
		Active:        s.active.Load(),
		TTFT:          s.ttft.Summary(),
		Total:         s.total.Summary(),
	}
}
