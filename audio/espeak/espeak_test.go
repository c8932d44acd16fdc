package espeak_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/audio/espeak"
	"github.com/bodybroker/sdk/internal/servicetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newSynth(t testing.TB, opts espeak.Options) *espeak.Synthesizer {
	t.Helper()
	opts.Path = servicetest.Espeak(t)
	s, err := espeak.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestClipsDecode checks a synthesized clip with a WAV decoder: its format,
// a duration in line with the text, and a level well above silence.
func TestClipsDecode(t *testing.T) {
	s := newSynth(t, espeak.Options{})
	ctx := context.Background()
	short, err := s.Synthesize(ctx, audio.SpeechRequest{Text: "The boat leaves at dawn."})
	if err != nil {
		t.Fatal(err)
	}
	long, err := s.Synthesize(ctx, audio.SpeechRequest{Text: "The boat leaves at dawn. Be there early, and bring the coin you owe me, or do not come at all."})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []audio.Clip{short, long} {
		w, err := audio.ParseWAV(c.Data)
		if err != nil {
			t.Fatal(err)
		}
		if w.SampleRate != 22050 || w.Channels != 1 || w.BitsPerSample != 16 || c.ContentType != "audio/wav" {
			t.Errorf("format %d Hz × %d ch × %d bit, %s; want 22050 × 1 × 16 audio/wav", w.SampleRate, w.Channels, w.BitsPerSample, c.ContentType)
		}
		if c.Duration != w.Duration() || c.Duration < 500*time.Millisecond || c.Duration > 30*time.Second {
			t.Errorf("duration %v (decoded %v)", c.Duration, w.Duration())
		}
		if db := w.RMSDB(); !(db > -40) {
			t.Errorf("RMS %v dBFS: silence", db)
		}
	}
	if long.Duration <= 2*short.Duration {
		t.Errorf("a text four times longer gives %v vs %v", long.Duration, short.Duration)
	}
}

func TestLimitsAndCancellation(t *testing.T) {
	s := newSynth(t, espeak.Options{MaxTextBytes: 50, MaxOutputBytes: 10000})
	ctx := context.Background()
	if _, err := s.Synthesize(ctx, audio.SpeechRequest{Text: strings.Repeat("a", 51)}); !errors.Is(err, espeak.ErrTextTooLong) {
		t.Errorf("long text: %v", err)
	}
	if _, err := s.Synthesize(ctx, audio.SpeechRequest{Text: "  "}); !errors.Is(err, audio.ErrInvalidValue) {
		t.Errorf("empty text: %v", err)
	}
	if _, err := s.Synthesize(ctx, audio.SpeechRequest{Text: "This sentence makes more than ten kilobytes."}); !errors.Is(err, espeak.ErrOutputTooLarge) {
		t.Errorf("large output: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Synthesize(cctx, audio.SpeechRequest{Text: "Hello."}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// Text that looks like a flag is spoken, not obeyed.
	if c, err := newSynth(t, espeak.Options{}).Synthesize(ctx, audio.SpeechRequest{Text: "--help"}); err != nil || c.Duration == 0 {
		t.Errorf("--help as text: %v, %v", c.Duration, err)
	}
	if _, err := espeak.New(espeak.Options{Path: "/nonexistent/espeak-ng"}); err == nil {
		t.Error("missing program accepted")
	}
}

// BenchmarkFirstSentence reports the time from a reply's first sentence to
// its clip being servable (synthesized and stored) beside the time to
// synthesize the whole reply at once.
//
//	go test -run '^$' -bench . ./audio/espeak
func BenchmarkFirstSentence(b *testing.B) {
	s := newSynth(b, espeak.Options{})
	store, _ := audio.NewMemoryClipStore(0)
	ctx := context.Background()
	reply := "The boat leaves at dawn. Be there early, and bring the coin you owe me. " +
		"The harbour master counts heads, and he does not wait for anyone. If you miss it, the next one sails in a week."
	first, _ := audio.SplitSentences(reply)
	var firstT, wholeT time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		c, err := s.Synthesize(ctx, audio.SpeechRequest{Text: first[0]})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := store.Put(ctx, c); err != nil {
			b.Fatal(err)
		}
		firstT += time.Since(t0)
		t1 := time.Now()
		if _, err := s.Synthesize(ctx, audio.SpeechRequest{Text: reply}); err != nil {
			b.Fatal(err)
		}
		wholeT += time.Since(t1)
	}
	b.ReportMetric(float64(firstT)/1e6/float64(b.N), "ms/first-sentence-servable")
	b.ReportMetric(float64(wholeT)/1e6/float64(b.N), "ms/whole-reply")
}
