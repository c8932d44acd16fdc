package audio

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/worldtime"
)

// Ducking rules the director adds for weather: the original's ambient duck
// (intensity × 0.6) and music duck (0.2 when not clear and intensity > 0.3),
// each over WeatherDuckTime.
const (
	RuleWeatherAmbient = "weather_ambient"
	RuleWeatherMusic   = "weather_music"
)

// Options configures a [Director]. The zero value is valid: world
// "default", the default buses, ducking rules, ambient table and timings,
// no voice limits, no event bus.
type Options struct {
	// World names the world or zone the director directs; cues are keyed
	// by it. "" means "default".
	World string
	// Buses is the bus hierarchy; nil means DefaultBuses. Weather ducking
	// needs the "ambient" and "music" buses unless DisableWeatherDucking.
	Buses []BusConfig
	// DuckRules; nil means DefaultDuckRules. The weather rules are added.
	DuckRules []DuckRule
	// DuckFloorDB is the lowest combined ducking multiplier; 0 means
	// SilenceDB (−80 dB).
	DuckFloorDB float64
	// NeverDuck lists buses no rule may duck; nil means ["voice"] (the
	// original: voice is never ducked). Use an empty non-nil slice for
	// none.
	NeverDuck []string
	// DisableWeatherDucking leaves out the two weather rules.
	DisableWeatherDucking bool
	// Voices: limits per group, and the bound on tracked voices.
	Voices VoicesOptions
	// Ambient: beds, weather table, crossfade times, thunder.
	Ambient AmbientOptions
	// VoiceLineGroup is the voice group of voice lines; "" means
	// "dialogue". Give it a Limit in Voices to bound concurrent lines.
	VoiceLineGroup string
	// MaxLineDuration ends a voice line of unknown duration that nobody
	// ended (a lost ack); 0 means 60 s.
	MaxLineDuration time.Duration
	// MaxPlayers bounds the players with volume settings; 0 means 65,536.
	MaxPlayers int
	// MaxCues is how many recent cues Cues can return; 0 means 1024.
	MaxCues int
	// Events, if set, receives every cue on TopicCue, keyed by World, in
	// Seq order. Publishing happens outside the director's lock, so a slow
	// subscriber delays only the call that publishes (a call returns once
	// its cues are published, or handed to a call publishing already),
	// never Update, Snapshot or PlayerGain. A failed publish is logged and
	// counted in Stats.
	Events *eventbus.Bus
	// PublishTimeout bounds one publish to Events; 0 means 5 s.
	PublishTimeout time.Duration
	// OnCue, if set, is called with every cue, in order, under the
	// director's lock: it must not call the director or block for long.
	OnCue func(Cue)
	// Logger receives publish failures; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats is a snapshot of a director's counters.
type Stats struct {
	Voices        VoiceStats
	Cues          uint64
	PublishErrors uint64
	Players       int
}

// BusGain is one bus's effective gain in a [Frame].
type BusGain struct {
	Bus  string
	Gain float64
}

// VoiceGain is one playing voice's final gain (volume × bus gain).
type VoiceGain struct {
	ID   string
	Gain float64
}

// Frame is the result of [Director.Update]: the mix at one instant.
// Reuse one Frame across updates: Update refills its slices, so a steady
// state allocates nothing. The zero Frame is ready to use.
type Frame struct {
	At     time.Time
	Buses  []BusGain
	Voices []VoiceGain
	Layers []Layer
}

// Director is a world's server-side audio director: it owns the mixer,
// the ducking rules, the voice pool and the ambient director, and emits
// every decision as a [Cue]. It does not play sound; clients render the
// cues.
//
// A Director is safe for concurrent use. It starts no goroutines; the
// adapters (FollowClock, FollowDialogue, FollowSettings) run on the
// clock's or the bus's goroutines and end when their stop func or
// subscription is closed. Create one with [New]; Close it when done.
type Director struct {
	opts   Options
	now    func() time.Time
	logger *slog.Logger

	mu         sync.Mutex
	closed     bool
	mixer      *Mixer
	ducker     *Ducker
	voices     *Voices
	amb        *ambient
	triggers   [][]int             // per bus: rules it triggers
	audible    map[string]int      // voice ID → bus of voices whose play cue is in effect
	openLines  map[string]struct{} // voice lines of unknown duration
	players    map[string]PlayerVolumes
	seq        uint64
	cues       []Cue // ring
	cueHead    int
	pending    []Cue // cues of the current call
	outbox     []Cue // cues waiting for the bus, in Seq order
	spare      []Cue // the outbox's other buffer, reused
	publishing bool  // a call is publishing the outbox (outside the lock)
	evbuf      []VoiceEvent
	lastTick   time.Time
	stats      Stats
}

// New validates opts and returns a director. Errors: ErrUnknownBus,
// ErrBusCycle, ErrDuplicate, ErrNeverDucked and *ValueError, as for
// NewMixer, NewDucker and NewVoices.
func New(opts Options) (*Director, error) {
	opts.World = cmp.Or(opts.World, "default")
	opts.VoiceLineGroup = cmp.Or(opts.VoiceLineGroup, "dialogue")
	if opts.MaxLineDuration < 0 || opts.PublishTimeout < 0 || opts.MaxCues < 0 || opts.MaxPlayers < 0 {
		return nil, invalid("Options durations and bounds", "negative")
	}
	opts.MaxLineDuration = cmp.Or(opts.MaxLineDuration, 60*time.Second)
	opts.PublishTimeout = cmp.Or(opts.PublishTimeout, 5*time.Second)
	opts.MaxCues = cmp.Or(opts.MaxCues, 1024)
	opts.MaxPlayers = cmp.Or(opts.MaxPlayers, 65536)
	if opts.NeverDuck == nil {
		opts.NeverDuck = []string{BusVoice}
	}
	if opts.DuckRules == nil {
		opts.DuckRules = DefaultDuckRules()
	}
	rules := slices.Clone(opts.DuckRules)
	if !opts.DisableWeatherDucking {
		rules = append(rules,
			DuckRule{Name: RuleWeatherAmbient, Targets: []DuckTarget{{Bus: BusAmbient, DB: DB(1 - WeatherAmbientDuck)}}, Attack: WeatherDuckTime, Release: WeatherDuckTime},
			DuckRule{Name: RuleWeatherMusic, Targets: []DuckTarget{{Bus: BusMusic, DB: DB(1 - WeatherMusicDuck)}}, Attack: WeatherDuckTime, Release: WeatherDuckTime},
		)
	}
	m, err := NewMixer(opts.Buses)
	if err != nil {
		return nil, err
	}
	dk, err := NewDucker(m, rules, opts.DuckFloorDB, opts.NeverDuck)
	if err != nil {
		return nil, err
	}
	vp, err := NewVoices(opts.Voices)
	if err != nil {
		return nil, err
	}
	amb, err := newAmbient(opts.Ambient)
	if err != nil {
		return nil, err
	}
	d := &Director{
		opts: opts, now: opts.Now, logger: cmp.Or(opts.Logger, slog.Default()),
		mixer: m, ducker: dk, voices: vp, amb: amb,
		triggers:  make([][]int, len(m.names)),
		audible:   map[string]int{},
		openLines: map[string]struct{}{},
		players:   map[string]PlayerVolumes{},
		cues:      make([]Cue, 0, min(opts.MaxCues, 64)),
		evbuf:     make([]VoiceEvent, 0, 16),
	}
	if opts.Now == nil {
		d.now = time.Now
	}
	for i, r := range dk.rules {
		if r.rule.Trigger != "" {
			b := m.index[r.rule.Trigger]
			d.triggers[b] = append(d.triggers[b], i)
		}
	}
	return d, nil
}

// Close stops the director: later calls return ErrClosed. It is
// idempotent; the second call returns ErrClosed too.
func (d *Director) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.closed = true
	return nil
}

// lock takes the lock and fails when closed.
func (d *Director) lock() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// unlockAndPublish hands the call's cues to OnCue (under the lock, in
// order) and to the bus, and releases the lock. The bus publishes happen
// outside the lock, so a slow subscriber or a Redis round trip never holds
// up Update, Snapshot or PlayerGain; one call at a time publishes (the
// others append to its outbox and return), which keeps the bus in Seq
// order.
func (d *Director) unlockAndPublish(ctx context.Context) {
	if len(d.pending) == 0 {
		d.mu.Unlock()
		return
	}
	if d.opts.OnCue != nil {
		for _, c := range d.pending {
			d.opts.OnCue(c)
		}
	}
	if d.opts.Events != nil {
		d.outbox = append(d.outbox, d.pending...)
	}
	clear(d.pending)
	d.pending = d.pending[:0]
	if d.publishing || len(d.outbox) == 0 {
		d.mu.Unlock()
		return
	}
	d.publishing = true
	for len(d.outbox) > 0 {
		batch := d.outbox
		d.outbox = d.spare[:0]
		d.mu.Unlock()
		failed := 0
		for _, c := range batch {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.PublishTimeout)
			err := eventbus.Publish(pctx, d.opts.Events, TopicCue, c, eventbus.WithKey(d.opts.World))
			cancel()
			if err != nil {
				failed++
				d.logger.Warn("audio: publishing a cue failed", "world", d.opts.World, "seq", c.Seq, "err", err)
			}
		}
		clear(batch)
		d.mu.Lock()
		d.stats.PublishErrors += uint64(failed)
		d.spare = batch[:0]
	}
	d.publishing = false
	d.mu.Unlock()
}

func (d *Director) emit(c Cue) {
	d.seq++
	c.Version, c.Seq, c.World = CueVersion, d.seq, d.opts.World
	if len(d.cues) < d.opts.MaxCues {
		d.cues = append(d.cues, c)
	} else {
		d.cues[d.cueHead] = c
		d.cueHead = (d.cueHead + 1) % len(d.cues)
	}
	d.pending = append(d.pending, c)
	d.stats.Cues++
}

// Cues returns the retained cues after seq, oldest first (at most
// Options.MaxCues). A client that finds the first returned Seq above
// seq+1 missed cues and should take a Snapshot.
func (d *Director) Cues(after uint64) []Cue {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Cue
	n := len(d.cues)
	for i := range n {
		c := d.cues[(d.cueHead+i)%n]
		if c.Seq > after {
			out = append(out, c)
		}
	}
	return out
}

func (d *Director) emitFades(fades []Crossfade, now time.Time) {
	for i := range fades {
		d.emit(Cue{Kind: CueCrossfade, At: now, Crossfade: &fades[i]})
	}
}

func (d *Director) emitDuck(rule int, now time.Time) {
	st := &d.ducker.rules[rule]
	d.emit(Cue{Kind: CueDuck, At: now, Duck: &DuckState{Rule: st.rule.Name, Targets: st.rule.Targets, Ramp: st.ramp}})
}

// SetPhase sets the time-of-day phase ("dawn", "day", "dusk", "night" or
// a custom calendar's names); the bed crossfades over TimeOfDayFade.
func (d *Director) SetPhase(ctx context.Context, phase string) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlockAndPublish(ctx)
	now := d.now()
	d.emitFades(d.amb.setPhase(phase, now), now)
	return nil
}

// SetZone moves the director's listeners to a zone: its bed crossfades
// over ZoneFade and its reverb preset over ReverbFade.
func (d *Director) SetZone(ctx context.Context, z Zone) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlockAndPublish(ctx)
	now := d.now()
	d.emitFades(d.amb.setZone(z, now), now)
	return nil
}

// SetWeather sets the weather and its intensity in [0, 1]: the weather
// layers crossfade over WeatherFade, and (unless disabled) the ambient
// bus ducks by intensity × 0.6 and music by 0.2 when the weather is not
// clear and intensity is above 0.3, over 2 s. Unknown weather gives
// ErrUnknownWeather; a bad intensity a *ValueError.
func (d *Director) SetWeather(ctx context.Context, w Weather, intensity float64) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlockAndPublish(ctx)
	now := d.now()
	fades, err := d.amb.setWeather(w, intensity, now)
	if err != nil {
		return err
	}
	d.emitFades(fades, now)
	if d.opts.DisableWeatherDucking {
		return nil
	}
	// Depth d gives Linear(DB(0.4)·d) = 1 − 0.6·intensity.
	ambDepth := 0.0
	if intensity > 0 {
		ambDepth = DB(1-WeatherAmbientDuck*intensity) / DB(1-WeatherAmbientDuck)
	}
	musDepth := 0.0
	if w != WeatherClear && intensity > WeatherMusicThreshold {
		musDepth = 1
	}
	for _, x := range []struct {
		rule  string
		depth float64
	}{{RuleWeatherAmbient, ambDepth}, {RuleWeatherMusic, musDepth}} {
		i := d.ducker.byName[x.rule]
		if d.ducker.rules[i].ramp.To != x.depth {
			d.ducker.rules[i].set(x.depth, now)
			d.emitDuck(i, now)
		}
	}
	return nil
}

// SetCombat starts or ends the combat bed on the music bus.
func (d *Director) SetCombat(ctx context.Context, on bool) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlockAndPublish(ctx)
	now := d.now()
	d.emitFades(d.amb.setCombat(on, now), now)
	return nil
}

// State returns what the ambient director follows now.
func (d *Director) State() AmbientState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.amb.state
}

// SetBusVolume sets a bus's volume (linear, [0, 1]); it reaches every
// playing sound below the bus (the original's never did).
func (d *Director) SetBusVolume(ctx context.Context, bus string, v float64) error {
	return d.setBus(ctx, bus, func() error { return d.mixer.SetVolume(bus, v) })
}

// SetBusMute mutes or unmutes a bus.
func (d *Director) SetBusMute(ctx context.Context, bus string, muted bool) error {
	return d.setBus(ctx, bus, func() error { return d.mixer.SetMute(bus, muted) })
}

func (d *Director) setBus(ctx context.Context, bus string, set func() error) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlockAndPublish(ctx)
	if err := set(); err != nil {
		return err
	}
	i := d.mixer.index[bus]
	bs := d.busState(i)
	d.emit(Cue{Kind: CueBusGain, At: d.now(), Bus: &bs})
	return nil
}

func (d *Director) busState(i int) BusState {
	m := d.mixer
	bs := BusState{Name: m.names[i], Volume: m.volume[i], Muted: m.muted[i]}
	if p := m.parent[i]; p >= 0 {
		bs.Parent = m.names[p]
	}
	return bs
}

// Duck holds a ducking rule at depth in [0, 1] (0 releases it), for
// ducks that no voice triggers (a cutscene, a menu).
func (d *Director) Duck(ctx context.Context, rule string, depth float64) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlockAndPublish(ctx)
	now := d.now()
	if _, err := d.ducker.Set(rule, depth, now); err != nil {
		return err
	}
	d.emitDuck(d.ducker.byName[rule], now)
	return nil
}

// Play starts a voice under its group's limit and returns the outcome.
// Voice.Bus must name a mixer bus (ErrUnknownBus). Voices on a bus that
// triggers ducking rules hold them while they play.
func (d *Director) Play(ctx context.Context, v Voice) (Outcome, error) {
	if err := d.lock(); err != nil {
		return 0, err
	}
	defer d.unlockAndPublish(ctx)
	return d.play(v, d.now())
}

func (d *Director) play(v Voice, now time.Time) (Outcome, error) {
	b, err := d.mixer.lookup(v.Bus)
	if err != nil {
		return 0, err
	}
	out, ev, err := d.voices.play(v, now, d.evbuf[:0], b)
	if err != nil {
		return 0, err
	}
	d.handle(ev, now)
	if out == Played {
		d.emit(Cue{Kind: CuePlay, At: now, Voice: &v})
		d.hold(v.ID, b, now)
	}
	return out, nil
}

// Stop ends a voice (a client's ack that it finished, or the game
// stopping it); ErrUnknownVoice if the director does not track it.
func (d *Director) Stop(ctx context.Context, id string) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlockAndPublish(ctx)
	now := d.now()
	ev, err := d.voices.Stop(id, now, d.evbuf[:0])
	if err != nil {
		return err
	}
	d.stopped(ev, now)
	return nil
}

// stopped handles the events of Voices.Stop: the first is the stopped
// voice itself, which gets a stop cue only if it was audible (a virtual
// voice never had a play cue).
func (d *Director) stopped(ev []VoiceEvent, now time.Time) {
	if len(ev) > 0 && ev[0].Kind == VoiceEnded {
		if _, ok := d.audible[ev[0].Voice.ID]; ok {
			d.emitStop(ev[0].Voice, ReasonStopped, now)
		}
		delete(d.openLines, ev[0].Voice.ID)
		ev[0].Kind = 0 // handled
	}
	d.handle(ev, now)
}

func (d *Director) emitStop(v Voice, reason string, now time.Time) {
	d.emit(Cue{Kind: CueStop, At: now, Voice: &v, Reason: reason})
	d.release(v.ID, now)
}

// handle turns voice events into cues and duck holds.
func (d *Director) handle(ev []VoiceEvent, now time.Time) {
	for i := range ev {
		e := &ev[i]
		switch e.Kind {
		case VoiceStolen:
			d.emitStop(e.Voice, ReasonStolen, now)
		case VoiceVirtualized:
			d.emitStop(e.Voice, ReasonVirtualized, now)
		case VoiceEnded:
			if _, ok := d.audible[e.Voice.ID]; ok {
				// At its end, which may be before this call noticed:
				// the release starts when the sound did end.
				d.emitStop(e.Voice, ReasonEnded, e.At)
			}
		case VoiceResumed:
			v := e.Voice
			d.emit(Cue{Kind: CuePlay, At: now, Voice: &v, Offset: e.Offset})
			d.hold(v.ID, d.mixer.index[v.Bus], now)
		}
	}
	clear(ev)
}

func (d *Director) hold(id string, bus int, now time.Time) {
	d.audible[id] = bus
	for _, r := range d.triggers[bus] {
		st := &d.ducker.rules[r]
		st.held++
		if st.held == 1 {
			st.set(1, now)
			d.emitDuck(r, now)
		}
	}
}

func (d *Director) release(id string, now time.Time) {
	delete(d.openLines, id)
	bus, ok := d.audible[id]
	if !ok {
		return
	}
	delete(d.audible, id)
	for _, r := range d.triggers[bus] {
		st := &d.ducker.rules[r]
		if st.held == 0 {
			continue
		}
		st.held--
		if st.held == 0 {
			st.set(0, now)
			d.emitDuck(r, now)
		}
	}
}

// VoiceLine is an NPC's spoken line, as the director tracks it: a voice on
// the voice bus in the VoiceLineGroup, on the NPC as emitter.
type VoiceLine struct {
	// ID identifies the line; "" means "line:" + Session + ":" + NPC.
	ID      string `json:"id"`
	NPC     string `json:"npc"`
	Player  string `json:"player,omitempty"`
	Session string `json:"session,omitempty"`
	// Clip is the clip ID (see ClipStore) or sound to play; "" when
	// clients synthesize or fetch the audio themselves.
	Clip string `json:"clip,omitempty"`
	// Duration is the clip's length; 0 means unknown: the line plays
	// until VoiceLineEnded (a client's ack) or MaxLineDuration.
	Duration   time.Duration `json:"duration,omitempty"`
	Priority   int           `json:"priority,omitempty"`
	Distance   float64       `json:"distance,omitempty"`
	NeverSteal bool          `json:"never_steal,omitempty"`
}

func (l VoiceLine) id() string {
	if l.ID != "" {
		return l.ID
	}
	return "line:" + l.Session + ":" + l.NPC
}

// VoiceLineStarted starts a voice line: it plays under the voice limits
// and, on the default rules, ducks music and ambience until it ends. The
// server learns that it ended from its Duration, from VoiceLineEnded (a
// client's ack), or after MaxLineDuration. A line with the ID of one still
// playing replaces it.
func (d *Director) VoiceLineStarted(ctx context.Context, l VoiceLine) (Outcome, error) {
	out, _, err := d.startLine(ctx, l)
	return out, err
}

// startLine is VoiceLineStarted, also returning the line's start time.
func (d *Director) startLine(ctx context.Context, l VoiceLine) (_ Outcome, now time.Time, _ error) {
	if err := d.lock(); err != nil {
		return 0, now, err
	}
	defer d.unlockAndPublish(ctx)
	now = d.now()
	id := l.id()
	if d.voices.State(id) != 0 {
		ev, _ := d.voices.Stop(id, now, d.evbuf[:0])
		d.stopped(ev, now)
	}
	dur := l.Duration
	delete(d.openLines, id)
	if dur == 0 {
		dur = d.opts.MaxLineDuration
		d.openLines[id] = struct{}{}
	}
	out, err := d.play(Voice{
		ID: id, Sound: l.Clip, Group: d.opts.VoiceLineGroup, Bus: BusVoice, Emitter: l.NPC,
		Priority: l.Priority, Distance: l.Distance, Volume: 1, NeverSteal: l.NeverSteal, Duration: dur,
	}, now)
	if out != Played && out != Queued {
		delete(d.openLines, id)
	}
	return out, now, err
}

// VoiceLineEnded ends a voice line (a client's ack); ErrUnknownVoice if
// it already ended.
func (d *Director) VoiceLineEnded(ctx context.Context, id string) error {
	return d.Stop(ctx, id)
}

// SetPlayerVolumes sets one player's own volumes (nil removes them).
// Values must be in [0, 1] and keys mixer buses.
func (d *Director) SetPlayerVolumes(player string, pv PlayerVolumes) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.mu.Unlock()
	return d.setPlayerVolumes(player, pv)
}

// setPlayerVolumes is SetPlayerVolumes with d.mu held.
func (d *Director) setPlayerVolumes(player string, pv PlayerVolumes) error {
	if pv == nil {
		delete(d.players, player)
		return nil
	}
	for bus, v := range pv {
		if _, err := d.mixer.lookup(bus); err != nil {
			return err
		}
		if err := CheckGain("player volume of "+bus, v); err != nil {
			return err
		}
	}
	if _, ok := d.players[player]; !ok && len(d.players) >= d.opts.MaxPlayers {
		return fmt.Errorf("%w: %d", ErrTooManyPlayers, len(d.players))
	}
	d.players[player] = maps.Clone(pv)
	return nil
}

// PlayerGain returns a bus's gain at now for one player: the world's mix
// (volumes, mutes, ducking) times the player's own volumes along the path.
func (d *Director) PlayerGain(player, bus string) (float64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ducker.apply(d.now())
	return d.mixer.PlayerGain(d.players[player], bus)
}

// Update advances the director to now: voices past their Duration end
// (freeing slots for virtual voices, which resume), storms strike thunder,
// and f is filled with the mix. With a reused Frame and no voice events,
// Update allocates nothing.
func (d *Director) Update(ctx context.Context, f *Frame) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.unlockAndPublish(ctx)
	now := d.now()
	ev := d.voices.Advance(now, d.evbuf[:0])
	d.handle(ev, now)
	d.evbuf = ev[:0] // keep a grown buffer
	if d.amb.state.Weather == WeatherStorm && !d.lastTick.IsZero() {
		for _, s := range Thunder(d.opts.World, d.lastTick, now, d.amb.opts.ThunderInterval, d.amb.opts.ThunderChance) {
			v := Voice{ID: fmt.Sprintf("thunder:%d", s.At.UnixNano()), Sound: "MS_Weather_Thunder", Bus: BusAmbient, Volume: s.Volume, Duration: 5 * time.Second}
			d.emit(Cue{Kind: CuePlay, At: s.At, Voice: &v})
		}
	}
	d.lastTick = now
	d.ducker.apply(now)
	d.mixer.update()
	m := d.mixer
	f.At = now
	f.Buses = f.Buses[:0]
	for i, n := range m.names {
		f.Buses = append(f.Buses, BusGain{Bus: n, Gain: m.gain[i]})
	}
	f.Voices = f.Voices[:0]
	for i := range d.voices.voices {
		v := &d.voices.voices[i]
		if v.state == Playing {
			f.Voices = append(f.Voices, VoiceGain{ID: v.ID, Gain: v.Volume * m.gain[v.tag]})
		}
	}
	f.Layers = f.Layers[:0]
	for _, c := range d.amb.fades {
		f.Layers = c.AppendLayers(f.Layers, now)
	}
	for i := range f.Layers {
		if b, ok := m.index[f.Layers[i].Bus]; ok {
			f.Layers[i].Gain *= m.gain[b]
		}
	}
	return nil
}

// Snapshot returns the state a late joiner needs ([Snapshot]).
func (d *Director) Snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Snapshot{
		Version: CueVersion, World: d.opts.World, Seq: d.seq, At: d.now(), State: d.amb.state,
		DuckFloorDB: DB(d.ducker.floor), Ambient: slices.Clone(d.amb.fades),
	}
	for i := range d.mixer.names {
		s.Buses = append(s.Buses, d.busState(i))
	}
	for _, r := range d.ducker.rules {
		s.Ducks = append(s.Ducks, DuckState{Rule: r.rule.Name, Targets: slices.Clone(r.rule.Targets), Ramp: r.ramp})
	}
	for _, v := range d.voices.voices {
		if v.state == Playing {
			s.Voices = append(s.Voices, PlayingVoice{Voice: v.Voice, Start: v.start})
		}
	}
	slices.SortFunc(s.Voices, func(a, b PlayingVoice) int { return strings.Compare(a.Voice.ID, b.Voice.ID) })
	return s
}

// Stats returns the director's counters.
func (d *Director) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Voices = d.voices.Stats()
	s.Players = len(d.players)
	return s
}

// FollowClock makes the ambience follow a worldtime clock's phases: it
// sets the current phase now and each new phase as the clock crosses it.
// The returned func stops following. Cues go out on the clock's goroutine,
// bounded by PublishTimeout.
func (d *Director) FollowClock(ctx context.Context, c *worldtime.Clock) (stop func(), err error) {
	if err := d.SetPhase(ctx, c.Now().Phase); err != nil {
		return nil, err
	}
	return c.Observe(func(ev worldtime.Event) {
		if ev.Kind != worldtime.EventPhase && ev.Kind != worldtime.EventSetBack {
			return
		}
		if err := d.SetPhase(context.Background(), ev.Time.Phase); err != nil && err != ErrClosed {
			d.logger.Warn("audio: following the clock", "err", err)
		}
	}), nil
}

// AppendClip schedules another clip on a playing voice line, right after
// what it already plays (or now, if that has ended or its duration was
// unknown), extends the line to the clip's end and emits a play cue at
// that time. It returns when the clip starts. ErrUnknownVoice if the line
// is not playing.
func (d *Director) AppendClip(ctx context.Context, lineID, clip string, dur time.Duration) (time.Time, error) {
	if dur <= 0 {
		return time.Time{}, invalid("clip duration", dur)
	}
	if err := d.lock(); err != nil {
		return time.Time{}, err
	}
	defer d.unlockAndPublish(ctx)
	now := d.now()
	i, ok := d.voices.byID[lineID]
	if !ok || d.voices.voices[i].state != Playing {
		return time.Time{}, fmt.Errorf("%w: line %q is not playing", ErrUnknownVoice, lineID)
	}
	v := &d.voices.voices[i]
	at := v.start.Add(v.Duration)
	if _, open := d.openLines[lineID]; open || at.Before(now) {
		at = now
		delete(d.openLines, lineID)
	}
	v.Duration = at.Add(dur).Sub(v.start)
	cv := v.Voice
	cv.Sound, cv.Duration = clip, dur
	d.emit(Cue{Kind: CuePlay, At: at, Voice: &cv})
	return at, nil
}
