package benchmarks

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/internal/stats"
)

// Every contender moves 100-byte payloads from one publisher goroutine to one
// subscriber goroutine, in order. The first 8 payload bytes carry the
// publish time (ns since start), and the subscriber records now − that in a
// histogram, the same way for everyone.

const payloadSize = 100

var start = time.Now()

func nowNs() int64 { return int64(time.Since(start)) }

type result struct {
	name      string
	events    int
	elapsed   time.Duration
	lat       stats.Snapshot
	allocsPer float64
}

func (r result) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

// contender runs n events through one implementation. publish is called
// once per event with a fresh payload whose first 8 bytes the caller has
// stamped; it returns after the subscriber has seen all n.
type contender struct {
	name string
	// setup returns the publish function and a wait function that
	// returns once the subscriber has seen n events; hist receives the
	// latencies.
	setup func(n int, hist *stats.Histogram) (publish func(p []byte), wait func(), teardown func())
}

func record(hist *stats.Histogram, p []byte) {
	hist.Record(time.Duration(nowNs() - int64(binary.LittleEndian.Uint64(p))))
}

func busContender(name string, qsize int) contender {
	return contender{name: name, setup: func(n int, hist *stats.Histogram) (func([]byte), func(), func()) {
		bus, _ := eventbus.New(eventbus.Options{DisableHistory: true})
		done := make(chan struct{})
		seen := 0
		_, err := bus.Subscribe(context.Background(), "bench.t", func(ctx context.Context, ev eventbus.Event) error {
			record(hist, ev.Payload)
			if seen++; seen == n {
				close(done)
			}
			return nil
		}, eventbus.SubscribeOptions{QueueSize: qsize, BlockUntilCanceled: true})
		if err != nil {
			panic(err)
		}
		ctx := context.Background()
		return func(p []byte) {
			if err := bus.Publish(ctx, "bench.t", eventbus.Event{Payload: p}); err != nil {
				panic(err)
			}
		}, func() { <-done }, func() { _ = bus.Close() }
	}}
}

func watermillContender() contender {
	return contender{name: "watermill gochannel (ordered, blocking)", setup: func(n int, hist *stats.Histogram) (func([]byte), func(), func()) {
		ps := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
		msgs, err := ps.Subscribe(context.Background(), "bench.t")
		if err != nil {
			panic(err)
		}
		done := make(chan struct{})
		go func() {
			seen := 0
			for m := range msgs {
				record(hist, m.Payload)
				m.Ack()
				if seen++; seen == n {
					close(done)
				}
			}
		}()
		return func(p []byte) {
			if err := ps.Publish("bench.t", message.NewMessage(watermill.NewUUID(), p)); err != nil {
				panic(err)
			}
		}, func() { <-done }, func() { _ = ps.Close() }
	}}
}

func chanContender() contender {
	return contender{name: "unbuffered Go channel", setup: func(n int, hist *stats.Histogram) (func([]byte), func(), func()) {
		ch := make(chan []byte)
		done := make(chan struct{})
		go func() {
			for i := 0; i < n; i++ {
				record(hist, <-ch)
			}
			close(done)
		}()
		return func(p []byte) { ch <- p }, func() { <-done }, func() {}
	}}
}

func run(c contender, n int) result {
	var hist stats.Histogram
	publish, wait, teardown := c.setup(n, &hist)
	defer teardown()
	// Pre-encoded payloads, so the publisher only stamps the time.
	payloads := make([][]byte, 1024)
	for i := range payloads {
		payloads[i] = make([]byte, payloadSize)
	}
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		p := payloads[i&1023]
		binary.LittleEndian.PutUint64(p, uint64(nowNs()))
		publish(p)
	}
	wait()
	el := time.Since(t0)
	runtime.ReadMemStats(&ms1)
	return result{name: c.name, events: n, elapsed: el, lat: hist.Snapshot(),
		allocsPer: float64(ms1.Mallocs-ms0.Mallocs) / float64(n)}
}

// TestSideBySide runs every in-memory contender in one process, one after
// the other, and prints a table. Set BB_BENCH=1 (and optionally BB_BENCH_N).
func TestSideBySide(t *testing.T) {
	if os.Getenv("BB_BENCH") == "" {
		t.Skip("set BB_BENCH=1 to run the side-by-side benchmark")
	}
	n := 2_000_000
	if v := os.Getenv("BB_BENCH_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	contenders := []contender{
		busContender("eventbus memory, QueueSize 64", 64),
		busContender("eventbus memory, QueueSize 1024 (default)", 1024),
		watermillContender(),
		chanContender(),
	}
	var rs []result
	for _, c := range contenders {
		cn := n
		if strings.HasPrefix(c.name, "watermill") {
			cn = min(n, 400_000) // about 2s at its rate
		}
		run(c, cn/10) // warm up
		rs = append(rs, run(c, cn))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GOMAXPROCS=%d, %d-byte payloads, one publisher → one subscriber, in order\n", runtime.GOMAXPROCS(0), payloadSize)
	fmt.Fprintf(&b, "%-45s %12s %10s %10s %10s %12s\n", "", "events/s", "p50", "p99", "p99.9", "allocs/event")
	for _, r := range rs {
		fmt.Fprintf(&b, "%-45s %12.0f %10v %10v %10v %12.2f\n", r.name, r.rate(), r.lat.P50, r.lat.P99, r.lat.P999, r.allocsPer)
	}
	wm := rs[2]
	for _, r := range rs[:2] {
		fmt.Fprintf(&b, "%s vs watermill: %.1fx the throughput, p99 %.2fx\n", r.name, r.rate()/wm.rate(), float64(r.lat.P99)/float64(wm.lat.P99))
	}
	t.Log("\n" + b.String())
}

// BenchmarkPublishAllocs: allocations per in-memory Publish with a
// pre-encoded payload and one subscriber.
func BenchmarkPublishAllocs(b *testing.B) {
	bus, _ := eventbus.New(eventbus.Options{})
	defer bus.Close()
	_, _ = bus.Subscribe(context.Background(), "bench.t", func(ctx context.Context, ev eventbus.Event) error { return nil },
		eventbus.SubscribeOptions{QueueSize: 1024, BlockUntilCanceled: true})
	p := make([]byte, payloadSize)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = bus.Publish(ctx, "bench.t", eventbus.Event{Payload: p})
	}
}
