package audio

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/worldtime"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeClock struct{ t time.Time }

func (f *fakeClock) Now() time.Time          { return f.t }
func (f *fakeClock) Advance(d time.Duration) { f.t = f.t.Add(d) }

func newDirector(t *testing.T, opts Options) (*Director, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: t0}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, clk
}

func frame(t *testing.T, d *Director) *Frame {
	t.Helper()
	var f Frame
	if err := d.Update(context.Background(), &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

func (f *Frame) bus(name string) float64 {
	for _, b := range f.Buses {
		if b.Bus == name {
			return b.Gain
		}
	}
	return math.NaN()
}

func (f *Frame) layer(sound string) float64 {
	for _, l := range f.Layers {
		if l.Sound == sound {
			return l.Gain
		}
	}
	return 0
}

func TestDuskToNightFollowsWorldClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		// 19:00 game time; 60 real seconds per game hour: night at 60 s.
		clock, err := worldtime.New(ctx, worldtime.Options{Start: worldtime.At(1, 19, 0)})
		if err != nil {
			t.Fatal(err)
		}
		defer clock.Close()
		d, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		stop, err := d.FollowClock(ctx, clock)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		start := time.Now()
		at := func(off time.Duration) *Frame {
			time.Sleep(time.Until(start.Add(off)))
			synctest.Wait()
			return frame(t, d)
		}
		if f := at(30 * time.Second); !near(f.layer("MS_DuskAmbient"), 0.8) {
			t.Fatalf("dusk bed at 30 s = %v, want 0.8 (ambient bus)", f.layer("MS_DuskAmbient"))
		}
		f := at(75 * time.Second) // half-way through the 30 s crossfade from 60 s
		half := 0.8 * math.Sqrt2 / 2
		if !near(f.layer("MS_DuskAmbient"), half) || !near(f.layer("MS_NightAmbient"), half) {
			t.Errorf("mid crossfade: dusk %v night %v, want %v each (equal power)", f.layer("MS_DuskAmbient"), f.layer("MS_NightAmbient"), half)
		}
		f = at(90 * time.Second)
		if f.layer("MS_DuskAmbient") != 0 || !near(f.layer("MS_NightAmbient"), 0.8) {
			t.Errorf("after the crossfade: %+v", f.Layers)
		}
		if got := d.State().Phase; got != "night" {
			t.Errorf("phase = %q", got)
		}
	})
}

func TestQuestLineDucksAndRecovers(t *testing.T) {
	d, clk := newDirector(t, Options{Voices: VoicesOptions{Limits: []Limit{{Group: "dialogue", Max: 1, Resolution: StopLowestPriority}}}})
	ctx := context.Background()
	d.SetPhase(ctx, "day")
	clk.Advance(time.Minute)
	f := frame(t, d)
	if f.bus(BusMusic) != 0.7 || f.bus(BusAmbient) != 0.8 {
		t.Fatalf("before the line: music %v ambient %v", f.bus(BusMusic), f.bus(BusAmbient))
	}
	out, err := d.VoiceLineStarted(ctx, VoiceLine{ID: "quest-1", NPC: "mara", Clip: "clip-abc", Duration: 3 * time.Second, NeverSteal: true})
	if err != nil || out != Played {
		t.Fatalf("VoiceLineStarted = %v, %v", out, err)
	}
	// A bark cannot steal the quest line's slot.
	if out, _ := d.VoiceLineStarted(ctx, VoiceLine{ID: "bark", NPC: "guard", Priority: 100}); out != Rejected {
		t.Errorf("bark over the quest line: %v, want rejected", out)
	}
	clk.Advance(time.Second)
	f = frame(t, d)
	if !near(f.bus(BusMusic), 0.7*Linear(-12)) || !near(f.bus(BusAmbient), 0.8*Linear(-8)) {
		t.Errorf("during the line: music %v dB, ambient %v dB", DB(f.bus(BusMusic)), DB(f.bus(BusAmbient)))
	}
	if f.bus(BusVoice) != 1 {
		t.Errorf("voice bus = %v; voice is never ducked", f.bus(BusVoice))
	}
	if len(f.Voices) != 1 || f.Voices[0].ID != "quest-1" || f.Voices[0].Gain != 1 {
		t.Errorf("voices = %+v", f.Voices)
	}
	clk.Advance(2 * time.Second) // the clip's known duration ends the line
	f = frame(t, d)
	if len(f.Voices) != 0 {
		t.Errorf("line still playing after its duration: %+v", f.Voices)
	}
	clk.Advance(500 * time.Millisecond)
	f = frame(t, d)
	if !near(f.bus(BusMusic), 0.7*Linear(-6)) {
		t.Errorf("half-way through the release: music %v dB", DB(f.bus(BusMusic)))
	}
	clk.Advance(time.Second)
	f = frame(t, d)
	if f.bus(BusMusic) != 0.7 || f.bus(BusAmbient) != 0.8 {
		t.Errorf("recovered: music %v ambient %v", f.bus(BusMusic), f.bus(BusAmbient))
	}
	var kinds []string
	for _, c := range d.Cues(0) {
		kinds = append(kinds, string(c.Kind)+":"+c.Reason)
	}
	want := []string{"crossfade:", "play:", "duck:", "stop:ended", "duck:"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("cues (-want +got):\n%s", diff)
	}
}

func TestLateJoinerHearsTheSameMix(t *testing.T) {
	d, clk := newDirector(t, Options{})
	ctx := context.Background()
	early := d.Snapshot() // a client present from the start follows the cues
	d.SetPhase(ctx, "day")
	d.SetZone(ctx, Zone{Name: "Docks", Type: SemiExterior})
	clk.Advance(40 * time.Second)
	d.SetPhase(ctx, "dusk")
	d.SetWeather(ctx, WeatherRain, 0.8)
	d.Play(ctx, Voice{ID: "gull", Sound: "gull", Bus: BusSFX, Volume: 0.5, Duration: time.Minute})
	clk.Advance(time.Second)
	d.VoiceLineStarted(ctx, VoiceLine{NPC: "mara", Session: "s1", Duration: 10 * time.Second})
	clk.Advance(11 * time.Second) // mid dusk crossfade; the line has ended, release under way
	f := frame(t, d)
	now := clk.Now()

	// The late joiner gets a snapshot (over JSON, as a client would).
	b, err := json.Marshal(d.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var late Snapshot
	if err := json.Unmarshal(b, &late); err != nil {
		t.Fatal(err)
	}
	for _, c := range d.Cues(early.Seq) {
		if err := early.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	want := Mix{At: now, Buses: map[string]float64{}, Voices: map[string]float64{}, Layers: f.Layers}
	for _, bg := range f.Buses {
		want.Buses[bg.Bus] = bg.Gain
	}
	for _, v := range f.Voices {
		want.Voices[v.ID] = v.Gain
	}
	opt := cmpopts.EquateApprox(0, 1e-12)
	for name, s := range map[string]*Snapshot{"late joiner": &late, "early client": &early} {
		got, err := s.Mix(now)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, opt, cmpopts.EquateApproxTime(0)); diff != "" {
			t.Errorf("%s hears a different mix (-director +client):\n%s", name, diff)
		}
	}
	if len(f.Layers) < 4 {
		t.Errorf("expected day, dusk, zone, weather and reverb layers mid-crossfade, got %+v", f.Layers)
	}
	// A gap is detected.
	if err := early.Apply(Cue{Seq: early.Seq + 2}); !errors.Is(err, ErrCueGap) {
		t.Errorf("gap: %v", err)
	}
}

func TestWeatherLayersAndDucking(t *testing.T) {
	d, clk := newDirector(t, Options{})
	ctx := context.Background()
	if err := d.SetWeather(ctx, WeatherRain, 0.8); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	f := frame(t, d)
	amb := 0.8 * (1 - 0.6*0.8)
	if !near(f.bus(BusAmbient), amb) || !near(f.bus(BusMusic), 0.7*0.8) {
		t.Errorf("ambient %v (want %v), music %v (want %v)", f.bus(BusAmbient), amb, f.bus(BusMusic), 0.7*0.8)
	}
	if !near(f.layer("MS_Weather_Rain"), 0.8*amb) || !near(f.layer("MS_Weather_Wind_Moderate"), 0.7*0.8*amb) {
		t.Errorf("layers = %+v", f.Layers)
	}
	// Light rain: no second layer, no music duck.
	d.SetWeather(ctx, WeatherRain, 0.3)
	clk.Advance(10 * time.Second)
	f = frame(t, d)
	if f.layer("MS_Weather_Wind_Moderate") != 0 || f.bus(BusMusic) != 0.7 {
		t.Errorf("light rain: %+v, music %v", f.Layers, f.bus(BusMusic))
	}
	d.SetWeather(ctx, WeatherClear, 0)
	clk.Advance(10 * time.Second)
	f = frame(t, d)
	if len(f.Layers) != 0 || f.bus(BusAmbient) != 0.8 {
		t.Errorf("clear: %+v, ambient %v", f.Layers, f.bus(BusAmbient))
	}
	if err := d.SetWeather(ctx, "acid_rain", 1); !errors.Is(err, ErrUnknownWeather) {
		t.Errorf("unknown weather: %v", err)
	}
	if err := d.SetWeather(ctx, WeatherRain, math.NaN()); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("NaN intensity: %v", err)
	}
	if len(DefaultWeatherLayers()) != 14 {
		t.Error("the weather set has 14 states")
	}
}

func TestThunderIsSeededAndOnlyInStorms(t *testing.T) {
	a := Thunder("w1", t0, t0.Add(10*time.Minute), 20*time.Second, 0.5)
	b := Thunder("w1", t0, t0.Add(10*time.Minute), 20*time.Second, 0.5)
	if len(a) == 0 || !cmp.Equal(a, b) {
		t.Fatalf("thunder not deterministic or empty: %v vs %v", a, b)
	}
	if cmp.Equal(a, Thunder("w2", t0, t0.Add(10*time.Minute), 20*time.Second, 0.5)) {
		t.Error("two worlds got the same thunder")
	}
	for _, s := range a {
		if s.Volume < 0.85*0.7 || s.Volume > 0.85 || s.At.Before(t0) || !s.At.Before(t0.Add(10*time.Minute)) {
			t.Errorf("strike %+v out of range", s)
		}
	}
	d, clk := newDirector(t, Options{World: "w1"})
	frame(t, d)
	clk.Advance(10 * time.Minute)
	frame(t, d)
	if n := len(d.Cues(0)); n != 0 {
		t.Errorf("clear weather: %d cues", n)
	}
	d.SetWeather(context.Background(), WeatherStorm, 1)
	seq := d.Snapshot().Seq
	clk.Advance(10 * time.Minute)
	frame(t, d)
	want := Thunder("w1", t0.Add(10*time.Minute), t0.Add(20*time.Minute), 20*time.Second, 0.5)
	var got []Strike
	for _, c := range d.Cues(seq) {
		got = append(got, Strike{At: c.At, Volume: c.Voice.Volume})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("storm thunder cues (-want +got):\n%s", diff)
	}
}

func TestOcclusion(t *testing.T) {
	open, _ := Occlude(0)
	full, _ := Occlude(1)
	if open.Gain != 1 || open.CutoffHz != 20000 || !near(DB(full.Gain), -15) || !near(full.CutoffHz, 800) {
		t.Errorf("open %+v full %+v", open, full)
	}
	prev := open
	for i := 1; i <= 100; i++ {
		o, _ := Occlude(float64(i) / 100)
		if !(o.Gain < prev.Gain && o.CutoffHz < prev.CutoffHz) {
			t.Fatalf("occlusion not monotonic at %d%%", i)
		}
		prev = o
	}
	if _, err := Occlude(1.5); !errors.Is(err, ErrInvalidValue) {
		t.Error(err)
	}
	if Obstruction(6000, false) != 1 || Obstruction(100, true) != 0.15 || Obstruction(100, false) != 0 {
		t.Error("the original's obstruction rule")
	}
}

func TestZoneReverbAndCombat(t *testing.T) {
	d, clk := newDirector(t, Options{})
	ctx := context.Background()
	d.SetZone(ctx, Zone{Name: "Cellar", Type: Interior})
	clk.Advance(1500 * time.Millisecond)
	f := frame(t, d)
	_, in := CurveEqualPower.Fade(0.5)
	if !near(f.layer("Room"), in) {
		t.Errorf("reverb half-way through its 3 s fade = %v, want %v", f.layer("Room"), in)
	}
	_, in = CurveEqualPower.Fade(0.3)
	if !near(f.layer("MS_Zone_Cellar"), 0.8*in) {
		t.Errorf("zone bed at 1.5 s of 5 s = %v", f.layer("MS_Zone_Cellar"))
	}
	d.SetCombat(ctx, true)
	clk.Advance(2 * time.Second)
	if f = frame(t, d); !near(f.layer("MS_Combat"), 0.7) {
		t.Errorf("combat bed = %v, want 0.7 (music bus)", f.layer("MS_Combat"))
	}
}

func TestPlayerVolumes(t *testing.T) {
	d, _ := newDirector(t, Options{MaxPlayers: 1})
	if err := d.SetPlayerVolumes("p1", PlayerVolumes{"master": 0.5, "music": 0.5}); err != nil {
		t.Fatal(err)
	}
	if g, _ := d.PlayerGain("p1", BusMusic); !near(g, 0.7*0.25) {
		t.Errorf("player music = %v", g)
	}
	if g, _ := d.PlayerGain("p2", BusMusic); g != 0.7 {
		t.Errorf("player without settings = %v", g)
	}
	if err := d.SetPlayerVolumes("p2", PlayerVolumes{"music": 1}); !errors.Is(err, ErrTooManyPlayers) {
		t.Errorf("over MaxPlayers: %v", err)
	}
	if err := d.SetPlayerVolumes("p1", PlayerVolumes{"radio": 1}); !errors.Is(err, ErrUnknownBus) {
		t.Errorf("unknown bus: %v", err)
	}
	if err := d.SetPlayerVolumes("p1", PlayerVolumes{"music": 2}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("volume 2: %v", err)
	}
}

func TestDirectorBadInputAndClose(t *testing.T) {
	if _, err := New(Options{Buses: []BusConfig{{Name: "m", Volume: 1}}}); !errors.Is(err, ErrUnknownBus) {
		t.Errorf("weather ducking without ambient and music buses: %v", err)
	}
	if _, err := New(Options{MaxLineDuration: -time.Second}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("negative duration: %v", err)
	}
	if _, err := New(Options{DuckRules: []DuckRule{{Name: "x", Targets: []DuckTarget{{Bus: BusVoice, DB: -3}}}}}); !errors.Is(err, ErrNeverDucked) {
		t.Errorf("ducking voice: %v", err)
	}
	d, _ := newDirector(t, Options{})
	ctx := context.Background()
	if _, err := d.Play(ctx, Voice{ID: "x", Bus: "radio", Volume: 1}); !errors.Is(err, ErrUnknownBus) {
		t.Errorf("unknown bus: %v", err)
	}
	if err := d.SetBusVolume(ctx, BusMusic, math.NaN()); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("NaN volume: %v", err)
	}
	if err := d.Duck(ctx, "nope", 1); !errors.Is(err, ErrUnknownRule) {
		t.Errorf("unknown rule: %v", err)
	}
	if err := d.Stop(ctx, "nope"); !errors.Is(err, ErrUnknownVoice) {
		t.Errorf("unknown voice: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	if err := d.SetPhase(ctx, "day"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestBusVolumeReachesPlayingSounds(t *testing.T) {
	d, _ := newDirector(t, Options{})
	ctx := context.Background()
	d.Play(ctx, Voice{ID: "loop", Sound: "waterfall", Bus: BusAmbient, Volume: 0.5})
	d.SetBusVolume(ctx, BusMaster, 0.5)
	f := frame(t, d)
	if len(f.Voices) != 1 || !near(f.Voices[0].Gain, 0.5*0.8*0.5) {
		t.Errorf("voices = %+v", f.Voices)
	}
	d.SetBusMute(ctx, BusAmbient, true)
	if f = frame(t, d); f.Voices[0].Gain != 0 {
		t.Errorf("muted: %+v", f.Voices)
	}
}

func TestCuesOnEventBus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		bus, err := eventbus.New(eventbus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close()
		got := make(chan Cue, 16)
		sub, err := bus.Subscribe(ctx, TopicCue, eventbus.Handle(func(_ context.Context, ev eventbus.Event, c Cue) error {
			if ev.Key != "w1" {
				t.Errorf("key = %q", ev.Key)
			}
			got <- c
			return nil
		}), eventbus.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		d, err := New(Options{World: "w1", Events: bus})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		d.SetPhase(ctx, "night")
		d.SetBusVolume(ctx, BusMusic, 0.5)
		synctest.Wait()
		close(got)
		var cues []Cue
		for c := range got {
			cues = append(cues, c)
		}
		if len(cues) != 2 || cues[0].Seq != 1 || cues[0].Crossfade.To != "MS_NightAmbient" || cues[1].Bus.Volume != 0.5 || cues[1].Version != CueVersion {
			t.Errorf("cues = %+v", cues)
		}
	})
}

func TestFollowDialogueAndSettings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		bus, err := eventbus.New(eventbus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close()
		d, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		sub, err := d.FollowDialogue(ctx, bus, "harbor", eventbus.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ssub, err := d.FollowSettings(ctx, bus, eventbus.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ssub.Close()

		// Published as dialogue does: raw JSON with dialogue's field names.
		for _, e := range []struct{ topic, payload string }{
			{TopicDialogueStarted, `{"version":1,"npc_id":"mara","player_id":"p1","session_id":"s1","region":"harbor","tier":"tier2","at":"2026-11-30T08:00:00Z"}`},
			{TopicDialogueStarted, `{"version":1,"npc_id":"olaf","player_id":"p2","session_id":"s2","region":"mountains","tier":"tier2","at":"2026-11-30T08:00:00Z"}`},
			{TopicSettingsChanged, `{"version":1,"player_id":"p1","keys":[{"key":"audio.music","old":0.8,"new":0.5},{"key":"audio.master","new":0.8},{"key":"video.fov","new":90},{"key":"audio.theme","new":"dark"}]}`},
		} {
			if err := bus.Publish(ctx, e.topic, eventbus.Event{Payload: []byte(e.payload)}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if s := d.voices.State("line:s1:mara"); s != Playing {
			t.Errorf("mara's line: %v, want playing", s)
		}
		if d.voices.Len() != 1 {
			t.Errorf("%d voices; the other region's line must be ignored", d.voices.Len())
		}
		time.Sleep(time.Second)
		if g, _ := d.PlayerGain("p1", BusMusic); !near(g, 0.7*Linear(-12)*0.5*0.8) {
			t.Errorf("p1 music during the line = %v", g)
		}
		if err := d.VoiceLineEnded(ctx, "line:s1:mara"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if g, _ := d.PlayerGain("p1", BusMusic); !near(g, 0.7*0.5*0.8) {
			t.Errorf("p1 music after the line = %v", g)
		}
	})
}

func TestChangesAtOneInstantFadeOutWhatWasAudible(t *testing.T) {
	// A skip delivers dusk, night and dawn at one instant: the day bed that
	// was playing fades out; the intermediate beds are never heard.
	d, clk := newDirector(t, Options{})
	ctx := context.Background()
	d.SetPhase(ctx, "day")
	clk.Advance(time.Minute)
	for _, p := range []string{"dusk", "night", "dawn"} {
		d.SetPhase(ctx, p)
	}
	clk.Advance(15 * time.Second)
	f := frame(t, d)
	half := 0.8 * math.Sqrt2 / 2
	if !near(f.layer("MS_DayAmbient"), half) || !near(f.layer("MS_DawnAmbient"), half) || len(f.Layers) != 2 {
		t.Errorf("layers %+v; want day fading out and dawn in, %v each", f.Layers, half)
	}
	// Back within a crossfade: the sound returned to keeps playing from
	// where it was (a tie at the midpoint included) and rises again.
	d.SetPhase(ctx, "day")
	f = frame(t, d)
	if !near(f.layer("MS_DayAmbient"), half) || len(f.Layers) != 1 {
		t.Errorf("after returning to day: %+v", f.Layers)
	}
	clk.Advance(6 * time.Second) // day 0.2 → 1 linearly (same sound) over 30 s
	if f = frame(t, d); !near(f.layer("MS_DayAmbient"), half+(0.8-half)*0.2) {
		t.Errorf("day rising: %+v", f.Layers)
	}
	clk.Advance(24 * time.Second)
	if f = frame(t, d); !near(f.layer("MS_DayAmbient"), 0.8) {
		t.Errorf("day back to full: %+v", f.Layers)
	}
}
