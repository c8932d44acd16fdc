package dialogue

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSegmenter(t *testing.T) {
	tests := []struct {
		name   string
		deltas []string
		want   []piece
	}{
		{"one sentence per delta", []string{"Hello", " there.", " How", " are you?"},
			[]piece{{"Hello", false}, {" there.", true}, {" How", false}, {" are you?", true}}},
		{"boundary inside a delta", []string{"Aye. Go", " now!"},
			[]piece{{"Aye.", true}, {" Go", false}, {" now!", true}}},
		{"decimal is not a boundary", []string{"It costs 3", ".", "5 coins."},
			[]piece{{"It costs 3", false}, {".5 coins.", true}}},
		{"closing quote", []string{`"Run!" she said.`},
			[]piece{{`"Run!"`, true}, {` she said.`, true}}},
		{"ellipsis run", []string{"Well... maybe"},
			[]piece{{"Well...", true}, {" maybe", false}}},
		{"CJK", []string{"你好。我是玛拉"},
			[]piece{{"你好。", true}, {"我是玛拉", false}}},
		// Abbreviations and initials do not end sentences: text-to-speech
		// would pause after "Mr." and read "Smith" as a new sentence.
		{"title", []string{"Ask Mr.", " Smith. He knows."},
			[]piece{{"Ask Mr. Smith.", true}, {" He knows.", true}}},
		{"title split across deltas", []string{"Ask M", "r. Smith."},
			[]piece{{"Ask M", false}, {"r. Smith.", true}}},
		{"title in brackets", []string{"(Dr. Venn) is here. Go."},
			[]piece{{"(Dr. Venn) is here.", true}, {" Go.", true}}},
		{"initials", []string{"J. R. R. Tolkien wrote it. Yes."},
			[]piece{{"J. R. R. Tolkien wrote it.", true}, {" Yes.", true}}},
		{"e.g.", []string{"Herbs, e.g. sage. Fine."},
			[]piece{{"Herbs, e.g. sage.", true}, {" Fine.", true}}},
		{"St. and vs.", []string{"St. Alban vs. the tide. Ha."},
			[]piece{{"St. Alban vs. the tide.", true}, {" Ha.", true}}},
		{"no is a sentence", []string{"No. Never."},
			[]piece{{"No.", true}, {" Never.", true}}},
		{"long word ending like a title", []string{"Drummr. Next."},
			[]piece{{"Drummr.", true}, {" Next.", true}}},
		{"question after a title", []string{"Is it Dr? Yes."},
			[]piece{{"Is it Dr?", true}, {" Yes.", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s segmenter
			var got []piece
			for _, d := range tt.deltas {
				got = s.push(d, got)
			}
			got = s.flush(got)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(piece{})); diff != "" {
				t.Errorf("pieces (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzSegmenter(f *testing.F) {
	f.Add("Hello there. How are you?", 3)
	f.Add("3.5… «Oui.» 你好。", 1)
	f.Add("Ask Mr. J. Smith, e.g. now. No.", 2)
	f.Fuzz(func(t *testing.T, text string, cut int) {
		var s segmenter
		var got []piece
		cut = max(1, cut%17+1)
		for i := 0; i < len(text); i += cut {
			got = s.push(text[i:min(len(text), i+cut)], got)
		}
		got = s.flush(got)
		var b strings.Builder
		for _, p := range got {
			if p.text == "" {
				t.Fatalf("empty piece in %v", got)
			}
			b.WriteString(p.text)
		}
		if b.String() != text {
			t.Fatalf("pieces %v do not reassemble %q", got, text)
		}
	})
}

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(RateLimit{Rate: 1, Burst: 3}, func() time.Time { return now })
	for i := range 3 {
		if !l.allow("p") {
			t.Fatalf("request %d refused within burst", i)
		}
	}
	if l.allow("p") {
		t.Fatal("request over burst allowed")
	}
	if !l.allow("q") {
		t.Fatal("another player limited by p's bucket")
	}
	now = now.Add(1500 * time.Millisecond)
	if !l.allow("p") || l.allow("p") {
		t.Fatal("refill of 1.5 tokens did not allow exactly one request")
	}
	if newLimiter(RateLimit{Disable: true}, time.Now) != nil {
		t.Error("disabled limiter is not nil")
	}
	// Bounded memory: idle full buckets are swept.
	for i := range 100 {
		l.allow(string(rune('a' + i)))
		now = now.Add(10 * time.Second)
	}
	if n := l.len(); n > 8 {
		t.Errorf("%d buckets kept, want at most 8", n)
	}
}

// TestLimiterEvictsIdlePlayers: after a spike of players who then go idle,
// their buckets are dropped once they would have refilled, even when no
// capacity limit forces a sweep.
func TestLimiterEvictsIdlePlayers(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(RateLimit{Rate: 2, Burst: 10}, func() time.Time { return now })
	for i := range 20000 {
		l.allow(fmt.Sprint("spike-", i)) // all active at once
	}
	if got := l.len(); got != 20000 {
		t.Fatalf("%d buckets during the spike, want 20000", got)
	}
	now = now.Add(time.Minute) // everyone refilled long ago
	for i := range 3 {
		l.allow(fmt.Sprint("later-", i))
		now = now.Add(time.Second)
	}
	if got := l.len(); got > 3 {
		t.Errorf("%d buckets after the spike went idle, want at most 3", got)
	}
	// A player who has not refilled keeps their bucket through a sweep:
	// eviction never hands a limited player a fresh burst.
	for l.allow("busy") {
	}
	now = now.Add(4 * time.Second) // 8 of 10 tokens back; the last sweep was 7s ago
	l.allow("someone-else")        // triggers a sweep
	n := 0
	for l.allow("busy") {
		n++
	}
	if n != 8 {
		t.Errorf("busy got %d requests after the sweep, want the 8 it had refilled", n)
	}
}

func TestCanonicalLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "EN": "en", "pt-br": "pt-BR", "ZH-hant-tw": "zh-Hant-TW", "es-419": "es-419",
	} {
		if got := canonicalLanguage(in); got != want {
			t.Errorf("canonicalLanguage(%q) = %q, want %q", in, got, want)
		}
	}
}
