package worldtime

import (
	"math"
	"time"
)

// Sky computes the sun's position for a place on a planet, with NOAA's
// general solar position equations, so that the server owns sky truth for
// every client. The game's time of day is the local clock time at
// UTCOffset and Longitude (for a fictional world, leave both zero: noon is
// solar noon). The zero value is the equator of an Earth-like planet. It is
// a plain value, safe for concurrent use.
type Sky struct {
	// Latitude in degrees, north positive, within [−90, 90].
	Latitude float64
	// Longitude in degrees, east positive, and the zone of the game clock
	// (UTC+UTCOffset); both shift solar noon as on Earth.
	Longitude float64
	UTCOffset time.Duration
	// Fictional replaces Earth's declination and equation-of-time series
	// with a circular orbit of AxialTilt degrees (0: no seasons) and
	// YearDays days per year (0: 365), no equation of time; day 81 is the
	// vernal equinox scaled to the year.
	Fictional bool
	AxialTilt float64
	YearDays  int
}

// SunPosition is the sun's elevation above the horizon and azimuth
// (clockwise from north), in degrees. It does not include atmospheric
// refraction.
type SunPosition struct {
	Elevation float64
	Azimuth   float64
}

// Standard elevations for sun events.
const (
	// SunriseElevation is the sun's elevation at sunrise and sunset:
	// the upper limb on the horizon, with standard refraction (−0.833°).
	SunriseElevation = -0.833
	// CivilTwilight, NauticalTwilight and AstronomicalTwilight end at
	// these elevations.
	CivilTwilight        = -6.0
	NauticalTwilight     = -12.0
	AstronomicalTwilight = -18.0
)

const rad = math.Pi / 180

// declEq returns the declination (radians) and the equation of time
// (minutes) on dayOfYear (from 1) at local clock time tod.
func (s Sky) declEq(dayOfYear int, tod time.Duration) (float64, float64) {
	utcHours := (tod - s.UTCOffset).Hours()
	if s.Fictional {
		year := float64(s.YearDays)
		if year <= 0 {
			year = 365
		}
		frac := (float64(dayOfYear-1) + utcHours/24 - 80*year/365) / year
		return math.Asin(math.Sin(s.AxialTilt*rad) * math.Sin(2*math.Pi*frac)), 0
	}
	g := 2 * math.Pi / 365 * (float64(dayOfYear-1) + (utcHours-12)/24)
	eq := 229.18 * (0.000075 + 0.001868*math.Cos(g) - 0.032077*math.Sin(g) - 0.014615*math.Cos(2*g) - 0.040849*math.Sin(2*g))
	decl := 0.006918 - 0.399912*math.Cos(g) + 0.070257*math.Sin(g) - 0.006758*math.Cos(2*g) +
		0.000907*math.Sin(2*g) - 0.002697*math.Cos(3*g) + 0.00148*math.Sin(3*g)
	return decl, eq
}

// Sun returns the sun's position on dayOfYear (from 1) at local clock time
// tod (the game's time of day).
func (s Sky) Sun(dayOfYear int, tod time.Duration) SunPosition {
	decl, eq := s.declEq(dayOfYear, tod)
	tst := tod.Minutes() + eq + 4*s.Longitude - s.UTCOffset.Minutes() // true solar time, minutes
	ha := (tst/4 - 180) * rad
	lat := s.Latitude * rad
	cz := math.Sin(lat)*math.Sin(decl) + math.Cos(lat)*math.Cos(decl)*math.Cos(ha)
	cz = max(-1, min(1, cz))
	zen := math.Acos(cz)
	az := 0.0
	if d := math.Cos(lat) * math.Sin(zen); math.Abs(d) > 1e-12 {
		c := (math.Sin(lat)*cz - math.Sin(decl)) / d
		az = math.Acos(max(-1, min(1, c))) / rad
		if ha > 0 {
			az = math.Mod(az+180, 360)
		} else {
			az = math.Mod(540-az, 360)
		}
	}
	return SunPosition{Elevation: 90 - zen/rad, Azimuth: az}
}

// Crossings returns the local clock times on dayOfYear when the sun rises
// through and sets below elevation (degrees; SunriseElevation for sunrise
// and sunset). ok is false when it does not cross that day (polar day or
// night). Times may fall outside [0, 24h) far from the zone's meridian.
func (s Sky) Crossings(dayOfYear int, elevation float64) (rise, set time.Duration, ok bool) {
	// Two passes: the declination and equation of time at the first
	// estimate refine the second.
	tod := [2]time.Duration{6 * time.Hour, 18 * time.Hour}
	var out [2]time.Duration
	for range 3 {
		for i, sign := range [2]float64{-1, 1} {
			decl, eq := s.declEq(dayOfYear, tod[i])
			lat := s.Latitude * rad
			c := (math.Sin(elevation*rad) - math.Sin(lat)*math.Sin(decl)) / (math.Cos(lat) * math.Cos(decl))
			if c < -1 || c > 1 {
				return 0, 0, false
			}
			ha := math.Acos(c) / rad * sign
			min := 720 - 4*s.Longitude + 4*ha - eq + s.UTCOffset.Minutes()
			out[i] = time.Duration(min * float64(time.Minute))
		}
		tod = out
	}
	return out[0], out[1], true
}

// SunEvent is delivered by [Clock.OnSun] when the sun crosses the watched
// elevation.
type SunEvent struct {
	World  string
	Rising bool // true: the sun rose through the elevation; false: set below it
	Time   Time
}

// OnSun calls fn each time the sun crosses elevation (degrees) in sky, in
// game time: rising and setting. The day of year comes from the clock's
// calendar. Seasons change day length by themselves. It runs on game-time
// timers (one pending at a time), so pausing and skipping behave as for
// any timer. stop cancels it.
func (c *Clock) OnSun(sky Sky, elevation float64, fn func(SunEvent)) (stop func(), err error) {
	if math.IsNaN(elevation) || elevation < -90 || elevation > 90 {
		return nil, invalid("sun elevation", "%v is outside [−90, 90]", elevation)
	}
	if math.IsNaN(sky.Latitude) || sky.Latitude < -90 || sky.Latitude > 90 {
		return nil, invalid("latitude", "%v is outside [−90, 90]", sky.Latitude)
	}
	var (
		id      TimerID
		stopped bool
		mu      = &c.sunMu
	)
	var arm func(after Instant) error
	arm = func(after Instant) error {
		next, rising, ok := c.nextSun(sky, elevation, after)
		if !ok {
			return nil // never crosses within a year: nothing to wait for
		}
		var err error
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return nil
		}
		id, err = c.AtGame(next, func(due Instant) {
			fn(SunEvent{World: c.world, Rising: rising, Time: c.cal.at(due)})
			_ = arm(due)
		})
		return err
	}
	if err := arm(c.Now().Instant); err != nil {
		return nil, err
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		c.Cancel(id)
	}, nil
}

// nextSun returns the first crossing strictly after g, searching up to a
// year ahead.
func (c *Clock) nextSun(sky Sky, elevation float64, g Instant) (Instant, bool, bool) {
	day := int64(g) / dayMicros
	for d := day; d <= day+c.cal.year+1; d++ {
		t := c.cal.at(Instant(d * dayMicros))
		rise, set, ok := sky.Crossings(t.DayOfYear, elevation)
		if !ok {
			continue
		}
		best, rising := Instant(-1), false
		for i, x := range []time.Duration{rise, set} {
			at := Instant(d*dayMicros + int64(x/time.Microsecond))
			if at > g && (best < 0 || at < best) {
				best, rising = at, i == 0
			}
		}
		if best >= 0 {
			return best, rising, true
		}
	}
	return 0, false, false
}
