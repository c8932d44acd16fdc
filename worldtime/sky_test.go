package worldtime_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/worldtime"
	"github.com/google/go-cmp/cmp"
)

func hm(h, m int) time.Duration { return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute }

// Sunrise and sunset against NOAA Solar Calculator values (local clock
// time, rounded to the minute) for a few latitudes and dates. Tolerance: 3
// minutes, the general equations' stated accuracy plus rounding.
func TestSunriseSunsetNOAA(t *testing.T) {
	const tol = 3 * time.Minute
	for _, tc := range []struct {
		name      string
		sky       worldtime.Sky
		doy       int
		rise, set time.Duration
	}{
		{"London June solstice (BST)", worldtime.Sky{Latitude: 51.5074, Longitude: -0.1278, UTCOffset: time.Hour}, 172, hm(4, 43), hm(21, 21)},
		{"London December solstice", worldtime.Sky{Latitude: 51.5074, Longitude: -0.1278}, 355, hm(8, 4), hm(15, 53)},
		{"New York June solstice (EDT)", worldtime.Sky{Latitude: 40.7128, Longitude: -74.006, UTCOffset: -4 * time.Hour}, 172, hm(5, 25), hm(20, 31)},
		{"New York December solstice (EST)", worldtime.Sky{Latitude: 40.7128, Longitude: -74.006, UTCOffset: -5 * time.Hour}, 355, hm(7, 17), hm(16, 32)},
		{"Sydney December (AEDT)", worldtime.Sky{Latitude: -33.8688, Longitude: 151.2093, UTCOffset: 11 * time.Hour}, 355, hm(5, 41), hm(20, 5)},
		{"Equator, March equinox (UTC)", worldtime.Sky{}, 79, hm(6, 4), hm(18, 11)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rise, set, ok := tc.sky.Crossings(tc.doy, worldtime.SunriseElevation)
			if !ok {
				t.Fatal("no sunrise")
			}
			if d := rise - tc.rise; d.Abs() > tol {
				t.Errorf("sunrise %v, NOAA %v", rise.Round(time.Minute), tc.rise)
			}
			if d := set - tc.set; d.Abs() > tol {
				t.Errorf("sunset %v, NOAA %v", set.Round(time.Minute), tc.set)
			}
			// At the computed times the sun stands at the elevation.
			for _, x := range []time.Duration{rise, set} {
				if e := tc.sky.Sun(tc.doy, x).Elevation; math.Abs(e-worldtime.SunriseElevation) > 0.05 {
					t.Errorf("elevation at %v = %.3f°, want %.3f°", x, e, worldtime.SunriseElevation)
				}
			}
		})
	}
	// Polar night: no sunrise at 78°N in December.
	if _, _, ok := (worldtime.Sky{Latitude: 78}).Crossings(355, worldtime.SunriseElevation); ok {
		t.Error("Svalbard has a sunrise at the December solstice")
	}
}

func TestSunPosition(t *testing.T) {
	// Solar noon at the equator at the equinox: the sun is near the
	// zenith; at midnight far below.
	s := worldtime.Sky{}
	noon := s.Sun(79, hm(12, 7))
	if noon.Elevation < 88 {
		t.Errorf("equinox noon elevation %.2f°, want ≈ 90°", noon.Elevation)
	}
	if e := s.Sun(79, 0).Elevation; e > -80 {
		t.Errorf("equinox midnight elevation %.2f°, want ≈ −90°", e)
	}
	// Morning sun in the east, evening in the west.
	if az := s.Sun(79, hm(8, 0)).Azimuth; math.Abs(az-90) > 5 {
		t.Errorf("morning azimuth %.1f°, want ≈ 90°", az)
	}
	if az := s.Sun(79, hm(16, 0)).Azimuth; math.Abs(az-270) > 5 {
		t.Errorf("evening azimuth %.1f°, want ≈ 270°", az)
	}
	// A fictional planet without tilt has 12-hour days all year.
	f := worldtime.Sky{Fictional: true, Latitude: 60}
	for _, doy := range []int{1, 100, 200} {
		rise, set, ok := f.Crossings(doy, 0)
		if !ok || (set-rise-12*time.Hour).Abs() > time.Minute {
			t.Errorf("untilted planet, day %d: rise %v set %v", doy, rise, set)
		}
	}
}

func TestOnSun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClock(t, worldtime.Options{})
		var got []string
		stop, err := c.OnSun(worldtime.Sky{}, worldtime.SunriseElevation, func(ev worldtime.SunEvent) {
			got = append(got, fmt.Sprintf("d%d %s rising=%v", ev.Time.Day, ev.Time.Clock(), ev.Rising))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if err := c.Skip(context.Background(), 36*time.Hour); err != nil { // day 1 07:00 → day 2 19:00
			t.Fatal(err)
		}
		synctest.Wait()
		// Equator, early January (NOAA: sunrise 05:59, sunset 18:07 UTC).
		want := []string{"d1 18:06 rising=false", "d2 05:59 rising=true", "d2 18:07 rising=false"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("sun events (-want +got):\n%s", diff)
		}
		if _, err := c.OnSun(worldtime.Sky{}, 95, func(worldtime.SunEvent) {}); err == nil {
			t.Error("OnSun accepted an elevation of 95°")
		}
	})
}
