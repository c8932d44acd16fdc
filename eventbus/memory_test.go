package eventbus_test

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// An idle subscription (per player, say) must not cost its full queue up
// front: the ring is allocated and grown as events arrive. The bound here is
// loose (the benchmark BenchmarkIdleSubscriptionMemory reports the figure);
// a full default ring alone is over 170 KiB.
func TestIdleSubscriptionMemory(t *testing.T) {
	const subs = 1000
	const limit = 8 << 10 // bytes per idle subscription, heap and stacks
	bus, _ := eventbus.New(eventbus.Options{})
	defer bus.Close()
	noop := func(context.Context, eventbus.Event) error { return nil }
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range subs {
		if _, err := bus.Subscribe(context.Background(), "player."+strconv.Itoa(i)+".events", noop, eventbus.SubscribeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc) + int64(after.StackInuse) - int64(before.StackInuse)) / subs
	if per > limit {
		t.Fatalf("an idle subscription costs %d bytes (heap and stacks), want at most %d", per, limit)
	}
}

// The ring grows while the worker reads it: bursts of increasing size into a
// subscription whose worker is busy must arrive complete and in order under
// every overflow policy that keeps them (the queue is large enough to hold
// every burst).
func TestQueueGrowsUnderLoad(t *testing.T) {
	for _, policy := range []eventbus.Overflow{eventbus.Block, eventbus.DropNewest, eventbus.DropOldest, eventbus.KeepLatest} {
		t.Run(policy.String(), func(t *testing.T) {
			bus, _ := eventbus.New(eventbus.Options{DisableHistory: true})
			defer bus.Close()
			const bursts, queue = 12, 5000 // 4095 events in all
			var mu sync.Mutex
			var got []int
			release := make(chan struct{})
			done := make(chan struct{})
			total := 0
			for k := range bursts {
				total += 1 << k
			}
			sub, err := bus.Subscribe(context.Background(), "grow.t", func(_ context.Context, ev eventbus.Event) error {
				<-release
				i, _ := strconv.Atoi(string(ev.Payload))
				mu.Lock()
				got = append(got, i)
				if len(got) == total {
					close(done)
				}
				mu.Unlock()
				return nil
			}, eventbus.SubscribeOptions{QueueSize: queue, Overflow: policy, BlockUntilCanceled: true})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for k := range bursts {
				for range 1 << k {
					// Unique keys: KeepLatest must not conflate.
					if err := bus.Publish(context.Background(), "grow.t", eventbus.Event{Key: strconv.Itoa(n), Payload: []byte(strconv.Itoa(n))}); err != nil {
						t.Fatal(err)
					}
					n++
				}
				if k == 2 {
					close(release) // let the worker read while the ring grows
				}
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second): // bounds a hang only
				mu.Lock()
				n := len(got)
				mu.Unlock()
				t.Fatalf("%d of %d events arrived; stats %+v", n, total, sub.Stats())
			}
			mu.Lock()
			order := slices.Clone(got)
			mu.Unlock()
			for i, v := range order {
				if v != i {
					t.Fatalf("event %d arrived as number %d", v, i)
				}
			}
			if d := sub.Stats().Dropped.Total(); d != 0 {
				t.Fatalf("%d events dropped", d)
			}
		})
	}
}
