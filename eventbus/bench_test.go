package eventbus_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// BenchmarkMemoryPublishDeliver: one publisher → one subscriber, 100-byte
// pre-encoded payloads, in order (Block policy, nothing dropped). Reports
// events/s from the first publish to the last delivery, the bus's own
// publish→deliver p50/p99, and allocations per publish.
//
//	go test -run '^$' -bench MemoryPublishDeliver -benchtime 2000000x -count 5 ./eventbus/
func BenchmarkMemoryPublishDeliver(b *testing.B) {
	b.Run("opts=default", func(b *testing.B) { benchDeliver(b, eventbus.Options{}, eventbus.SubscribeOptions{}) })
	for _, qs := range []int{64, 1024} {
		b.Run("opts=queue"+itoa(qs)+"-nohistory-unbounded", func(b *testing.B) {
			benchDeliver(b, eventbus.Options{DisableHistory: true}, eventbus.SubscribeOptions{QueueSize: qs, BlockUntilCanceled: true})
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

func benchDeliver(b *testing.B, opts eventbus.Options, so eventbus.SubscribeOptions) {
	bus, _ := eventbus.New(opts)
	defer bus.Close()
	var got atomic.Int64
	sub, err := bus.Subscribe(context.Background(), "bench.t", func(ctx context.Context, ev eventbus.Event) error {
		got.Add(1)
		return nil
	}, so)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	ctx := context.Background()
	b.ReportAllocs()
	start := time.Now()
	var n int64
	for b.Loop() {
		if err := bus.Publish(ctx, "bench.t", eventbus.Event{Payload: payload}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	for got.Load() < n {
		runtime.Gosched()
	}
	el := time.Since(start)
	st := sub.Stats()
	b.ReportMetric(float64(n)/el.Seconds(), "events/s")
	b.ReportMetric(float64(st.Latency.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(st.Latency.P99.Nanoseconds()), "p99-ns")
	if d := st.Dropped.Total(); d != 0 {
		b.Fatalf("dropped %d events", d)
	}
}

// BenchmarkMemoryPublishNoSubscriber measures the publisher's own cost.
func BenchmarkMemoryPublishNoSubscriber(b *testing.B) {
	bus, _ := eventbus.New(eventbus.Options{})
	defer bus.Close()
	payload := make([]byte, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = bus.Publish(ctx, "bench.t", eventbus.Event{Payload: payload})
	}
}

// BenchmarkIdleSubscriptionMemory reports what an idle subscription costs
// (per-player subscriptions are the case that matters: 100k players, 100k
// subscriptions): the growth of the live heap plus goroutine stacks, per
// subscription, over many default subscriptions on their own topics, none
// of which has received an event.
//
//	go test -run '^$' -bench IdleSubscriptionMemory -benchtime 3x ./eventbus/
func BenchmarkIdleSubscriptionMemory(b *testing.B) {
	const subs = 2000
	noop := func(context.Context, eventbus.Event) error { return nil }
	ctx := context.Background()
	var perSub, heapPerSub float64
	for b.Loop() {
		bus, _ := eventbus.New(eventbus.Options{})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range subs {
			if _, err := bus.Subscribe(ctx, "player."+itoa(i)+".events", noop, eventbus.SubscribeOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		stack := float64(after.StackInuse) - float64(before.StackInuse)
		perSub = (heap + stack) / subs
		heapPerSub = heap / subs
		_ = bus.Close()
	}
	b.ReportMetric(perSub, "B/idle-sub")
	b.ReportMetric(heapPerSub, "heap-B/idle-sub")
}
