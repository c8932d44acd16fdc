package eventbus_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// A Subscribe that races with Close must either fail with ErrClosed or
// return a subscription that the bus's Close stops: none may be left running
// (its workers would never exit and Done would never close).
func TestSubscribeRacingClose(t *testing.T) {
	noop := func(context.Context, eventbus.Event) error { return nil }
	for i := 0; i < 200; i++ {
		b, _ := eventbus.New(eventbus.Options{})
		var mu sync.Mutex
		var subs []*eventbus.Subscription
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 10; k++ {
					s, err := b.Subscribe(context.Background(), "race.t", noop, eventbus.SubscribeOptions{})
					if err != nil {
						if !errors.Is(err, eventbus.ErrClosed) {
							t.Errorf("Subscribe = %v, want nil or ErrClosed", err)
						}
						return
					}
					mu.Lock()
					subs = append(subs, s)
					mu.Unlock()
				}
			}()
		}
		_ = b.Close()
		wg.Wait()
		for _, s := range subs {
			select {
			case <-s.Done():
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: a subscription made while the bus closed is still running after Close", i)
			}
		}
	}
}

// Close stops the bus at once, even while a Shutdown is waiting for a
// handler that only returns when cancelled.
func TestCloseInterruptsShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := eventbus.New(eventbus.Options{})
		s, err := b.Subscribe(context.Background(), "stuck.t", func(ctx context.Context, ev eventbus.Event) error {
			<-ctx.Done()
			return ctx.Err()
		}, eventbus.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(context.Background(), "stuck.t", eventbus.Event{}); err != nil {
			t.Fatal(err)
		}
		shut := make(chan error, 1)
		go func() { shut <- b.Shutdown(context.Background()) }()
		synctest.Wait() // the handler and Shutdown are both waiting
		closed := make(chan error, 1)
		go func() { closed <- b.Close() }()
		select {
		case <-closed:
		case <-time.After(time.Minute):
			t.Fatal("Close hangs while Shutdown waits for a handler")
		}
		select {
		case <-s.Done():
		default:
			t.Fatal("Close returned before the running handler did")
		}
		if err := <-shut; !errors.Is(err, eventbus.ErrClosed) {
			t.Fatalf("Shutdown interrupted by Close = %v, want ErrClosed", err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close = %v, want nil (idempotent)", err)
		}
		if err := b.Shutdown(context.Background()); !errors.Is(err, eventbus.ErrClosed) {
			t.Fatalf("Shutdown after Close = %v, want ErrClosed", err)
		}
	})
}

// A subscription that matches its own dead-letter topic, with a full queue
// and no MaxBlock, must not deadlock its worker on room only that worker can
// make: the failing events are dead-lettered to other subscribers, and the
// subscription's own copy is dropped and counted.
func TestDeadLetterIntoOwnFullQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := eventbus.New(eventbus.Options{})
		defer b.Close()
		var dead atomic.Int64
		_, err := b.Subscribe(context.Background(), "deadletter.>", func(ctx context.Context, ev eventbus.Event) error {
			dead.Add(1)
			return nil
		}, eventbus.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		gate := make(chan struct{})
		var calls atomic.Int64
		s, err := b.Subscribe(context.Background(), ">", func(ctx context.Context, ev eventbus.Event) error {
			if ev.Topic != "work.t" {
				return nil
			}
			if calls.Add(1) == 1 {
				<-gate
			}
			return errors.New("always fails")
		}, eventbus.SubscribeOptions{QueueSize: 2, BlockUntilCanceled: true, Retry: eventbus.Retry{MaxAttempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ { // one in the handler, two fill the queue
			if err := b.Publish(context.Background(), "work.t", eventbus.Event{}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		close(gate)
		synctest.Wait()
		if got := dead.Load(); got != 3 {
			t.Fatalf("dead letters seen by the other subscriber: %d, want 3", got)
		}
		st := s.Stats()
		if st.DeadLettered != 3 {
			t.Fatalf("DeadLettered = %d, want 3", st.DeadLettered)
		}
		if st.Dropped.DeadLetterFailed == 0 {
			t.Fatalf("drops %+v: the subscription's own copies of its dead letters did not fit its queue and must be counted", st.Dropped)
		}
	})
}

// Bus-wide totals must not dip while a closed subscription's last handler
// call is still running: its counters are in neither the open list nor the
// retired totals yet.
func TestStatsWhileSubscriptionCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := eventbus.New(eventbus.Options{})
		defer b.Close()
		gate := make(chan struct{})
		var calls atomic.Int64
		s, _ := b.Subscribe(context.Background(), "c.t", func(ctx context.Context, ev eventbus.Event) error {
			if calls.Add(1) == 2 {
				<-gate // ignores ctx: Close cannot cut it short
			}
			return nil
		}, eventbus.SubscribeOptions{})
		_ = b.Publish(context.Background(), "c.t", eventbus.Event{})
		_ = b.Publish(context.Background(), "c.t", eventbus.Event{})
		synctest.Wait()
		_ = s.Close()
		if got := b.Stats().Delivered; got != 1 {
			t.Errorf("Delivered while the closed subscription's handler runs = %d, want 1", got)
		}
		close(gate)
		<-s.Done()
		if got := b.Stats().Delivered; got != 2 {
			t.Fatalf("Delivered after it returned = %d, want 2", got)
		}
	})
}
