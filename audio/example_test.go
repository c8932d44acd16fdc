package audio_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/audio/cliphttp"
)

// fakeNow is a settable clock for examples.
type fakeNow struct{ t time.Time }

func (f *fakeNow) Now() time.Time          { return f.t }
func (f *fakeNow) Advance(d time.Duration) { f.t = f.t.Add(d) }

func layers(f *audio.Frame) string {
	var s []string
	for _, l := range f.Layers {
		s = append(s, fmt.Sprintf("%s %.2f", l.Sound, l.Gain))
	}
	return strings.Join(s, ", ")
}

// Time-of-day ambience: dusk falls and the day bed crossfades into the
// dusk bed over the original's 30 s, equal-power. (A server calls
// Director.FollowClock with its worldtime clock instead of SetPhase.)
func Example() {
	ctx := context.Background()
	clock := &fakeNow{t: time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)}
	d, _ := audio.New(audio.Options{World: "harbor", Now: clock.Now})
	defer d.Close()

	d.SetPhase(ctx, "day")
	clock.Advance(time.Minute)
	d.SetPhase(ctx, "dusk")
	dusk := clock.Now()
	var f audio.Frame
	for range 3 {
		d.Update(ctx, &f)
		fmt.Printf("+%2.0fs: %s\n", f.At.Sub(dusk).Seconds(), layers(&f))
		clock.Advance(15 * time.Second)
	}
	// Output:
	// + 0s: MS_DayAmbient 0.80
	// +15s: MS_DayAmbient 0.57, MS_DuskAmbient 0.57
	// +30s: MS_DuskAmbient 0.80
}

// A quest line ducks music and ambience while it plays, and they recover
// after it: voice is never ducked.
func ExampleDirector_VoiceLineStarted() {
	ctx := context.Background()
	clock := &fakeNow{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	d, _ := audio.New(audio.Options{Now: clock.Now})
	defer d.Close()

	show := func(when string) {
		var f audio.Frame
		d.Update(ctx, &f)
		fmt.Printf("%-7s music %6.1f dB  ambient %6.1f dB  voice %4.1f dB  voices %d\n", when,
			audio.DB(f.Buses[1].Gain), audio.DB(f.Buses[4].Gain), audio.DB(f.Buses[2].Gain), len(f.Voices))
	}
	show("before")
	d.VoiceLineStarted(ctx, audio.VoiceLine{NPC: "mara", Session: "s1", Clip: "a1b2.wav", Duration: 4 * time.Second, NeverSteal: true})
	clock.Advance(time.Second)
	show("during")
	clock.Advance(5 * time.Second) // the clip's known duration ends it; 1 s release
	show("after")
	// Output:
	// before  music   -3.1 dB  ambient   -1.9 dB  voice  0.0 dB  voices 0
	// during  music  -15.1 dB  ambient   -9.9 dB  voice  0.0 dB  voices 1
	// after   music   -3.1 dB  ambient   -1.9 dB  voice  0.0 dB  voices 0
}

// A voice limit: at most two barks at once, the oldest stolen; a
// narrative-critical line is never stolen.
func ExampleVoices() {
	pool, _ := audio.NewVoices(audio.VoicesOptions{Limits: []audio.Limit{
		{Group: "barks", Max: 2, Resolution: audio.StopOldest},
	}})
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for i, v := range []audio.Voice{
		{ID: "objective", Group: "barks", Volume: 1, NeverSteal: true},
		{ID: "bark-1", Group: "barks", Volume: 1},
		{ID: "bark-2", Group: "barks", Volume: 1},
	} {
		out, events, _ := pool.Play(v, t0.Add(time.Duration(i)*time.Second), nil)
		fmt.Print(v.ID, ": ", out)
		for _, e := range events {
			fmt.Print(" (stole ", e.Voice.ID, ")")
		}
		fmt.Println()
	}
	fmt.Println("playing:", pool.Playing("barks"))
	// Output:
	// objective: played
	// bark-1: played
	// bark-2: played (stole bark-1)
	// playing: 2
}

// toneSynth stands in for espeak-ng or an OpenAI-compatible server in
// this example: 200 ms of tone per word.
type toneSynth struct{}

func (toneSynth) Synthesize(_ context.Context, r audio.SpeechRequest) (audio.Clip, error) {
	n := len(strings.Fields(r.Text)) * 4410
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(4000 * math.Sin(float64(i)/8))
	}
	return audio.Clip{ContentType: "audio/wav", Data: audio.EncodeWAV(22050, 1, s), Duration: time.Duration(n) * time.Second / 22050}, nil
}

// An NPC reply is synthesized sentence by sentence as it streams in: the
// first clip is servable (and scheduled on the NPC) before the reply has
// ended; the next plays right after it. Clips are served over HTTP with
// range requests. A server uses espeak.New or openaitts.New as the
// Synthesizer.
func ExampleSpeaker() {
	ctx := context.Background()
	clock := &fakeNow{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	d, _ := audio.New(audio.Options{Now: clock.Now})
	defer d.Close()
	store, _ := audio.NewMemoryClipStore(16 << 20)
	srv := httptest.NewServer(http.StripPrefix("/clips/", cliphttp.Handler{Store: store}))
	defer srv.Close()

	sp, _ := audio.NewSpeaker(audio.SpeakerOptions{
		Synthesizer: toneSynth{}, Store: store, Director: d,
		Line: audio.VoiceLine{NPC: "mara", Session: "s1"},
	})
	for _, chunk := range []string{"The boat leaves ", "at dawn. Be there", " early."} {
		cues, _ := sp.Write(ctx, chunk) // as the reply's text streams in
		for _, c := range cues {
			fmt.Printf("%q on %s at +%v for %v\n", c.Text, c.Emitter, c.At.Sub(clock.t), c.Duration)
		}
	}
	cues, _ := sp.Flush(ctx) // the reply ended
	for _, c := range cues {
		fmt.Printf("%q on %s at +%v for %v\n", c.Text, c.Emitter, c.At.Sub(clock.t), c.Duration)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/clips/"+sp.Cues()[0].Clip, nil)
	req.Header.Set("Range", "bytes=0-43") // the WAV header
	resp, _ := http.DefaultClient.Do(req)
	hdr, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"), string(hdr[8:12]))
	// Output:
	// "The boat leaves at dawn." on mara at +0s for 1s
	// "Be there early." on mara at +1s for 600ms
	// 206 Partial Content audio/wav WAVE
}

// One intent stream, three middlewares.
func ExampleAdapter() {
	c := audio.Cue{Kind: audio.CueBusGain, Bus: &audio.BusState{Name: "music", Volume: 0.5}}
	for _, a := range []audio.Adapter{audio.MetaSoundsAdapter(), audio.WwiseAdapter(), audio.FMODAdapter()} {
		cmd := a.Translate(c)[0]
		fmt.Printf("%-10s %s %s = %v\n", a.Name, cmd.Kind, cmd.Target, cmd.Value)
	}
	// Output:
	// metasounds set_control_bus Bus_music = 0.5
	// wwise      set_rtpc Volume_music = 50
	// fmod       set_vca_volume vca:/music = 0.5
}

// Tapers are versioned: version 1 is the original's linear volumes, so a
// saved 0.7 still sounds the same; version 2 is dB-linear.
func ExampleTaper() {
	for _, t := range []audio.Taper{audio.TaperLinear, audio.TaperDB60} {
		g, _ := t.Gain(0.5)
		fmt.Printf("taper %d: 50%% → %.1f dB\n", t, audio.DB(g))
	}
	// Output:
	// taper 1: 50% → -6.0 dB
	// taper 2: 50% → -30.0 dB
}
