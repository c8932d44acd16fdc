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
	n := int64(benchEvents)
	got := newBenchCounter(n)
	sub, err := con.Subscribe(context.Background(), "bench.t", got.handle, eventbus.SubscribeOptions{Name: "bench", QueueSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	payload := benchPayload()
	// The whole run is one b.Loop iteration sized by -benchtime Nx: the
	// figure of interest is events/s end to end, not ns per call.
	start := time.Now()
	for b.Loop() {
		publish(pub, int(n), payload)
	}
	got.wait(b)
	el := time.Since(start)
	b.ReportMetric(float64(n)/el.Seconds(), "events/s")
	b.ReportMetric(float64(sub.Stats().Latency.P99.Microseconds()), "p99-µs")
	// Wait for the last acknowledgements to reach Redis.
	for k := 0; con.Stats().Transport.Acked < uint64(n) && k < 1000; k++ {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(con.Stats().Transport.Acked), "acked")
}

// benchCounter counts handled events and says when n have been handled.
type benchCounter struct {
	n    int64
	got  atomic.Int64
	done chan struct{}
}

func newBenchCounter(n int64) *benchCounter { return &benchCounter{n: n, done: make(chan struct{})} }

// handle is the benchmarks' eventbus.Handler.
func (c *benchCounter) handle(context.Context, eventbus.Event) error {
	if c.got.Add(1) == c.n {
		close(c.done)
	}
	return nil
}

// wait waits until n events have been handled, failing b after two minutes.
func (c *benchCounter) wait(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("handled %d of %d", c.got.Load(), c.n)
	}
}

// benchPayload is the 100-byte payload of every benchmark event.
func benchPayload() []byte {
	p := make([]byte, 100)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
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
