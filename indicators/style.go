package indicators

import (
	"fmt"
	"math"
	"time"
)

// Kind is what an indicator is for; the names are the original system's.
type Kind uint8

const (
	// EdgeGlow is a soft glow on the screen edge toward an off-screen
	// target. It is hidden while the target is on screen. The zero Kind.
	EdgeGlow Kind = iota
	// ScreenEdge is a small marker on the screen edge toward an
	// off-screen target, rotated to point at it. Hidden while on screen.
	ScreenEdge
	// MinionNPC marks a target for the guide (see [Guide]): it draws
	// nothing itself; the guide walks toward the highest-priority one.
	MinionNPC
	// Contextual is shown while it is active (see [Set.SetActive]) and
	// picks its style every frame: a glow on the target while it is on
	// screen, an edge marker while it is off screen (kept for at least
	// [Budget].MinDwell, so a target at the edge does not flicker).
	Contextual
	numKinds
)

var kindNames = [...]string{"edge-glow", "screen-edge", "minion-npc", "contextual"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Style is how a frame draws an indicator.
type Style uint8

const (
	// Glow is a soft glow: along the screen edge (Width is its length,
	// Size its thickness) when Clamped, around the target otherwise.
	Glow Style = iota + 1
	// Marker is a small shape of Size pixels, rotated by Angle.
	Marker
)

func (s Style) String() string {
	switch s {
	case Glow:
		return "glow"
	case Marker:
		return "marker"
	}
	return fmt.Sprintf("Style(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Style) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Shape is a marker's outline. Shapes carry meaning redundantly with
// colour (see [Meaning]), so no information is carried by colour alone.
type Shape uint8

const (
	Chevron  Shape = iota // the plain edge marker: a small arrowhead
	Circle                // Ally
	Diamond               // Objective
	Triangle              // Enemy
	Square                // Danger
	numShapes
)

var shapeNames = [...]string{"chevron", "circle", "diamond", "triangle", "square"}

func (s Shape) String() string {
	if s < numShapes {
		return shapeNames[s]
	}
	return fmt.Sprintf("Shape(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Shape) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Easing shapes a fade over its duration.
type Easing uint8

const (
	Smooth   Easing = iota // smoothstep, 3t²−2t³; the default
	Linear                 // t
	OutCubic               // 1−(1−t)³: quick start, soft landing
	numEasings
)

// Apply maps progress t ∈ [0, 1] (clamped) to eased progress in [0, 1].
func (e Easing) Apply(t float64) float64 {
	t = clamp(t, 0, 1)
	switch e {
	case Linear:
		return t
	case OutCubic:
		u := 1 - t
		return 1 - u*u*u
	}
	return t * t * (3 - 2*t)
}

// Appearance is how indicators look. The zero value means the original
// system's defaults, listed per field.
type Appearance struct {
	// GlowIntensity is the base intensity; zero means 0.3.
	GlowIntensity float64
	// GlowColor is the colour of indicators without a [Meaning]; the zero
	// value means (1.0, 0.8, 0.2, 1), a soft yellow-orange.
	GlowColor Color
	// Size is the marker size and the glow's thickness, in pixels at
	// accessibility scale 1; zero means 20.
	Size float64
	// GlowLength is an edge glow's length along the edge in pixels; zero
	// means 4 × Size.
	GlowLength float64
	// MaxDistance is the distance in world units beyond which nothing is
	// indicated; intensity falls linearly to zero there. Zero means 5000.
	MaxDistance float64
	// FadeDuration is how long fading in or out takes; zero means
	// 500 ms. NoFade makes changes instant.
	FadeDuration time.Duration
	NoFade       bool
	// Ease shapes fades; the zero value is Smooth.
	Ease Easing
	// PulseHz, if positive, makes shown indicators pulse: alpha swings
	// between 1 and 1−PulseDepth this many times a second. It must not
	// exceed [Limits].MaxPulseHz; the player's [Profile] may cap it
	// lower, and ReduceMotion turns pulses into a static glow.
	PulseHz float64
	// PulseDepth is the pulse's alpha swing in [0, 1]; zero means 0.3.
	PulseDepth float64
}

func (a Appearance) withDefaults() Appearance {
	if a.GlowIntensity == 0 {
		a.GlowIntensity = 0.3
	}
	if a.GlowColor == (Color{}) {
		a.GlowColor = Color{1, 0.8, 0.2, 1}
	}
	if a.Size == 0 {
		a.Size = 20
	}
	if a.GlowLength == 0 {
		a.GlowLength = 4 * a.Size
	}
	if a.MaxDistance == 0 {
		a.MaxDistance = 5000
	}
	if a.FadeDuration == 0 {
		a.FadeDuration = 500 * time.Millisecond
	}
	if a.NoFade {
		a.FadeDuration = 0
	}
	if a.PulseDepth == 0 {
		a.PulseDepth = 0.3
	}
	return a
}

// Limits is the subtlety rule ("no massive arrows") as numbers. [New]
// rejects an [Appearance] that breaks it with a *[SubtletyError], and
// frames clamp sizes scaled up by the accessibility profile to it. The
// zero value means the defaults listed per field; no limit may be set
// looser than its hard cap.
type Limits struct {
	// MaxSize is the largest marker size (and glow thickness) as a
	// fraction of the viewport height; zero means 0.04 (43 px at 1080p).
	// Hard cap 0.1.
	MaxSize float64
	// MaxGlowLength is the longest edge glow as a fraction of the
	// viewport height; zero means 0.25. Hard cap 0.5.
	MaxGlowLength float64
	// MaxIntensity caps intensity, whatever the priority; zero means 0.6.
	// Hard cap 1.
	MaxIntensity float64
	// MaxPulseHz caps pulse rates; zero means 3, which is also the hard
	// cap (WCAG 2.3.1, XAG 118: no more than three flashes a second).
	MaxPulseHz float64
	// ReferenceHeight is the viewport height in pixels at which [New]
	// checks pixel sizes against the fractions above; zero means 720,
	// the smallest common screen, where fixed pixel sizes are largest.
	ReferenceHeight float64
}

func (l Limits) withDefaults() Limits {
	if l.MaxSize == 0 {
		l.MaxSize = 0.04
	}
	if l.MaxGlowLength == 0 {
		l.MaxGlowLength = 0.25
	}
	if l.MaxIntensity == 0 {
		l.MaxIntensity = 0.6
	}
	if l.MaxPulseHz == 0 {
		l.MaxPulseHz = 3
	}
	if l.ReferenceHeight == 0 {
		l.ReferenceHeight = 720
	}
	return l
}

func (l Limits) validate() error {
	for _, f := range []struct {
		name     string
		v, hardC float64
	}{
		{"MaxSize", l.MaxSize, 0.1}, {"MaxGlowLength", l.MaxGlowLength, 0.5},
		{"MaxIntensity", l.MaxIntensity, 1}, {"MaxPulseHz", l.MaxPulseHz, 3},
	} {
		if !finite(f.v) || f.v < 0 {
			return fmt.Errorf("%w: Limits.%s = %g", ErrBadOptions, f.name, f.v)
		}
		if f.v > f.hardC {
			return &SubtletyError{Field: "Limits." + f.name, Value: f.v, Limit: f.hardC}
		}
	}
	if !finite(l.ReferenceHeight) || l.ReferenceHeight <= 0 {
		return fmt.Errorf("%w: Limits.ReferenceHeight = %g", ErrBadOptions, l.ReferenceHeight)
	}
	return nil
}

// Validate checks a (defaulted) appearance against (defaulted) limits.
func (a Appearance) validate(l Limits) error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"GlowIntensity", a.GlowIntensity}, {"Size", a.Size}, {"GlowLength", a.GlowLength},
		{"MaxDistance", a.MaxDistance}, {"PulseHz", a.PulseHz}, {"PulseDepth", a.PulseDepth},
		{"GlowColor.R", a.GlowColor.R}, {"GlowColor.G", a.GlowColor.G}, {"GlowColor.B", a.GlowColor.B}, {"GlowColor.A", a.GlowColor.A},
	} {
		if !finite(f.v) || f.v < 0 {
			return fmt.Errorf("%w: Appearance.%s = %g", ErrBadOptions, f.name, f.v)
		}
	}
	c := a.GlowColor
	if c.R > 1 || c.G > 1 || c.B > 1 || c.A > 1 || a.PulseDepth > 1 {
		return fmt.Errorf("%w: Appearance colour and pulse depth must lie in [0, 1]", ErrBadOptions)
	}
	if a.MaxDistance == 0 || a.Size == 0 || a.FadeDuration < 0 || a.Ease >= numEasings {
		return fmt.Errorf("%w: Appearance %+v", ErrBadOptions, a)
	}
	if s := a.Size / l.ReferenceHeight; s > l.MaxSize {
		return &SubtletyError{Field: "Appearance.Size", Value: s, Limit: l.MaxSize}
	}
	if s := a.GlowLength / l.ReferenceHeight; s > l.MaxGlowLength {
		return &SubtletyError{Field: "Appearance.GlowLength", Value: s, Limit: l.MaxGlowLength}
	}
	if a.GlowIntensity > l.MaxIntensity {
		return &SubtletyError{Field: "Appearance.GlowIntensity", Value: a.GlowIntensity, Limit: l.MaxIntensity}
	}
	if a.PulseHz > l.MaxPulseHz {
		return &SubtletyError{Field: "Appearance.PulseHz", Value: a.PulseHz, Limit: l.MaxPulseHz}
	}
	return nil
}

// Intensity is the original system's formula with the missing bound:
// base × (1 − distance/maxDistance) × priority, clamped to [0, limit]. It
// is non-increasing in distance and zero at and beyond maxDistance.
// NaN inputs give 0.
func Intensity(base, distance, maxDistance, priority, limit float64) float64 {
	v := base * (1 - distance/maxDistance) * priority
	if !(v > 0) { // also NaN
		return 0
	}
	return math.Min(v, limit)
}

// distanceFade is the alpha factor that fades an indicator out over the
// last tenth of the max distance, so targets do not pop at the cull line.
// It is non-increasing in d.
func distanceFade(d, maxDistance float64) float64 {
	return clamp((maxDistance-d)/(0.1*maxDistance), 0, 1)
}

// pulse returns the pulse alpha factor at t seconds: 1 − depth·(½ − ½cos 2πft).
func pulse(t, hz, depth float64) float64 {
	if hz <= 0 || depth <= 0 {
		return 1
	}
	return 1 - depth*(0.5-0.5*math.Cos(2*math.Pi*hz*t))
}
