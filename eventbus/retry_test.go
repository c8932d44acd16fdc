package eventbus_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// Retry backoffs are jittered: the wait after failed attempt n lies in
// [Initial, min(Max, Initial·Multiplier^n)), and subscriptions that fail at
// the same moment do not retry in lockstep.
func TestRetryBackoffJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := eventbus.New(eventbus.Options{})
		defer b.Close()
		const subs, attempts = 20, 5
		retry := eventbus.Retry{MaxAttempts: attempts, Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2}
		var mu sync.Mutex
		calls := make([][]time.Time, subs)
		var wg sync.WaitGroup
		wg.Add(subs)
		for i := range subs {
			_, err := b.Subscribe(context.Background(), "retry.t", func(ctx context.Context, ev eventbus.Event) error {
				mu.Lock()
				calls[i] = append(calls[i], time.Now())
				n := len(calls[i])
				mu.Unlock()
				if n == attempts {
					wg.Done()
				}
				return errors.New("fail " + strconv.Itoa(n))
			}, eventbus.SubscribeOptions{Retry: retry})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Publish(context.Background(), "retry.t", eventbus.Event{}); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		firstGaps := map[time.Duration]bool{}
		for i, ts := range calls {
			for n := 1; n < len(ts); n++ {
				gap := ts[n].Sub(ts[n-1])
				ceiling := min(retry.Max, retry.Initial<<n)
				if gap < retry.Initial || gap > ceiling {
					t.Errorf("subscription %d: wait after attempt %d = %v, want in [%v, %v]", i, n, gap, retry.Initial, ceiling)
				}
			}
			firstGaps[ts[1].Sub(ts[0])] = true
		}
		if len(firstGaps) < subs/2 {
			t.Errorf("%d subscriptions that failed together waited only %d distinct times before their first retry: retries in lockstep", subs, len(firstGaps))
		}
	})
}
