package worldtime_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/worldtime"
)

func TestStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newClock(t, worldtime.Options{MaxTimers: 3})
		noop := func(worldtime.Instant) {}
		a, _ := c.After(time.Hour, noop)
		if _, err := c.After(2*time.Hour, noop); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Every(c.Now().Instant.Add(30*time.Minute), time.Hour, noop); err != nil {
			t.Fatal(err)
		}
		if _, err := c.After(time.Hour, noop); !errors.Is(err, worldtime.ErrTooManyTimers) {
			t.Fatalf("fourth timer with MaxTimers 3: err = %v, want ErrTooManyTimers", err)
		}
		if !c.Cancel(a) || c.Cancel(a) {
			t.Fatal("Cancel: want true once, then false")
		}
		if err := c.Skip(ctx, 150*time.Minute); err != nil { // 07:00 → 09:30
			t.Fatal(err)
		}
		synctest.Wait()
		st := c.Stats()
		// Fired: the 2-hour timer, and the periodic one at 07:30, 08:30, 09:30.
		want := worldtime.Stats{
			World: "default", Version: 2, Segments: 2,
			TimersPending: 1, TimersFired: 4, TimersCancelled: 1, TimerBytes: st.TimerBytes,
			EventsEmitted: 2, // hours 08:00 and 09:00
			StoreLoads:    1, StoreSwaps: 2,
		}
		if st != want {
			t.Fatalf("Stats() = %+v\nwant     %+v", st, want)
		}
		if st.TimerBytes <= 0 {
			t.Errorf("TimerBytes = %d, want > 0", st.TimerBytes)
		}
	})
}
