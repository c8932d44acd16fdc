package audio

import (
	"fmt"
	"math"
)

// Gains in this package are linear amplitude multipliers in [0, 1] unless
// a function says otherwise; decibels are relative to full scale (0 dB is a
// gain of 1).

// SilenceDB is the silence floor: a gain at or below it (−80 dB, Wwise's
// default volume threshold) is inaudible, and a voice that quiet may be
// virtualised. [Silent] reports it.
const SilenceDB = -80.0

// Linear returns the linear gain of db decibels: 10^(db/20). Linear(-Inf)
// is 0. A NaN db gives NaN; callers validate with [CheckDB].
func Linear(db float64) float64 {
	if math.IsInf(db, -1) {
		return 0
	}
	return math.Pow(10, db/20)
}

// DB returns the decibels of a linear gain: 20·log10(g). DB(0) is −Inf,
// the only gain that gives −Inf; a negative or NaN gain gives NaN
// (validate with [CheckGain]).
func DB(g float64) float64 {
	if g == 0 {
		return math.Inf(-1)
	}
	return 20 * math.Log10(g)
}

// Silent reports whether a linear gain is at or below [SilenceDB].
func Silent(g float64) bool { return g <= silenceLinear }

var silenceLinear = Linear(SilenceDB)

// CheckGain returns a *ValueError wrapping ErrInvalidValue unless g is a
// linear gain in [0, 1].
func CheckGain(field string, g float64) error {
	if !(g >= 0 && g <= 1) { // also catches NaN
		return invalid(field, g)
	}
	return nil
}

// CheckDB returns a *ValueError wrapping ErrInvalidValue unless db is a
// level in [-Inf, 0] dB (a cut, never a boost).
func CheckDB(field string, db float64) error {
	if math.IsNaN(db) || db > 0 {
		return invalid(field, db)
	}
	return nil
}

// Taper maps a volume slider position in [0, 1] to a linear gain. Tapers
// are versioned: a saved slider position is stored with its taper version,
// and a version's curve never changes, so a saved position keeps its
// loudness across releases. New curves get new versions.
//
// The zero Taper is invalid; [TaperLinear] (version 1) is the original
// system's linear 0–1 multipliers, so its saved volumes sound the same.
type Taper uint8

const (
	// TaperLinear (version 1): gain = position. The original system's
	// volumes were linear multipliers; this keeps them.
	TaperLinear Taper = 1
	// TaperDB60 (version 2): dB-linear from −54 dB at 10 % to 0 dB at
	// 100 % (6 dB per 10 %), with a linear segment from 10 % down to true
	// silence at 0, so that 50 % sounds about half as loud (−24 dB is
	// less; perceived loudness halves near −10 dB, and sliders in the
	// wild use −40 to −60 dB ranges).
	TaperDB60 Taper = 2
	// TaperCubic (version 3): gain = position³, a common amplitude taper.
	TaperCubic Taper = 3
)

const (
	db60Range = 60.0
	db60Knee  = 0.1
)

var db60KneeGain = Linear(db60Range * (db60Knee - 1))

// Gain returns the linear gain of slider position pos. It returns a
// *ValueError for a position outside [0, 1] or NaN, and ErrUnknownTaper for
// an unknown version. Every taper gives 0 only at 0, 1 at 1, and is
// strictly increasing in between.
func (t Taper) Gain(pos float64) (float64, error) {
	if !(pos >= 0 && pos <= 1) {
		return 0, invalid("slider position", pos)
	}
	switch t {
	case TaperLinear:
		return pos, nil
	case TaperDB60:
		if pos < db60Knee {
			return pos / db60Knee * db60KneeGain, nil
		}
		return Linear(db60Range * (pos - 1)), nil
	case TaperCubic:
		return pos * pos * pos, nil
	}
	return 0, fmt.Errorf("%w: %d", ErrUnknownTaper, t)
}

// Position is the inverse of Gain: the slider position whose gain is g.
func (t Taper) Position(g float64) (float64, error) {
	if err := CheckGain("gain", g); err != nil {
		return 0, err
	}
	switch t {
	case TaperLinear:
		return g, nil
	case TaperDB60:
		if g < db60KneeGain {
			return g / db60KneeGain * db60Knee, nil
		}
		return DB(g)/db60Range + 1, nil
	case TaperCubic:
		return math.Cbrt(g), nil
	}
	return 0, fmt.Errorf("%w: %d", ErrUnknownTaper, t)
}

// Curve is a crossfade shape. The zero value is [CurveEqualPower].
type Curve uint8

const (
	// CurveEqualPower: out = cos(πt/2), in = sin(πt/2). Each is −3.01 dB
	// at the midpoint and the summed power of two uncorrelated beds stays
	// constant: the right curve for ambient beds.
	CurveEqualPower Curve = iota
	// CurveLinear: out = 1−t, in = t. Each is −6.02 dB at the midpoint: a
	// 3 dB power dip for uncorrelated beds, right only for correlated or
	// identical material.
	CurveLinear
)

var curveNames = [...]string{CurveEqualPower: "equal_power", CurveLinear: "linear"}

func (c Curve) String() string {
	if int(c) < len(curveNames) {
		return curveNames[c]
	}
	return fmt.Sprintf("Curve(%d)", c)
}

// MarshalText encodes the curve as "equal_power" or "linear".
func (c Curve) MarshalText() ([]byte, error) {
	if int(c) >= len(curveNames) {
		return nil, invalid("curve", int(c))
	}
	return []byte(curveNames[c]), nil
}

// UnmarshalText decodes "equal_power" or "linear".
func (c *Curve) UnmarshalText(b []byte) error {
	for i, n := range curveNames {
		if n == string(b) {
			*c = Curve(i)
			return nil
		}
	}
	return invalid("curve", string(b))
}

// Fade returns the outgoing and incoming gains at progress t of a
// crossfade; t is clamped to [0, 1] (NaN counts as 0).
func (c Curve) Fade(t float64) (out, in float64) {
	switch {
	case !(t > 0):
		return 1, 0
	case t >= 1:
		return 0, 1
	}
	if c == CurveLinear {
		return 1 - t, t
	}
	s, co := math.Sincos(math.Pi / 2 * t)
	return co, s
}
