package dialogue

import (
	"sync"
	"time"
)

// RateLimit is a per-player token bucket: Burst requests at once, refilled
// at Rate per second. The zero value means 2 per second with a burst of 10.
type RateLimit struct {
	Rate  float64
	Burst int
	// Disable turns rate limiting off.
	Disable bool
}

// limiter holds one bucket per key. Full buckets are dropped when the map
// grows past maxKeys, so memory stays bounded by active players.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	maxKeys int
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rl RateLimit, now func() time.Time) *limiter {
	if rl.Disable {
		return nil
	}
	if rl.Rate <= 0 {
		rl.Rate = 2
	}
	if rl.Burst <= 0 {
		rl.Burst = 10
	}
	return &limiter{rate: rl.Rate, burst: float64(rl.Burst), now: now, buckets: make(map[string]*bucket), maxKeys: 4096}
}

// allow takes a token from key's bucket and reports whether there was one.
// A nil limiter allows everything.
func (l *limiter) allow(key string) bool {
	if l == nil {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.maxKeys {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep drops buckets that have refilled; if none have, the map doubles its
// allowance instead. Called with mu held.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.maxKeys {
		l.maxKeys *= 2
	}
}
