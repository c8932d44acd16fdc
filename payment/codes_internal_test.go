package payment

import (
	"fmt"
	"testing"
	"time"
)

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
