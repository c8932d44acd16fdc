package backoff

import (
	"math/rand/v2"
	"testing"
	"time"
)

func fixed(r float64) func() float64 { return func() float64 { return r } }

func TestCeiling(t *testing.T) {
	p := Policy{Initial: 10 * time.Millisecond, Max: time.Second}
	cases := []struct {
		n    int
		want time.Duration
	}{
		{-1, 10 * time.Millisecond},
		{0, 10 * time.Millisecond},
		{1, 10 * time.Millisecond},
		{2, 20 * time.Millisecond},
		{3, 40 * time.Millisecond},
		{7, 640 * time.Millisecond},
		{8, time.Second},
		{1000, time.Second},
		{1 << 40, time.Second}, // no overflow
	}
	for _, c := range cases {
		if got := p.Ceiling(c.n); got != c.want {
			t.Errorf("Ceiling(%d) = %v, want %v", c.n, got, c.want)
		}
	}
	p3 := Policy{Initial: time.Millisecond, Max: time.Hour, Multiplier: 3}
	if got, want := p3.Ceiling(3), 9*time.Millisecond; got != want {
		t.Errorf("multiplier 3: Ceiling(3) = %v, want %v", got, want)
	}
	p1 := Policy{Initial: time.Millisecond, Max: time.Hour, Multiplier: 1}
	if got, want := p1.Ceiling(50), time.Millisecond; got != want {
		t.Errorf("multiplier 1: Ceiling(50) = %v, want %v", got, want)
	}
	low := Policy{Initial: time.Second, Max: time.Millisecond}
	if got, want := low.Ceiling(5), time.Second; got != want {
		t.Errorf("Max below Initial: Ceiling(5) = %v, want %v", got, want)
	}
}

// Deterministic with an injected Rand: r = 0 gives the floor, r → 1 the
// ceiling, r = 0.5 the midpoint.
func TestDelayDeterministic(t *testing.T) {
	cases := []struct {
		name string
		p    Policy
		n    int
		want time.Duration
	}{
		{"full jitter, r=0", Policy{Initial: 100 * time.Millisecond, Max: time.Second, Rand: fixed(0)}, 1, 0},
		{"full jitter, r=.5", Policy{Initial: 100 * time.Millisecond, Max: time.Second, Rand: fixed(0.5)}, 2, 100 * time.Millisecond},
		{"floor, r=0", Policy{Min: 50 * time.Millisecond, Initial: 100 * time.Millisecond, Max: time.Second, Rand: fixed(0)}, 3, 50 * time.Millisecond},
		{"floor, r=.5", Policy{Min: 50 * time.Millisecond, Initial: 100 * time.Millisecond, Max: time.Second, Rand: fixed(0.5)}, 1, 75 * time.Millisecond},
		{"capped, r=.5", Policy{Min: 50 * time.Millisecond, Initial: 100 * time.Millisecond, Max: time.Second, Rand: fixed(0.5)}, 30, 525 * time.Millisecond},
		{"floor above ceiling", Policy{Min: time.Minute, Initial: 100 * time.Millisecond, Max: time.Second, Rand: fixed(0.5)}, 1, 100 * time.Millisecond},
		{"negative floor", Policy{Min: -time.Second, Initial: 100 * time.Millisecond, Max: time.Second, Rand: fixed(0)}, 1, 0},
	}
	for _, c := range cases {
		if got := c.p.Delay(c.n); got != c.want {
			t.Errorf("%s: Delay(%d) = %v, want %v", c.name, c.n, got, c.want)
		}
	}
}

// Every delay lies in [floor, ceiling), over many draws and attempts, and
// never over Max.
func TestDelayBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []Policy{
		{Initial: 10 * time.Millisecond, Max: time.Second},
		{Min: 50 * time.Millisecond, Initial: 100 * time.Millisecond, Max: 2 * time.Second},
		{Min: 10 * time.Millisecond, Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond},
		{Min: time.Millisecond, Initial: time.Millisecond, Max: time.Hour, Multiplier: 1.5},
	} {
		p.Rand = rng.Float64
		for n := 1; n <= 40; n++ {
			c := p.Ceiling(n)
			lo := min(p.Min, c)
			for range 200 {
				d := p.Delay(n)
				if d < lo || (d >= c && c != lo) || d > max(p.Max, p.Initial) {
					t.Fatalf("%+v: Delay(%d) = %v, want in [%v, %v)", p, n, d, lo, c)
				}
			}
		}
	}
}

// The jitter spreads delays over the whole range: instances that fail
// together do not retry together.
func TestDelaySpread(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Initial: 200 * time.Millisecond, Max: 10 * time.Second,
		Rand: rand.New(rand.NewPCG(3, 4)).Float64}
	const n, draws = 3, 10_000 // ceiling 800ms: delays in [100ms, 800ms)
	lo, c := p.Min, p.Ceiling(n)
	var buckets [10]int
	var sum time.Duration
	for range draws {
		d := p.Delay(n)
		sum += d
		buckets[int(10*(d-lo)/(c-lo))]++
	}
	for i, k := range buckets {
		// Uniform: 1,000 per tenth; allow ±20 %.
		if k < 800 || k > 1200 {
			t.Errorf("tenth %d of [%v, %v) holds %d of %d delays, want about %d", i, lo, c, k, draws, draws/10)
		}
	}
	mean := sum / draws
	if mid := (lo + c) / 2; mean < mid-20*time.Millisecond || mean > mid+20*time.Millisecond {
		t.Errorf("mean delay %v, want about %v", mean, mid)
	}

	// Two loops with their own randomness: their sequences differ.
	a := New(Policy{Initial: 50 * time.Millisecond, Max: 2 * time.Second, Rand: rand.New(rand.NewPCG(5, 6)).Float64})
	b := New(Policy{Initial: 50 * time.Millisecond, Max: 2 * time.Second, Rand: rand.New(rand.NewPCG(7, 8)).Float64})
	same := 0
	for range 10 {
		if a.Next() == b.Next() {
			same++
		}
	}
	if same > 1 {
		t.Errorf("%d of 10 delays equal between two independently seeded loops", same)
	}

	// The default Rand jitters too.
	d := Policy{Initial: time.Second, Max: time.Second}
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[d.Delay(1)] = true
	}
	if len(seen) < 10 {
		t.Errorf("default Rand: %d distinct delays of 20", len(seen))
	}
}

func TestBackoffNextReset(t *testing.T) {
	b := New(Policy{Min: 10 * time.Millisecond, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Rand: fixed(0.5)})
	want := []time.Duration{15, 25, 45, 55, 55} // midpoints of [10, c(n)), c = 20, 40, 80, 100, 100 ms
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Errorf("Next #%d = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := b.Retries(); got != len(want) {
		t.Errorf("Retries = %d, want %d", got, len(want))
	}
	b.Reset()
	if got := b.Next(); got != 15*time.Millisecond {
		t.Errorf("Next after Reset = %v, want 15ms", got)
	}
}
