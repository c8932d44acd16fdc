package audio

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSplitSentences(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		rest string
	}{
		{"Hello there. The boat", []string{"Hello there."}, " The boat"},
		{"Wait! Really? Yes… ok", []string{"Wait!", "Really?", "Yes…"}, " ok"},
		{`He said "Go." Then left. `, []string{`He said "Go."`, "Then left."}, " "},
		{"It costs 3.5 coins", nil, "It costs 3.5 coins"},
		{"The end.", nil, "The end."}, // may go on: "The end.5"? only space ends it
		{"", nil, ""},
		{"...   Hm. ", []string{"...", "Hm."}, " "},
	}
	for _, tt := range tests {
		got, rest := SplitSentences(tt.in)
		if !cmp.Equal(got, tt.want) || rest != tt.rest {
			t.Errorf("SplitSentences(%q) = %q, %q; want %q, %q", tt.in, got, rest, tt.want, tt.rest)
		}
	}
}

func TestMemoryClipStoreBoundedInBytes(t *testing.T) {
	s, err := NewMemoryClipStore(100)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, _ := s.Put(ctx, Clip{ContentType: "audio/wav", Data: make([]byte, 40)})
	b, _ := s.Put(ctx, Clip{ContentType: "audio/wav", Data: append(make([]byte, 39), 1)})
	if a.ID == b.ID || !strings.HasSuffix(a.ID, ".wav") || len(a.ID) != 36 {
		t.Fatalf("IDs %q %q", a.ID, b.ID)
	}
	again, _ := s.Put(ctx, Clip{ContentType: "audio/wav", Data: make([]byte, 40)})
	if again.ID != a.ID || s.Stats().Bytes != 80 {
		t.Errorf("same content stored twice: %+v", s.Stats())
	}
	s.Get(ctx, a.ID) // a is now the most recent: b goes first
	s.Put(ctx, Clip{Data: append(make([]byte, 39), 2)})
	if _, err := s.Get(ctx, b.ID); !errors.Is(err, ErrClipNotFound) {
		t.Errorf("least recently used clip not evicted: %v", err)
	}
	if _, err := s.Get(ctx, a.ID); err != nil {
		t.Errorf("recently used clip evicted: %v", err)
	}
	if st := s.Stats(); st.Bytes > 100 || st.Evictions != 1 {
		t.Errorf("stats = %+v", st)
	}
	if _, err := s.Put(ctx, Clip{Data: make([]byte, 101)}); !errors.Is(err, ErrClipTooLarge) {
		t.Errorf("oversize clip: %v", err)
	}
	if _, err := NewMemoryClipStore(-1); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("negative bound: %v", err)
	}
}

func sine(seconds float64) []int16 {
	n := int(22050 * seconds)
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/22050))
	}
	return s
}

func TestWAVRoundTrip(t *testing.T) {
	b := EncodeWAV(22050, 1, sine(0.5))
	w, err := ParseWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	if w.SampleRate != 22050 || w.Channels != 1 || w.BitsPerSample != 16 || w.Duration() != 500*time.Millisecond {
		t.Errorf("parsed %+v, duration %v", w, w.Duration())
	}
	if db := w.RMSDB(); math.Abs(db-DB(8000.0/32768/math.Sqrt2)) > 0.1 {
		t.Errorf("RMS = %v dBFS", db)
	}
	silent, _ := ParseWAV(EncodeWAV(8000, 1, make([]int16, 100)))
	if !math.IsInf(silent.RMSDB(), -1) {
		t.Errorf("silence RMS = %v", silent.RMSDB())
	}
	// A streamed file with placeholder sizes parses to the end of input.
	streamed := append([]byte(nil), b...)
	copy(streamed[40:], []byte{0xff, 0xff, 0xff, 0x7f})
	if w2, err := ParseWAV(streamed); err != nil || w2.Duration() != w.Duration() {
		t.Errorf("streamed: %v, %v", w2.Duration(), err)
	}
	FixWAVSizes(streamed)
	if !cmp.Equal(streamed, b) {
		t.Error("FixWAVSizes did not restore the sizes")
	}
	for _, bad := range [][]byte{nil, []byte("RIFF0000WAVE"), []byte("OggS"), b[:30]} {
		if _, err := ParseWAV(bad); !errors.Is(err, ErrBadWAV) {
			t.Errorf("ParseWAV(%q) = %v", bad, err)
		}
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(EncodeWAV(22050, 1, sine(0.01)))
	f.Add(EncodeWAV(8000, 2, []int16{1, 2, 3, 4}))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWAV(b)
		if err != nil {
			return
		}
		if w.Duration() < 0 || len(w.Data)%(w.Channels*w.BitsPerSample/8) != 0 {
			t.Fatalf("%+v", w)
		}
		_ = w.RMSDB()
	})
}

// fakeSynth makes a 100 ms-per-word sine clip.
type fakeSynth struct{ calls []string }

func (f *fakeSynth) Synthesize(_ context.Context, r SpeechRequest) (Clip, error) {
	f.calls = append(f.calls, r.Text)
	words := len(strings.Fields(r.Text))
	data := EncodeWAV(22050, 1, sine(0.1*float64(words)))
	return Clip{ContentType: "audio/wav", Data: data, Duration: time.Duration(words) * 100 * time.Millisecond}, nil
}

func TestSpeakerSpeaksSentenceBySentence(t *testing.T) {
	d, clk := newDirector(t, Options{})
	store, _ := NewMemoryClipStore(0)
	synth := &fakeSynth{}
	sp, err := NewSpeaker(SpeakerOptions{Synthesizer: synth, Store: store, Director: d, Line: VoiceLine{NPC: "mara", Session: "s1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The reply streams in; the first sentence is spoken before it ends.
	cues, err := sp.Write(ctx, "The boat leaves at dawn. Be")
	if err != nil || len(cues) != 1 || cues[0].At != t0 || cues[0].Duration != 500*time.Millisecond {
		t.Fatalf("first sentence: %+v, %v", cues, err)
	}
	if _, err := store.Get(ctx, cues[0].Clip); err != nil {
		t.Errorf("first clip not servable: %v", err)
	}
	clk.Advance(200 * time.Millisecond)
	f := frame(t, d)
	if !near(f.bus(BusMusic), 0.7*Linear(-12)) {
		t.Errorf("music not ducked under the line: %v dB", DB(f.bus(BusMusic)))
	}
	cues, _ = sp.Write(ctx, " there early")
	if len(cues) != 0 {
		t.Errorf("an unfinished sentence was spoken: %+v", cues)
	}
	cues, _ = sp.Flush(ctx)
	if len(cues) != 1 || cues[0].Text != "Be there early" || cues[0].At != t0.Add(500*time.Millisecond) {
		t.Fatalf("second sentence: %+v (want it right after the first)", cues)
	}
	if diff := cmp.Diff([]string{"The boat leaves at dawn.", "Be there early"}, synth.calls); diff != "" {
		t.Error(diff)
	}
	// The line (and the duck) lasts exactly as long as both clips.
	clk.Advance(599 * time.Millisecond)
	if f = frame(t, d); len(f.Voices) != 1 {
		t.Errorf("line ended early: %+v", f.Voices)
	}
	clk.Advance(time.Millisecond)
	if f = frame(t, d); len(f.Voices) != 0 {
		t.Errorf("line outlived its clips: %+v", f.Voices)
	}
	var plays []string
	for _, c := range d.Cues(0) {
		if c.Kind == CuePlay {
			plays = append(plays, c.Voice.Sound+"@"+c.At.Sub(t0).String())
		}
	}
	want := []string{sp.Cues()[0].Clip + "@0s", sp.Cues()[1].Clip + "@500ms"}
	if diff := cmp.Diff(want, plays); diff != "" {
		t.Errorf("play cues (-want +got):\n%s", diff)
	}
}

func TestAppendClipToOpenLine(t *testing.T) {
	d, clk := newDirector(t, Options{})
	ctx := context.Background()
	// dialogue announced the line before any audio existed.
	d.VoiceLineStarted(ctx, VoiceLine{NPC: "mara", Session: "s1"})
	clk.Advance(300 * time.Millisecond)
	at, err := d.AppendClip(ctx, "line:s1:mara", "c1", time.Second)
	if err != nil || at != t0.Add(300*time.Millisecond) {
		t.Fatalf("AppendClip = %v, %v; want now", at, err)
	}
	at, _ = d.AppendClip(ctx, "line:s1:mara", "c2", time.Second)
	if at != t0.Add(1300*time.Millisecond) {
		t.Errorf("second clip at %v, want after the first", at.Sub(t0))
	}
	clk.Advance(2 * time.Second)
	if f := frame(t, d); len(f.Voices) != 0 {
		t.Errorf("line still playing after its clips: %+v", f.Voices)
	}
	if _, err := d.AppendClip(ctx, "line:s1:mara", "c3", time.Second); !errors.Is(err, ErrUnknownVoice) {
		t.Errorf("append to an ended line: %v", err)
	}
	if _, err := d.AppendClip(ctx, "x", "c3", -time.Second); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("negative duration: %v", err)
	}
}
