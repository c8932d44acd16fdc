package worldtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bodybroker/sdk/worldtime"
)

// fakeNow is a settable real-time source for examples.
type fakeNow struct{ t time.Time }

func (f *fakeNow) Now() time.Time          { return f.t }
func (f *fakeNow) Advance(d time.Duration) { f.t = f.t.Add(d) }

// A 24-minute day (the default: 60 real seconds per game hour, from 07:00
// on day 1) with its phase events. Manual and a fake real-time source make
// the example deterministic; a server leaves both unset and the clock's
// goroutine delivers events as they fall due.
func Example() {
	ctx := context.Background()
	real := &fakeNow{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	clock, _ := worldtime.New(ctx, worldtime.Options{World: "day-world", Manual: true, Now: real.Now})
	defer clock.Close()

	clock.Observe(func(ev worldtime.Event) {
		if ev.Kind == worldtime.EventPhase {
			fmt.Printf("day %d %s: %s → %s\n", ev.Time.Day, ev.Time.Clock(), ev.FromPhase, ev.Time.Phase)
		}
	})
	fmt.Println("now:", clock.Now())
	real.Advance(24 * time.Minute) // one game day
	_ = clock.Tick()
	fmt.Println("now:", clock.Now())
	// Output:
	// now: day 1 07:00 (day)
	// day 1 18:00: day → dusk
	// day 1 20:00: dusk → night
	// day 2 05:00: night → dawn
	// day 2 07:00: dawn → day
	// now: day 2 07:00 (day)
}

// A skip delivers every boundary it crosses, in order, marked as skipped.
func ExampleClock_Skip() {
	ctx := context.Background()
	real := &fakeNow{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	clock, _ := worldtime.New(ctx, worldtime.Options{Manual: true, Now: real.Now})
	defer clock.Close()
	hours := 0
	clock.Observe(func(ev worldtime.Event) {
		if ev.Kind == worldtime.EventHour {
			hours++
		} else {
			fmt.Printf("%s at day %d %s skipped=%v\n", ev.Kind, ev.Time.Day, ev.Time.Clock(), ev.Skipped)
		}
	})
	_ = clock.Skip(ctx, 20*time.Hour) // 07:00 → 03:00 next day
	_ = clock.Tick()
	fmt.Println(clock.Now(), "hours crossed:", hours)
	// Output:
	// phase at day 1 18:00 skipped=true
	// phase at day 1 20:00 skipped=true
	// day at day 2 00:00 skipped=true
	// day 2 03:00 (night) hours crossed: 20
}

// Game-time timers: crops grow every 3 game hours. Pausing the clock
// freezes them; a skip runs every growth it crosses, in order.
func ExampleClock_Every() {
	ctx := context.Background()
	real := &fakeNow{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	clock, _ := worldtime.New(ctx, worldtime.Options{Manual: true, Now: real.Now})
	defer clock.Close()

	first := clock.Now().Instant.Add(3 * time.Hour)
	_, _ = clock.Every(first, 3*time.Hour, func(due worldtime.Instant) {
		fmt.Println("crops grow at", clock.Calendar(due).Clock())
	})
	real.Advance(6 * time.Minute) // 6 game hours at 60 s per game hour
	_ = clock.Tick()
	_ = clock.Pause(ctx)
	real.Advance(time.Hour) // paused: nothing grows
	_ = clock.Tick()
	_ = clock.Resume(ctx)
	_ = clock.Skip(ctx, 6*time.Hour)
	_ = clock.Tick()
	// Output:
	// crops grow at 10:00
	// crops grow at 13:00
	// crops grow at 16:00
	// crops grow at 19:00
}

// Two servers share one clock through a Store: here a MemoryStore in one
// process; across processes, worldtime/redisstore (see its example). The
// second server loads the timeline the first created; a change made on
// one reaches the other on its next refresh, and a change scheduled ahead
// (Change.At) switches both at the same real instant.
func ExampleNew_sharedStore() {
	ctx := context.Background()
	real := &fakeNow{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	store := &worldtime.MemoryStore{}
	a, _ := worldtime.New(ctx, worldtime.Options{World: "shard-7", Store: store, Manual: true, Now: real.Now})
	defer a.Close()
	real.Advance(90 * time.Second)
	b, _ := worldtime.New(ctx, worldtime.Options{World: "shard-7", Store: store, Manual: true, Now: real.Now})
	defer b.Close()
	fmt.Println("a:", a.Now().Clock(), "b:", b.Now().Clock())

	// Pause both in 5 real seconds.
	_, _ = a.Apply(ctx, worldtime.Change{Kind: worldtime.ChangePause, At: real.Now().Add(5 * time.Second)})
	_ = b.Refresh(ctx)
	real.Advance(time.Minute)
	fmt.Println("a:", a.Now().Clock(), a.Now().Paused, "b:", b.Now().Clock(), b.Now().Paused)
	// Output:
	// a: 08:30 b: 08:30
	// a: 08:35 true b: 08:35 true
}

// The original system's unit is real seconds per game hour (UE's
// SetTimeScale(RealSecondsPerGameHour)); Multiplier and DayLength are the
// other common forms.
func ExampleRealSecondsPerGameHour() {
	s, _ := worldtime.RealSecondsPerGameHour(60)
	m, _ := worldtime.Multiplier(72) // Minecraft: a 20-minute day
	d, _ := worldtime.DayLength(30 * time.Minute)
	fmt.Println(s.Multiplier(), m.RealSecondsPerGameHour(), d.RealSecondsPerGameHour())
	// Output:
	// 60 50 75
}

// The dialogue service takes the time of day from the world's clock, not
// from the client: pass this hook as dialogue.Options.TimeOfDay.
func ExampleDialogueTimeOfDay() {
	ctx := context.Background()
	real := &fakeNow{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	night, _ := worldtime.New(ctx, worldtime.Options{World: "night-world", Manual: true, Now: real.Now, Start: worldtime.At(3, 18, 40)})
	defer night.Close()
	hook := worldtime.DialogueTimeOfDay(func(region string) *worldtime.Clock {
		if region == "greywater" {
			return night
		}
		return nil
	})
	fmt.Println(hook(ctx, "greywater"))
	fmt.Println(hook(ctx, "elsewhere"))
	// Output:
	// dusk (18:40, day 3) true
	//  false
}

// Time encodes as JSON with the original TimeData's field names, for an
// HTTP endpoint like the original's GET /time/current.
func ExampleTime_MarshalJSON() {
	clock, _ := worldtime.New(context.Background(), worldtime.Options{Manual: true, Start: worldtime.At(3, 18, 40),
		Now: func() time.Time { return time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC) }})
	defer clock.Close()
	b, _ := json.Marshal(clock.Now())
	fmt.Println(string(b))
	// Output:
	// {"game_time_us":240000000000,"day":3,"hour":18,"minute":40,"second":0,"state":"dusk","total_minutes":4000,"time_string":"18:40","uds_time_of_day":1866.6666666666667,"weekday":2,"year":1,"day_of_year":3,"season":-1,"moon":0.0940644249202819}
}
