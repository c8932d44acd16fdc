package eventbus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// With the default Block policy a publisher is paced to a fast subscriber,
// but a burst into a subscriber stuck in a slow handler call must not cost
// the publisher a wait per event: the queue takes the burst, nothing is
// dropped, and everything is handled in order once the handler returns.
func TestBlockBurstIntoBusyHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := eventbus.New(eventbus.Options{})
		defer b.Close()
		release := make(chan struct{})
		done := make(chan struct{})
		const n = 500
		var handled atomic.Int64
		var outOfOrder atomic.Bool
		s, err := b.Subscribe(context.Background(), "burst.t", func(ctx context.Context, ev eventbus.Event) error {
			<-release
			if int(ev.Payload[0])<<8|int(ev.Payload[1]) != int(handled.Load()) {
				outOfOrder.Store(true)
			}
			if handled.Add(1) == n {
				close(done)
			}
			return nil
		}, eventbus.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := b.Publish(context.Background(), "burst.t", eventbus.Event{Payload: []byte{byte(i >> 8), byte(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		// The fake clock only moves while the publisher waits for the
		// stuck worker.
		if waited := time.Since(start); waited > time.Millisecond {
			t.Fatalf("publishing a %d-event burst into a busy handler waited %v, want at most 1ms (one short wait, not one per event)", n, waited)
		}
		close(release)
		<-done
		if outOfOrder.Load() {
			t.Fatal("events handled out of order")
		}
		if d := s.Stats().Dropped; d.Total() != 0 {
			t.Fatalf("drops %+v, want none", d)
		}
	})
}
