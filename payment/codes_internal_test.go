package payment

import (
	"fmt"
	"testing"
	"time"
)

// TestCodeLimiterForgetsFullBuckets: the limiter holds an entry only
// while a player's bucket is not full, so its memory follows the players
// guessing now, not every player who ever typed a code.
func TestCodeLimiterForgetsFullBuckets(t *testing.T) {
	l := newCodeLimiter(CodeLimit{Burst: 2, Every: time.Minute})
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// A valid code gives its try back: nothing is kept.
	if ok, _ := l.take("valid", t0); !ok {
		t.Fatal("first try refused")
	}
	l.give("valid", t0)
	if n := len(l.tat); n != 0 {
		t.Fatalf("entries after a given-back try = %d, want 0", n)
	}
	for i := range 3000 {
		l.take(fmt.Sprint("old", i), t0)
	}
	t1 := t0.Add(time.Minute) // every old bucket is full again
	for i := range 6000 {
		l.take(fmt.Sprint("new", i), t1)
	}
	for p := range l.tat {
		if p[:3] == "old" {
			t.Fatalf("entry for %s kept after its bucket refilled (%d entries)", p, len(l.tat))
		}
	}
	if n := len(l.tat); n > 6000 {
		t.Fatalf("entries = %d, want at most the 6000 players guessing now", n)
	}
}

// TestCodeCacheIsBounded: a full cache drops expired lookups and does
// not grow past its bound.
func TestCodeCacheIsBounded(t *testing.T) {
	c := &codeCache{ttl: time.Minute, max: 100, m: make(map[string]codeEntry)}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		c.put(fmt.Sprint("GUESS", i), codeEntry{}, t0)
	}
	if n := len(c.m); n != 100 {
		t.Fatalf("entries = %d, want the bound 100", n)
	}
	t1 := t0.Add(time.Minute)
	c.put("FRESH", codeEntry{found: true}, t1)
	if _, ok := c.get("fresh", t1); !ok {
		t.Fatal("a lookup after the old ones expired was not cached")
	}
	if n := len(c.m); n != 1 {
		t.Fatalf("entries = %d, want 1 (expired ones dropped)", n)
	}
}
