package redisbus_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/eventbus/redisbus"
)

// BenchmarkStreamsEndToEnd (run with -benchtime 1x; BB_BENCH_EVENTS sets the
// event count): one publisher → one consumer group, every event
// acknowledged (XACK) after its handler ran; 100-byte payloads. The
// publisher is one goroutine sending PublishBatch calls of 256 events (one
// pipelined round trip each). events/s counts handled events over the time
// from the first publish to the last handler call.
func BenchmarkStreamsEndToEnd(b *testing.B) {
	benchStreams(b, func(bus *eventbus.Bus, n int, payload []byte) {
		const batch = 256 // one pipelined round trip per batch
		evs := make([]eventbus.Event, 0, batch)
		for i := 0; i < n; i++ {
			evs = append(evs, eventbus.Event{Topic: "bench.t", Payload: payload})
			if len(evs) == batch || i == n-1 {
				if err := bus.PublishBatch(context.Background(), evs); err != nil {
					b.Fatal(err)
				}
				evs = evs[:0]
			}
		}
	})
}

// BenchmarkStreamsEndToEndConcurrent: the same, with 64 goroutines each
// calling Publish for single events; the transport pipelines them
// (BB_BENCH_FLUSHERS sets BatchOptions.Flushers).
func BenchmarkStreamsEndToEndConcurrent(b *testing.B) {
	benchStreams(b, func(bus *eventbus.Bus, n int, payload []byte) {
		const g = 64
		var wg sync.WaitGroup
		var next atomic.Int64
		for w := 0; w < g; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					if err := bus.Publish(context.Background(), "bench.t", eventbus.Event{Payload: payload}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

func benchStreams(b *testing.B, publish func(bus *eventbus.Bus, n int, payload []byte)) {
	c, prefix := testClient(b)
	opts := redisbus.StreamsOptions{Prefix: prefix, MaxLen: 1_000_000, ReadCount: 512, Batch: redisbus.BatchOptions{Flushers: benchFlushers, Linger: benchLinger}}
	pub, _ := eventbus.New(eventbus.Options{Transport: mustStreams(b, c, opts)})
	defer pub.Close()
	con, _ := eventbus.New(eventbus.Options{Transport: mustStreams(b, c, opts)})
	defer con.Close()
	var got atomic.Int64
	done := make(chan struct{})
	n := int64(benchEvents)
	sub, err := con.Subscribe(context.Background(), "bench.t", func(ctx context.Context, ev eventbus.Event) error {
		if got.Add(1) == n {
			close(done)
		}
		return nil
	}, eventbus.SubscribeOptions{Name: "bench", QueueSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	// The whole run is one b.Loop iteration sized by -benchtime Nx: the
	// figure of interest is events/s end to end, not ns per call.
	start := time.Now()
	for b.Loop() {
		publish(pub, int(n), payload)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("handled %d of %d", got.Load(), n)
	}
	el := time.Since(start)
	b.ReportMetric(float64(n)/el.Seconds(), "events/s")
	b.ReportMetric(float64(sub.Stats().Latency.P99.Microseconds()), "p99-µs")
	// Wait for the last acknowledgements to reach Redis.
	for k := 0; con.Stats().Transport.Acked < uint64(n) && k < 1000; k++ {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(con.Stats().Transport.Acked), "acked")
}

// benchEvents is how many events one run moves (BB_BENCH_EVENTS, default
// 200000).
var benchEvents = func() int {
	if v, err := strconv.Atoi(os.Getenv("BB_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	return 200_000
}()

var benchFlushers = func() int {
	v, _ := strconv.Atoi(os.Getenv("BB_BENCH_FLUSHERS"))
	return v
}()

var benchLinger = func() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("BB_BENCH_LINGER"))
	return d
}()
