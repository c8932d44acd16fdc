package worldtime

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// Phase is a named part of the game day, from Start (inclusive) to End
// (exclusive), both offsets from midnight. A phase may wrap past midnight
// (night: Start 20:00, End 05:00); a single phase with Start == End spans
// the whole day.
type Phase struct {
	Name  string
	Start time.Duration
	End   time.Duration
}

// Default phase names, as in the original system.
const (
	PhaseDawn  = "dawn"
	PhaseDay   = "day"
	PhaseDusk  = "dusk"
	PhaseNight = "night"
)

// DefaultPhases are the original system's phases: dawn 05–07, day 07–18,
// dusk 18–20, night 20–05.
func DefaultPhases() []Phase {
	return []Phase{
		{PhaseDawn, 5 * time.Hour, 7 * time.Hour},
		{PhaseDay, 7 * time.Hour, 18 * time.Hour},
		{PhaseDusk, 18 * time.Hour, 20 * time.Hour},
		{PhaseNight, 20 * time.Hour, 5 * time.Hour},
	}
}

// Month is a named run of days in the calendar year. Season has the same
// shape.
type Month struct {
	Name string
	Days int
}

// Season is a named run of days in the calendar year.
type Season = Month

// Calendar describes the game's day, week, year and moon. The game day is
// 24 game hours of 60 minutes; how long it lasts in real time is the
// [Scale]. The zero value means the defaults: [DefaultPhases], a 7-day
// week, a 365-day year without months or seasons, and a 29.53-day moon.
type Calendar struct {
	// Phases must tile the day exactly: every phase's End is the next
	// one's Start (after sorting by Start, wrapping at midnight), no
	// gaps, no overlaps, unique non-empty names, boundaries on whole
	// game seconds. Nil means DefaultPhases.
	Phases []Phase
	// DaysPerWeek is the week's length; 0 means 7.
	DaysPerWeek int
	// Months, when set, make up the year (their days sum to the year's
	// length). Nil: no months, and a year of DaysPerYear days.
	Months []Month
	// DaysPerYear is the year's length when Months is nil; 0 means 365.
	DaysPerYear int
	// Seasons, when set, must sum to the year's length.
	Seasons []Season
	// MoonCycle is the synodic month in game time (new moon to new moon);
	// 0 means 29.530588 game days. Day 1 at 00:00 is a new moon, shifted
	// by MoonOffset.
	MoonCycle  time.Duration
	MoonOffset time.Duration
}

// Time is the game time with its calendar, as [Clock.Now] returns it. It
// carries what the original's TimeData did (hour, minute, day, total game
// minutes, "HH:MM", phase) plus weekday, year, month, season and moon. The
// zero value is midnight before day 1 and names no phase.
type Time struct {
	Instant Instant // game microseconds since 00:00 on day 1
	Day     int     // day count, from 1
	Hour    int     // 0–23
	Minute  int     // 0–59
	Second  int     // 0–59
	Phase   string  // name of the current phase
	// PhaseIndex is the index of Phase in the calendar's phases.
	PhaseIndex int
	Weekday    int // 0 .. DaysPerWeek-1; day 1 is weekday 0
	Year       int // from 1
	DayOfYear  int // from 1
	Month      int // from 1; 0 when the calendar has no months
	MonthDay   int // from 1; 0 when the calendar has no months
	Season     int // index into Calendar.Seasons; -1 when none
	// Moon is the moon phase in [0, 1): 0 new, 0.25 first quarter, 0.5
	// full, 0.75 last quarter.
	Moon float64
	// Paused reports whether the clock stood still at this time.
	Paused bool
}

// TotalMinutes returns the game minutes since 00:00 on day 1 (the
// original's total_minutes).
func (t Time) TotalMinutes() int64 { return int64(t.Instant) / int64(time.Minute/time.Microsecond) }

// Clock returns the time of day as "HH:MM" (the original's time_string).
func (t Time) Clock() string {
	return string([]byte{byte('0' + t.Hour/10), byte('0' + t.Hour%10), ':', byte('0' + t.Minute/10), byte('0' + t.Minute%10)})
}

// TimeOfDay returns the game time since midnight.
func (t Time) TimeOfDay() time.Duration {
	return time.Duration(int64(t.Instant)%dayMicros) * time.Microsecond
}

// UDS returns the time of day in Ultra Dynamic Sky's 0–2400 scale
// (decimal hours × 100: 09:30 is 950).
func (t Time) UDS() float64 { return float64(int64(t.Instant)%dayMicros) / float64(hourMicros) * 100 }

func (t Time) String() string {
	return fmt.Sprintf("day %d %s (%s)", t.Day, t.Clock(), t.Phase)
}

const (
	hourMicros = int64(time.Hour / time.Microsecond)
	dayMicros  = 24 * hourMicros
)

// calendar is a validated Calendar in the form Now needs.
type calendar struct {
	phases     []Phase // as configured (indexes are PhaseIndex)
	starts     []int64 // phase starts in µs, ascending
	startPhase []int   // phase index of starts[i]
	week       int64
	year       int64
	months     []Month
	seasons    []Season
	moon       int64
	moonOffset int64
}

func (c Calendar) compile() (*calendar, error) {
	k := &calendar{week: 7, year: 365, moon: int64(29.530588 * float64(dayMicros)), seasons: c.Seasons}
	ph := c.Phases
	if ph == nil {
		ph = DefaultPhases()
	}
	if len(ph) == 0 {
		return nil, invalid("phases", "need at least one phase")
	}
	k.phases = slices.Clone(ph)
	names := map[string]bool{}
	order := make([]int, len(ph))
	for i, p := range ph {
		order[i] = i
		if p.Name == "" || names[p.Name] {
			return nil, invalid("phases", "phase %d: names must be unique and non-empty (%q)", i, p.Name)
		}
		names[p.Name] = true
		if p.Start < 0 || p.Start >= 24*time.Hour || p.End < 0 || p.End >= 24*time.Hour {
			return nil, invalid("phases", "phase %q: start %v and end %v must be within [0, 24h)", p.Name, p.Start, p.End)
		}
		if p.Start%time.Second != 0 || p.End%time.Second != 0 {
			return nil, invalid("phases", "phase %q: boundaries must be whole game seconds", p.Name)
		}
	}
	slices.SortFunc(order, func(a, b int) int { return int(ph[a].Start - ph[b].Start) })
	if len(ph) == 1 && ph[0].Start != ph[0].End {
		return nil, invalid("phases", "a single phase %q must span the day (start == end)", ph[0].Name)
	}
	for n, i := range order {
		next := ph[order[(n+1)%len(order)]]
		switch {
		case len(ph) > 1 && ph[i].Start == next.Start:
			return nil, invalid("phases", "phases %q and %q overlap: both start at %v", ph[i].Name, next.Name, next.Start)
		case len(ph) > 1 && ph[i].End != next.Start:
			what := "leaves a gap before"
			if ph[i].contains(next.Start) {
				what = "overlaps"
			}
			return nil, invalid("phases", "phase %q (ends %v) %s %q (starts %v)", ph[i].Name, ph[i].End, what, next.Name, next.Start)
		}
		k.starts = append(k.starts, int64(ph[i].Start/time.Microsecond))
		k.startPhase = append(k.startPhase, i)
	}
	if c.DaysPerWeek < 0 {
		return nil, invalid("days per week", "%d is negative", c.DaysPerWeek)
	} else if c.DaysPerWeek > 0 {
		k.week = int64(c.DaysPerWeek)
	}
	if c.Months != nil {
		k.months = slices.Clone(c.Months)
		k.year = 0
		for _, m := range c.Months {
			if m.Days <= 0 || m.Name == "" {
				return nil, invalid("months", "month %q must have a name and a positive number of days", m.Name)
			}
			k.year += int64(m.Days)
		}
	} else if c.DaysPerYear < 0 {
		return nil, invalid("days per year", "%d is negative", c.DaysPerYear)
	} else if c.DaysPerYear > 0 {
		k.year = int64(c.DaysPerYear)
	}
	if c.Seasons != nil {
		k.seasons = slices.Clone(c.Seasons)
		var sum int64
		for _, s := range c.Seasons {
			if s.Days <= 0 || s.Name == "" {
				return nil, invalid("seasons", "season %q must have a name and a positive number of days", s.Name)
			}
			sum += int64(s.Days)
		}
		if sum != k.year {
			return nil, invalid("seasons", "seasons sum to %d days, the year has %d", sum, k.year)
		}
	}
	if c.MoonCycle < 0 || c.MoonOffset < 0 {
		return nil, invalid("moon", "cycle %v and offset %v must not be negative", c.MoonCycle, c.MoonOffset)
	} else if c.MoonCycle > 0 {
		k.moon = int64(c.MoonCycle / time.Microsecond)
		if k.moon == 0 {
			return nil, invalid("moon", "cycle %v is shorter than a microsecond", c.MoonCycle)
		}
	}
	k.moonOffset = int64(c.MoonOffset / time.Microsecond)
	return k, nil
}

func (p Phase) contains(off time.Duration) bool {
	if p.Start <= p.End {
		return off >= p.Start && off < p.End
	}
	return off >= p.Start || off < p.End
}

// phaseAt returns the index into starts of the phase in effect at tod (µs
// since midnight).
func (k *calendar) phaseAt(tod int64) int {
	i := len(k.starts) - 1
	for j, s := range k.starts {
		if s > tod {
			if j > 0 {
				i = j - 1
			}
			break
		}
	}
	return i
}

// dayCache holds the calendar of one day, so that Now only computes the
// time of day.
type dayCache struct {
	day  int64
	base Time // fields that depend on the day only
	moon int64
}

// atCached sets *t to the calendar at g, reusing the day's calendar from
// *cache when it is the same day (the common case), and refreshing it
// when not.
func (k *calendar) atCached(cache *atomic.Pointer[dayCache], g Instant, t *Time) {
	us := int64(g)
	days := us / dayMicros
	dc := cache.Load()
	if dc == nil || dc.day != days {
		dc = &dayCache{day: days, base: k.at(Instant(days * dayMicros))}
		dc.moon = (days*dayMicros + k.moonOffset) % k.moon
		cache.Store(dc)
	}
	*t = dc.base
	tod := us - days*dayMicros
	sec := tod / 1e6
	t.Instant = g
	t.Hour, t.Minute, t.Second = int(sec/3600), int(sec/60%60), int(sec%60)
	pi := k.startPhase[k.phaseAt(tod)]
	t.PhaseIndex, t.Phase = pi, k.phases[pi].Name
	m := dc.moon + tod
	if m >= k.moon {
		m %= k.moon
	}
	t.Moon = float64(m) / float64(k.moon)
	if t.Moon >= 1 {
		t.Moon = math.Nextafter(1, 0)
	}
}

// at returns the calendar at game instant g ≥ 0.
func (k *calendar) at(g Instant) Time {
	us := int64(g)
	days := us / dayMicros
	tod := us - days*dayMicros
	sec := tod / 1e6
	t := Time{
		Instant: g,
		Day:     int(days) + 1,
		Hour:    int(sec / 3600),
		Minute:  int(sec / 60 % 60),
		Second:  int(sec % 60),
		Weekday: int(days % k.week),
		Year:    int(days/k.year) + 1,
		Season:  -1,
	}
	doy := days % k.year
	t.DayOfYear = int(doy) + 1
	pi := k.startPhase[k.phaseAt(tod)]
	t.PhaseIndex, t.Phase = pi, k.phases[pi].Name
	if k.months != nil {
		d := int(doy)
		for i, m := range k.months {
			if d < m.Days {
				t.Month, t.MonthDay = i+1, d+1
				break
			}
			d -= m.Days
		}
	}
	if k.seasons != nil {
		d := int(doy)
		for i, s := range k.seasons {
			if d < s.Days {
				t.Season = i
				break
			}
			d -= s.Days
		}
	}
	m := (us + k.moonOffset) % k.moon
	if m < 0 {
		m += k.moon
	}
	t.Moon = float64(m) / float64(k.moon)
	if t.Moon >= 1 { // float rounding
		t.Moon = math.Nextafter(1, 0)
	}
	return t
}

// At returns the instant at hour:minute on day, checking the ranges (day
// ≥ 1, hour 0–23, minute 0–59) like the original's set_time.
func (c Calendar) At(day, hour, minute int) (Instant, error) {
	switch {
	case day < 1 || int64(day) > int64(MaxInstant)/dayMicros:
		return 0, invalid("day", "%d is out of range (from 1)", day)
	case hour < 0 || hour > 23:
		return 0, invalid("hour", "%d is outside 0–23", hour)
	case minute < 0 || minute > 59:
		return 0, invalid("minute", "%d is outside 0–59", minute)
	}
	return At(day, hour, minute), nil
}

// timeJSON is Time's JSON form: the original's TimeData fields (hour,
// minute, day, state, total_minutes, time_string) and the rest.
type timeJSON struct {
	GameTime     int64   `json:"game_time_us"`
	Day          int     `json:"day"`
	Hour         int     `json:"hour"`
	Minute       int     `json:"minute"`
	Second       int     `json:"second"`
	Phase        string  `json:"state"`
	TotalMinutes int64   `json:"total_minutes"`
	TimeString   string  `json:"time_string"`
	UDS          float64 `json:"uds_time_of_day"`
	Weekday      int     `json:"weekday"`
	Year         int     `json:"year"`
	DayOfYear    int     `json:"day_of_year"`
	Month        int     `json:"month,omitempty"`
	MonthDay     int     `json:"month_day,omitempty"`
	Season       int     `json:"season"`
	Moon         float64 `json:"moon"`
	Paused       bool    `json:"paused,omitempty"`
}

// MarshalJSON encodes t with the original TimeData's field names (state is
// the phase) plus game_time_us, uds_time_of_day, weekday, year and the
// rest, for HTTP endpoints and logs.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(timeJSON{
		GameTime: int64(t.Instant), Day: t.Day, Hour: t.Hour, Minute: t.Minute, Second: t.Second,
		Phase: t.Phase, TotalMinutes: t.TotalMinutes(), TimeString: t.Clock(), UDS: t.UDS(),
		Weekday: t.Weekday, Year: t.Year, DayOfYear: t.DayOfYear, Month: t.Month, MonthDay: t.MonthDay,
		Season: t.Season, Moon: t.Moon, Paused: t.Paused,
	})
}
