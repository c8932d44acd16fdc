package worldtime

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// The day cache in Now gives exactly what the uncached calendar does.
func TestAtCachedMatchesAt(t *testing.T) {
	for _, cal := range []Calendar{
		{},
		{Months: []Month{{"Thaw", 10}, {"Sun", 12}, {"Frost", 6}}, Seasons: []Season{{"warm", 20}, {"cold", 8}}, DaysPerWeek: 5, MoonCycle: 8 * 24 * time.Hour},
		{MoonCycle: 90 * time.Minute, MoonOffset: time.Hour},
	} {
		k, err := cal.compile()
		if err != nil {
			t.Fatal(err)
		}
		var cache atomic.Pointer[dayCache]
		rng := rand.New(rand.NewPCG(3, 4))
		for range 20000 {
			g := Instant(rng.Int64N(int64(At(2000, 0, 0))))
			if rng.IntN(2) == 0 && cache.Load() != nil { // same day as the cache
				g = Instant(cache.Load().day*dayMicros + rng.Int64N(dayMicros))
			}
			var got Time
			k.atCached(&cache, g, &got)
			if want := k.at(g); got != want {
				t.Fatalf("at(%d): cached %+v, want %+v", g, got, want)
			}
		}
	}
}

// realDelta is the exact inverse of gameDelta: the first real instant at
// which game time reaches g.
func TestScaleInverse(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		s := Scale{Game: time.Duration(1 + rng.Int64N(int64(10*time.Hour))), Real: time.Duration(1 + rng.Int64N(int64(time.Hour)))}
		if s.validate() != nil {
			continue
		}
		g := rng.Int64N(1 << 50)
		r := s.realDelta(g)
		if r == math.MaxInt64 { // saturated: never within int64 nanoseconds
			continue
		}
		if s.gameDelta(r) < g || (r > 0 && s.gameDelta(r-1) >= g) {
			t.Fatalf("%+v: realDelta(%d) = %d, gameDelta there %d, one ns before %d", s, g, r, s.gameDelta(r), s.gameDelta(r-1))
		}
	}
}

// lastOf agrees with enumerating next.
func TestBoundaryCounting(t *testing.T) {
	k, _ := Calendar{}.compile()
	bs := boundaries{k}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 300 {
		a := Instant(rng.Int64N(int64(At(30, 0, 0))))
		b := a + Instant(rng.Int64N(int64(At(4, 0, 0))))
		last := map[EventKind]Instant{}
		n := map[EventKind]int64{}
		for g := a; ; {
			nb, kinds := bs.next(g)
			if nb > b {
				break
			}
			for _, kind := range []EventKind{EventDay, EventPhase, EventHour} {
				if kinds&(1<<kind) != 0 {
					last[kind], n[kind] = nb, n[kind]+1
				}
			}
			g = nb
		}
		for _, kind := range []EventKind{EventDay, EventPhase, EventHour} {
			l, c := bs.lastOf(kind, a, b)
			if c != n[kind] || (c > 0 && l != last[kind]) {
				t.Fatalf("(%d, %d] %v: lastOf = %d, %d; enumeration %d, %d", a, b, kind, l, c, last[kind], n[kind])
			}
		}
	}
}

func TestBytesPerTimer(t *testing.T) {
	if got := unsafe.Sizeof(heapEnt{}); got != bytesPerEntry {
		t.Errorf("heap entry = %d bytes, bytesPerEntry says %d", got, bytesPerEntry)
	}
}

// BenchmarkTimerStore isolates the timer store: schedule 1,000,000 timers
// at random game times over 1,000 game hours, then fire them all in order.
func BenchmarkTimerStore(b *testing.B) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	dues := make([]int64, n)
	for i := range dues {
		dues[i] = rng.Int64N(int64(At(42, 0, 0)))
	}
	fired := 0
	fn := func(Instant) { fired++ }
	var th timerHeap
	base := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range dues {
			th.add(Instant(base+d), 0, fn)
		}
		base += int64(At(43, 0, 0))
		for {
			fn, due, ok := th.popDue(Instant(base))
			if !ok {
				break
			}
			fn(due)
		}
	}
	if fired != b.N*n {
		b.Fatalf("fired %d, want %d", fired, b.N*n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/timer")
}
