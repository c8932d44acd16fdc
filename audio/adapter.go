package audio

import (
	"strings"
	"time"
)

// EngineCommand is one middleware instruction derived from a [Cue] by an
// [Adapter]: post an event, set a state, an RTPC, a parameter, a VCA or a
// snapshot's intensity.
type EngineCommand struct {
	Kind   string        `json:"kind"`
	Target string        `json:"target"`
	Value  float64       `json:"value,omitempty"`
	State  string        `json:"state,omitempty"`
	At     time.Time     `json:"at"`
	Fade   time.Duration `json:"fade,omitempty"`
}

// Mapping turns one kind of cue into one command. Target is a template:
// "{sound}", "{bus}", "{rule}" and "{slot}" are replaced by the cue's
// values. Value is the cue's level (volume, duck depth) times Scale (100
// for Wwise's 0–100 RTPC range). An empty Kind maps the cue to nothing.
type Mapping struct {
	Kind   string  `json:"kind"`
	Target string  `json:"target"`
	Scale  float64 `json:"scale,omitempty"`
}

// Adapter is a table that maps the middleware-neutral cue stream to one
// middleware's names, so that server logic does not change when a studio
// switches from MetaSounds to Wwise or FMOD. The presets are
// [MetaSoundsAdapter], [WwiseAdapter] and [FMODAdapter]; copy one and
// change its templates to match a project's names. An Adapter is a plain
// value, safe for concurrent use once built.
type Adapter struct {
	Name      string  `json:"name"`
	Play      Mapping `json:"play"`
	Stop      Mapping `json:"stop"`
	BusGain   Mapping `json:"bus_gain"`
	Duck      Mapping `json:"duck"`
	Crossfade Mapping `json:"crossfade"`
}

// MetaSoundsAdapter maps cues to UE5 MetaSounds and Audio Modulation:
// MetaSound sources by name, control buses per bus ("Bus_<bus>"),
// control bus mixes per ducking rule, and an ambient parameter per slot.
func MetaSoundsAdapter() Adapter {
	return Adapter{
		Name:      "metasounds",
		Play:      Mapping{Kind: "play_metasound", Target: "{sound}"},
		Stop:      Mapping{Kind: "stop_metasound", Target: "{sound}"},
		BusGain:   Mapping{Kind: "set_control_bus", Target: "Bus_{bus}", Scale: 1},
		Duck:      Mapping{Kind: "set_control_bus_mix", Target: "Duck_{rule}", Scale: 1},
		Crossfade: Mapping{Kind: "set_parameter", Target: "Ambient.{slot}"},
	}
}

// WwiseAdapter maps cues to Wwise: Play_/Stop_ events, a "Volume_<bus>"
// RTPC (0–100) per bus, a "Duck_<rule>" RTPC per ducking rule, and a
// state group per ambient slot whose state is the new sound.
func WwiseAdapter() Adapter {
	return Adapter{
		Name:      "wwise",
		Play:      Mapping{Kind: "post_event", Target: "Play_{sound}"},
		Stop:      Mapping{Kind: "post_event", Target: "Stop_{sound}"},
		BusGain:   Mapping{Kind: "set_rtpc", Target: "Volume_{bus}", Scale: 100},
		Duck:      Mapping{Kind: "set_rtpc", Target: "Duck_{rule}", Scale: 100},
		Crossfade: Mapping{Kind: "set_state", Target: "{slot}"},
	}
}

// FMODAdapter maps cues to FMOD Studio: event:/ paths, a VCA per bus, a
// snapshot per ducking rule (its intensity is the depth) and a labelled
// parameter per ambient slot.
func FMODAdapter() Adapter {
	return Adapter{
		Name:      "fmod",
		Play:      Mapping{Kind: "start_event", Target: "event:/{sound}"},
		Stop:      Mapping{Kind: "stop_event", Target: "event:/{sound}"},
		BusGain:   Mapping{Kind: "set_vca_volume", Target: "vca:/{bus}", Scale: 1},
		Duck:      Mapping{Kind: "set_snapshot_intensity", Target: "snapshot:/Duck_{rule}", Scale: 1},
		Crossfade: Mapping{Kind: "set_parameter_label", Target: "{slot}"},
	}
}

// Translate returns the commands for one cue (none when the adapter maps
// its kind to nothing).
func (a Adapter) Translate(c Cue) []EngineCommand {
	var m Mapping
	var repl []string
	cmd := EngineCommand{At: c.At}
	switch {
	case c.Kind == CuePlay && c.Voice != nil:
		m, repl = a.Play, []string{"{sound}", c.Voice.Sound}
		cmd.Value = c.Voice.Volume
		cmd.Fade = c.Offset // a resumed voice starts this far in
	case c.Kind == CueStop && c.Voice != nil:
		m, repl = a.Stop, []string{"{sound}", c.Voice.Sound}
	case c.Kind == CueBusGain && c.Bus != nil:
		m, repl = a.BusGain, []string{"{bus}", c.Bus.Name}
		cmd.Value = c.Bus.Volume
		if c.Bus.Muted {
			cmd.Value = 0
		}
	case c.Kind == CueDuck && c.Duck != nil:
		m, repl = a.Duck, []string{"{rule}", c.Duck.Rule}
		cmd.Value, cmd.Fade = c.Duck.Ramp.To, c.Duck.Ramp.Duration
	case c.Kind == CueCrossfade && c.Crossfade != nil:
		m, repl = a.Crossfade, []string{"{slot}", c.Crossfade.Slot}
		cmd.State, cmd.Fade = c.Crossfade.To, c.Crossfade.Duration
		cmd.Value = c.Crossfade.ToGain
	}
	if m.Kind == "" {
		return nil
	}
	cmd.Kind = m.Kind
	cmd.Target = strings.NewReplacer(repl...).Replace(m.Target)
	if m.Scale != 0 {
		cmd.Value *= m.Scale
	} else if c.Kind != CuePlay && c.Kind != CueCrossfade {
		cmd.Value = 0
	}
	return []EngineCommand{cmd}
}
