// Package backoff computes capped exponential backoff delays with jitter for
// the SDK's retry and reconnect loops, so that many servers that fail at the
// same moment (a Redis restart, a backend outage) do not retry in lockstep.
//
// The delay before retry n (n ≥ 1, the retry after the n-th failure) is
// drawn uniformly from [Min, c(n)), where
//
//	c(n) = min(Max, Initial × Multiplier^(n-1))
//
// ("full jitter" above an optional floor). With Min = 0 this is the full
// jitter of Brooker, "Exponential Backoff And Jitter" (AWS Architecture
// Blog, 2015): the least total work for contending clients. A floor keeps a
// retry from following its failure at once where that matters.
package backoff

import (
	"math"
	"math/rand/v2"
	"time"
)

// Policy describes a backoff. The zero Multiplier means 2; a Max below
// Initial is raised to Initial; a Min above a ceiling is lowered to it (so
// with Min ≥ Max every delay is Max). Initial must be positive. A Policy is
// a value: safe for concurrent use when its Rand is.
type Policy struct {
	// Min is the floor of every delay (0: none).
	Min time.Duration
	// Initial is the ceiling of the first delay; each later ceiling is
	// Multiplier times the previous one, up to Max.
	Initial time.Duration
	// Max caps every ceiling, and so every delay.
	Max time.Duration
	// Multiplier is the ceiling's growth per retry (default 2; values
	// below 1 mean 2).
	Multiplier float64
	// Rand returns a uniform float64 in [0, 1). Nil uses math/rand/v2,
	// which is safe for concurrent use. Tests inject a seeded or fixed one.
	Rand func() float64
}

// Ceiling returns c(n), the upper bound of the delay before retry n
// (n < 1 counts as 1).
func (p Policy) Ceiling(n int) time.Duration {
	n = max(n, 1)
	m := p.Multiplier
	if m < 1 {
		m = 2
	}
	hi := max(p.Max, p.Initial)
	c := float64(p.Initial) * math.Pow(m, float64(n-1))
	if math.IsNaN(c) || c >= float64(hi) {
		return hi
	}
	return time.Duration(c)
}

// Delay returns a random delay before retry n (n < 1 counts as 1): uniform
// in [min(Min, c(n)), c(n)).
func (p Policy) Delay(n int) time.Duration {
	c := p.Ceiling(n)
	lo := min(max(p.Min, 0), c)
	r := p.Rand
	if r == nil {
		r = rand.Float64
	}
	return lo + time.Duration(r()*float64(c-lo))
}

// Backoff counts the retries of one loop (a reconnect loop, say) and returns
// their delays. It is not safe for concurrent use; give each loop its own.
type Backoff struct {
	Policy
	n int
}

// New returns a Backoff for p.
func New(p Policy) *Backoff { return &Backoff{Policy: p} }

// Next counts a failure and returns the delay before the next retry.
func (b *Backoff) Next() time.Duration {
	b.n++
	return b.Delay(b.n)
}

// Reset starts over after a success: the next delay is the first one again.
func (b *Backoff) Reset() { b.n = 0 }

// Retries returns the number of failures counted since the last Reset.
func (b *Backoff) Retries() int { return b.n }
