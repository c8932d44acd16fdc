package worldtime_test

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/worldtime"
	"github.com/google/go-cmp/cmp"
)

// randomChange applies one random change that never sets time backwards.
func randomChange(t *testing.T, rng *rand.Rand, c *worldtime.Clock) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch rng.IntN(5) {
	case 0:
		err = c.Pause(ctx)
	case 1:
		err = c.Resume(ctx)
	case 2:
		var sc worldtime.Scale
		sc, err = worldtime.RealSecondsPerGameHour(1 + rng.Float64()*7200)
		if err == nil {
			err = c.SetScale(ctx, sc)
		}
	case 3:
		err = c.Skip(ctx, time.Duration(1+rng.Int64N(int64(50*time.Hour))))
	case 4:
		_, err = c.Apply(ctx, worldtime.Change{Kind: worldtime.ChangeScale, Scale: worldtime.Scale{Game: time.Duration(1 + rng.IntN(1000)), Real: time.Duration(1 + rng.IntN(1000))}})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Game time never goes backwards under any sequence of scale, pause,
// resume and skip changes, and every hour, day and phase boundary crossed
// is delivered exactly once, in order.
func TestPropertyMonotonicAndExactlyOnce(t *testing.T) {
	for seed := range uint64(20) {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			c := newClock(t, worldtime.Options{})
			var hours, days, phases []worldtime.Instant
			stop := c.Observe(func(ev worldtime.Event) {
				switch ev.Kind {
				case worldtime.EventHour:
					hours = append(hours, ev.Time.Instant)
				case worldtime.EventDay:
					days = append(days, ev.Time.Instant)
				case worldtime.EventPhase:
					phases = append(phases, ev.Time.Instant)
				}
			})
			defer stop()
			start := c.Now().Instant
			prev := start
			for range 60 {
				if rng.IntN(3) == 0 {
					randomChange(t, rng, c)
				}
				time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Minute))))
				got := c.Now().Instant
				if got < prev {
					t.Fatalf("seed %d: game time went back %d → %d", seed, prev, got)
				}
				prev = got
			}
			synctest.Wait()
			end := c.Now().Instant
			hour, day := time.Hour, 24*time.Hour
			var wantH, wantD, wantP []worldtime.Instant
			for g := start.Add(hour - start.Duration()%hour); g <= end; g = g.Add(hour) {
				wantH = append(wantH, g)
				if g.Duration()%day == 0 {
					wantD = append(wantD, g)
				}
				switch g.Duration() % day {
				case 5 * hour, 7 * hour, 18 * hour, 20 * hour:
					wantP = append(wantP, g)
				}
			}
			if diff := cmp.Diff(wantH, hours); diff != "" {
				t.Fatalf("seed %d: hours (-want +got):\n%s", seed, diff)
			}
			if diff := cmp.Diff(wantD, days); diff != "" {
				t.Fatalf("seed %d: days (-want +got):\n%s", seed, diff)
			}
			if diff := cmp.Diff(wantP, phases); diff != "" {
				t.Fatalf("seed %d: phases (-want +got):\n%s", seed, diff)
			}
		})
	}
}

// Pause then resume: no game time passes in between, whatever the scale.
func TestPropertyPauseResume(t *testing.T) {
	for seed := range uint64(10) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 7))
			c := newClock(t, worldtime.Options{})
			for range 20 {
				randomChange(t, rng, c)
				time.Sleep(time.Duration(rng.Int64N(int64(time.Minute))))
				if err := c.Pause(ctx); err != nil {
					t.Fatal(err)
				}
				before := c.Now().Instant
				time.Sleep(time.Duration(1 + rng.Int64N(int64(time.Hour))))
				if err := c.Resume(ctx); err != nil {
					t.Fatal(err)
				}
				if got := c.Now().Instant; got != before {
					t.Fatalf("seed %d: pause+resume moved game time %d → %d", seed, before, got)
				}
			}
		})
	}
}

type oracleTimer struct {
	due, seq, every int64
	id              int
}

type oracle []oracleTimer

func (o oracle) Len() int { return len(o) }
func (o oracle) Less(i, j int) bool {
	return o[i].due < o[j].due || (o[i].due == o[j].due && o[i].seq < o[j].seq)
}
func (o oracle) Swap(i, j int) { o[i], o[j] = o[j], o[i] }
func (o *oracle) Push(x any)   { *o = append(*o, x.(oracleTimer)) }
func (o *oracle) Pop() any {
	old := *o
	x := old[len(old)-1]
	*o = old[:len(old)-1]
	return x
}

type firing struct {
	ID  int
	Due worldtime.Instant
}

// Timers fire in the order of a simple heap oracle: by due time, then by
// scheduling order (a periodic timer re-arms as it fires), across skips,
// pauses and scale changes; cancelled timers never fire.
func TestPropertyTimersMatchHeapOracle(t *testing.T) {
	for seed := range uint64(10) {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			c := newClock(t, worldtime.Options{})
			var got []firing
			o := &oracle{}
			var seq int64
			ids := map[int]worldtime.TimerID{}
			base := c.Now().Instant
			for id := range 400 {
				// Coarse due times so that many coincide.
				due := base.Add(time.Duration(1+rng.IntN(200)) * 10 * time.Minute) // after now: none fires while scheduling
				var every time.Duration
				if rng.IntN(4) == 0 {
					every = time.Duration(1+rng.IntN(6)) * time.Hour
				}
				fn := func(d worldtime.Instant) { got = append(got, firing{id, d}) }
				var tid worldtime.TimerID
				var err error
				if every > 0 {
					tid, err = c.Every(due, every, fn)
				} else {
					tid, err = c.AtGame(due, fn)
				}
				if err != nil {
					t.Fatal(err)
				}
				seq++
				heap.Push(o, oracleTimer{due: int64(due), seq: seq, every: int64(every / time.Microsecond), id: id})
				ids[id] = tid
			}
			cancelled := map[int]bool{}
			for range 50 {
				id := rng.IntN(400)
				if !cancelled[id] && !c.Cancel(ids[id]) {
					t.Fatalf("Cancel(%d) = false for a pending timer", id)
				}
				cancelled[id] = true
			}
			for range 30 {
				if rng.IntN(2) == 0 {
					randomChange(t, rng, c)
				}
				time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Minute))))
			}
			synctest.Wait()
			end := c.Now().Instant
			var want []firing
			for o.Len() > 0 && (*o)[0].due <= int64(end) {
				x := heap.Pop(o).(oracleTimer)
				if cancelled[x.id] {
					continue
				}
				want = append(want, firing{x.id, worldtime.Instant(x.due)})
				if x.every > 0 {
					seq++
					x.due += x.every
					x.seq = seq
					heap.Push(o, x)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("seed %d: firings (-oracle +got):\n%s", seed, diff)
			}
		})
	}
}
