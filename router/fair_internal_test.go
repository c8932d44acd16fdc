package router

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestFairRoundsProperty drives the tier queue with random arrivals and
// services (no deadlines) and checks the fair-round guarantee: while a
// player's first queued request waits, every other player of the same
// importance level is served at most once; and the per-key state is
// forgotten when a key has nothing queued.
func TestFairRoundsProperty(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		tr := &tierRT{st: new(tierStats), rounds: make(map[Importance]uint64), fair: make(map[fairKey]*fairState)}
		// served[w][key]: how often key was served while w waited.
		type watch struct {
			w      *waiter
			served map[string]int
		}
		var watches []*watch
		queuedBy := map[fairKey]int{}
		for step := range 2000 {
			if len(tr.queue) == 0 || rng.IntN(100) < 55 {
				imp := Generic + Importance(rng.IntN(2))
				key := fmt.Sprint("p", rng.IntN(6))
				w := &waiter{importance: imp, round: tr.rounds[imp], deadline: maxInt64, seq: uint64(step), fair: key, ready: make(chan struct{})}
				k := fairKey{imp, key}
				if queuedBy[k] == 0 {
					watches = append(watches, &watch{w: w, served: map[string]int{}})
				}
				queuedBy[k]++
				tr.push(w)
				continue
			}
			w := tr.popHead()
			queuedBy[fairKey{w.importance, w.fair}]--
			kept := watches[:0]
			for _, wa := range watches {
				if wa.w == w {
					continue
				}
				if wa.w.importance == w.importance && wa.w.fair != w.fair {
					wa.served[w.fair]++
					if n := wa.served[w.fair]; n > 1 {
						t.Fatalf("seed %d step %d: %s served %d times while %s's first request waited", seed, step, w.fair, n, wa.w.fair)
					}
				}
				kept = append(kept, wa)
			}
			watches = kept
		}
		for k, n := range queuedBy {
			st := tr.fair[k]
			if (n == 0) != (st == nil) || (st != nil && st.queued != n) {
				t.Fatalf("seed %d: key %v has %d queued, state %+v", seed, k, n, st)
			}
		}
	}
}
