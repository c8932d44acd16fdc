package worldtime_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/worldtime"
	"github.com/google/go-cmp/cmp"
)

// recorder collects events as compact strings.
type recorder struct {
	mu  sync.Mutex
	evs []string
}

func (r *recorder) observe(ev worldtime.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := fmt.Sprintf("%s d%d %s", ev.Kind, ev.Time.Day, ev.Time.Clock())
	if ev.Kind == worldtime.EventPhase {
		s += " " + ev.FromPhase + ">" + ev.Time.Phase
	}
	if ev.Skipped {
		s += " skipped"
	}
	r.evs = append(r.evs, s)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.evs
	r.evs = nil
	return out
}

func newClock(t *testing.T, o worldtime.Options) *worldtime.Clock {
	t.Helper()
	c, err := worldtime.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClock(t, worldtime.Options{})
		got := c.Now()
		if got.Day != 1 || got.Hour != 7 || got.Minute != 0 || got.Phase != "day" || got.Clock() != "07:00" || got.TotalMinutes() != 420 {
			t.Fatalf("Now() = %+v, want 07:00 on day 1, phase day", got)
		}
		// 60 real seconds per game hour: 90 real seconds later it is 08:30.
		time.Sleep(90 * time.Second)
		got = c.Now()
		if got.Clock() != "08:30" || got.UDS() != 850 {
			t.Fatalf("after 90 s: %s (UDS %v), want 08:30 (850)", got.Clock(), got.UDS())
		}
		if s := c.Timeline().Segments[0].Scale.RealSecondsPerGameHour(); s != 60 {
			t.Errorf("RealSecondsPerGameHour = %v, want 60", s)
		}
	})
}

// The original clock never moved at 120 s per game hour (it truncated
// half a minute every tick); this one never loses a fraction.
func TestSlowScaleAdvances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc, err := worldtime.RealSecondsPerGameHour(120)
		if err != nil {
			t.Fatal(err)
		}
		c := newClock(t, worldtime.Options{Scale: sc})
		start := c.Now().Instant
		for i := 1; i <= 240; i++ {
			time.Sleep(time.Second)
			if got, want := c.Now().Instant-start, worldtime.Instant(i)*30_000_000; got != want {
				t.Fatalf("after %d s: advanced %d µs, want %d", i, got, want)
			}
		}
		if got := c.Now().Clock(); got != "09:00" {
			t.Fatalf("after 240 s at 120 s/h: %s, want 09:00", got)
		}
	})
}

func TestPhaseEventsOverADay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClock(t, worldtime.Options{})
		var r recorder
		defer c.Observe(r.observe)()
		time.Sleep(24 * time.Minute) // one game day
		synctest.Wait()
		got := r.take()
		var want []string
		for h := 8; h <= 31; h++ {
			d, hh := 1+h/24, h%24
			clk := fmt.Sprintf("%02d:00", hh)
			if hh == 0 {
				want = append(want, "day d2 00:00")
			}
			switch hh {
			case 18:
				want = append(want, "phase d1 18:00 day>dusk")
			case 20:
				want = append(want, "phase d1 20:00 dusk>night")
			case 5:
				want = append(want, "phase d2 05:00 night>dawn")
			case 7:
				want = append(want, "phase d2 07:00 dawn>day")
			}
			want = append(want, fmt.Sprintf("hour d%d %s", d, clk))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
		if st := c.Stats(); st.EventsEmitted != int64(len(want)) {
			t.Errorf("Stats.EventsEmitted = %d, want %d", st.EventsEmitted, len(want))
		}
	})
}

func TestSkipEmitsEveryBoundary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClock(t, worldtime.Options{})
		var r recorder
		defer c.Observe(r.observe)()
		if err := c.Skip(context.Background(), 14*time.Hour); err != nil { // 07:00 → 21:00
			t.Fatal(err)
		}
		synctest.Wait()
		want := []string{}
		for h := 8; h <= 21; h++ {
			switch h {
			case 18:
				want = append(want, "phase d1 18:00 day>dusk skipped")
			case 20:
				want = append(want, "phase d1 20:00 dusk>night skipped")
			}
			want = append(want, fmt.Sprintf("hour d1 %02d:00 skipped", h))
		}
		if diff := cmp.Diff(want, r.take()); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
		if got := c.Now().Clock(); got != "21:00" {
			t.Fatalf("after skip: %s, want 21:00", got)
		}
	})
}

func TestSkipCoalesceLatest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClock(t, worldtime.Options{Coalesce: worldtime.CoalesceLatest})
		var r recorder
		defer c.Observe(r.observe)()
		if err := c.Skip(context.Background(), 3*24*time.Hour+30*time.Minute); err != nil { // → day 4 07:30
			t.Fatal(err)
		}
		synctest.Wait()
		want := []string{"day d4 00:00 skipped", "phase d4 07:00 dawn>day skipped", "hour d4 07:00 skipped"}
		if diff := cmp.Diff(want, r.take()); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
		// 72 hours, 3 days, 12 phases crossed; 3 delivered.
		if got, want := c.Stats().EventsCoalesced, int64(72+3+12-3); got != want {
			t.Errorf("EventsCoalesced = %d, want %d", got, want)
		}
	})
}

func TestPauseResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newClock(t, worldtime.Options{})
		var r recorder
		defer c.Observe(r.observe)()
		fired := 0
		if _, err := c.After(2*time.Hour, func(worldtime.Instant) { fired++ }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		if err := c.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		before := c.Now()
		time.Sleep(10 * time.Hour)
		synctest.Wait()
		if got := c.Now(); got.Instant != before.Instant || !got.Paused {
			t.Fatalf("paused clock moved: %v → %v (paused %v)", before, got, got.Paused)
		}
		if fired != 0 || len(r.take()) != 0 {
			t.Fatalf("paused clock fired %d timers, events", fired)
		}
		if err := c.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(90 * time.Second) // 07:30 + 1.5 h = 09:00
		synctest.Wait()
		if got := c.Now().Clock(); got != "09:00" || fired != 1 {
			t.Fatalf("after resume: %s, fired %d; want 09:00, 1", got, fired)
		}
		// Pausing twice is a no-op, not a new segment.
		v := c.Timeline().Version
		_ = c.Pause(ctx)
		_ = c.Pause(ctx)
		if got := c.Timeline().Version; got != v+1 {
			t.Errorf("two pauses took versions %d → %d, want one", v, got)
		}
	})
}

func TestSetBackAndForward(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newClock(t, worldtime.Options{})
		var r recorder
		defer c.Observe(r.observe)()
		if err := c.Set(ctx, 1, 5, 30); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if diff := cmp.Diff([]string{"set-back d1 05:30"}, r.take()); diff != "" {
			t.Fatalf("set back (-want +got):\n%s", diff)
		}
		if got := c.Now(); got.Phase != "dawn" || got.Clock() != "05:30" {
			t.Fatalf("Now = %v, want 05:30 dawn", got)
		}
		if err := c.Set(ctx, 1, 8, 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		want := []string{"hour d1 06:00 skipped", "phase d1 07:00 dawn>day skipped", "hour d1 07:00 skipped", "hour d1 08:00 skipped"}
		if diff := cmp.Diff(want, r.take()); diff != "" {
			t.Fatalf("set forward (-want +got):\n%s", diff)
		}
	})
}

func TestScheduledChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newClock(t, worldtime.Options{})
		at := time.Now().Add(10 * time.Second)
		if _, err := c.Apply(ctx, worldtime.Change{Kind: worldtime.ChangePause, At: at}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if c.Now().Paused {
			t.Fatal("paused before the scheduled instant")
		}
		time.Sleep(time.Minute)
		got := c.Now()
		if !got.Paused || got.Instant != worldtime.At(1, 7, 10) {
			t.Fatalf("Now = %v paused=%v, want paused at 07:10", got, got.Paused)
		}
		// A change before the last scheduled one is rejected.
		if _, err := c.Apply(ctx, worldtime.Change{Kind: worldtime.ChangeResume, At: time.Now().Add(-time.Second)}); !errors.Is(err, worldtime.ErrInvalid) {
			t.Errorf("change in the past: err = %v, want ErrInvalid", err)
		}
	})
}

func TestScaleChangeKeepsTimeContinuous(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClock(t, worldtime.Options{})
		time.Sleep(30 * time.Second)
		before := c.Now().Instant
		if err := c.SetRealSecondsPerGameHour(context.Background(), 3600); err != nil { // real time
			t.Fatal(err)
		}
		if got := c.Now().Instant; got != before {
			t.Fatalf("scale change moved time: %d → %d", before, got)
		}
		time.Sleep(time.Hour)
		if got, want := c.Now().Instant, before.Add(time.Hour); got != want {
			t.Fatalf("after an hour at real time: %d, want %d", got, want)
		}
	})
}

func TestInvalidInput(t *testing.T) {
	for _, s := range []float64{0, -1, math.NaN(), math.Inf(1), 1e-9, 1e12} {
		if _, err := worldtime.RealSecondsPerGameHour(s); !errors.Is(err, worldtime.ErrInvalid) {
			t.Errorf("RealSecondsPerGameHour(%v): err = %v, want ErrInvalid", s, err)
		}
	}
	for _, x := range []float64{0, -3, math.NaN(), 1e7, 1e-5} {
		if _, err := worldtime.Multiplier(x); !errors.Is(err, worldtime.ErrInvalid) {
			t.Errorf("Multiplier(%v): err = %v, want ErrInvalid", x, err)
		}
	}
	h := time.Hour
	for name, ph := range map[string][]worldtime.Phase{
		"gap":        {{"a", 0, 10 * h}, {"b", 11 * h, 0}},
		"overlap":    {{"a", 0, 12 * h}, {"b", 11 * h, 0}},
		"same-name":  {{"a", 0, 12 * h}, {"a", 12 * h, 0}},
		"empty":      {},
		"range":      {{"a", 0, 25 * h}},
		"same-start": {{"a", 0, 12 * h}, {"b", 0, 12 * h}},
	} {
		_, err := worldtime.New(context.Background(), worldtime.Options{Calendar: worldtime.Calendar{Phases: ph}})
		var ve *worldtime.ValueError
		if !errors.As(err, &ve) || !errors.Is(err, worldtime.ErrInvalid) {
			t.Errorf("phases %s: err = %v, want a *ValueError", name, err)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newClock(t, worldtime.Options{})
		v := c.Timeline().Version
		for _, tc := range []struct{ day, hour, minute int }{{0, 1, 0}, {1, 24, 0}, {1, -1, 0}, {1, 1, 60}} {
			if err := c.Set(ctx, tc.day, tc.hour, tc.minute); !errors.Is(err, worldtime.ErrInvalid) {
				t.Errorf("Set%v: err = %v, want ErrInvalid", tc, err)
			}
		}
		for _, ch := range []worldtime.Change{
			{Kind: worldtime.ChangeSkip, By: -time.Hour},
			{Kind: worldtime.ChangeSkip},
			{Kind: worldtime.ChangeSet, To: -1},
			{Kind: worldtime.ChangeScale, Scale: worldtime.Scale{Game: -1, Real: 1}},
			{Kind: "warp"},
		} {
			if _, err := c.Apply(ctx, ch); !errors.Is(err, worldtime.ErrInvalid) {
				t.Errorf("Apply(%+v): err = %v, want ErrInvalid", ch, err)
			}
		}
		if got := c.Timeline().Version; got != v {
			t.Errorf("invalid changes moved the version %d → %d", v, got)
		}
	})
}

func TestIfVersionConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := &worldtime.MemoryStore{}
		a := newClock(t, worldtime.Options{Store: store, World: "w"})
		b := newClock(t, worldtime.Options{Store: store, World: "w", DisableRefresh: true})
		v := b.Timeline().Version
		if err := a.Skip(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		// b still sees v; a conditional change on v must fail and apply nothing.
		_, err := b.Apply(ctx, worldtime.Change{Kind: worldtime.ChangePause, IfVersion: v})
		if !errors.Is(err, worldtime.ErrConflict) {
			t.Fatalf("stale conditional change: err = %v, want ErrConflict", err)
		}
		// An unconditional one reloads and applies on top of a's skip.
		if err := b.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		// A conditional change on a version this clock has not seen yet
		// (b's pause, v+2) consults the store and applies.
		if _, err := a.Apply(ctx, worldtime.Change{Kind: worldtime.ChangeResume, IfVersion: v + 2}); err != nil {
			t.Fatalf("conditional change on the store's version: %v", err)
		}
		if err := b.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if !a.Now().Paused || a.Now().Clock() != "08:00" {
			t.Fatalf("a after refresh: %v paused=%v, want paused at 08:00", a.Now(), a.Now().Paused)
		}
		if st := b.Stats(); st.StoreConflicts != 1 {
			t.Errorf("b.Stats().StoreConflicts = %d, want 1", st.StoreConflicts)
		}
	})
}

func TestCloseIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := worldtime.New(context.Background(), worldtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); !errors.Is(err, worldtime.ErrClosed) {
			t.Errorf("second Close: %v, want ErrClosed", err)
		}
		if _, err := c.After(time.Hour, func(worldtime.Instant) {}); !errors.Is(err, worldtime.ErrClosed) {
			t.Errorf("After on closed clock: %v, want ErrClosed", err)
		}
		if err := c.Pause(context.Background()); !errors.Is(err, worldtime.ErrClosed) {
			t.Errorf("Pause on closed clock: %v, want ErrClosed", err)
		}
	})
}
