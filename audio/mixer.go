package audio

import (
	"fmt"
	"slices"
	"strings"
)

// Bus names of the default hierarchy: master → music, voice, sfx, ambient,
// ui.
const (
	BusMaster  = "master"
	BusMusic   = "music"
	BusVoice   = "voice"
	BusSFX     = "sfx"
	BusAmbient = "ambient"
	BusUI      = "ui"
)

// Category is the original system's sound category. Each maps to a bus of
// the default hierarchy by [Category.Bus]: Voice → "voice", Ambient →
// "ambient", Music → "music", Effect → "sfx", UI → "ui".
type Category uint8

const (
	CategoryVoice Category = iota
	CategoryAmbient
	CategoryMusic
	CategoryEffect
	CategoryUI
)

var categoryBus = [...]string{CategoryVoice: BusVoice, CategoryAmbient: BusAmbient, CategoryMusic: BusMusic, CategoryEffect: BusSFX, CategoryUI: BusUI}

// Bus returns the name of the category's bus in the default hierarchy.
func (c Category) Bus() string {
	if int(c) < len(categoryBus) {
		return categoryBus[c]
	}
	return ""
}

func (c Category) String() string {
	if b := c.Bus(); b != "" {
		return b
	}
	return fmt.Sprintf("Category(%d)", c)
}

// BusConfig declares one bus of a mixer. Parent is the name of its parent
// bus; exactly one bus (the master) has Parent "". Volume is the bus's
// linear gain in [0, 1]; see [DefaultBuses] for the defaults.
type BusConfig struct {
	Name   string
	Parent string
	Volume float64
	Muted  bool
}

// DefaultBuses returns the default hierarchy with the original system's
// default volumes: master 1.0 → music 0.7, voice 1.0, sfx (Effect) 1.0,
// ambient 0.8, ui 0.9. The slice is new on every call.
func DefaultBuses() []BusConfig {
	return []BusConfig{
		{Name: BusMaster, Volume: 1},
		{Name: BusMusic, Parent: BusMaster, Volume: 0.7},
		{Name: BusVoice, Parent: BusMaster, Volume: 1},
		{Name: BusSFX, Parent: BusMaster, Volume: 1},
		{Name: BusAmbient, Parent: BusMaster, Volume: 0.8},
		{Name: BusUI, Parent: BusMaster, Volume: 0.9},
	}
}

// MaxBuses bounds a mixer's hierarchy.
const MaxBuses = 1024

// Mixer is a bus hierarchy with a volume and mute per bus and a ducking
// multiplier per bus. A bus's effective gain is the product, along its
// path from the master, of each bus's volume (0 when muted) and ducking.
//
// A Mixer is not safe for concurrent use; [Director] serialises access to
// its own. Create one with [NewMixer]; the zero Mixer has no buses.
type Mixer struct {
	names  []string // in topological order: parents before children
	index  map[string]int
	parent []int // -1 for the root
	volume []float64
	muted  []bool
	duck   []float64 // ducking multiplier per bus, set by the owner
	gain   []float64 // effective gains, recomputed by update
	dirty  bool
}

// NewMixer builds a mixer from buses (nil means [DefaultBuses]). It
// returns ErrDuplicate for a repeated name, ErrUnknownBus for an unknown
// parent, ErrBusCycle when the buses do not form one tree, and a
// *ValueError for a volume outside [0, 1].
func NewMixer(buses []BusConfig) (*Mixer, error) {
	if buses == nil {
		buses = DefaultBuses()
	}
	if len(buses) == 0 || len(buses) > MaxBuses {
		return nil, fmt.Errorf("%w: %d buses (want 1..%d)", ErrBusCycle, len(buses), MaxBuses)
	}
	byName := make(map[string]int, len(buses))
	for i, b := range buses {
		if b.Name == "" || strings.ContainsAny(b.Name, " \t\n") {
			return nil, &ValueError{Field: "bus name", Value: b.Name, Err: ErrInvalidValue}
		}
		if _, dup := byName[b.Name]; dup {
			return nil, fmt.Errorf("%w: bus %q", ErrDuplicate, b.Name)
		}
		if err := CheckGain("volume of bus "+b.Name, b.Volume); err != nil {
			return nil, err
		}
		byName[b.Name] = i
	}
	children := make(map[string][]int, len(buses))
	root := -1
	for i, b := range buses {
		if b.Parent == "" {
			if root >= 0 {
				return nil, fmt.Errorf("%w: two roots, %q and %q", ErrBusCycle, buses[root].Name, b.Name)
			}
			root = i
			continue
		}
		if _, ok := byName[b.Parent]; !ok {
			return nil, fmt.Errorf("%w: %q (parent of %q)", ErrUnknownBus, b.Parent, b.Name)
		}
		children[b.Parent] = append(children[b.Parent], i)
	}
	if root < 0 {
		return nil, fmt.Errorf("%w: no root bus (one bus must have no parent)", ErrBusCycle)
	}
	// Breadth-first from the root: parents come before children. A bus
	// not reached is on a cycle.
	m := &Mixer{index: make(map[string]int, len(buses))}
	order := []int{root}
	for q := 0; q < len(order); q++ {
		order = append(order, children[buses[order[q]].Name]...)
	}
	if len(order) != len(buses) {
		for i, b := range buses {
			if !slices.Contains(order, i) {
				return nil, fmt.Errorf("%w: bus %q is on a cycle", ErrBusCycle, b.Name)
			}
		}
	}
	for _, i := range order {
		b := buses[i]
		m.index[b.Name] = len(m.names)
		m.names = append(m.names, b.Name)
		p := -1
		if b.Parent != "" {
			p = m.index[b.Parent]
		}
		m.parent = append(m.parent, p)
		m.volume = append(m.volume, b.Volume)
		m.muted = append(m.muted, b.Muted)
		m.duck = append(m.duck, 1)
	}
	m.gain = make([]float64, len(m.names))
	m.dirty = true
	return m, nil
}

// Buses returns the bus names, parents before children.
func (m *Mixer) Buses() []string { return append([]string(nil), m.names...) }

// Parent returns the name of a bus's parent ("" for the master).
func (m *Mixer) Parent(bus string) (string, error) {
	i, err := m.lookup(bus)
	if err != nil || m.parent[i] < 0 {
		return "", err
	}
	return m.names[m.parent[i]], nil
}

func (m *Mixer) lookup(bus string) (int, error) {
	i, ok := m.index[bus]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownBus, bus)
	}
	return i, nil
}

// SetVolume sets a bus's volume (linear, [0, 1]).
func (m *Mixer) SetVolume(bus string, v float64) error {
	i, err := m.lookup(bus)
	if err != nil {
		return err
	}
	if err := CheckGain("volume of bus "+bus, v); err != nil {
		return err
	}
	m.volume[i] = v
	m.dirty = true
	return nil
}

// Volume returns a bus's own volume.
func (m *Mixer) Volume(bus string) (float64, error) {
	i, err := m.lookup(bus)
	if err != nil {
		return 0, err
	}
	return m.volume[i], nil
}

// SetMute mutes or unmutes a bus (and so everything below it).
func (m *Mixer) SetMute(bus string, muted bool) error {
	i, err := m.lookup(bus)
	if err != nil {
		return err
	}
	m.muted[i] = muted
	m.dirty = true
	return nil
}

// setDuck sets bus i's ducking multiplier.
func (m *Mixer) setDuck(i int, g float64) {
	if m.duck[i] != g {
		m.duck[i] = g
		m.dirty = true
	}
}

func (m *Mixer) update() {
	if !m.dirty {
		return
	}
	for i := range m.names {
		g := m.volume[i] * m.duck[i]
		if m.muted[i] {
			g = 0
		}
		if p := m.parent[i]; p >= 0 {
			g *= m.gain[p]
		}
		m.gain[i] = g
	}
	m.dirty = false
}

// Gain returns a bus's effective gain: the product along its path of each
// bus's volume (0 if muted) and ducking multiplier.
func (m *Mixer) Gain(bus string) (float64, error) {
	i, err := m.lookup(bus)
	if err != nil {
		return 0, err
	}
	m.update()
	return m.gain[i], nil
}

// PlayerVolumes are one player's own volume settings, keyed by bus name,
// linear in [0, 1]; a bus without an entry counts as 1. They apply on top
// of the mixer's gains, multiplied along the path like bus volumes.
// Build them from settings with [PlayerVolumesFromSettings].
type PlayerVolumes map[string]float64

// PlayerGain returns bus's effective gain for a player with volumes pv:
// [Mixer.Gain] times the product of pv along the bus's path.
func (m *Mixer) PlayerGain(pv PlayerVolumes, bus string) (float64, error) {
	i, err := m.lookup(bus)
	if err != nil {
		return 0, err
	}
	m.update()
	g := m.gain[i]
	for j := i; j >= 0; j = m.parent[j] {
		if v, ok := pv[m.names[j]]; ok {
			g *= v
		}
	}
	return g, nil
}
