package audio

import (
	"fmt"
	"math"
	"time"
)

// Ramp is a level moving linearly from From to To over Duration, starting
// at Start: a timestamped intent that anyone can evaluate at any instant
// (a late-joining client evaluates it at "now" and hears what everyone
// else hears). Levels are in [0, 1]. The zero Ramp is level 0 forever.
type Ramp struct {
	Start    time.Time     `json:"start"`
	From     float64       `json:"from"`
	To       float64       `json:"to"`
	Duration time.Duration `json:"duration"`
}

// At returns the ramp's level at now: From before Start, To after
// Start+Duration, linear in between.
func (r Ramp) At(now time.Time) float64 {
	return r.From + (r.To-r.From)*progress(r.Start, r.Duration, now)
}

// Done reports whether the ramp has reached To at now.
func (r Ramp) Done(now time.Time) bool { return !now.Before(r.Start.Add(r.Duration)) }

func progress(start time.Time, d time.Duration, now time.Time) float64 {
	if d <= 0 {
		if now.Before(start) {
			return 0
		}
		return 1
	}
	e := now.Sub(start)
	switch {
	case e <= 0:
		return 0
	case e >= d:
		return 1
	}
	return float64(e) / float64(d)
}

// DuckTarget is one bus a ducking rule lowers, and by how much at full
// depth (a cut in dB, ≤ 0).
type DuckTarget struct {
	Bus string  `json:"bus"`
	DB  float64 `json:"db"`
}

// DuckRule says which buses duck, how deep and how fast. While a rule is
// held at depth d (0 = not ducking, 1 = fully), each target bus's gain is
// multiplied by Linear(DB·d). Depth moves at full speed over Attack when
// rising and Release when falling (a partial move takes a proportional
// part of it).
//
// Trigger, if set, names a bus whose voices hold the rule: a [Director]
// starts it when a voice on that bus starts and ends it when the last one
// ends. Each rule has its own state, so several rules ducking at once
// combine by multiplying; the product is kept within [floor, 1]. A rule
// with no targets ducks nothing.
type DuckRule struct {
	Name    string        `json:"name"`
	Trigger string        `json:"trigger,omitempty"`
	Targets []DuckTarget  `json:"targets"`
	Attack  time.Duration `json:"attack"`
	Release time.Duration `json:"release"`
}

// DefaultDuckRules returns the default rule: dialogue (voice bus) ducks
// music by 12 dB and ambient by 8 dB, attack 0.2 s, release 1 s (UE's
// Sound Mix fade 0.2 s, Wwise's recovery 1 s, the broadcast −12 dB duck).
// Voice is never ducked.
func DefaultDuckRules() []DuckRule {
	return []DuckRule{{
		Name: "dialogue", Trigger: BusVoice,
		Targets: []DuckTarget{{Bus: BusMusic, DB: -12}, {Bus: BusAmbient, DB: -8}},
		Attack:  200 * time.Millisecond, Release: time.Second,
	}}
}

type duckTarget struct {
	bus int
	db  float64
}

type duckState struct {
	rule    DuckRule
	targets []duckTarget
	held    int // Start calls not yet Ended
	ramp    Ramp
}

// Ducker holds the state of each ducking rule and turns it into per-bus
// multipliers for a [Mixer]. It is not safe for concurrent use; a
// [Director] serialises access to its own.
type Ducker struct {
	m      *Mixer
	rules  []duckState
	byName map[string]int
	floor  float64
	out    []float64 // scratch: multiplier per bus
}

// NewDucker validates rules against m: unknown buses give ErrUnknownBus,
// a target in never (bus names that must never be ducked) gives
// ErrNeverDucked, a target dB above 0 or NaN and negative attack or release
// times give a *ValueError. floorDB is the lowest combined multiplier
// (0 means [SilenceDB]).
func NewDucker(m *Mixer, rules []DuckRule, floorDB float64, never []string) (*Ducker, error) {
	if floorDB == 0 {
		floorDB = SilenceDB
	}
	if err := CheckDB("duck floor", floorDB); err != nil || math.IsInf(floorDB, -1) {
		return nil, invalid("duck floor", floorDB)
	}
	d := &Ducker{m: m, byName: map[string]int{}, floor: Linear(floorDB), out: make([]float64, len(m.names))}
	for _, r := range rules {
		if r.Name == "" {
			return nil, invalid("duck rule name", r.Name)
		}
		if _, dup := d.byName[r.Name]; dup {
			return nil, fmt.Errorf("%w: duck rule %q", ErrDuplicate, r.Name)
		}
		if r.Attack < 0 {
			return nil, invalid("attack of duck rule "+r.Name, r.Attack)
		}
		if r.Release < 0 {
			return nil, invalid("release of duck rule "+r.Name, r.Release)
		}
		if r.Trigger != "" {
			if _, err := m.lookup(r.Trigger); err != nil {
				return nil, err
			}
		}
		st := duckState{rule: r}
		st.rule.Targets = append([]DuckTarget(nil), r.Targets...)
		for _, t := range r.Targets {
			i, err := m.lookup(t.Bus)
			if err != nil {
				return nil, err
			}
			for _, n := range never {
				if n == t.Bus {
					return nil, fmt.Errorf("%w: %q (rule %q)", ErrNeverDucked, t.Bus, r.Name)
				}
			}
			if err := CheckDB("duck depth of "+t.Bus, t.DB); err != nil {
				return nil, err
			}
			st.targets = append(st.targets, duckTarget{bus: i, db: t.DB})
		}
		d.byName[r.Name] = len(d.rules)
		d.rules = append(d.rules, st)
	}
	return d, nil
}

// Rules returns the rule names in declaration order.
func (d *Ducker) Rules() []string {
	names := make([]string, len(d.rules))
	for i, r := range d.rules {
		names[i] = r.rule.Name
	}
	return names
}

func (d *Ducker) lookup(rule string) (*duckState, error) {
	i, ok := d.byName[rule]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRule, rule)
	}
	return &d.rules[i], nil
}

// Set moves a rule towards depth (in [0, 1]) from now, at the rule's
// attack or release speed, and returns the new ramp. It replaces any ramp
// in progress, starting from the level that ramp had reached.
func (d *Ducker) Set(rule string, depth float64, now time.Time) (Ramp, error) {
	st, err := d.lookup(rule)
	if err != nil {
		return Ramp{}, err
	}
	if err := CheckGain("duck depth", depth); err != nil {
		return Ramp{}, err
	}
	return st.set(depth, now), nil
}

func (st *duckState) set(depth float64, now time.Time) Ramp {
	cur := st.ramp.At(now)
	speed := st.rule.Attack
	if depth < cur {
		speed = st.rule.Release
	}
	st.ramp = Ramp{Start: now, From: cur, To: depth, Duration: time.Duration(math.Abs(depth-cur) * float64(speed))}
	return st.ramp
}

// Start holds a rule (a voice line began): the first hold ramps it to
// full depth. Holds nest; the rule releases when each has been ended.
// It reports the new ramp and whether it changed.
func (d *Ducker) Start(rule string, now time.Time) (Ramp, bool, error) {
	st, err := d.lookup(rule)
	if err != nil {
		return Ramp{}, false, err
	}
	st.held++
	if st.held > 1 {
		return st.ramp, false, nil
	}
	return st.set(1, now), true, nil
}

// End releases one hold of a rule; the last release ramps it back to 0.
// Ending a rule that is not held does nothing.
func (d *Ducker) End(rule string, now time.Time) (Ramp, bool, error) {
	st, err := d.lookup(rule)
	if err != nil {
		return Ramp{}, false, err
	}
	if st.held == 0 {
		return st.ramp, false, nil
	}
	st.held--
	if st.held > 0 {
		return st.ramp, false, nil
	}
	return st.set(0, now), true, nil
}

// Ramp returns a rule's current ramp.
func (d *Ducker) Ramp(rule string) (Ramp, error) {
	st, err := d.lookup(rule)
	if err != nil {
		return Ramp{}, err
	}
	return st.ramp, nil
}

// apply computes every bus's ducking multiplier at now and sets it on the
// mixer. It allocates nothing.
func (d *Ducker) apply(now time.Time) {
	for i := range d.out {
		d.out[i] = 1
	}
	for i := range d.rules {
		st := &d.rules[i]
		depth := st.ramp.At(now)
		if depth == 0 {
			continue
		}
		for _, t := range st.targets {
			d.out[t.bus] *= Linear(t.db * depth)
		}
	}
	for i, g := range d.out {
		d.m.setDuck(i, min(1, max(d.floor, g)))
	}
}

// Multiplier returns the combined ducking multiplier of one bus at now
// (its own rules only, not its parents'), within [floor, 1].
func (d *Ducker) Multiplier(bus string, now time.Time) (float64, error) {
	i, err := d.m.lookup(bus)
	if err != nil {
		return 0, err
	}
	d.apply(now)
	return d.m.duck[i], nil
}
