package router

import (
	"testing"
	"time"
)

// TestBreakerSingleProbe: once the cooldown has ended, exactly one request
// gets through as the probe, even when two callers both saw the breaker
// available (tiers of two configurations share a breaker).
func TestBreakerSingleProbe(t *testing.T) {
	b := &breaker{cfg: Breaker{}.withDefaults()}
	now := time.Unix(1000, 0)
	b.open(now)
	if probe, ok := b.acquire(now); ok || probe {
		t.Fatalf("open breaker: acquire = %v, %v; want refused", probe, ok)
	}
	later := now.Add(b.cfg.Cooldown)
	if at, ok := b.halfOpensAt(now); !ok || !at.Equal(later) {
		t.Errorf("halfOpensAt = %v, %v; want %v, true", at, ok, later)
	}
	// Two callers both see the breaker available before either acquires.
	for i := range 2 {
		if !b.available(later) {
			t.Fatalf("caller %d: not available after the cooldown", i)
		}
	}
	if probe, ok := b.acquire(later); !ok || !probe {
		t.Fatalf("first acquire = %v, %v; want the probe", probe, ok)
	}
	if probe, ok := b.acquire(later); ok || probe {
		t.Fatalf("second acquire = %v, %v; want refused while the probe is out", probe, ok)
	}
	if b.done(later, true, outcomeSuccess) {
		t.Error("a good probe opened the breaker")
	}
	if probe, ok := b.acquire(later); !ok || probe {
		t.Errorf("closed: acquire = %v, %v; want an ordinary request", probe, ok)
	}
}
