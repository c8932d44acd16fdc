package eventbus_test

import (
	"context"
	"maps"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// A handler that calls runtime.Goexit (t.FailNow in a test handler, say)
// must not kill its worker: the call counts as a failure (Goexits, Failed),
// the event is retried or dead-lettered like after a panic, and every later
// event is still handled.
func TestHandlerGoexit(t *testing.T) {
	const n = 3000
	cases := []struct {
		name     string
		opts     eventbus.SubscribeOptions
		replay   bool // publish first, deliver through SubscribeOptions.From
		attempts int  // handler calls that Goexit for event 0
	}{
		{name: "block", opts: eventbus.SubscribeOptions{Retry: eventbus.Retry{MaxAttempts: 1}}, attempts: 1},
		{name: "drop-oldest", opts: eventbus.SubscribeOptions{Overflow: eventbus.DropOldest, QueueSize: 2 * n, Retry: eventbus.Retry{MaxAttempts: 1}}, attempts: 1},
		{name: "keep-latest", opts: eventbus.SubscribeOptions{Overflow: eventbus.KeepLatest, QueueSize: 2 * n, Retry: eventbus.Retry{MaxAttempts: 1}}, attempts: 1},
		{name: "concurrency-4", opts: eventbus.SubscribeOptions{Concurrency: 4, Retry: eventbus.Retry{MaxAttempts: 1}}, attempts: 1},
		{name: "replay", opts: eventbus.SubscribeOptions{From: eventbus.FromStart(), Retry: eventbus.Retry{MaxAttempts: 1}}, replay: true, attempts: 1},
		{name: "retried-then-handled", opts: eventbus.SubscribeOptions{Retry: eventbus.Retry{MaxAttempts: 3, Initial: time.Millisecond}}, attempts: 1},
		{name: "every-attempt", opts: eventbus.SubscribeOptions{Retry: eventbus.Retry{MaxAttempts: 3, Initial: time.Millisecond}}, attempts: 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, _ := eventbus.New(eventbus.Options{HistorySize: 2 * n})
			defer b.Close()
			ctx := context.Background()
			dead := make(chan eventbus.Event, 1)
			if _, err := b.Subscribe(ctx, "deadletter.goexit.t", func(_ context.Context, ev eventbus.Event) error {
				dead <- ev
				return nil
			}, eventbus.SubscribeOptions{}); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			handled := make(map[int]int)
			later := 0 // distinct events after event 0 handled
			exits := 0
			all := make(chan struct{})
			h := func(_ context.Context, ev eventbus.Event) error {
				i, _ := strconv.Atoi(string(ev.Payload))
				mu.Lock()
				if i == 0 && exits < c.attempts {
					exits++
					mu.Unlock()
					runtime.Goexit()
				}
				handled[i]++
				if i != 0 && handled[i] == 1 {
					if later++; later == n-1 {
						close(all)
					}
				}
				mu.Unlock()
				return nil
			}
			publish := func() {
				for i := range n {
					if err := b.Publish(ctx, "goexit.t", eventbus.Event{Key: strconv.Itoa(i % 7), Payload: []byte(strconv.Itoa(i))}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if c.replay {
				publish()
			}
			sub, err := b.Subscribe(ctx, "goexit.t", h, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !c.replay {
				publish()
			}
			select {
			case <-all:
			case <-time.After(30 * time.Second): // bounds a hang only
				mu.Lock()
				got := later
				mu.Unlock()
				t.Fatalf("handled %d of the %d events after the one whose handler called Goexit", got, n-1)
			}
			wantDead := c.attempts >= max(c.opts.Retry.MaxAttempts, 1)
			if wantDead {
				select {
				case ev := <-dead:
					if string(ev.Payload) != "0" || !strings.Contains(ev.Header(eventbus.HeaderDeadLetterError), "Goexit") {
						t.Fatalf("dead letter %q with error %q", ev.Payload, ev.Header(eventbus.HeaderDeadLetterError))
					}
				case <-time.After(30 * time.Second):
					t.Fatal("the event whose handler called Goexit was not dead-lettered")
				}
			} else {
				deadline := time.Now().Add(30 * time.Second)
				for {
					mu.Lock()
					done := handled[0] == 1
					mu.Unlock()
					if done {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the event whose handler called Goexit was not retried")
					}
					time.Sleep(time.Millisecond)
				}
			}
			st := sub.Stats()
			if st.Goexits != uint64(c.attempts) || st.Failed != uint64(c.attempts) || st.Panics != 0 {
				t.Fatalf("stats: goexits %d, failed %d, panics %d; want %d, %d, 0", st.Goexits, st.Failed, st.Panics, c.attempts, c.attempts)
			}
			if got := b.Stats().Goexits; got != uint64(c.attempts) {
				t.Fatalf("bus stats: goexits %d, want %d", got, c.attempts)
			}
			mu.Lock()
			counts := maps.Clone(handled)
			mu.Unlock()
			for i := 1; i < n; i++ {
				if counts[i] != 1 {
					t.Fatalf("event %d handled %d times", i, counts[i])
				}
			}
			if err := sub.Close(); err != nil {
				t.Fatal(err)
			}
			<-sub.Done()
		})
	}
}
