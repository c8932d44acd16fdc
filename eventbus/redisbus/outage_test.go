package redisbus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/redis/go-redis/v9"
)

// Close must not hang while Redis is down and the acknowledgements of
// handled events cannot be sent: workers blocked handing acks to a stuck
// acker used to keep the subscription, and so Bus.Close, waiting until Redis
// came back. What was not acknowledged stays pending and is redelivered.
func TestStreamsCloseDuringOutageWithAckBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	srv := startOwnRedis(t)
	client := redis.NewClient(&redis.Options{
		Addr: srv.addr(), DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxRetries: -1,
	})
	defer client.Close()
	opts := fastStreams("outage:")
	opts.ReadCount = 1024
	opts.OnError = func(error) {} // the outage is the point
	bus, err := eventbus.New(eventbus.Options{Transport: mustStreams(t, client, opts)})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var handled atomic.Int64
	// More handled events than the transport buffers acknowledgements for.
	const n = 12_000
	_, err = bus.Subscribe(context.Background(), "outage.t", func(ctx context.Context, ev eventbus.Event) error {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		handled.Add(1)
		return nil
	}, eventbus.SubscribeOptions{Name: "g", QueueSize: 2 * n})
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]eventbus.Event, 0, 500)
	for i := 0; i < n; i++ {
		evs = append(evs, eventbus.Event{Topic: "outage.t", Payload: []byte("x")})
		if len(evs) == cap(evs) {
			if err := bus.PublishBatch(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for bus.Stats().Transport.Received < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d", bus.Stats().Transport.Received, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.kill()
	close(gate)
	// Wait until the handlers stall: the acknowledgement buffer is full.
	for last := int64(-1); handled.Load() != last; {
		last = handled.Load()
		time.Sleep(200 * time.Millisecond)
	}
	if h := handled.Load(); h < 8192 {
		t.Fatalf("handlers stalled after %d events, before the ack buffer filled", h)
	}
	closed := make(chan error, 1)
	go func() { closed <- bus.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("Bus.Close hangs while Redis is down (%d handled, %d acked)", handled.Load(), bus.Stats().Transport.Acked)
	}
}
