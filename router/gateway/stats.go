package gateway

import (
	"sync"

	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/latency"
)

type histogram = latency.Histogram

// Counts are the counters of one key, one model or the whole gateway: a
// plain snapshot, whose zero value means nothing counted yet.
type Counts struct {
	// Requests counts completion requests received.
	Requests uint64
	// Completed counts responses written to their end (a stream to its
	// [DONE]).
	Completed uint64
	// ClientErrors counts answers with a 4xx status other than 429: bad
	// requests, unknown models, missing keys, bodies too large.
	ClientErrors uint64
	// RateLimited counts 429 answers: the key over its rate, or every
	// tier at capacity.
	RateLimited uint64
	// ServerErrors counts answers with a 5xx status: every tier down,
	// the gateway closed, a deadline passed, a reply cut (unary).
	ServerErrors uint64
	// StreamErrors counts streams ended by an error event after the first
	// token (a stall or a backend cut).
	StreamErrors uint64
	// Cancelled counts requests whose client went away.
	Cancelled uint64
	// SlowClients counts clients cut off for not reading within
	// Options.WriteTimeout.
	SlowClients uint64
	// Fallbacks counts requests that left their first tier before the
	// first token and were served by another (see HeaderFallback).
	Fallbacks uint64
	// TokensIn and TokensOut sum the usage the backends reported.
	TokensIn  uint64
	TokensOut uint64
	// InFlight is the number of requests in progress.
	InFlight int64
	// TTFT is the time from receiving the request to writing its first
	// token (streams) or its body (unary), gateway and router included.
	TTFT latency.Summary
}

// Stats is a snapshot of a [Gateway]; its maps belong to the caller.
type Stats struct {
	Total Counts
	// Keys has one entry per service key, and per key listed in
	// Options.Keys, that made a request; every other player counts in
	// one entry under the zero identity.Identity (as do all callers when
	// there is no Authenticator), so Stats stays bounded however many
	// players an Authenticator issues.
	Keys map[identity.Identity]Counts
	// Models has one entry per model name that routed (names that match
	// no tier, responsibility or alias are counted only in Total).
	Models map[string]Counts
}

type statsRegistry struct {
	total  counters
	keys   sync.Map // identity.Identity → *counters
	models sync.Map // string → *counters
}

func lookup[K comparable](m *sync.Map, name K) *counters {
	if c, ok := m.Load(name); ok {
		return c.(*counters)
	}
	c, _ := m.LoadOrStore(name, new(counters))
	return c.(*counters)
}

func (r *statsRegistry) key(id identity.Identity) *counters { return lookup(&r.keys, id) }
func (r *statsRegistry) model(name string) *counters        { return lookup(&r.models, name) }

func (c *counters) snapshot() Counts {
	return Counts{
		Requests:     c.requests.Load(),
		Completed:    c.completed.Load(),
		ClientErrors: c.clientErrors.Load(),
		RateLimited:  c.rateLimited.Load(),
		ServerErrors: c.serverErrors.Load(),
		StreamErrors: c.streamErrors.Load(),
		Cancelled:    c.cancelled.Load(),
		SlowClients:  c.slowClients.Load(),
		Fallbacks:    c.fallbacks.Load(),
		TokensIn:     c.tokensIn.Load(),
		TokensOut:    c.tokensOut.Load(),
		InFlight:     c.inflight.Load(),
		TTFT:         c.ttft.Summary(),
	}
}

// Stats returns a snapshot of the gateway's counters, in total, per key
// and per model. It is safe to call concurrently with requests.
func (g *Gateway) Stats() Stats {
	s := Stats{Total: g.stats.total.snapshot(), Keys: map[identity.Identity]Counts{}, Models: map[string]Counts{}}
	g.stats.keys.Range(func(k, v any) bool {
		s.Keys[k.(identity.Identity)] = v.(*counters).snapshot()
		return true
	})
	g.stats.models.Range(func(k, v any) bool {
		s.Models[k.(string)] = v.(*counters).snapshot()
		return true
	})
	return s
}
