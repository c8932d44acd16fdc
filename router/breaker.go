package router

import (
	"sync"
	"time"
)

// BreakerState is the state of a replica's circuit breaker.
type BreakerState int

// Circuit breaker states.
const (
	BreakerClosed BreakerState = iota
	BreakerOpen
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "unknown"
}

// outcome is how a request ended, for the breaker.
type outcome int

const (
	outcomeNeutral outcome = iota // cancelled by the caller, saturated: says nothing about health
	outcomeSuccess
	outcomeFailure
)

// breaker is one replica's circuit breaker. It outlives configurations (it
// is kept by tier and replica name), so it has its own lock.
type breaker struct {
	mu          sync.Mutex
	cfg         Breaker
	state       BreakerState
	consecutive int
	openUntil   time.Time
	probing     bool // half-open probe in flight
	winStart    time.Time
	winTotal    int
	winFailed   int
}

// available reports whether a request could be sent now, without taking
// the half-open probe.
func (b *breaker) available(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.Disabled {
		return true
	}
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen:
		return !now.Before(b.openUntil)
	default: // half-open
		return !b.probing
	}
}

// acquire records that a request is sent, if the breaker lets it through:
// ok is false when the breaker is open, or half-open with its probe taken
// (a tier of another configuration may have taken it since available was
// called: the breaker outlives configurations). probe reports that the
// request is the half-open probe, the only one let through.
func (b *breaker) acquire(now time.Time) (probe, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.Disabled {
		return false, true
	}
	if b.state == BreakerOpen && !now.Before(b.openUntil) {
		b.state = BreakerHalfOpen
	}
	switch b.state {
	case BreakerClosed:
		return false, true
	case BreakerHalfOpen:
		if b.probing {
			return false, false
		}
		b.probing = true
		return true, true
	}
	return false, false
}

// halfOpensAt returns when an open breaker will let its probe through, and
// false when it is not open or its cooldown has ended.
func (b *breaker) halfOpensAt(now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.Disabled || b.state != BreakerOpen || !now.Before(b.openUntil) {
		return time.Time{}, false
	}
	return b.openUntil, true
}

// done records a request's outcome. It reports whether the breaker opened.
func (b *breaker) done(now time.Time, probe bool, o outcome) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	if b.cfg.Disabled {
		return false
	}
	switch o {
	case outcomeNeutral:
		return false
	case outcomeSuccess:
		b.consecutive = 0
		if b.state == BreakerHalfOpen && probe {
			b.state = BreakerClosed
			b.resetWindow(now)
		}
	case outcomeFailure:
		b.consecutive++
		if b.state == BreakerHalfOpen {
			if probe {
				b.open(now)
				return true
			}
			return false
		}
		if b.state == BreakerOpen {
			return false
		}
	}
	if now.Sub(b.winStart) >= b.cfg.Window {
		b.resetWindow(now)
	}
	b.winTotal++
	if o == outcomeFailure {
		b.winFailed++
	}
	if b.state == BreakerClosed && (b.consecutive >= b.cfg.ConsecutiveFailures ||
		(b.winTotal >= b.cfg.MinRequests && float64(b.winFailed) >= b.cfg.FailureRate*float64(b.winTotal))) {
		b.open(now)
		return true
	}
	return false
}

func (b *breaker) open(now time.Time) {
	b.state = BreakerOpen
	b.openUntil = now.Add(b.cfg.Cooldown)
	b.consecutive = 0
	b.resetWindow(now)
}

func (b *breaker) resetWindow(now time.Time) {
	b.winStart = now
	b.winTotal = 0
	b.winFailed = 0
}

func (b *breaker) snapshot(now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !now.Before(b.openUntil) {
		return BreakerHalfOpen
	}
	return b.state
}

func (b *breaker) setConfig(c Breaker) {
	b.mu.Lock()
	b.cfg = c
	b.mu.Unlock()
}
