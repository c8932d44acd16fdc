package worldtime

import (
	"math"
	"math/bits"
	"time"
)

// Instant is a point in game time: game microseconds since 00:00 on day 1
// (the game's epoch). It is exact: the clock computes it from the timeline
// with integer arithmetic and never accumulates rounding. An int64 of
// microseconds spans about 292,000 game years. Instants are never negative.
type Instant int64

// MaxInstant is the largest game time the clock represents.
const MaxInstant = Instant(math.MaxInt64)

// At returns the instant at the given clock time on day (day 1 is the
// first), for a 24-hour game day. It does not validate its arguments; see
// [Calendar.At] for a checked form.
func At(day, hour, minute int) Instant {
	return Instant(int64(day-1)*int64(24*time.Hour/time.Microsecond) +
		int64(hour)*int64(time.Hour/time.Microsecond) + int64(minute)*int64(time.Minute/time.Microsecond))
}

// Add returns i plus the game duration d, truncated to microseconds and
// saturated at 0 and [MaxInstant].
func (i Instant) Add(d time.Duration) Instant {
	s, ok := addSat(int64(i), int64(d/time.Microsecond))
	if !ok && d > 0 {
		return MaxInstant
	}
	return Instant(max(s, 0))
}

// Sub returns the game duration i−j (saturated at the range of
// time.Duration).
func (i Instant) Sub(j Instant) time.Duration {
	d := int64(i) - int64(j)
	if d > int64(math.MaxInt64/time.Microsecond) {
		return math.MaxInt64
	}
	if d < int64(math.MinInt64/time.Microsecond) {
		return math.MinInt64
	}
	return time.Duration(d) * time.Microsecond
}

// Duration returns i as the game duration since the epoch.
func (i Instant) Duration() time.Duration { return i.Sub(0) }

func addSat(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		if b > 0 {
			return math.MaxInt64, false
		}
		return math.MinInt64, false
	}
	return s, true
}

// Scale is how fast game time runs: Game of game time passes in Real of
// real time. The ratio is exact (two integers), so a day of 24 real
// minutes is exactly 60 game minutes per real minute and no fraction is
// ever lost. Build one with [RealSecondsPerGameHour], [Multiplier] or
// [DayLength], or as a literal.
//
// The zero Scale is not valid on its own; in [Options] it means the
// default, 60 real seconds per game hour (the original system's
// time_scale). Pausing is not a scale: see [Clock.Pause].
type Scale struct {
	Game time.Duration `json:"game"`
	Real time.Duration `json:"real"`
}

// Bounds on a Scale's speed, Game/Real. Slower than MinMultiplier or faster
// than MaxMultiplier is rejected as absurd.
const (
	MinMultiplier = 1e-3 // a game second takes over 16 real minutes
	MaxMultiplier = 1e6  // a game day takes 86.4 real milliseconds
)

// defaultScale is 60 real seconds per game hour: a 24-minute game day, the
// original system's default.
var defaultScale = Scale{Game: time.Hour, Real: time.Minute}

// RealSecondsPerGameHour returns the scale in the original system's unit
// (its time_scale, and UE's SetTimeScale(RealSecondsPerGameHour)): s real
// seconds per game hour. 60 means a 24-minute day; 3600 means real time.
// Conversion: Scale{Game: time.Hour, Real: s seconds}, rounded to the
// nanosecond; the multiplier is 3600/s.
func RealSecondsPerGameHour(s float64) (Scale, error) {
	if math.IsNaN(s) || math.IsInf(s, 0) || s <= 0 || s > float64(math.MaxInt64)/1e9 {
		return Scale{}, invalid("real seconds per game hour", "%v must be a positive finite number", s)
	}
	sc := Scale{Game: time.Hour, Real: time.Duration(math.Round(s * 1e9))}
	return sc, sc.validate()
}

// Multiplier returns the scale at which x game seconds pass per real
// second (60 for a 24-minute day, 72 for Minecraft's 20-minute day).
// Conversion: Scale{Game: x seconds, Real: 1 s}, rounded to the
// nanosecond; RealSecondsPerGameHour = 3600/x.
func Multiplier(x float64) (Scale, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 {
		return Scale{}, invalid("multiplier", "%v must be a positive finite number", x)
	}
	if x > MaxMultiplier || x < MinMultiplier {
		return Scale{}, invalid("multiplier", "%v is outside [%g, %g]", x, MinMultiplier, MaxMultiplier)
	}
	sc := Scale{Game: time.Duration(math.Round(x * 1e9)), Real: time.Second}
	return sc, sc.validate()
}

// DayLength returns the scale at which a 24-hour game day lasts real of
// real time (24 minutes by default; Minecraft's is 20).
func DayLength(real time.Duration) (Scale, error) {
	sc := Scale{Game: 24 * time.Hour, Real: real}
	return sc, sc.validate()
}

// RealSecondsPerGameHour returns the scale in the original system's unit,
// usable as UE's SetTimeScale argument.
func (s Scale) RealSecondsPerGameHour() float64 {
	return s.Real.Seconds() * float64(time.Hour) / float64(s.Game)
}

// Multiplier returns game seconds per real second.
func (s Scale) Multiplier() float64 { return float64(s.Game) / float64(s.Real) }

func (s Scale) validate() error {
	if s.Game <= 0 || s.Real <= 0 {
		return invalid("scale", "game %v and real %v must both be positive", s.Game, s.Real)
	}
	// Keep Real*1000 within uint64 for the arithmetic below (about 213
	// real days), far beyond any sensible scale.
	if s.Real > 1000*time.Hour || s.Game > 1000*time.Hour*24 {
		return invalid("scale", "game %v per real %v is too coarse; reduce both", s.Game, s.Real)
	}
	if m := s.Multiplier(); m > MaxMultiplier || m < MinMultiplier {
		return invalid("scale", "multiplier %g (game %v per real %v) is outside [%g, %g]", m, s.Game, s.Real, MinMultiplier, MaxMultiplier)
	}
	return nil
}

// gameDelta returns the game microseconds that pass in real nanoseconds r ≥ 0:
// floor(r × Game / (Real × 1000)), saturated.
func (s Scale) gameDelta(r int64) int64 {
	if r <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(r), uint64(s.Game))
	d := uint64(s.Real) * 1000
	if hi >= d {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, d)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// realDelta returns the fewest real nanoseconds after which at least g ≥ 0
// game microseconds have passed: ceil(g × Real × 1000 / Game), saturated.
func (s Scale) realDelta(g int64) int64 {
	if g <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(g), uint64(s.Real)*1000)
	var c uint64
	lo, c = bits.Add64(lo, uint64(s.Game)-1, 0)
	hi += c
	if hi >= uint64(s.Game) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(s.Game))
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
