package audio

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustVoices(t *testing.T, limits ...Limit) *Voices {
	t.Helper()
	p, err := NewVoices(VoicesOptions{Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func play(t *testing.T, p *Voices, v Voice, at time.Duration) (Outcome, []VoiceEvent) {
	t.Helper()
	if v.Volume == 0 {
		v.Volume = 1
	}
	o, ev, err := p.Play(v, t0.Add(at), nil)
	if err != nil {
		t.Fatal(err)
	}
	return o, ev
}

func stolenIDs(ev []VoiceEvent) []string {
	var ids []string
	for _, e := range ev {
		ids = append(ids, fmt.Sprintf("%d:%s", e.Kind, e.Voice.ID))
	}
	return ids
}

func TestResolutions(t *testing.T) {
	// Three playing voices, limit 3, then a fourth.
	existing := []Voice{
		{ID: "a", Sound: "s", Priority: 5, Distance: 10, Volume: 0.5},
		{ID: "b", Sound: "s", Priority: 1, Distance: 30, Volume: 0.9},
		{ID: "c", Sound: "s", Priority: 3, Distance: 50, Volume: 0.2},
	}
	tests := []struct {
		res        Resolution
		nv         Voice
		want       Outcome
		wantStolen string
	}{
		{RejectNew, Voice{ID: "n", Sound: "s", Priority: 9}, Rejected, ""},
		{StopOldest, Voice{ID: "n", Sound: "s"}, Played, "a"},
		{StopLowestPriority, Voice{ID: "n", Sound: "s", Priority: 2}, Played, "b"},
		{StopLowestPriority, Voice{ID: "n", Sound: "s", Priority: 0}, Rejected, ""},
		{StopFarthest, Voice{ID: "n", Sound: "s", Distance: 20}, Played, "c"},
		{StopFarthest, Voice{ID: "n", Sound: "s", Distance: 60}, Rejected, ""},
		{StopQuietest, Voice{ID: "n", Sound: "s", Volume: 0.3}, Played, "c"},
		{StopQuietest, Voice{ID: "n", Sound: "s", Volume: 0.1}, Rejected, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%s", tt.res, tt.want), func(t *testing.T) {
			p := mustVoices(t, Limit{Group: "s", Max: 3, Resolution: tt.res})
			for i, v := range existing {
				play(t, p, v, time.Duration(i)*time.Second)
			}
			got, ev := play(t, p, tt.nv, 10*time.Second)
			if got != tt.want {
				t.Errorf("outcome = %v, want %v", got, tt.want)
			}
			var want []string
			if tt.wantStolen != "" {
				want = []string{fmt.Sprintf("%d:%s", VoiceStolen, tt.wantStolen)}
				if p.State(tt.wantStolen) != 0 {
					t.Errorf("stolen voice %s still tracked", tt.wantStolen)
				}
			}
			if diff := cmp.Diff(want, stolenIDs(ev)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if n := p.Playing("s"); n != 3 {
				t.Errorf("playing = %d, want 3", n)
			}
		})
	}
}

func TestNeverStealAndVirtualVoices(t *testing.T) {
	p := mustVoices(t, Limit{Group: "vo", Max: 2, Resolution: StopLowestPriority, Virtualize: true})
	play(t, p, Voice{ID: "quest", Sound: "vo", Priority: 0, NeverSteal: true, Duration: 10 * time.Second}, 0)
	play(t, p, Voice{ID: "bark1", Sound: "vo", Priority: 1, Duration: 10 * time.Second}, 0)
	// A higher-priority bark steals bark1 (virtualised), never the quest line.
	o, ev := play(t, p, Voice{ID: "bark2", Sound: "vo", Priority: 2, Duration: 4 * time.Second}, time.Second)
	if o != Played || len(ev) != 1 || ev[0].Kind != VoiceVirtualized || ev[0].Voice.ID != "bark1" {
		t.Fatalf("bark2: %v %v, want played with bark1 virtualised", o, stolenIDs(ev))
	}
	// Another never-steal line finds no stealable slot... bark2 is
	// stealable, so it takes bark2's slot.
	o, ev = play(t, p, Voice{ID: "quest2", Sound: "vo", NeverSteal: true, Duration: 3 * time.Second}, 2*time.Second)
	if o != Played || len(ev) != 1 || ev[0].Voice.ID != "bark2" {
		t.Fatalf("quest2: %v %v", o, stolenIDs(ev))
	}
	// Now both slots hold never-steal lines: a third is queued.
	o, _ = play(t, p, Voice{ID: "quest3", Sound: "vo", NeverSteal: true, Duration: 20 * time.Second}, 2*time.Second)
	if o != Queued || p.State("quest3") != Virtual {
		t.Fatalf("quest3: %v, want queued", o)
	}
	// quest2 ends at 5 s: quest3 (never-steal first) resumes at its
	// elapsed time, ahead of bark1 and bark2.
	ev = p.Advance(t0.Add(5*time.Second), nil)
	var resumed []string
	for _, e := range ev {
		if e.Kind == VoiceResumed {
			resumed = append(resumed, e.Voice.ID)
			if e.Voice.ID == "quest3" && e.Offset != 3*time.Second {
				t.Errorf("quest3 resumed at %v, want 3s (elapsed time)", e.Offset)
			}
		}
	}
	if diff := cmp.Diff([]string{"quest3"}, resumed); diff != "" {
		t.Errorf("resumed (-want +got):\n%s", diff)
	}
	// bark2 (4 s from 1 s) expired while virtual; at 10 s the quest line
	// and bark1 end.
	ev = p.Advance(t0.Add(10*time.Second), nil)
	if p.Len() != 1 || p.State("quest3") != Playing {
		t.Errorf("after 10 s: %d voices, quest3 %v; events %v", p.Len(), p.State("quest3"), stolenIDs(ev))
	}
	s := p.Stats()
	if s.Virtualized != 2 || s.Queued != 1 || s.Resumed != 1 || s.ExpiredQueued != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func TestCooldowns(t *testing.T) {
	p := mustVoices(t,
		Limit{Group: "horn", Cooldown: 2 * time.Second},
		Limit{Group: "bell", Cooldown: 2 * time.Second, CooldownRadius: 100},
	)
	if o, _ := play(t, p, Voice{ID: "h1", Sound: "horn"}, 0); o != Played {
		t.Fatal(o)
	}
	if o, _ := play(t, p, Voice{ID: "h2", Sound: "horn", Position: Vec3{X: 1e6}}, time.Second); o != CooledDown {
		t.Errorf("global cooldown: %v, want cooled down even far away", o)
	}
	if o, _ := play(t, p, Voice{ID: "h3", Sound: "horn"}, 2*time.Second); o != Played {
		t.Errorf("after the cooldown: %v", o)
	}
	play(t, p, Voice{ID: "b1", Sound: "bell"}, 0)
	if o, _ := play(t, p, Voice{ID: "b2", Sound: "bell", Position: Vec3{X: 50}}, time.Second); o != CooledDown {
		t.Errorf("near bell: %v, want cooled down", o)
	}
	if o, _ := play(t, p, Voice{ID: "b3", Sound: "bell", Position: Vec3{X: 500}}, time.Second); o != Played {
		t.Errorf("far bell: %v, want played (spatial cooldown)", o)
	}
}

func TestLimiterNeverExceedsCountAndIsDeterministic(t *testing.T) {
	run := func(seed uint64) []string {
		r := rand.New(rand.NewPCG(seed, 7))
		limits := []Limit{
			{Group: "g0", Max: 3, Resolution: StopOldest},
			{Group: "g1", Max: 4, Resolution: StopLowestPriority, Virtualize: true},
			{Group: "g2", Max: 2, Resolution: StopFarthest},
			{Group: "g3", Max: 5, Resolution: StopQuietest, Virtualize: true},
			{Group: "g4", Max: 1, Resolution: RejectNew},
		}
		p := mustVoices(t, limits...)
		var log []string
		now := t0
		for i := range 3000 {
			now = now.Add(time.Duration(r.IntN(300)) * time.Millisecond)
			switch r.IntN(4) {
			case 0, 1:
				g := limits[r.IntN(len(limits))]
				v := Voice{
					ID: fmt.Sprint("v", i), Group: g.Group, Sound: "x",
					Priority: r.IntN(3), Distance: float64(r.IntN(4) * 10), Volume: float64(r.IntN(4)) / 4,
					NeverSteal: r.IntN(20) == 0, Duration: time.Duration(r.IntN(5)) * time.Second,
				}
				o, ev, err := p.Play(v, now, nil)
				if err != nil {
					t.Fatal(err)
				}
				log = append(log, v.ID+"="+o.String())
				log = append(log, stolenIDs(ev)...)
			case 2:
				log = append(log, stolenIDs(p.Advance(now, nil))...)
			case 3:
				if p.Len() > 0 {
					id := p.voices[r.IntN(p.Len())].ID
					ev, _ := p.Stop(id, now, nil)
					log = append(log, stolenIDs(ev)...)
				}
			}
			for _, l := range limits {
				if n := p.Playing(l.Group); n > l.Max {
					t.Fatalf("group %s plays %d voices, limit %d", l.Group, n, l.Max)
				}
			}
		}
		return log
	}
	a, b := run(42), run(42)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different outcomes (-first +second):\n%s", diff)
	}
}

func TestVictimOrderTieBreaks(t *testing.T) {
	// Equal on the resolution's own key: lower priority, then farther,
	// then older, then smaller ID is stolen first.
	base := voice{Voice: Voice{ID: "m", Priority: 1, Distance: 10}, start: t0}
	tests := []struct {
		name string
		a    voice
	}{
		{"lower priority", voice{Voice: Voice{ID: "z", Priority: 0, Distance: 0}, start: t0.Add(time.Hour)}},
		{"farther", voice{Voice: Voice{ID: "z", Priority: 1, Distance: 11}, start: t0.Add(time.Hour)}},
		{"older", voice{Voice: Voice{ID: "z", Priority: 1, Distance: 10}, start: t0.Add(-1)}},
		{"smaller ID", voice{Voice: Voice{ID: "a", Priority: 1, Distance: 10}, start: t0}},
	}
	for _, tt := range tests {
		if c := victimCmp(StopQuietest, &tt.a, &base); c >= 0 {
			t.Errorf("%s: not stolen first (cmp %d)", tt.name, c)
		}
	}
}

func TestVoicesBadInput(t *testing.T) {
	bad := []VoicesOptions{
		{MaxVoices: -1},
		{Limits: []Limit{{Group: ""}}},
		{Limits: []Limit{{Group: "g", Max: -1}}},
		{Limits: []Limit{{Group: "g", Cooldown: -1}}},
		{Limits: []Limit{{Group: "g", CooldownRadius: math.NaN()}}},
		{Limits: []Limit{{Group: "g", Resolution: 99}}},
	}
	for _, o := range bad {
		if _, err := NewVoices(o); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("NewVoices(%+v) = %v, want ErrInvalidValue", o, err)
		}
	}
	if _, err := NewVoices(VoicesOptions{Limits: []Limit{{Group: "g"}, {Group: "g"}}}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate limit: %v", err)
	}
	p, _ := NewVoices(VoicesOptions{MaxVoices: 1})
	for _, v := range []Voice{
		{ID: ""}, {ID: "x", Volume: 2}, {ID: "x", Volume: math.NaN()}, {ID: "x", Distance: -1},
		{ID: "x", Duration: -time.Second}, {ID: "x", Position: Vec3{X: math.Inf(1)}},
	} {
		if _, _, err := p.Play(v, t0, nil); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("Play(%+v) = %v, want ErrInvalidValue", v, err)
		}
	}
	if _, _, err := p.Play(Voice{ID: "a", Volume: 1}, t0, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Play(Voice{ID: "a", Volume: 1}, t0, nil); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate ID: %v", err)
	}
	if _, _, err := p.Play(Voice{ID: "b", Volume: 1}, t0, nil); !errors.Is(err, ErrTooManyVoices) {
		t.Errorf("over MaxVoices: %v", err)
	}
	if _, err := p.Stop("nope", t0, nil); !errors.Is(err, ErrUnknownVoice) {
		t.Errorf("Stop(unknown) = %v", err)
	}
}
