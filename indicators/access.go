package indicators

import (
	"fmt"
	"math"
)

// CVD is a colour-vision deficiency to design the palette for.
type CVD uint8

const (
	NoCVD        CVD = iota // the default palette
	Protanopia              // red-blind (≈1% of men; protanomaly ≈1%)
	Deuteranopia            // green-blind (≈1.1%; deuteranomaly ≈4.9%)
	Tritanopia              // blue-blind (rare)
	numCVDs
)

var cvdNames = [...]string{"none", "protanopia", "deuteranopia", "tritanopia"}

func (c CVD) String() string {
	if c < numCVDs {
		return cvdNames[c]
	}
	return fmt.Sprintf("CVD(%d)", uint8(c))
}

// Meaning is what an indicator's colour stands for. An indicator with a
// Meaning takes its colour from the player's palette (see [Profile]) and
// its marker shape from the meaning, so the meaning never rests on colour
// alone (Game Accessibility Guidelines; XAG 103). The zero value,
// NoMeaning, uses [Appearance].GlowColor and the plain [Chevron].
type Meaning uint8

const (
	NoMeaning Meaning = iota
	Objective         // Diamond
	Ally              // Circle
	Enemy             // Triangle
	Danger            // Square
	numMeanings
)

var meaningNames = [...]string{"none", "objective", "ally", "enemy", "danger"}

func (m Meaning) String() string {
	if m < numMeanings {
		return meaningNames[m]
	}
	return fmt.Sprintf("Meaning(%d)", uint8(m))
}

// MarshalText implements encoding.TextMarshaler.
func (m Meaning) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// Shape returns the marker shape that carries m.
func (m Meaning) Shape() Shape {
	switch m {
	case Objective:
		return Diamond
	case Ally:
		return Circle
	case Enemy:
		return Triangle
	case Danger:
		return Square
	}
	return Chevron
}

// palettes holds each meaning's colour per CVD mode; index 0 (NoMeaning)
// is replaced by Appearance.GlowColor. The protan/deutan palette is from
// Okabe and Ito's colour-universal design set; every palette keeps its
// colours apart (CIE ΔE ≥ 20) under the simulation of its own deficiency,
// which TestPalettesDistinguishable checks.
var palettes = [numCVDs][numMeanings]Color{
	NoCVD:        {{}, {1, 0.8, 0.2, 1}, {0.3, 0.75, 1, 1}, {1, 0.3, 0.25, 1}, {0.8, 0.45, 1, 1}},
	Protanopia:   {{}, {0.94, 0.89, 0.26, 1}, {0.34, 0.71, 0.91, 1}, {0.84, 0.37, 0, 1}, {0.8, 0.47, 0.65, 1}},
	Deuteranopia: {{}, {0.94, 0.89, 0.26, 1}, {0.34, 0.71, 0.91, 1}, {0.84, 0.37, 0, 1}, {0.8, 0.47, 0.65, 1}},
	Tritanopia:   {{}, {1, 0.6, 0.6, 1}, {0, 0.7, 0.7, 1}, {0.85, 0.1, 0.15, 1}, {0.95, 0.95, 0.95, 1}},
}

// Profile is one player's accessibility settings for indicators. It comes
// from wherever the game keeps settings: the settings package's
// settings.changed event, or any other source, handed to [Options] or
// [Set.SetProfile]; this package does not import a settings package. The
// zero value means no adjustments.
type Profile struct {
	// CVD selects the palette for indicators with a [Meaning].
	CVD CVD `json:"cvd"`
	// Scale multiplies marker and glow sizes; zero means 1. It must lie
	// in [0.5, 2]; scaled sizes still respect [Limits].MaxSize.
	Scale float64 `json:"scale"`
	// HighContrast raises every indicator colour to at least 3:1 contrast
	// (WCAG 1.4.11, XAG 102) against Background.
	HighContrast bool `json:"high_contrast"`
	// Background is the reference background for HighContrast; the zero
	// value means dark grey (0.25, 0.25, 0.25).
	Background Color `json:"background"`
	// ReduceMotion turns pulses into static glows.
	ReduceMotion bool `json:"reduce_motion"`
	// MaxFlashHz caps pulse rates below the style's; zero means 3, the
	// most allowed.
	MaxFlashHz float64 `json:"max_flash_hz"`
}

func (p Profile) withDefaults() Profile {
	if p.Scale == 0 {
		p.Scale = 1
	}
	if p.Background == (Color{}) {
		p.Background = Color{0.25, 0.25, 0.25, 1}
	}
	if p.MaxFlashHz == 0 {
		p.MaxFlashHz = 3
	}
	return p
}

func (p Profile) validate() error {
	if p.CVD >= numCVDs {
		return fmt.Errorf("%w: Profile.CVD = %d", ErrBadOptions, p.CVD)
	}
	if !(p.Scale >= 0.5 && p.Scale <= 2) {
		return fmt.Errorf("%w: Profile.Scale = %g, want [0.5, 2]", ErrBadOptions, p.Scale)
	}
	if !(p.MaxFlashHz > 0 && p.MaxFlashHz <= 3) {
		return fmt.Errorf("%w: Profile.MaxFlashHz = %g, want (0, 3]", ErrBadOptions, p.MaxFlashHz)
	}
	b := p.Background
	for _, f := range []float64{b.R, b.G, b.B, b.A} {
		if !(f >= 0 && f <= 1) {
			return fmt.Errorf("%w: Profile.Background = %+v", ErrBadOptions, b)
		}
	}
	return nil
}

func linear(c float64) float64 {
	if c <= 0.04045 {
		return c / 12.92
	}
	return math.Pow((c+0.055)/1.055, 2.4)
}

func gamma(c float64) float64 {
	c = clamp(c, 0, 1)
	if c <= 0.0031308 {
		return 12.92 * c
	}
	return 1.055*math.Pow(c, 1/2.4) - 0.055
}

// Luminance returns c's relative luminance (WCAG 2.x), ignoring alpha.
func Luminance(c Color) float64 {
	return 0.2126*linear(c.R) + 0.7152*linear(c.G) + 0.0722*linear(c.B)
}

// Contrast returns the WCAG contrast ratio of a and b, from 1 to 21.
func Contrast(a, b Color) float64 {
	la, lb := Luminance(a), Luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// EnsureContrast returns c, moved toward white (on a dark background) or
// black (on a light one) just far enough to reach ratio against bg, or as
// far as it goes when the ratio cannot be reached. Alpha is kept.
func EnsureContrast(c, bg Color, ratio float64) Color {
	if Contrast(c, bg) >= ratio {
		return c
	}
	to := Color{1, 1, 1, c.A}
	if Contrast(Color{0, 0, 0, 1}, bg) > Contrast(Color{1, 1, 1, 1}, bg) {
		to = Color{0, 0, 0, c.A}
	}
	mix := func(t float64) Color {
		return Color{c.R + (to.R-c.R)*t, c.G + (to.G-c.G)*t, c.B + (to.B-c.B)*t, c.A}
	}
	lo, hi := 0.0, 1.0
	for range 40 {
		mid := (lo + hi) / 2
		if Contrast(mix(mid), bg) >= ratio {
			hi = mid
		} else {
			lo = mid
		}
	}
	return mix(hi)
}

// machado holds the Machado, Oliveira and Fernandes (2009) simulation
// matrices at full severity, applied in linear RGB.
var machado = [numCVDs][9]float64{
	NoCVD:        {1, 0, 0, 0, 1, 0, 0, 0, 1},
	Protanopia:   {0.152286, 1.052583, -0.204868, 0.114503, 0.786281, 0.099216, -0.003882, -0.048116, 1.051998},
	Deuteranopia: {0.367322, 0.860646, -0.227968, 0.280085, 0.672501, 0.047413, -0.011820, 0.042940, 0.968881},
	Tritanopia:   {1.255528, -0.076749, -0.178779, -0.078411, 0.930809, 0.147602, 0.004733, 0.691367, 0.303900},
}

// Simulate returns c as a person with deficiency d sees it (Machado et
// al. 2009, full severity), for checking palettes and designs.
func Simulate(c Color, d CVD) Color {
	if d >= numCVDs {
		return c
	}
	m := &machado[d]
	r, g, b := linear(c.R), linear(c.G), linear(c.B)
	return Color{
		gamma(m[0]*r + m[1]*g + m[2]*b),
		gamma(m[3]*r + m[4]*g + m[5]*b),
		gamma(m[6]*r + m[7]*g + m[8]*b),
		c.A,
	}
}

// DeltaE returns the CIE76 colour difference of a and b (CIELAB, D65);
// about 2.3 is just noticeable, 20 and more clearly different.
func DeltaE(a, b Color) float64 {
	l1, a1, b1 := lab(a)
	l2, a2, b2 := lab(b)
	return math.Sqrt((l1-l2)*(l1-l2) + (a1-a2)*(a1-a2) + (b1-b2)*(b1-b2))
}

func lab(c Color) (l, a, b float64) {
	r, g, bl := linear(c.R), linear(c.G), linear(c.B)
	x := (0.4124*r + 0.3576*g + 0.1805*bl) / 0.95047
	y := 0.2126*r + 0.7152*g + 0.0722*bl
	z := (0.0193*r + 0.1192*g + 0.9505*bl) / 1.08883
	f := func(t float64) float64 {
		if t > 216.0/24389 {
			return math.Cbrt(t)
		}
		return (24389.0/27*t + 16) / 116
	}
	fx, fy, fz := f(x), f(y), f(z)
	return 116*fy - 16, 500 * (fx - fy), 200 * (fy - fz)
}

// colours resolves each meaning's colour for a profile: the palette, the
// appearance's glow colour for NoMeaning, and the contrast fix-up.
func colours(app Appearance, p Profile) [numMeanings]Color {
	out := palettes[p.CVD]
	out[NoMeaning] = app.GlowColor
	if p.HighContrast {
		for i := range out {
			out[i] = EnsureContrast(out[i], p.Background, 3)
		}
	}
	return out
}
