package worldtime_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/bodybroker/sdk/worldtime"
)

// BenchmarkNow measures Clock.Now: one world, and round-robin over 1,000
// worlds (1,000 clocks sharing one store). "source=fixed" injects a real
// clock that returns a constant, so it measures the clock's own work;
// "source=time.Now" adds the operating system's clock read (compare
// BenchmarkTimeNow on the same machine).
func BenchmarkNow(b *testing.B) {
	fixed := time.Now()
	for _, bc := range []struct {
		worlds int
		source string
		now    func() time.Time
	}{
		{1, "fixed", func() time.Time { return fixed }},
		{1000, "fixed", func() time.Time { return fixed }},
		{1, "time.Now", nil},
		{1000, "time.Now", nil},
	} {
		worlds := bc.worlds
		b.Run(fmt.Sprintf("worlds=%d/source=%s", worlds, bc.source), func(b *testing.B) {
			ctx := context.Background()
			store := &worldtime.MemoryStore{}
			clocks := make([]*worldtime.Clock, worlds)
			for i := range clocks {
				c, err := worldtime.New(ctx, worldtime.Options{Store: store, World: fmt.Sprint("w", i), DisableRefresh: true, Now: bc.now})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				clocks[i] = c
			}
			b.ReportAllocs()
			i := 0
			var sink int
			for b.Loop() {
				sink += clocks[i].Now().Hour
				if i++; i == worlds {
					i = 0
				}
			}
			_ = sink
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTimeNow is the cost of the real-time read Now adds.
func BenchmarkTimeNow(b *testing.B) {
	var sink int64
	for b.Loop() {
		sink += time.Now().UnixNano()
	}
	_ = sink
}

// BenchmarkTimers schedules 1,000,000 game-time timers on a clock, then
// skips past them all and waits until every one has fired: ns/timer is the
// amortized cost of schedule plus fire; B/pending-timer is the heap growth
// per pending timer, measured on the first round (callbacks share one func
// value; later rounds reuse the memory).
func BenchmarkTimers(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	c, err := worldtime.New(ctx, worldtime.Options{DisableRefresh: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	dues := make([]time.Duration, n)
	for i := range dues {
		dues[i] = time.Duration(rng.Int64N(int64(1000 * time.Hour)))
	}
	fired := 0
	done := make(chan struct{})
	fn := func(worldtime.Instant) {
		if fired++; fired == n {
			done <- struct{}{}
		}
	}
	round := func() {
		fired = 0
		base := c.Now().Instant
		for _, d := range dues {
			if _, err := c.AtGame(base.Add(time.Hour+d), fn); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Skip(ctx, 1002*time.Hour); err != nil {
			b.Fatal(err)
		}
		<-done
	}
	// Memory per pending timer, measured once, untimed.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	base := c.Now().Instant
	ids := make([]worldtime.TimerID, 0, n)
	for _, d := range dues {
		id, err := c.AtGame(base.Add(time.Hour+d), fn)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	runtime.ReadMemStats(&after)
	memPerTimer := float64(after.HeapAlloc-before.HeapAlloc-uint64(cap(ids))*8) / n
	for _, id := range ids {
		c.Cancel(id)
	}
	round() // warm up: grow the heap and buckets
	cpu0 := cpuTime()
	b.ReportAllocs()
	for b.Loop() {
		round()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/timer")
	// CPU time (user+system, all threads) per timer: on a shared machine
	// wall time also counts other processes' turns on the cores.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/timer")
	b.ReportMetric(memPerTimer, "B/pending-timer")
}
