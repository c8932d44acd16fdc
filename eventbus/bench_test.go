package eventbus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// BenchmarkMemoryPublishDeliver: one publisher → one subscriber, 100-byte
// pre-encoded payloads, in order (Block policy). Reports events/s, the
// bus's publish→deliver p50/p99 and allocations per publish.
func BenchmarkMemoryPublishDeliver(b *testing.B) {
	bus, _ := eventbus.New(eventbus.Options{HistorySize: -1})
	defer bus.Close()
	var got atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	sub, err := bus.Subscribe(context.Background(), "bench.t", func(ctx context.Context, ev eventbus.Event) error {
		if got.Add(1) == target {
			close(done)
		}
		return nil
	}, eventbus.SubscribeOptions{QueueSize: 4096, MaxBlock: -1})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := bus.Publish(ctx, "bench.t", eventbus.Event{Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	el := time.Since(start)
	b.StopTimer()
	st := sub.Stats()
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(st.Latency.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(st.Latency.P99.Nanoseconds()), "p99-ns")
}

// BenchmarkMemoryPublishNoSubscriber measures the publisher's own cost.
func BenchmarkMemoryPublishNoSubscriber(b *testing.B) {
	bus, _ := eventbus.New(eventbus.Options{})
	defer bus.Close()
	payload := make([]byte, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = bus.Publish(ctx, "bench.t", eventbus.Event{Payload: payload})
	}
}
