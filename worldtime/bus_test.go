package worldtime_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/worldtime"
	"github.com/google/go-cmp/cmp"
)

func TestBusEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		bus, err := eventbus.New(eventbus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close()
		var mu sync.Mutex
		var got []string
		var phases []worldtime.PhaseChanged
		sub, err := bus.Subscribe(ctx, "world.time.*", func(ctx context.Context, ev eventbus.Event) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, ev.Topic+" "+ev.Key)
			if ev.Topic == worldtime.TopicPhase {
				p, err := eventbus.Decode[worldtime.PhaseChanged](ev)
				if err != nil {
					return err
				}
				phases = append(phases, p)
			}
			return nil
		}, eventbus.SubscribeOptions{DedupWindow: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()

		store := &worldtime.MemoryStore{}
		// Two servers publish the same boundaries; the subscriber's dedup
		// window sees each once.
		a := newClock(t, worldtime.Options{World: "night-world", Store: store, Bus: bus})
		b := newClock(t, worldtime.Options{World: "night-world", Store: store, Bus: bus})
		if err := a.Skip(ctx, 12*time.Hour+30*time.Minute); err != nil { // 07:00 → 19:30
			t.Fatal(err)
		}
		if err := b.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(45 * time.Second) // → 20:15
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		var want []string
		for h := 8; h <= 20; h++ {
			if h == 18 || h == 20 {
				want = append(want, "world.time.phase night-world")
			}
			want = append(want, "world.time.hour night-world")
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("bus events (-want +got):\n%s", diff)
		}
		wantPhases := []worldtime.PhaseChanged{
			{Version: 1, World: "night-world", From: "day", To: "dusk", Day: 1, Hour: 18, Clock: "18:00", GameTime: int64(worldtime.At(1, 18, 0)), Skipped: true, TimelineVersion: 2},
			{Version: 1, World: "night-world", From: "dusk", To: "night", Day: 1, Hour: 20, Clock: "20:00", GameTime: int64(worldtime.At(1, 20, 0)), TimelineVersion: 2},
		}
		if diff := cmp.Diff(wantPhases, phases); diff != "" {
			t.Fatalf("phase payloads (-want +got):\n%s", diff)
		}
		if st := a.Stats(); st.Published != 15 || st.PublishErrors != 0 {
			t.Errorf("a.Stats: published %d, errors %d; want 15, 0", st.Published, st.PublishErrors)
		}
	})
}
