package audio

import (
	"fmt"
	"slices"
	"time"
)

// TopicCue is the event-bus topic of [Cue] events, keyed by world.
const TopicCue = "audio.cue"

// CueVersion is the version of the [Cue] and [Snapshot] payloads.
const CueVersion = 1

// CueKind says what a cue asks clients to do.
type CueKind string

const (
	// CuePlay: start Voice at At, Offset into the sound (resumed voices
	// start part-way).
	CuePlay CueKind = "play"
	// CueStop: stop Voice at At; Reason says why.
	CueStop CueKind = "stop"
	// CueCrossfade: an ambient slot's Crossfade.
	CueCrossfade CueKind = "crossfade"
	// CueBusGain: a bus's volume or mute changed.
	CueBusGain CueKind = "bus_gain"
	// CueDuck: a ducking rule's new Ramp.
	CueDuck CueKind = "duck"
)

// Stop reasons.
const (
	ReasonEnded       = "ended"
	ReasonStopped     = "stopped"
	ReasonStolen      = "stolen"
	ReasonVirtualized = "virtualized"
)

// BusState is a bus's configuration as cues and snapshots carry it.
type BusState struct {
	Name   string  `json:"name"`
	Parent string  `json:"parent,omitempty"`
	Volume float64 `json:"volume"`
	Muted  bool    `json:"muted,omitempty"`
}

// DuckState is a ducking rule's targets and current ramp (depth 0–1).
type DuckState struct {
	Rule    string       `json:"rule"`
	Targets []DuckTarget `json:"targets"`
	Ramp    Ramp         `json:"ramp"`
}

// Cue is one intent of the director's output stream: a versioned value,
// encoded as JSON on [TopicCue]. Seq increases by one per cue of a
// director, so a client can tell that it missed one (and ask for a
// [Snapshot]). Exactly one of Voice, Crossfade, Bus and Duck is set,
// according to Kind. Times are RFC 3339; durations are integer
// nanoseconds (time.Duration's JSON form). A play cue for a voice ID that
// is already playing is the next clip of that voice line, at At.
type Cue struct {
	Version   int           `json:"version"`
	Seq       uint64        `json:"seq"`
	World     string        `json:"world"`
	Kind      CueKind       `json:"kind"`
	At        time.Time     `json:"at"`
	Voice     *Voice        `json:"voice,omitempty"`
	Offset    time.Duration `json:"offset,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Crossfade *Crossfade    `json:"crossfade,omitempty"`
	Bus       *BusState     `json:"bus,omitempty"`
	Duck      *DuckState    `json:"duck,omitempty"`
}

// PlayingVoice is a voice a snapshot holds, with when it started (its
// position is now − Start).
type PlayingVoice struct {
	Voice Voice     `json:"voice"`
	Start time.Time `json:"start"`
}

// Snapshot is everything a late-joining client needs to hear what everyone
// else hears: the bus hierarchy, the ducking ramps, the ambient
// crossfades and the playing voices, as of cue Seq. A client applies the
// cues after Seq ([Snapshot.Apply]) and evaluates the mix at its "now"
// ([Snapshot.Mix]); the pub/sub transport keeps no history, so late
// joiners ask the director ([Director.Snapshot]), not the bus. The zero
// Snapshot has no buses: its Mix fails with ErrBusCycle.
type Snapshot struct {
	Version     int            `json:"version"`
	World       string         `json:"world"`
	Seq         uint64         `json:"seq"`
	At          time.Time      `json:"at"`
	State       AmbientState   `json:"state"`
	Buses       []BusState     `json:"buses"`
	DuckFloorDB float64        `json:"duck_floor_db"`
	Ducks       []DuckState    `json:"ducks"`
	Ambient     []Crossfade    `json:"ambient"`
	Voices      []PlayingVoice `json:"voices"`
}

// Apply updates the snapshot with the next cue. Cues at or before Seq are
// ignored; a gap (c.Seq > Seq+1) returns an error wrapping ErrCueGap, and
// the client should fetch a new snapshot.
func (s *Snapshot) Apply(c Cue) error {
	if c.Seq <= s.Seq {
		return nil
	}
	if c.Seq != s.Seq+1 {
		return fmt.Errorf("%w: have %d, got %d", ErrCueGap, s.Seq, c.Seq)
	}
	s.Seq = c.Seq
	switch c.Kind {
	case CuePlay:
		if c.Voice == nil {
			break
		}
		pv := PlayingVoice{Voice: *c.Voice, Start: c.At.Add(-c.Offset)}
		if i := slices.IndexFunc(s.Voices, func(v PlayingVoice) bool { return v.Voice.ID == c.Voice.ID }); i >= 0 {
			s.Voices[i].Voice.Sound = pv.Voice.Sound // the next clip of a voice line
		} else {
			s.Voices = append(s.Voices, pv)
		}
	case CueStop:
		if c.Voice != nil {
			for i, v := range s.Voices {
				if v.Voice.ID == c.Voice.ID {
					s.Voices = append(s.Voices[:i], s.Voices[i+1:]...)
					break
				}
			}
		}
	case CueCrossfade:
		if c.Crossfade != nil {
			replaced := false
			for i := range s.Ambient {
				if s.Ambient[i].Slot == c.Crossfade.Slot {
					s.Ambient[i], replaced = *c.Crossfade, true
				}
			}
			if !replaced {
				s.Ambient = append(s.Ambient, *c.Crossfade)
			}
		}
	case CueBusGain:
		if c.Bus != nil {
			for i := range s.Buses {
				if s.Buses[i].Name == c.Bus.Name {
					s.Buses[i].Volume, s.Buses[i].Muted = c.Bus.Volume, c.Bus.Muted
				}
			}
		}
	case CueDuck:
		if c.Duck != nil {
			for i := range s.Ducks {
				if s.Ducks[i].Rule == c.Duck.Rule {
					s.Ducks[i].Ramp = c.Duck.Ramp
				}
			}
		}
	}
	return nil
}

// Mix is the evaluated mix at one instant: each bus's effective gain, each
// audible ambient layer with its final gain (layer gain × bus gain; the
// reverb slot's "gain" is its preset's blend weight), and each playing
// voice's final gain (volume × bus gain).
type Mix struct {
	At     time.Time          `json:"at"`
	Buses  map[string]float64 `json:"buses"`
	Layers []Layer            `json:"layers"`
	Voices map[string]float64 `json:"voices"`
}

// Mix evaluates the snapshot at now, as a client does.
func (s *Snapshot) Mix(now time.Time) (Mix, error) {
	cfg := make([]BusConfig, len(s.Buses))
	for i, b := range s.Buses {
		cfg[i] = BusConfig(b)
	}
	m, err := NewMixer(cfg)
	if err != nil {
		return Mix{}, err
	}
	rules := make([]DuckRule, len(s.Ducks))
	for i, d := range s.Ducks {
		rules[i] = DuckRule{Name: d.Rule, Targets: d.Targets}
	}
	dk, err := NewDucker(m, rules, s.DuckFloorDB, nil)
	if err != nil {
		return Mix{}, err
	}
	for i, d := range s.Ducks {
		dk.rules[i].ramp = d.Ramp
	}
	dk.apply(now)
	m.update()
	mix := Mix{At: now, Buses: make(map[string]float64, len(m.names)), Voices: make(map[string]float64, len(s.Voices))}
	for i, n := range m.names {
		mix.Buses[n] = m.gain[i]
	}
	for _, c := range s.Ambient {
		mix.Layers = c.AppendLayers(mix.Layers, now)
	}
	for i := range mix.Layers {
		if g, ok := mix.Buses[mix.Layers[i].Bus]; ok {
			mix.Layers[i].Gain *= g
		}
	}
	for _, v := range s.Voices {
		mix.Voices[v.Voice.ID] = v.Voice.Volume * mix.Buses[v.Voice.Bus]
	}
	return mix, nil
}
