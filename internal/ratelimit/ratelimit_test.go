package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestKeyedBurstRefillAndIsolation(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewKeyed(3, time.Second)
	for i := range 3 {
		if ok, _ := l.Take("p", now); !ok {
			t.Fatalf("take %d refused within the burst", i)
		}
	}
	if ok, wait := l.Take("p", now); ok || wait != time.Second {
		t.Fatalf("take over the burst = %v, wait %v; want refused, 1s", ok, wait)
	}
	if ok, _ := l.Take("q", now); !ok {
		t.Fatal("another key limited by p's bucket")
	}
	now = now.Add(1500 * time.Millisecond)
	if ok, _ := l.Take("p", now); !ok {
		t.Fatal("refill of 1.5 tokens refused the first take")
	}
	if ok, _ := l.Take("p", now); ok {
		t.Fatal("refill of 1.5 tokens allowed a second take")
	}
}

func TestKeyedGive(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewKeyed(2, time.Minute)
	l.Take("valid", now)
	l.Give("valid", now)
	if n := l.Len(); n != 0 {
		t.Fatalf("keys after a given-back take = %d, want 0", n)
	}
	l.Take("p", now)
	l.Take("p", now)
	l.Give("p", now)
	if ok, _ := l.Take("p", now); !ok {
		t.Fatal("a given-back token could not be taken again")
	}
}

// Memory follows the keys active now: full buckets are forgotten, by size
// and by time.
func TestKeyedForgetsFullBuckets(t *testing.T) {
	t0 := time.Unix(0, 0)
	l := NewKeyed(2, time.Minute)
	for i := range 3000 {
		l.Take(fmt.Sprint("old", i), t0)
	}
	t1 := t0.Add(time.Minute) // every old bucket is full again
	for i := range 6000 {
		l.Take(fmt.Sprint("new", i), t1)
	}
	if n := l.Len(); n > 6000 {
		t.Fatalf("keys = %d, want at most the 6000 active now", n)
	}
	l2 := NewKeyed(10, 500*time.Millisecond)
	for i := range 20000 {
		l2.Take(fmt.Sprint("spike-", i), t0)
	}
	if n := l2.Len(); n != 20000 {
		t.Fatalf("%d keys during the spike, want 20000", n)
	}
	now := t0.Add(time.Minute)
	for i := range 3 {
		l2.Take(fmt.Sprint("later-", i), now)
		now = now.Add(time.Second)
	}
	if n := l2.Len(); n > 3 {
		t.Errorf("%d keys after the spike went idle, want at most 3", n)
	}
}

func TestBucket(t *testing.T) {
	now := time.Unix(0, 0)
	b := NewBucket(2, 100*time.Millisecond)
	for i := range 2 {
		if ok, _ := b.Take(now); !ok {
			t.Fatalf("take %d refused within the burst", i)
		}
	}
	if ok, wait := b.Take(now); ok || wait != 100*time.Millisecond {
		t.Fatalf("take over the burst = %v, wait %v; want refused, 100ms", ok, wait)
	}
	if ok, _ := b.Take(now.Add(100 * time.Millisecond)); !ok {
		t.Fatal("a refilled token was refused")
	}
}

func BenchmarkKeyedTake(b *testing.B) {
	l := NewKeyed(10, time.Millisecond)
	now := time.Unix(0, 0)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		l.Take("p", now)
	}
}
