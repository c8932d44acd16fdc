package router

import (
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/latency"
)

// ErrorCounts counts failed attempts by kind.
type ErrorCounts struct {
	Saturated     uint64 // no room in time (queue full, queue timeout, HTTP 429/503)
	CircuitOpen   uint64 // every replica's breaker open
	PredictedLate uint64 // skipped: predicted to miss the deadline
	Backend       uint64 // backend error before the first token
	Truncated     uint64 // stalled, too slow or failed after the first token
	Deadline      uint64 // the request's deadline passed
	Cancelled     uint64 // the caller cancelled or closed the stream early
}

// Total returns the sum of all kinds.
func (e ErrorCounts) Total() uint64 {
	return e.Saturated + e.CircuitOpen + e.PredictedLate + e.Backend + e.Truncated + e.Deadline + e.Cancelled
}

// ReplicaStats is a snapshot of one replica.
type ReplicaStats struct {
	Name     string
	Breaker  BreakerState
	InFlight int64
	// Requests counts requests sent to the replica; Successes those that
	// ended with a finish reason.
	Requests  uint64
	Successes uint64
	Errors    ErrorCounts
	TokensIn  uint64
	TokensOut uint64
	// LengthCapped counts replies the router ended at their token limit
	// because the backend went past max_tokens (see Request.MaxTokens).
	LengthCapped uint64
	// Limited counts the times the replica's Limiter refused a request
	// that could otherwise have started there.
	Limited    uint64
	TTFT       latency.Summary
	InterToken latency.Summary
	Total      latency.Summary
}

// TierStats is a snapshot of one tier.
type TierStats struct {
	Name string
	// Requests counts attempts at this tier (a request that falls back
	// counts at each tier it tries); Successes those that ended with a
	// finish reason here.
	Requests  uint64
	Successes uint64
	Errors    ErrorCounts
	InFlight  int64
	Queued    int64
	// Fallbacks counts requests that left this tier for the next one.
	Fallbacks uint64
	// Hedges counts hedged requests started on the next tier.
	Hedges    uint64
	TokensIn  uint64
	TokensOut uint64
	// LengthCapped counts replies the router ended at their token limit
	// because the backend went past max_tokens (see Request.MaxTokens).
	LengthCapped uint64
	TTFT         latency.Summary
	InterToken   latency.Summary
	Total        latency.Summary
	// RecentTTFTP95 is the TTFT p95 the deadline predictor uses.
	RecentTTFTP95 time.Duration
	Replicas      []ReplicaStats
}

// Stats is a snapshot of a Router, with tiers in configuration order.
type Stats struct {
	Tiers []TierStats
}

// Tier returns the named tier's stats and whether it exists.
func (s Stats) Tier(name string) (TierStats, bool) {
	for _, t := range s.Tiers {
		if t.Name == name {
			return t, true
		}
	}
	return TierStats{}, false
}

// Replica returns the named replica's stats and whether it exists.
func (t TierStats) Replica(name string) (ReplicaStats, bool) {
	for _, r := range t.Replicas {
		if r.Name == name {
			return r, true
		}
	}
	return ReplicaStats{}, false
}

type counters struct {
	requests  atomic.Uint64
	successes atomic.Uint64
	errors    [numKinds]atomic.Uint64
	inflight  atomic.Int64
	tokensIn  atomic.Uint64
	tokensOut atomic.Uint64
	capped    atomic.Uint64
	ttft      latency.Histogram
	itl       latency.Histogram
	total     latency.Histogram
}

func (c *counters) errorCounts() ErrorCounts {
	return ErrorCounts{
		Saturated:     c.errors[KindSaturated].Load(),
		CircuitOpen:   c.errors[KindCircuitOpen].Load(),
		PredictedLate: c.errors[KindPredictedLate].Load(),
		Backend:       c.errors[KindBackend].Load(),
		Truncated:     c.errors[KindTruncated].Load(),
		Deadline:      c.errors[KindDeadline].Load(),
		Cancelled:     c.errors[KindCancelled].Load(),
	}
}

// recentWindow is the number of TTFT samples per half of the predictor's
// window: the predictor reads the p95 of the last 256 to 512 first tokens.
const recentWindow = 256

// predictorRefresh bounds how often the cached p95 is recomputed.
const predictorRefresh = 100 * time.Millisecond

// tierStats holds a tier's counters and its deadline predictor. It is kept
// by tier name across reconfigurations.
type tierStats struct {
	counters
	queued    atomic.Int64
	fallbacks atomic.Uint64
	hedges    atomic.Uint64

	recent      [2]latency.Histogram
	cur         atomic.Uint32
	p95         atomic.Int64 // recent TTFT p95 in ns, 0 when unknown
	lastRefresh atomic.Int64 // unix ns
	service     atomic.Int64 // moving average of total request time, ns
}

// recordTTFT records a first token and refreshes the predictor now and
// then.
func (s *tierStats) recordTTFT(now time.Time, d time.Duration) {
	s.ttft.Record(d)
	i := s.cur.Load() & 1
	h := &s.recent[i]
	h.Record(d)
	if h.Count() >= recentWindow && s.cur.CompareAndSwap(i, i^1) {
		s.recent[i^1].Reset()
	}
	last := s.lastRefresh.Load()
	if n := now.UnixNano(); n-last >= int64(predictorRefresh) || s.p95.Load() == 0 {
		if s.lastRefresh.CompareAndSwap(last, n) {
			s.refreshP95()
		}
	}
}

func (s *tierStats) refreshP95() {
	i := s.cur.Load() & 1
	cur, prev := &s.recent[i], &s.recent[i^1]
	var q time.Duration
	switch {
	case cur.Count() >= 32 || prev.Count() == 0:
		q = cur.Quantile(0.95)
	default:
		q = max(cur.Quantile(0.95), prev.Quantile(0.95))
	}
	s.p95.Store(int64(q))
}

// recordService updates the moving average of request durations used to
// estimate queue waits.
func (s *tierStats) recordService(d time.Duration) {
	old := s.service.Load()
	if old == 0 {
		s.service.Store(int64(d))
		return
	}
	s.service.Store(old + (int64(d)-old)/8)
}

type replicaStats struct {
	counters
	br      breaker
	limited atomic.Uint64
}

// statsRegistry keeps stats and breakers by name so that they survive
// reconfiguration.
type statsRegistry struct {
	tiers    map[string]*tierStats
	replicas map[[2]string]*replicaStats
}

func (r *Router) tierStatsFor(name string) *tierStats {
	if s, ok := r.reg.tiers[name]; ok {
		return s
	}
	s := new(tierStats)
	r.reg.tiers[name] = s
	return s
}

// replicaStatsFor returns the named replica's stats and breaker. The
// caller sets the breaker's configuration once the whole configuration is
// accepted.
func (r *Router) replicaStatsFor(tier, name string) *replicaStats {
	k := [2]string{tier, name}
	s, ok := r.reg.replicas[k]
	if !ok {
		s = new(replicaStats)
		r.reg.replicas[k] = s
	}
	return s
}

// prune drops the stats of tiers and replicas that c no longer has.
func (r *Router) prune(c *config) {
	for name := range r.reg.tiers {
		if _, ok := c.byName[name]; !ok {
			delete(r.reg.tiers, name)
		}
	}
	for k := range r.reg.replicas {
		t, ok := c.byName[k[0]]
		if !ok || t.replicaByName(k[1]) == nil {
			delete(r.reg.replicas, k)
		}
	}
}

// Stats returns a snapshot of every tier and replica of the current
// configuration. It is safe to call concurrently with requests; it reads
// each latency sketch once (a few microseconds per tier).
func (r *Router) Stats() Stats {
	c := r.cfg.Load()
	out := Stats{Tiers: make([]TierStats, 0, len(c.tiers))}
	now := r.now()
	for _, t := range c.tiers {
		s := t.st
		ts := TierStats{
			Name:          t.cfg.Name,
			Requests:      s.requests.Load(),
			Successes:     s.successes.Load(),
			Errors:        s.errorCounts(),
			InFlight:      s.inflight.Load(),
			Queued:        s.queued.Load(),
			Fallbacks:     s.fallbacks.Load(),
			Hedges:        s.hedges.Load(),
			TokensIn:      s.tokensIn.Load(),
			TokensOut:     s.tokensOut.Load(),
			LengthCapped:  s.capped.Load(),
			TTFT:          s.ttft.Summary(),
			InterToken:    s.itl.Summary(),
			Total:         s.total.Summary(),
			RecentTTFTP95: time.Duration(s.p95.Load()),
		}
		for _, rep := range t.replicas {
			rs := rep.st
			ts.Replicas = append(ts.Replicas, ReplicaStats{
				Name:         rep.cfg.Name,
				Breaker:      rs.br.snapshot(now),
				InFlight:     rs.inflight.Load(),
				Requests:     rs.requests.Load(),
				Successes:    rs.successes.Load(),
				Errors:       rs.errorCounts(),
				TokensIn:     rs.tokensIn.Load(),
				TokensOut:    rs.tokensOut.Load(),
				LengthCapped: rs.capped.Load(),
				Limited:      rs.limited.Load(),
				TTFT:         rs.ttft.Summary(),
				InterToken:   rs.itl.Summary(),
				Total:        rs.total.Summary(),
			})
		}
		out.Tiers = append(out.Tiers, ts)
	}
	return out
}
