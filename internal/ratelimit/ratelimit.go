// Package ratelimit is the one token bucket the SDK's per-player and
// per-key limits share (dialogue's requests, payment's promotion-code
// tries, the gateway's API keys): GCRA, the generic cell rate algorithm,
// which is a token bucket kept as a single time per key.
//
// A bucket holds Burst tokens and gains one every Every. It is stored as
// its theoretical arrival time (TAT): the instant it would be full again.
// A full bucket needs no state at all, so a [Keyed] limiter forgets every
// key whose bucket has refilled, and its memory follows the keys active
// now rather than every key it has ever seen.
package ratelimit

import (
	"sync"
	"time"
)

// take spends one token of a bucket whose TAT is tat at now. It returns
// the new TAT, or ok false and how long until a token is due.
func take(tat, now time.Time, every, burst time.Duration) (next time.Time, ok bool, wait time.Duration) {
	if tat.Before(now) {
		tat = now
	}
	next = tat.Add(every)
	if over := next.Sub(now) - burst; over > 0 {
		return tat, false, over
	}
	return next, true, 0
}

// Bucket is one token bucket. The zero Bucket is unusable: make one with
// NewBucket. A Bucket is safe for concurrent use.
type Bucket struct {
	every, burst time.Duration
	mu           sync.Mutex
	tat          time.Time
}

// NewBucket returns a bucket of burst tokens gaining one every every.
// burst must be at least 1 and every positive.
func NewBucket(burst int, every time.Duration) *Bucket {
	return &Bucket{every: every, burst: time.Duration(burst) * every}
}

// Take spends a token at now, or reports how long until one is due.
func (b *Bucket) Take(now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tat, ok, wait = take(b.tat, now, b.every, b.burst)
	return ok, wait
}

// Keyed is one token bucket per key (a player, an API key), all of the
// same size and rate. It keeps an entry only while a key's bucket is not
// full: full entries are swept when the map has doubled since the last
// sweep or a whole bucket's refill time has passed, so a sweep costs O(1)
// amortised per call, and after a spike the survivors move to a fresh map
// (Go maps never give memory back). The zero Keyed is unusable: make one
// with NewKeyed. A Keyed is safe for concurrent use.
type Keyed struct {
	every, burst time.Duration
	interval     time.Duration // time-based sweep: max(burst, 1s)

	mu        sync.Mutex
	tat       map[string]time.Time
	sweepAt   int // size that triggers a sweep
	peak      int // largest size since the map was last rebuilt
	lastSweep time.Time
}

// NewKeyed returns a per-key limiter of burst tokens per key, each key
// gaining one every every. burst must be at least 1 and every positive.
func NewKeyed(burst int, every time.Duration) *Keyed {
	b := time.Duration(burst) * every
	return &Keyed{every: every, burst: b, interval: max(b, time.Second),
		tat: make(map[string]time.Time), sweepAt: minSweep}
}

const minSweep = 1024

// Take spends one of key's tokens at now, or reports how long until one
// is due.
func (l *Keyed) Take(key string, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tat) >= l.sweepAt || now.Sub(l.lastSweep) >= l.interval {
		l.sweep(now)
	}
	next, ok, wait := take(l.tat[key], now, l.every, l.burst)
	if ok {
		l.tat[key] = next
		l.peak = max(l.peak, len(l.tat))
	}
	return ok, wait
}

// Give returns a token Take spent (the attempt turned out not to count).
func (l *Keyed) Give(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, ok := l.tat[key]
	if !ok {
		return
	}
	if tat = tat.Add(-l.every); tat.After(now) {
		l.tat[key] = tat
	} else {
		delete(l.tat, key)
	}
}

// Len returns how many keys hold a bucket that is not full.
func (l *Keyed) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tat)
}

// sweep drops full buckets; l.mu must be held.
func (l *Keyed) sweep(now time.Time) {
	l.lastSweep = now
	for k, tat := range l.tat {
		if !tat.After(now) {
			delete(l.tat, k)
		}
	}
	n := len(l.tat)
	if l.peak > minSweep && n < l.peak/4 {
		m := make(map[string]time.Time, n)
		for k, t := range l.tat {
			m[k] = t
		}
		l.tat, l.peak = m, n
	}
	l.sweepAt = max(minSweep, 2*n)
}
