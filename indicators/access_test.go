package indicators

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestPalettesDistinguishable(t *testing.T) {
	for d := range numCVDs {
		pal := palettes[d]
		for i := Meaning(1); i < numMeanings; i++ {
			for j := i + 1; j < numMeanings; j++ {
				a, b := Simulate(pal[i], d), Simulate(pal[j], d)
				if de := DeltaE(a, b); de < 20 {
					t.Errorf("%v palette: %v and %v are ΔE %.1f apart as seen with %v, want ≥ 20", d, i, j, de, d)
				}
			}
		}
	}
}

func TestShapeRedundancy(t *testing.T) {
	seen := map[Shape]Meaning{}
	for m := range numMeanings {
		if prev, ok := seen[m.Shape()]; ok {
			t.Errorf("%v and %v share shape %v", prev, m, m.Shape())
		}
		seen[m.Shape()] = m
	}
}

func TestHighContrast(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 1))
	for range 2000 {
		bg := Color{r.Float64(), r.Float64(), r.Float64(), 1}
		p := Profile{CVD: CVD(r.IntN(int(numCVDs))), HighContrast: true, Background: bg}.withDefaults()
		app := Appearance{GlowColor: Color{r.Float64(), r.Float64(), r.Float64(), 1}}.withDefaults()
		for m, c := range colours(app, p) {
			if got := Contrast(c, bg); got < 3-1e-9 {
				t.Fatalf("meaning %v: colour %+v has contrast %.2f against %+v, want ≥ 3", Meaning(m), c, got, bg)
			}
		}
	}
	if got := Contrast(Color{1, 1, 1, 1}, Color{0, 0, 0, 1}); got != 21 {
		t.Errorf("Contrast(white, black) = %g, want 21", got)
	}
}

func TestProfileValidate(t *testing.T) {
	for _, p := range []Profile{{Scale: 3}, {Scale: 0.1}, {MaxFlashHz: 5}, {CVD: 9}, {Background: Color{R: 2}}} {
		if err := p.withDefaults().validate(); !errors.Is(err, ErrBadOptions) {
			t.Errorf("Profile %+v: validate = %v, want ErrBadOptions", p, err)
		}
	}
	if err := (Profile{}).withDefaults().validate(); err != nil {
		t.Errorf("zero Profile: %v", err)
	}
}
