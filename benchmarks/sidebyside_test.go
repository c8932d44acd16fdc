package benchmarks

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/latency"
)

// Every contender moves 100-byte payloads from one publisher goroutine to one
// subscriber goroutine, in order. The first 8 payload bytes carry the
// publish time (ns since start), and the subscriber records now − that in a
// histogram, the same way for everyone.

const payloadSize = 100

// payloadRing is how many payload buffers the publisher cycles through. It
// is larger than any contender's queue, so no buffer is re-stamped while a
// subscriber has yet to read it.
const payloadRing = 1 << 14

var start = time.Now()

func nowNs() int64 { return int64(time.Since(start)) }

func record(hist *latency.Histogram, p []byte) {
	hist.Record(time.Duration(nowNs() - int64(binary.LittleEndian.Uint64(p))))
}

// pipe is one running contender: publish sends a payload, seen counts what
// the subscriber received, check reports whether anything was lost, close
// tears it down.
type pipe struct {
	publish func(p []byte)
	seen    *atomic.Int64
	check   func() error
	close   func()
}

type contender struct {
	name  string
	setup func(hist *latency.Histogram) pipe
}

// busContender uses eventbus with the given SubscribeOptions; the zero
// Options and SubscribeOptions are the defaults a user gets.
func busContender(name string, opts eventbus.Options, so eventbus.SubscribeOptions) contender {
	return contender{name: name, setup: func(hist *latency.Histogram) pipe {
		bus, err := eventbus.New(opts)
		if err != nil {
			panic(err)
		}
		seen := new(atomic.Int64)
		sub, err := bus.Subscribe(context.Background(), "bench.t", func(ctx context.Context, ev eventbus.Event) error {
			record(hist, ev.Payload)
			seen.Add(1)
			return nil
		}, so)
		if err != nil {
			panic(err)
		}
		ctx := context.Background()
		return pipe{
			publish: func(p []byte) {
				if err := bus.Publish(ctx, "bench.t", eventbus.Event{Payload: p}); err != nil {
					panic(err)
				}
			},
			seen: seen,
			check: func() error {
				if d := sub.Stats().Dropped; d.Total() != 0 {
					return fmt.Errorf("eventbus dropped events: %+v", d)
				}
				return nil
			},
			close: func() { _ = bus.Close() },
		}
	}}
}

func watermillContender() contender {
	return contender{name: "watermill-gochannel", setup: func(hist *latency.Histogram) pipe {
		ps := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
		msgs, err := ps.Subscribe(context.Background(), "bench.t")
		if err != nil {
			panic(err)
		}
		seen := new(atomic.Int64)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for m := range msgs {
				record(hist, m.Payload)
				m.Ack()
				seen.Add(1)
			}
		}()
		return pipe{
			publish: func(p []byte) {
				if err := ps.Publish("bench.t", message.NewMessage(watermill.NewUUID(), p)); err != nil {
					panic(err)
				}
			},
			seen:  seen,
			check: func() error { return nil },
			close: func() { _ = ps.Close(); <-done },
		}
	}}
}

func chanContender() contender {
	return contender{name: "go-chan-unbuffered", setup: func(hist *latency.Histogram) pipe {
		ch := make(chan []byte)
		seen := new(atomic.Int64)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for p := range ch {
				record(hist, p)
				seen.Add(1)
			}
		}()
		return pipe{
			publish: func(p []byte) { ch <- p },
			seen:    seen,
			check:   func() error { return nil },
			close:   func() { close(ch); <-done },
		}
	}}
}

// contenders are the in-memory implementations compared. "eventbus" uses
// the zero eventbus.Options and SubscribeOptions: what a user gets.
func contenders() []contender {
	return []contender{
		busContender("eventbus", eventbus.Options{}, eventbus.SubscribeOptions{}),
		watermillContender(),
		chanContender(),
	}
}

func payloads() [][]byte {
	ps := make([][]byte, payloadRing)
	for i := range ps {
		ps[i] = make([]byte, payloadSize)
	}
	return ps
}

func waitSeen(seen *atomic.Int64, n int64) {
	for seen.Load() < n {
		runtime.Gosched()
	}
}

// BenchmarkInMemory runs one publisher → one subscriber for each contender.
// Compare them with benchstat:
//
//	go test -run '^$' -bench InMemory -count 10 . | tee new.txt
//	benchstat -col /impl new.txt
//
// events/s counts from the first publish to the last delivery; p50-µs and
// p99-µs are publish→deliver latencies measured alike for every contender;
// allocs/event counts every allocation in the process (publisher and
// subscriber) per event.
func BenchmarkInMemory(b *testing.B) {
	for _, c := range contenders() {
		b.Run("impl="+c.name, func(b *testing.B) {
			var hist latency.Histogram
			p := c.setup(&hist)
			defer p.close()
			ps := payloads()
			runtime.GC()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			t0 := time.Now()
			var n int64
			for b.Loop() {
				buf := ps[n&(payloadRing-1)]
				binary.LittleEndian.PutUint64(buf, uint64(nowNs()))
				p.publish(buf)
				n++
			}
			waitSeen(p.seen, n)
			el := time.Since(t0)
			runtime.ReadMemStats(&ms1)
			if err := p.check(); err != nil {
				b.Fatal(err)
			}
			snap := hist.Summary()
			b.ReportMetric(float64(n)/el.Seconds(), "events/s")
			b.ReportMetric(float64(snap.P50)/1e3, "p50-µs")
			b.ReportMetric(float64(snap.P99)/1e3, "p99-µs")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(n), "allocs/event")
		})
	}
}

// BenchmarkPublishAllocs: allocations per in-memory Publish with a
// pre-encoded payload and one subscriber, default options.
func BenchmarkPublishAllocs(b *testing.B) {
	bus, _ := eventbus.New(eventbus.Options{})
	defer bus.Close()
	_, _ = bus.Subscribe(context.Background(), "bench.t", func(ctx context.Context, ev eventbus.Event) error { return nil },
		eventbus.SubscribeOptions{})
	p := make([]byte, payloadSize)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = bus.Publish(ctx, "bench.t", eventbus.Event{Payload: p})
	}
}

type result struct {
	name      string
	events    int
	elapsed   time.Duration
	lat       latency.Summary
	allocsPer float64
}

func (r result) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

func run(c contender, n int) (result, error) {
	var hist latency.Histogram
	p := c.setup(&hist)
	defer p.close()
	ps := payloads()
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		buf := ps[i&(payloadRing-1)]
		binary.LittleEndian.PutUint64(buf, uint64(nowNs()))
		p.publish(buf)
	}
	waitSeen(p.seen, int64(n))
	el := time.Since(t0)
	runtime.ReadMemStats(&ms1)
	return result{name: c.name, events: n, elapsed: el, lat: hist.Summary(),
		allocsPer: float64(ms1.Mallocs-ms0.Mallocs) / float64(n)}, p.check()
}

// TestSideBySide runs every in-memory contender in one process, one after
// the other, and prints a table with the ratios. Set BB_BENCH=1 (and
// optionally BB_BENCH_N); BenchmarkInMemory is the benchstat-friendly form.
func TestSideBySide(t *testing.T) {
	if os.Getenv("BB_BENCH") == "" {
		t.Skip("set BB_BENCH=1 to run the side-by-side benchmark")
	}
	n := 2_000_000
	if v := os.Getenv("BB_BENCH_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	cs := append(contenders(),
		busContender("eventbus QueueSize 64", eventbus.Options{}, eventbus.SubscribeOptions{QueueSize: 64}),
		busContender("eventbus DisableHistory", eventbus.Options{DisableHistory: true}, eventbus.SubscribeOptions{}))
	var rs []result
	for _, c := range cs {
		cn := n
		if strings.HasPrefix(c.name, "watermill") {
			cn = min(n, 400_000) // about 2s at its rate
		}
		if _, err := run(c, cn/10); err != nil { // warm up
			t.Fatal(err)
		}
		r, err := run(c, cn)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GOMAXPROCS=%d, %d-byte payloads, one publisher → one subscriber, in order; eventbus with default options unless named\n", runtime.GOMAXPROCS(0), payloadSize)
	fmt.Fprintf(&b, "%-28s %12s %10s %10s %10s %12s\n", "", "events/s", "p50", "p99", "p99.9", "allocs/event")
	for _, r := range rs {
		fmt.Fprintf(&b, "%-28s %12.0f %10v %10v %10v %12.2f\n", r.name, r.rate(), r.lat.P50, r.lat.P99, r.lat.P999, r.allocsPer)
	}
	bus, wm, ch := rs[0], rs[1], rs[2]
	fmt.Fprintf(&b, "eventbus vs watermill gochannel: %.1fx the throughput, p99 %.2fx\n", bus.rate()/wm.rate(), float64(bus.lat.P99)/float64(wm.lat.P99))
	fmt.Fprintf(&b, "eventbus vs unbuffered chan:     %.2fx the throughput, p99 %.2fx\n", bus.rate()/ch.rate(), float64(bus.lat.P99)/float64(ch.lat.P99))
	t.Log("\n" + b.String())
}
