package worldtime

import (
	"math/rand/v2"
	"testing"
)

// The timer store against a linear-scan oracle, with firing interleaved
// with scheduling (so that the window, the buckets and the heap all hold
// timers at once).
func TestTimerHeapInterleaved(t *testing.T) {
	for seed := range uint64(400) {
		shift := 28 - 4*int(seed%2) // 2^24 spacing: all in one or two buckets, sorted by radix
		rng := rand.New(rand.NewPCG(seed, 1))
		var th timerHeap
		type ot struct {
			due, seq, every int64
			id              int
		}
		var o []ot
		var seq int64
		var got, want []int
		var g Instant
		for id := range 300 {
			due := Instant(rng.IntN(200)) << shift
			every := int64(0)
			if rng.IntN(4) == 0 {
				every = int64(1+rng.IntN(6)) << 30
			}
			id := id
			th.add(due, every, func(Instant) { got = append(got, id) })
			seq++
			o = append(o, ot{int64(due), seq, every, id})
			if rng.IntN(10) == 0 { // advance a little while scheduling
				g += Instant(rng.IntN(4)) << shift
				for {
					fn, d, ok := th.popDue(g)
					if !ok {
						break
					}
					fn(d)
				}
				// oracle
				for {
					bi := -1
					for i, x := range o {
						if x.due <= int64(g) && (bi < 0 || x.due < o[bi].due || (x.due == o[bi].due && x.seq < o[bi].seq)) {
							bi = i
						}
					}
					if bi < 0 {
						break
					}
					x := o[bi]
					want = append(want, x.id)
					if x.every > 0 {
						seq++
						o[bi].due += x.every
						o[bi].seq = seq
					} else {
						o = append(o[:bi], o[bi+1:]...)
					}
				}
			}
		}
		if len(got) != len(want) {
			t.Fatalf("seed %d: %d fired, oracle %d", seed, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("seed %d: firing %d: %d, oracle %d\ngot  %v\nwant %v", seed, i, got[i], want[i], got, want)
			}
		}
	}
}

// A large bucket (sorted by radix, with many equal due times) comes out
// in (due, scheduling order), periodic timers included.
func TestTimerHeapLargeBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var th timerHeap
	type fired struct {
		due Instant
		id  int
	}
	var got []fired
	for id := range 5000 {
		due := Instant(rng.Int64N(3<<bucketShift)) &^ (1<<20 - 1) // many ties
		th.add(due, 0, func(d Instant) { got = append(got, fired{d, id}) })
	}
	for {
		fn, due, ok := th.popDue(MaxInstant - 1)
		if !ok {
			break
		}
		fn(due)
	}
	if len(got) != 5000 {
		t.Fatalf("fired %d of 5000", len(got))
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.due > b.due || (a.due == b.due && a.id > b.id) {
			t.Fatalf("firing %d: %+v after %+v", i, b, a)
		}
	}
}
