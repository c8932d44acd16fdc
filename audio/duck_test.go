package audio

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func newTestDucker(t *testing.T, rules []DuckRule) (*Mixer, *Ducker) {
	t.Helper()
	m, err := NewMixer(nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDucker(m, rules, 0, []string{BusVoice})
	if err != nil {
		t.Fatal(err)
	}
	return m, d
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestDuckAttackHoldRelease(t *testing.T) {
	_, d := newTestDucker(t, DefaultDuckRules())
	if _, changed, err := d.Start("dialogue", t0); err != nil || !changed {
		t.Fatalf("Start = %v, %v", changed, err)
	}
	music := func(at time.Duration) float64 {
		g, err := d.Multiplier(BusMusic, t0.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	if g := music(0); g != 1 {
		t.Errorf("at start: %v, want 1", g)
	}
	if g := music(100 * time.Millisecond); !near(g, Linear(-6)) {
		t.Errorf("half-way through the attack: %v, want −6 dB", DB(g))
	}
	if g := music(time.Second); !near(g, Linear(-12)) {
		t.Errorf("held: %v dB, want −12", DB(g))
	}
	if g, _ := d.Multiplier(BusVoice, t0.Add(time.Second)); g != 1 {
		t.Errorf("voice ducked to %v; voice is never ducked", g)
	}
	// A second line nests: ending one does not release.
	d.Start("dialogue", t0.Add(time.Second))
	if _, changed, _ := d.End("dialogue", t0.Add(2*time.Second)); changed {
		t.Error("ending one of two lines released the duck")
	}
	if _, changed, _ := d.End("dialogue", t0.Add(3*time.Second)); !changed {
		t.Error("ending the last line did not release")
	}
	if g := music(3*time.Second + 500*time.Millisecond); !near(g, Linear(-6)) {
		t.Errorf("half-way through the release: %v dB, want −6", DB(g))
	}
	if g := music(5 * time.Second); g != 1 {
		t.Errorf("recovered: %v, want 1", g)
	}
	if _, changed, _ := d.End("dialogue", t0.Add(6*time.Second)); changed {
		t.Error("an unmatched End changed the duck")
	}
}

func TestConcurrentDucksCombine(t *testing.T) {
	// The original shared one ducking state, so a second duck overwrote the
	// first. Here each rule keeps its own and the gains multiply.
	rules := []DuckRule{
		{Name: "voice", Targets: []DuckTarget{{Bus: BusMusic, DB: -10}}, Attack: time.Second, Release: time.Second},
		{Name: "weather", Targets: []DuckTarget{{Bus: BusMusic, DB: -6}, {Bus: BusAmbient, DB: -3}}, Attack: 2 * time.Second, Release: 2 * time.Second},
	}
	_, d := newTestDucker(t, rules)
	d.Start("voice", t0)
	d.Start("weather", t0)
	g, _ := d.Multiplier(BusMusic, t0.Add(5*time.Second))
	if !near(DB(g), -16) {
		t.Errorf("music under both ducks: %v dB, want −16", DB(g))
	}
	d.End("voice", t0.Add(5*time.Second))
	g, _ = d.Multiplier(BusMusic, t0.Add(10*time.Second))
	if !near(DB(g), -6) {
		t.Errorf("after the voice duck ends: %v dB, want −6 (the weather duck stays)", DB(g))
	}
	a, _ := d.Multiplier(BusAmbient, t0.Add(10*time.Second))
	if !near(DB(a), -3) {
		t.Errorf("ambient: %v dB, want −3", DB(a))
	}
}

func TestDuckGainsWithinFloorProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var rules []DuckRule
	for i := range 8 {
		rules = append(rules, DuckRule{
			Name:    string(rune('a' + i)),
			Targets: []DuckTarget{{Bus: BusMusic, DB: -40 * r.Float64()}, {Bus: BusAmbient, DB: -40 * r.Float64()}},
			Attack:  time.Duration(r.IntN(3000)) * time.Millisecond, Release: time.Duration(r.IntN(3000)) * time.Millisecond,
		})
	}
	_, d := newTestDucker(t, rules)
	floor := Linear(SilenceDB)
	now := t0
	for range 5000 {
		now = now.Add(time.Duration(r.IntN(500)) * time.Millisecond)
		rule := rules[r.IntN(len(rules))].Name
		switch r.IntN(3) {
		case 0:
			d.Start(rule, now)
		case 1:
			d.End(rule, now)
		default:
			d.Set(rule, r.Float64(), now)
		}
		for _, bus := range []string{BusMusic, BusAmbient, BusVoice} {
			g, _ := d.Multiplier(bus, now)
			if !(g >= floor && g <= 1) {
				t.Fatalf("%s multiplier %v outside [floor %v, 1]", bus, g, floor)
			}
		}
	}
}

func TestDuckerBadInput(t *testing.T) {
	m, _ := NewMixer(nil)
	tests := []struct {
		name  string
		rules []DuckRule
		want  error
	}{
		{"voice", []DuckRule{{Name: "x", Targets: []DuckTarget{{Bus: BusVoice, DB: -6}}}}, ErrNeverDucked},
		{"unknown bus", []DuckRule{{Name: "x", Targets: []DuckTarget{{Bus: "radio", DB: -6}}}}, ErrUnknownBus},
		{"unknown trigger", []DuckRule{{Name: "x", Trigger: "radio"}}, ErrUnknownBus},
		{"boost", []DuckRule{{Name: "x", Targets: []DuckTarget{{Bus: BusMusic, DB: 3}}}}, ErrInvalidValue},
		{"NaN", []DuckRule{{Name: "x", Targets: []DuckTarget{{Bus: BusMusic, DB: math.NaN()}}}}, ErrInvalidValue},
		{"negative attack", []DuckRule{{Name: "x", Attack: -time.Second}}, ErrInvalidValue},
		{"negative release", []DuckRule{{Name: "x", Release: -time.Second}}, ErrInvalidValue},
		{"duplicate", []DuckRule{{Name: "x"}, {Name: "x"}}, ErrDuplicate},
	}
	for _, tt := range tests {
		if _, err := NewDucker(m, tt.rules, 0, []string{BusVoice}); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	_, d := newTestDucker(t, nil)
	if _, _, err := d.Start("nope", t0); !errors.Is(err, ErrUnknownRule) {
		t.Errorf("Start(unknown) = %v", err)
	}
	if _, err := NewDucker(m, nil, 6, nil); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("floor +6 dB: %v", err)
	}
}

func TestRampEvaluatesAnywhere(t *testing.T) {
	r := Ramp{Start: t0, From: 0.2, To: 1, Duration: 4 * time.Second}
	for _, tt := range []struct {
		at   time.Duration
		want float64
	}{{-time.Second, 0.2}, {0, 0.2}, {time.Second, 0.4}, {4 * time.Second, 1}, {time.Hour, 1}} {
		if got := r.At(t0.Add(tt.at)); !near(got, tt.want) {
			t.Errorf("At(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if (Ramp{Start: t0, To: 1}).At(t0) != 1 {
		t.Error("a zero-length ramp is not at To from its start")
	}
}
