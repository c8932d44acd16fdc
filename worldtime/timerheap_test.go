package worldtime

import (
	"math/rand/v2"
	"testing"
)

// The timer store against a linear-scan oracle, with firing interleaved
// with scheduling (so that the window, the buckets and the heap all hold
// timers at once).
func TestTimerHeapInterleaved(t *testing.T) {
	for seed := range uint64(200) {
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
			due := Instant(rng.IntN(200)) << 28
			every := int64(0)
			if rng.IntN(4) == 0 {
				every = int64(1+rng.IntN(6)) << 30
			}
			id := id
			th.add(due, every, func(Instant) { got = append(got, id) })
			seq++
			o = append(o, ot{int64(due), seq, every, id})
			if rng.IntN(10) == 0 { // advance a little while scheduling
				g += Instant(rng.IntN(4)) << 28
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
