package worldtime_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/worldtime"
)

func TestCalendar(t *testing.T) {
	h := time.Hour
	cal := worldtime.Calendar{
		// Factorio-like: day 50 %, dusk 20 %, night 10 %, dawn 20 %,
		// starting at 03:00 so that night wraps nothing.
		Phases: []worldtime.Phase{
			{"day", 3 * h, 15 * h}, {"dusk", 15 * h, 19*h + 48*time.Minute},
			{"night", 19*h + 48*time.Minute, 22*h + 12*time.Minute}, {"dawn", 22*h + 12*time.Minute, 3 * h},
		},
		DaysPerWeek: 5,
		Months:      []worldtime.Month{{"Thaw", 10}, {"Sun", 12}, {"Frost", 6}},
		Seasons:     []worldtime.Season{{"warm", 20}, {"cold", 8}},
		MoonCycle:   8 * 24 * h,
	}
	c := newClock(t, worldtime.Options{Calendar: cal, Manual: true})
	for _, tc := range []struct {
		g    worldtime.Instant
		want worldtime.Time
	}{
		{worldtime.At(1, 0, 0), worldtime.Time{Day: 1, Phase: "dawn", PhaseIndex: 3, Year: 1, DayOfYear: 1, Month: 1, MonthDay: 1, Season: 0}},
		{worldtime.At(1, 2, 59), worldtime.Time{Day: 1, Hour: 2, Minute: 59, Phase: "dawn", PhaseIndex: 3, Year: 1, DayOfYear: 1, Month: 1, MonthDay: 1, Season: 0}},
		{worldtime.At(11, 15, 0), worldtime.Time{Day: 11, Hour: 15, Phase: "dusk", PhaseIndex: 1, Weekday: 0, Year: 1, DayOfYear: 11, Month: 2, MonthDay: 1, Season: 0}},
		{worldtime.At(28, 23, 0), worldtime.Time{Day: 28, Hour: 23, Phase: "dawn", PhaseIndex: 3, Weekday: 2, Year: 1, DayOfYear: 28, Month: 3, MonthDay: 6, Season: 1}},
		{worldtime.At(29, 20, 0), worldtime.Time{Day: 29, Hour: 20, Phase: "night", PhaseIndex: 2, Weekday: 3, Year: 2, DayOfYear: 1, Month: 1, MonthDay: 1, Season: 0}},
	} {
		got := c.Calendar(tc.g)
		tc.want.Instant = tc.g
		cycle := int64(8 * 24 * time.Hour / time.Microsecond)
		tc.want.Moon = float64(int64(tc.g)%cycle) / float64(cycle)
		if d := got.Moon - tc.want.Moon; d > 1e-9 || d < -1e-9 {
			t.Errorf("%v: moon %v, want %v", tc.g, got.Moon, tc.want.Moon)
		}
		got.Moon = tc.want.Moon
		if got != tc.want {
			t.Errorf("Calendar(%d) =\n %+v\nwant\n %+v", tc.g, got, tc.want)
		}
	}
	if _, err := worldtime.New(context.Background(), worldtime.Options{Calendar: worldtime.Calendar{
		Months: []worldtime.Month{{"A", 10}}, Seasons: []worldtime.Season{{"s", 11}},
	}}); err == nil {
		t.Error("seasons longer than the year were accepted")
	}
}

// Many goroutines schedule, cancel and read while the clock fires timers
// and a pause, skip and scale change land; nothing races (run with -race)
// and every timer fires or is cancelled exactly once.
func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newClock(t, worldtime.Options{})
		var fired, cancelled atomic.Int64
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 200 {
					id, err := c.After(time.Duration(1+i%50)*time.Minute, func(worldtime.Instant) { fired.Add(1) })
					if err != nil {
						t.Error(err)
						return
					}
					if (i+w)%5 == 0 && c.Cancel(id) {
						cancelled.Add(1)
					}
					_ = c.Now()
					if i%20 == 0 {
						time.Sleep(time.Second)
					}
				}
			})
		}
		wg.Go(func() {
			_ = c.Pause(ctx)
			time.Sleep(3 * time.Second)
			_ = c.Resume(ctx)
			_ = c.Skip(ctx, 10*time.Minute)
			_ = c.SetRealSecondsPerGameHour(ctx, 30)
		})
		wg.Wait()
		time.Sleep(5 * time.Minute) // every timer is due within 50 game minutes
		synctest.Wait()
		if got := fired.Load() + cancelled.Load(); got != 1600 {
			t.Fatalf("fired %d + cancelled %d = %d, want 1600", fired.Load(), cancelled.Load(), got)
		}
		if st := c.Stats(); st.TimersPending != 0 || st.TimersFired != fired.Load() {
			t.Errorf("Stats: pending %d fired %d, want 0, %d", st.TimersPending, st.TimersFired, fired.Load())
		}
	})
}

// No timer callback runs after Close returns.
func TestCloseStopsCallbacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := worldtime.New(context.Background(), worldtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var closed atomic.Bool
		var late atomic.Int64
		for i := range 1000 {
			_, _ = c.After(time.Duration(i)*time.Second, func(worldtime.Instant) {
				if closed.Load() {
					late.Add(1)
				}
			})
		}
		time.Sleep(5 * time.Second)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		closed.Store(true)
		time.Sleep(time.Hour)
		synctest.Wait()
		if late.Load() != 0 {
			t.Fatalf("%d callbacks ran after Close", late.Load())
		}
	})
}
