package audio

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"time"
)

// Weather is the original system's weather state (EWeatherState), as a
// lower-case name. Unknown names give ErrUnknownWeather.
type Weather string

// The fourteen weather states of the original system.
const (
	WeatherClear        Weather = "clear"
	WeatherPartlyCloudy Weather = "partly_cloudy"
	WeatherCloudy       Weather = "cloudy"
	WeatherRain         Weather = "rain"
	WeatherHeavyRain    Weather = "heavy_rain"
	WeatherStorm        Weather = "storm"
	WeatherFog          Weather = "fog"
	WeatherMist         Weather = "mist"
	WeatherSnow         Weather = "snow"
	WeatherHeavySnow    Weather = "heavy_snow"
	WeatherBlizzard     Weather = "blizzard"
	WeatherWindy        Weather = "windy"
	WeatherExtremeHeat  Weather = "extreme_heat"
	WeatherExtremeCold  Weather = "extreme_cold"
)

// WeatherLayers names the (up to) two ambience layers of a weather state;
// "" is no layer.
type WeatherLayers struct{ Layer1, Layer2 string }

// DefaultWeatherLayers returns the original's two-layer ambience table,
// with its MS_Weather_ prefix. Storms add thunder as seeded one-shots
// ([Thunder]). The map is new on every call.
func DefaultWeatherLayers() map[Weather]WeatherLayers {
	const p = "MS_Weather_"
	return map[Weather]WeatherLayers{
		WeatherClear:        {},
		WeatherPartlyCloudy: {p + "Wind_Light", ""},
		WeatherCloudy:       {p + "Wind_Moderate", ""},
		WeatherRain:         {p + "Rain", p + "Wind_Moderate"},
		WeatherHeavyRain:    {p + "Rain_Heavy", p + "Wind_Strong"},
		WeatherStorm:        {p + "Rain_Heavy", p + "Wind_Strong"},
		WeatherFog:          {p + "Fog_Ambient", ""},
		WeatherMist:         {p + "Mist_Ambient", ""},
		WeatherSnow:         {p + "Snow", p + "Wind_Moderate"},
		WeatherHeavySnow:    {p + "Snow_Heavy", p + "Wind_Strong"},
		WeatherBlizzard:     {p + "Blizzard", p + "Wind_Howling"},
		WeatherWindy:        {p + "Wind_Strong", ""},
		WeatherExtremeHeat:  {p + "Heat_Haze", ""},
		WeatherExtremeCold:  {p + "Cold_Wind", ""},
	}
}

// The original's weather intensity rules.
const (
	// Layer2Threshold: the second weather layer plays only above this
	// intensity...
	Layer2Threshold = 0.5
	// Layer2Factor: ...at this factor of the intensity.
	Layer2Factor = 0.7
	// WeatherAmbientDuck: weather ducks the ambient bus by intensity × 0.6
	// (linear), over WeatherDuckTime.
	WeatherAmbientDuck = 0.6
	// WeatherMusicDuck: music ducks by 0.2 (linear) when the weather is not
	// clear and the intensity is above WeatherMusicThreshold.
	WeatherMusicDuck      = 0.2
	WeatherMusicThreshold = 0.3
	WeatherDuckTime       = 2 * time.Second
)

// WeatherGains returns the layer gains for a weather intensity in [0, 1]:
// layer 1 at the intensity, layer 2 at 0.7 × the intensity when it is
// above 0.5 and 0 otherwise.
func WeatherGains(intensity float64) (layer1, layer2 float64) {
	if intensity > Layer2Threshold {
		return intensity, Layer2Factor * intensity
	}
	return intensity, 0
}

// ZoneType is the original's EZoneType. Each has a default reverb preset.
type ZoneType string

const (
	Exterior     ZoneType = "exterior"
	Interior     ZoneType = "interior"
	SemiExterior ZoneType = "semi_exterior"
)

// DefaultReverb returns the reverb preset of a zone type: "Outdoor",
// "Room" and "Courtyard"; "Outdoor" for anything else.
func DefaultReverb(t ZoneType) string {
	switch t {
	case Interior:
		return "Room"
	case SemiExterior:
		return "Courtyard"
	}
	return "Outdoor"
}

// Zone is where the listeners of a director are. Bed "" means "MS_Zone_" +
// Name, Reverb "" means DefaultReverb(Type).
type Zone struct {
	Name   string   `json:"name"`
	Type   ZoneType `json:"type,omitempty"`
	Bed    string   `json:"bed,omitempty"`
	Reverb string   `json:"reverb,omitempty"`
}

func (z Zone) bed() string {
	if z.Bed != "" || z.Name == "" {
		return z.Bed
	}
	return "MS_Zone_" + z.Name
}

func (z Zone) reverb() string {
	if z.Reverb != "" {
		return z.Reverb
	}
	return DefaultReverb(z.Type)
}

// Ambient slots: each holds one sound (or reverb preset) and crossfades
// when it changes.
const (
	SlotTimeOfDay = "time_of_day"
	SlotZone      = "zone"
	SlotWeather1  = "weather1"
	SlotWeather2  = "weather2"
	SlotCombat    = "combat"
	SlotReverb    = "reverb"
)

// Crossfade is a timestamped transition of one ambient slot from one sound
// to another: From fades out from FromGain and To fades in to ToGain along
// Curve, over Duration from Start. When From equals To, the one sound's
// gain moves linearly from FromGain to ToGain. Evaluate it at any instant
// with [Crossfade.Gains]: a client that joins mid-way hears what everyone
// else hears. The zero Crossfade is silence.
type Crossfade struct {
	Slot     string        `json:"slot"`
	Bus      string        `json:"bus"`
	From     string        `json:"from,omitempty"`
	To       string        `json:"to,omitempty"`
	FromGain float64       `json:"from_gain"`
	ToGain   float64       `json:"to_gain"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
	Curve    Curve         `json:"curve"`
}

// Gains returns the gains of From and To at now.
func (c Crossfade) Gains(now time.Time) (from, to float64) {
	t := progress(c.Start, c.Duration, now)
	if c.From == c.To {
		g := c.FromGain + (c.ToGain-c.FromGain)*t
		return g, g
	}
	out, in := c.Curve.Fade(t)
	return c.FromGain * out, c.ToGain * in
}

// Layer is one sound of the ambience and its gain (before bus gains).
type Layer struct {
	Slot  string  `json:"slot"`
	Sound string  `json:"sound"`
	Bus   string  `json:"bus"`
	Gain  float64 `json:"gain"`
}

// AppendLayers appends the sounds audible at now (gain > 0) to dst.
func (c Crossfade) AppendLayers(dst []Layer, now time.Time) []Layer {
	f, t := c.Gains(now)
	if c.From == c.To {
		if c.To != "" && t > 0 {
			dst = append(dst, Layer{Slot: c.Slot, Sound: c.To, Bus: c.Bus, Gain: t})
		}
		return dst
	}
	if c.From != "" && f > 0 {
		dst = append(dst, Layer{Slot: c.Slot, Sound: c.From, Bus: c.Bus, Gain: f})
	}
	if c.To != "" && t > 0 {
		dst = append(dst, Layer{Slot: c.Slot, Sound: c.To, Bus: c.Bus, Gain: t})
	}
	return dst
}

// AmbientOptions configures the ambient director. The zero value gives the
// original system's table and timings.
type AmbientOptions struct {
	// PhaseBeds maps a worldtime phase name to its bed; nil means the
	// original's dawn, day, dusk, night → MS_DawnAmbient, MS_DayAmbient,
	// MS_DuskAmbient, MS_NightAmbient. An unknown phase falls back to
	// the "day" bed, as the original did.
	PhaseBeds map[string]string
	// Weather is the weather layer table; nil means DefaultWeatherLayers.
	Weather map[Weather]WeatherLayers
	// CombatBed plays on the music bus while in combat; "" means
	// "MS_Combat".
	CombatBed string
	// Crossfade durations: zero means the original's time of day 30 s,
	// weather 5 s, zone 5 s, reverb 3 s, and 2 s for combat.
	TimeOfDayFade, WeatherFade, ZoneFade, ReverbFade, CombatFade time.Duration
	// Thunder: in storms, each ThunderInterval slot (0 means 20 s) holds a
	// thunder strike with probability ThunderChance (0 means 0.5).
	ThunderInterval time.Duration
	ThunderChance   float64
}

func (o *AmbientOptions) defaults() error {
	if o.PhaseBeds == nil {
		o.PhaseBeds = map[string]string{"dawn": "MS_DawnAmbient", "day": "MS_DayAmbient", "dusk": "MS_DuskAmbient", "night": "MS_NightAmbient"}
	}
	if o.Weather == nil {
		o.Weather = DefaultWeatherLayers()
	}
	if o.CombatBed == "" {
		o.CombatBed = "MS_Combat"
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
		n   string
	}{
		{&o.TimeOfDayFade, 30 * time.Second, "TimeOfDayFade"}, {&o.WeatherFade, 5 * time.Second, "WeatherFade"},
		{&o.ZoneFade, 5 * time.Second, "ZoneFade"}, {&o.ReverbFade, 3 * time.Second, "ReverbFade"},
		{&o.CombatFade, 2 * time.Second, "CombatFade"}, {&o.ThunderInterval, 20 * time.Second, "ThunderInterval"},
	} {
		if *d.p < 0 {
			return invalid(d.n, *d.p)
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	if !(o.ThunderChance >= 0 && o.ThunderChance <= 1) {
		return invalid("ThunderChance", o.ThunderChance)
	}
	if o.ThunderChance == 0 {
		o.ThunderChance = 0.5
	}
	return nil
}

// Variation returns a deterministic pseudo-random value in [0, 1) for
// (world, emitter, slot): every server and client computes the same one,
// so all players hear the same variation at the same moment and replays
// are exact. Slot is usually a time slot (game or real time divided by a
// period); n distinguishes several draws in one slot.
func Variation(world, emitter string, slot int64, n uint64) float64 {
	h := fnv.New64a()
	h.Write([]byte(world))
	h.Write([]byte{0})
	h.Write([]byte(emitter))
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(slot))
	binary.LittleEndian.PutUint64(b[8:], n)
	h.Write(b[:])
	return float64(splitmix(h.Sum64())>>11) / (1 << 53)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Strike is one thunder one-shot.
type Strike struct {
	At     time.Time `json:"at"`
	Volume float64   `json:"volume"`
}

// ThunderVolume is the original's thunder volume, randomised to 0.7–1.0
// of itself per strike.
const ThunderVolume = 0.85

// Thunder returns the thunder strikes of a storm in [from, to): each
// interval-long slot since the Unix epoch holds one strike with
// probability chance, at a seeded offset in the slot and a seeded volume
// of 0.85 × [0.7, 1.0). Every server and client computes the same strikes.
func Thunder(world string, from, to time.Time, interval time.Duration, chance float64) []Strike {
	if interval <= 0 || !to.After(from) {
		return nil
	}
	var out []Strike
	first := floorDiv(from.UnixNano(), int64(interval))
	last := floorDiv(to.UnixNano()-1, int64(interval))
	for slot := first; slot <= last; slot++ {
		if Variation(world, "thunder", slot, 0) >= chance {
			continue
		}
		at := time.Unix(0, slot*int64(interval)+int64(Variation(world, "thunder", slot, 1)*float64(interval))).UTC()
		if at.Before(from) || !at.Before(to) {
			continue
		}
		vol := ThunderVolume * (0.7 + 0.3*Variation(world, "thunder", slot, 2))
		out = append(out, Strike{At: at, Volume: vol})
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Occlusion is what an obstruction does to a sound: a gain multiplier and
// a low-pass cutoff.
type Occlusion struct {
	Gain     float64 `json:"gain"`
	CutoffHz float64 `json:"cutoff_hz"`
}

// Occlusion model constants: a fully obstructed sound is 15 dB quieter and
// low-passed at 800 Hz; an unobstructed one is untouched (20 kHz). The
// original counted sources beyond 5000 units as fully occluded and a line
// trace hit as 0.15 obstruction.
const (
	OcclusionMaxDB     = -15.0
	OcclusionMinCutoff = 800.0
	OcclusionMaxCutoff = 20000.0
	OcclusionRange     = 5000.0
	OcclusionTraceHit  = 0.15
)

// Occlude returns the occlusion for an obstruction fraction in [0, 1]
// (0 open, 1 fully blocked): gain Linear(−15 dB × f) and a cutoff
// interpolated geometrically from 20 kHz down to 800 Hz.
func Occlude(obstruction float64) (Occlusion, error) {
	if !(obstruction >= 0 && obstruction <= 1) {
		return Occlusion{}, invalid("obstruction", obstruction)
	}
	return Occlusion{
		Gain:     Linear(OcclusionMaxDB * obstruction),
		CutoffHz: OcclusionMaxCutoff * math.Pow(OcclusionMinCutoff/OcclusionMaxCutoff, obstruction),
	}, nil
}

// Obstruction is the original's rule: 1 beyond OcclusionRange (5000
// units), 0.15 when a line trace from source to listener hit something,
// 0 otherwise.
func Obstruction(distance float64, traceHit bool) float64 {
	switch {
	case distance > OcclusionRange:
		return 1
	case traceHit:
		return OcclusionTraceHit
	}
	return 0
}

// AmbientState is what the ambient director follows.
type AmbientState struct {
	Phase     string  `json:"phase"`
	Zone      Zone    `json:"zone"`
	Weather   Weather `json:"weather"`
	Intensity float64 `json:"intensity"`
	Combat    bool    `json:"combat"`
}

// ambient chooses beds and layers and keeps one crossfade per slot.
type ambient struct {
	opts  AmbientOptions
	state AmbientState
	fades []Crossfade // one per slot, fixed order
}

var slotOrder = [...]string{SlotTimeOfDay, SlotZone, SlotWeather1, SlotWeather2, SlotCombat, SlotReverb}

func newAmbient(opts AmbientOptions) (*ambient, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	a := &ambient{opts: opts, state: AmbientState{Weather: WeatherClear}}
	for _, s := range slotOrder {
		bus := BusAmbient
		switch s {
		case SlotCombat:
			bus = BusMusic
		case SlotReverb:
			bus = ""
		}
		a.fades = append(a.fades, Crossfade{Slot: s, Bus: bus})
	}
	return a, nil
}

func (a *ambient) slot(name string) *Crossfade {
	for i := range a.fades {
		if a.fades[i].Slot == name {
			return &a.fades[i]
		}
	}
	panic("audio: unknown slot " + name)
}

// transition moves a slot to sound `to` at gain g from now; it reports the
// new crossfade and whether anything changed. A transition that starts
// while another is under way fades out whichever of the two sounds is
// louder at now (or the one it returns to), from the gain it has reached
// (the other one stops), so that several changes at one instant (a skip
// across phases) fade out what was audible rather than cutting it.
func (a *ambient) transition(slot, to string, g float64, d time.Duration, now time.Time) (Crossfade, bool) {
	c := a.slot(slot)
	if to == "" {
		g = 0
	}
	if c.To == to && c.ToGain == g {
		return *c, false
	}
	fg, tg := c.Gains(now)
	from, cur := c.To, tg
	if c.From != "" && c.From != c.To && (fg > tg || (c.From == to && fg > 0)) {
		from, cur = c.From, fg
	}
	if from == "" {
		cur = 0
	}
	*c = Crossfade{Slot: slot, Bus: c.Bus, From: from, To: to, FromGain: cur, ToGain: g, Start: now, Duration: d, Curve: CurveEqualPower}
	if c.From == "" && c.To == "" {
		return *c, false
	}
	return *c, true
}

func (a *ambient) phaseBed(phase string) string {
	if b, ok := a.opts.PhaseBeds[phase]; ok {
		return b
	}
	return a.opts.PhaseBeds["day"]
}

func (a *ambient) setPhase(phase string, now time.Time) []Crossfade {
	a.state.Phase = phase
	if c, ok := a.transition(SlotTimeOfDay, a.phaseBed(phase), 1, a.opts.TimeOfDayFade, now); ok {
		return []Crossfade{c}
	}
	return nil
}

func (a *ambient) setZone(z Zone, now time.Time) []Crossfade {
	a.state.Zone = z
	var out []Crossfade
	if c, ok := a.transition(SlotZone, z.bed(), 1, a.opts.ZoneFade, now); ok {
		out = append(out, c)
	}
	if c, ok := a.transition(SlotReverb, z.reverb(), 1, a.opts.ReverbFade, now); ok {
		out = append(out, c)
	}
	return out
}

func (a *ambient) setWeather(w Weather, intensity float64, now time.Time) ([]Crossfade, error) {
	layers, ok := a.opts.Weather[w]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownWeather, w)
	}
	if !(intensity >= 0 && intensity <= 1) {
		return nil, invalid("weather intensity", intensity)
	}
	a.state.Weather, a.state.Intensity = w, intensity
	g1, g2 := WeatherGains(intensity)
	if layers.Layer2 == "" || g2 == 0 {
		layers.Layer2, g2 = "", 0
	}
	var out []Crossfade
	if c, ok := a.transition(SlotWeather1, layers.Layer1, g1, a.opts.WeatherFade, now); ok {
		out = append(out, c)
	}
	if c, ok := a.transition(SlotWeather2, layers.Layer2, g2, a.opts.WeatherFade, now); ok {
		out = append(out, c)
	}
	return out, nil
}

func (a *ambient) setCombat(on bool, now time.Time) []Crossfade {
	a.state.Combat = on
	bed := ""
	if on {
		bed = a.opts.CombatBed
	}
	if c, ok := a.transition(SlotCombat, bed, 1, a.opts.CombatFade, now); ok {
		return []Crossfade{c}
	}
	return nil
}
