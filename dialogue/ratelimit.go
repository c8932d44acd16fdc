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

// limiter holds one bucket per key. A bucket that has refilled carries no
// state (a new one would be identical), so a sweep drops every such bucket
// at most once per refill interval (Burst/Rate, at least a second): memory
// stays proportional to the players active in the last two intervals,
// whatever came before, and sweeping costs O(1) amortised per request.
type limiter struct {
	rate   float64
	burst  float64
	refill time.Duration // sweep interval: time for an empty bucket to fill, at least 1s
	now    func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
	peak      int // largest len(buckets) since the map was last rebuilt
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
	refill := time.Duration(float64(rl.Burst) / rl.Rate * float64(time.Second))
	// Sweeping at most once a second keeps a generous limit (a bucket
	// refilling in microseconds) from scanning the map on every request.
	return &limiter{rate: rl.Rate, burst: float64(rl.Burst), refill: max(refill, time.Second), now: now,
		buckets: make(map[string]*bucket), lastSweep: now()}
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
	if now.Sub(l.lastSweep) >= l.refill {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
		l.peak = max(l.peak, len(l.buckets))
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

// sweep drops buckets that have refilled. Go maps never give memory back,
// so after a spike the survivors move to a fresh map. Called with mu held.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if n := len(l.buckets); l.peak > 1024 && n < l.peak/4 {
		m := make(map[string]*bucket, n)
		for k, b := range l.buckets {
			m[k] = b
		}
		l.buckets, l.peak = m, n
	}
}

// len returns the number of buckets held.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
