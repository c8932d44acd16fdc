package audio

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestLinearDBKnownValues(t *testing.T) {
	tests := []struct{ db, lin float64 }{
		{0, 1}, {-20, 0.1}, {-40, 0.01}, {-60, 0.001}, {math.Inf(-1), 0},
	}
	for _, tt := range tests {
		if got := Linear(tt.db); math.Abs(got-tt.lin) > 1e-12 {
			t.Errorf("Linear(%v) = %v, want %v", tt.db, got, tt.lin)
		}
		if got := DB(tt.lin); !(math.Abs(got-tt.db) < 1e-9 || got == tt.db) {
			t.Errorf("DB(%v) = %v, want %v", tt.lin, got, tt.db)
		}
	}
	if got := DB(0.5); math.Abs(got-(-6.0206)) > 1e-4 {
		t.Errorf("DB(0.5) = %v, want −6.02", got)
	}
	if !math.IsNaN(DB(-0.1)) || !math.IsNaN(DB(math.NaN())) {
		t.Error("DB of a negative or NaN gain is not NaN")
	}
	if !Silent(Linear(-80)) || Silent(Linear(-79.9)) {
		t.Error("Silent does not cut at −80 dB")
	}
}

func TestDBLinearRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		db := -120 * r.Float64()
		if got := DB(Linear(db)); math.Abs(got-db) > 1e-9 {
			t.Fatalf("DB(Linear(%v)) = %v", db, got)
		}
		g := r.Float64()
		if g == 0 {
			continue
		}
		if got := Linear(DB(g)); math.Abs(got-g) > 1e-9 {
			t.Fatalf("Linear(DB(%v)) = %v", g, got)
		}
	}
}

func TestCheckGainAndDB(t *testing.T) {
	for _, g := range []float64{-0.01, 1.0001, math.NaN(), math.Inf(1)} {
		if err := CheckGain("g", g); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("CheckGain(%v) = %v, want ErrInvalidValue", g, err)
		}
	}
	for _, db := range []float64{0.1, math.NaN(), math.Inf(1)} {
		var ve *ValueError
		if err := CheckDB("db", db); !errors.As(err, &ve) || ve.Field != "db" {
			t.Errorf("CheckDB(%v) = %v, want a *ValueError for db", db, err)
		}
	}
	if CheckGain("g", 0) != nil || CheckGain("g", 1) != nil || CheckDB("db", math.Inf(-1)) != nil {
		t.Error("valid values rejected")
	}
}

var tapers = []Taper{TaperLinear, TaperDB60, TaperCubic}

func TestTaperProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tp := range tapers {
		if g, _ := tp.Gain(0); g != 0 {
			t.Errorf("taper %d: Gain(0) = %v, want 0", tp, g)
		}
		if g, _ := tp.Gain(1); math.Abs(g-1) > 1e-12 {
			t.Errorf("taper %d: Gain(1) = %v, want 1", tp, g)
		}
		prev := 0.0
		for i := 1; i <= 10000; i++ {
			pos := float64(i) / 10000
			g, err := tp.Gain(pos)
			if err != nil {
				t.Fatal(err)
			}
			if !(g > prev) {
				t.Fatalf("taper %d: Gain(%v) = %v, not above %v: not strictly monotonic", tp, pos, g, prev)
			}
			if math.IsInf(DB(g), -1) {
				t.Fatalf("taper %d: −∞ dB at %v > 0", tp, pos)
			}
			prev = g
		}
		for range 2000 {
			pos := r.Float64()
			g, _ := tp.Gain(pos)
			back, err := tp.Position(g)
			if err != nil || math.Abs(back-pos) > 1e-9 {
				t.Fatalf("taper %d: Position(Gain(%v)) = %v, %v", tp, pos, back, err)
			}
		}
	}
}

func TestTaperVersionsAreStable(t *testing.T) {
	// Saved slider positions must keep their loudness: these values are
	// part of each version's contract and must never change.
	tests := []struct {
		taper Taper
		pos   float64
		want  float64
	}{
		{TaperLinear, 0.7, 0.7}, // the original's music default sounds the same
		{TaperDB60, 0.5, Linear(-30)},
		{TaperDB60, 0.1, Linear(-54)},
		{TaperDB60, 0.05, Linear(-54) / 2},
		{TaperCubic, 0.5, 0.125},
	}
	for _, tt := range tests {
		got, err := tt.taper.Gain(tt.pos)
		if err != nil || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("taper %d Gain(%v) = %v, %v; want %v", tt.taper, tt.pos, got, err, tt.want)
		}
	}
}

func TestTaperBadInput(t *testing.T) {
	if _, err := TaperLinear.Gain(math.NaN()); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("Gain(NaN) = %v", err)
	}
	if _, err := TaperLinear.Gain(1.5); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("Gain(1.5) = %v", err)
	}
	if _, err := Taper(0).Gain(0.5); !errors.Is(err, ErrUnknownTaper) {
		t.Errorf("Taper(0).Gain = %v, want ErrUnknownTaper", err)
	}
	if _, err := Taper(9).Position(0.5); !errors.Is(err, ErrUnknownTaper) {
		t.Errorf("Taper(9).Position = %v, want ErrUnknownTaper", err)
	}
}

func TestEqualPowerCrossfadeKeepsPower(t *testing.T) {
	for i := 0; i <= 1000; i++ {
		x := float64(i) / 1000
		out, in := CurveEqualPower.Fade(x)
		if p := 10 * math.Log10(out*out+in*in); math.Abs(p) > 0.1 {
			t.Fatalf("equal power at %v: summed power %v dB, want within ±0.1 dB", x, p)
		}
	}
	out, in := CurveEqualPower.Fade(0.5)
	if math.Abs(DB(out)+3.0103) > 1e-3 || math.Abs(DB(in)+3.0103) > 1e-3 {
		t.Errorf("equal power midpoint = %v, %v dB, want −3.01 dB each", DB(out), DB(in))
	}
	out, in = CurveLinear.Fade(0.5)
	if math.Abs(DB(out)+6.0206) > 1e-3 || in != 0.5 {
		t.Errorf("linear midpoint = %v, %v", out, in)
	}
	for _, x := range []float64{-1, math.NaN()} {
		if out, in := CurveLinear.Fade(x); out != 1 || in != 0 {
			t.Errorf("Fade(%v) = %v, %v, want 1, 0", x, out, in)
		}
	}
	if out, in := CurveEqualPower.Fade(2); out != 0 || in != 1 {
		t.Errorf("Fade(2) = %v, %v, want 0, 1", out, in)
	}
}

func TestCurveText(t *testing.T) {
	for _, c := range []Curve{CurveEqualPower, CurveLinear} {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Curve
		if err := back.UnmarshalText(b); err != nil || back != c {
			t.Errorf("round trip of %v: %v, %v", c, back, err)
		}
	}
	var c Curve
	if err := c.UnmarshalText([]byte("s-curve")); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("unknown curve: %v", err)
	}
}
