package indicators

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

const frameDT = time.Second / 60

func mustNew(t testing.TB, opts Options) *Set {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustFrame(t testing.TB, s *Set, cam Camera, vp Viewport, dst []State) Frame {
	t.Helper()
	f, err := s.Frame(cam, vp, dst)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func find(states []State, id ID) (State, bool) {
	for _, st := range states {
		if st.ID == id {
			return st, true
		}
	}
	return State{}, false
}

func TestSetOperations(t *testing.T) {
	s := mustNew(t, Options{})
	var ids []ID
	for range 3 {
		id, err := s.Add(Indicator{Target: Vec3{X: 10}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if diff := cmp.Diff([]ID{1, 2, 3}, ids); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
	if err := s.Remove(2); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove twice = %v, want ErrNotFound", err)
	}
	if err := s.UpdateLocation(3, Vec3{Y: 5}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateLocation(3, Vec3{Y: math.NaN()}); !errors.Is(err, ErrBadTarget) {
		t.Errorf("UpdateLocation(NaN) = %v, want ErrBadTarget", err)
	}
	if err := s.UpdateLocation(9, Vec3{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateLocation(9) = %v, want ErrNotFound", err)
	}
	if err := s.SetActive(9, true); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetActive(9) = %v, want ErrNotFound", err)
	}
	if got := s.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	s.Clear()
	if got := s.Len(); got != 0 {
		t.Errorf("Len after Clear = %d, want 0", got)
	}
	if id, _ := s.Add(Indicator{}); id != 4 {
		t.Errorf("ID after Clear = %d, want 4", id)
	}
	for _, ind := range []Indicator{
		{Target: Vec3{Z: math.Inf(1)}}, {Priority: -1}, {Priority: math.NaN()}, {Kind: 9}, {Meaning: 9}, {Duration: -1},
	} {
		if _, err := s.Add(ind); err == nil {
			t.Errorf("Add(%+v) succeeded", ind)
		}
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		want   error
		subtle string // the SubtletyError field, if one
	}{
		{"massive marker", Options{Appearance: Appearance{Size: 100}}, ErrNotSubtle, "Appearance.Size"},
		{"long glow", Options{Appearance: Appearance{GlowLength: 500}}, ErrNotSubtle, "Appearance.GlowLength"},
		{"bright glow", Options{Appearance: Appearance{GlowIntensity: 0.9}}, ErrNotSubtle, "Appearance.GlowIntensity"},
		{"fast pulse", Options{Appearance: Appearance{PulseHz: 5}}, ErrNotSubtle, "Appearance.PulseHz"},
		{"loose limit", Options{Limits: Limits{MaxSize: 0.5}}, ErrNotSubtle, "Limits.MaxSize"},
		{"flashing limit", Options{Limits: Limits{MaxPulseHz: 10}}, ErrNotSubtle, "Limits.MaxPulseHz"},
		{"negative size", Options{Appearance: Appearance{Size: -1}}, ErrBadOptions, ""},
		{"colour out of range", Options{Appearance: Appearance{GlowColor: Color{R: 2}}}, ErrBadOptions, ""},
		{"exit above enter", Options{Budget: Budget{Enter: 0.2, Exit: 0.5}}, ErrBadOptions, ""},
		{"negative budget", Options{Budget: Budget{Max: -1}}, ErrBadOptions, ""},
		{"bad profile", Options{Profile: Profile{Scale: 5}}, ErrBadOptions, ""},
		{"bad area", Options{Area: Area{Left: -1}}, ErrBadOptions, ""},
		{"bad guide", Options{Guide: Guide{Speed: math.Inf(1)}}, ErrBadOptions, ""},
	}
	for _, tt := range tests {
		_, err := New(tt.opts)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: New = %v, want %v", tt.name, err, tt.want)
			continue
		}
		var se *SubtletyError
		if errors.As(err, &se) != (tt.subtle != "") || se != nil && se.Field != tt.subtle {
			t.Errorf("%s: New = %v, want a SubtletyError on %q", tt.name, err, tt.subtle)
		}
	}
}

// TestFadeAndExpiry: an indicator fades in over FadeDuration with the
// easing, and one with a Duration fades out when it expires and then
// leaves the set.
func TestFadeAndExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustNew(t, Options{Appearance: Appearance{Ease: Linear}})
		id, _ := s.Add(Indicator{Target: Vec3{X: 10, Y: -100}, Kind: ScreenEdge, Duration: time.Second})
		want := []struct {
			at    time.Duration
			alpha float64 // 0: absent
			leave bool
		}{
			{0, 0, false}, {250 * time.Millisecond, 0.5, false}, {500 * time.Millisecond, 1, false},
			{time.Second, 1, true}, {1250 * time.Millisecond, 0.5, true}, {1500 * time.Millisecond, 0, false},
		}
		start := time.Now()
		var dst []State
		for _, w := range want {
			time.Sleep(time.Until(start.Add(w.at)))
			f := mustFrame(t, s, lookX, hd, dst)
			dst = f.States
			st, ok := find(f.States, id)
			if w.alpha == 0 {
				if ok {
					t.Errorf("at %v: state %+v, want none", w.at, st)
				}
				continue
			}
			if !ok || math.Abs(st.Alpha-w.alpha) > 1e-9 || st.Leaving != w.leave {
				t.Errorf("at %v: state %+v (present %v), want alpha %g leaving %v", w.at, st, ok, w.alpha, w.leave)
			}
		}
		if got := s.Len(); got != 0 {
			t.Errorf("Len after expiry and fade = %d, want 0", got)
		}
	})
}

// TestContextualFollowsVisibility: a contextual indicator is a glow on the
// target while it is on screen and an edge marker once it leaves, decided
// every frame; SetActive(false) fades it out.
func TestContextualFollowsVisibility(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustNew(t, Options{Appearance: Appearance{NoFade: true}, Budget: Budget{NoDwell: true}})
		id, _ := s.Add(Indicator{Target: Vec3{X: 100}, Kind: Contextual})
		f := mustFrame(t, s, lookX, hd, nil)
		if st, _ := find(f.States, id); st.Style != Glow || st.Clamped || math.Abs(st.X-960) > 1e-9 {
			t.Errorf("on screen: %+v, want an unclamped glow at the centre", st)
		}
		s.UpdateLocation(id, Vec3{X: -100, Y: -10})
		time.Sleep(frameDT)
		f = mustFrame(t, s, lookX, hd, f.States)
		if st, _ := find(f.States, id); st.Style != Marker || !st.Clamped || st.Region != RegionRight || !st.Behind {
			t.Errorf("behind, right: %+v, want a clamped marker on the right", st)
		}
		s.SetActive(id, false)
		time.Sleep(frameDT)
		f = mustFrame(t, s, lookX, hd, f.States)
		if st, ok := find(f.States, id); ok {
			t.Errorf("inactive: %+v, want hidden", st)
		}
	})
}

func TestEdgeKindsHideOnScreen(t *testing.T) {
	s := mustNew(t, Options{Appearance: Appearance{NoFade: true}})
	on, _ := s.Add(Indicator{Target: Vec3{X: 100}, Kind: EdgeGlow})
	off, _ := s.Add(Indicator{Target: Vec3{X: 100, Y: 500}, Kind: EdgeGlow})
	mk, _ := s.Add(Indicator{Target: Vec3{X: 100, Z: 500}, Kind: ScreenEdge})
	f := mustFrame(t, s, lookX, hd, nil)
	if _, ok := find(f.States, on); ok {
		t.Error("edge glow for an on-screen target is shown")
	}
	if st, ok := find(f.States, off); !ok || st.Style != Glow || st.Region != RegionLeft || math.Abs(st.X-20) > 1e-9 || st.Width != 80 || st.Size != 20 {
		t.Errorf("edge glow left: %+v, want a 80×20 glow on the left margin", st)
	}
	if st, ok := find(f.States, mk); !ok || st.Style != Marker || st.Region != RegionTop || math.Abs(st.Y-20) > 1e-9 || math.Abs(st.Angle+math.Pi/2) > 1e-9 {
		t.Errorf("marker above: %+v, want a marker on the top margin pointing up", st)
	}
	s2 := mustNew(t, Options{DisableEdgeGlow: true, DisableScreenEdge: true, Appearance: Appearance{NoFade: true}})
	s2.Add(Indicator{Target: Vec3{X: 100, Y: 500}, Kind: EdgeGlow})
	s2.Add(Indicator{Target: Vec3{X: 100, Y: 500}, Kind: ScreenEdge})
	if f := mustFrame(t, s2, lookX, hd, nil); len(f.States) != 0 {
		t.Errorf("disabled kinds drew %+v", f.States)
	}
}

func TestIntensity(t *testing.T) {
	s := mustNew(t, Options{Appearance: Appearance{NoFade: true}, Budget: Budget{NoMerge: true}})
	half, _ := s.Add(Indicator{Target: Vec3{X: -2500}, Priority: 2})
	loud, _ := s.Add(Indicator{Target: Vec3{X: -1, Y: 10}, Priority: 100})
	f := mustFrame(t, s, lookX, hd, nil)
	if st, _ := find(f.States, half); math.Abs(st.Intensity-0.3) > 1e-12 {
		t.Errorf("intensity at half range, priority 2 = %g, want 0.3×0.5×2 = 0.3", st.Intensity)
	}
	if st, _ := find(f.States, loud); st.Intensity != 0.6 {
		t.Errorf("intensity at priority 100 = %g, want the 0.6 cap", st.Intensity)
	}
	if st, _ := find(f.States, half); st.Color != (Color{1, 0.8, 0.2, 1}) {
		t.Errorf("default colour = %+v", st.Color)
	}
}

// TestAlphaMonotonicInDistance: with everything else equal, a farther
// target never gets more alpha or intensity.
func TestAlphaMonotonicInDistance(t *testing.T) {
	s := mustNew(t, Options{Appearance: Appearance{NoFade: true}, Budget: Budget{NoMerge: true, Max: 100, MaxPerRegion: 100}})
	for d := 10.0; d < 6000; d += 10 {
		s.Add(Indicator{Target: Vec3{X: -d}, Kind: ScreenEdge})
	}
	f := mustFrame(t, s, lookX, hd, nil)
	prev := State{Alpha: 1, Intensity: 1}
	for _, st := range f.States { // IDs ascend with distance
		if st.Alpha > prev.Alpha || st.Intensity > prev.Intensity {
			t.Fatalf("at distance %g: alpha %g, intensity %g; nearer: %g, %g", st.Distance, st.Alpha, st.Intensity, prev.Alpha, prev.Intensity)
		}
		prev = st
	}
	if last := f.States[len(f.States)-1]; last.Distance > 5000 {
		t.Errorf("target at %g shown beyond MaxDistance", last.Distance)
	}
	r := rand.New(rand.NewPCG(5, 5))
	for range 10000 {
		a, b := r.Float64()*6000, r.Float64()*6000
		if a > b {
			a, b = b, a
		}
		p := r.Float64() * 100
		if Intensity(0.3, a, 5000, p, 0.6) < Intensity(0.3, b, 5000, p, 0.6) || distanceFade(a, 5000) < distanceFade(b, 5000) {
			t.Fatalf("not monotonic between %g and %g", a, b)
		}
	}
}

// TestBudgetProperty drives random sets through random frames and checks
// that the budget is never exceeded, nothing is NaN, every clamped state
// lies in the safe area, and two sets fed the same input agree exactly.
func TestBudgetProperty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(14, 14))
		for trial := range 30 {
			bud := Budget{Max: 1 + r.IntN(10), MaxPerRegion: 1 + r.IntN(4), MinDwell: time.Duration(r.IntN(500)) * time.Millisecond, NoMerge: r.IntN(2) == 0}
			if r.IntN(2) == 0 {
				bud.Enter = r.Float64() * 0.5
				bud.Exit = bud.Enter * r.Float64()
			}
			opts := Options{Budget: bud, Area: Area{Shape: AreaShape(r.IntN(2)), Left: 30, Top: 10, Right: 5, Bottom: 40}}
			a, b := mustNew(t, opts), mustNew(t, opts)
			var ids []ID
			var fa, fb []State
			cam := Camera{Position: Vec3{Z: 2}, Forward: Vec3{X: 1}}
			for frame := range 120 {
				switch op := r.IntN(10); {
				case op < 4 || len(ids) == 0:
					ind := Indicator{Target: Vec3{r.NormFloat64() * 2000, r.NormFloat64() * 2000, r.NormFloat64() * 200},
						Kind: Kind(r.IntN(int(numKinds))), Priority: r.Float64() * 3, Meaning: Meaning(r.IntN(int(numMeanings))),
						Duration: time.Duration(r.IntN(3)) * time.Second}
					id, _ := a.Add(ind)
					b.Add(ind)
					ids = append(ids, id)
				case op < 8:
					id, v := ids[r.IntN(len(ids))], Vec3{r.NormFloat64() * 2000, r.NormFloat64() * 2000, 0}
					a.UpdateLocation(id, v)
					b.UpdateLocation(id, v)
				default:
					id := ids[r.IntN(len(ids))]
					a.Remove(id)
					b.Remove(id)
				}
				cam.Forward = Vec3{math.Cos(float64(frame) / 20), math.Sin(float64(frame) / 20), 0}
				time.Sleep(frameDT)
				f1 := mustFrame(t, a, cam, hd, fa)
				f2 := mustFrame(t, b, cam, hd, fb)
				fa, fb = f1.States, f2.States
				if diff := cmp.Diff(f1.States, f2.States); diff != "" {
					t.Fatalf("trial %d frame %d: identical sets differ:\n%s", trial, frame, diff)
				}
				shown := 0
				var per [numRegions]int
				for _, st := range f1.States {
					for _, v := range []float64{st.X, st.Y, st.Angle, st.Alpha, st.Intensity, st.Size, st.Width} {
						if math.IsNaN(v) || math.IsInf(v, 0) {
							t.Fatalf("non-finite state %+v", st)
						}
					}
					if st.Alpha <= 0 || st.Alpha > 1 || st.Intensity < 0 || st.Intensity > 0.6 {
						t.Fatalf("alpha or intensity out of range: %+v", st)
					}
					if st.Clamped && (st.X < 30-1e-9 || st.X > 1915+1e-9 || st.Y < 10-1e-9 || st.Y > 1040+1e-9) {
						t.Fatalf("clamped state outside the safe area: %+v", st)
					}
					if !st.Leaving {
						shown++
						per[st.Region]++
					}
				}
				if shown > bud.Max {
					t.Fatalf("trial %d frame %d: %d shown, budget %d", trial, frame, shown, bud.Max)
				}
				for reg, n := range per {
					if n > bud.MaxPerRegion {
						t.Fatalf("trial %d frame %d: %d shown in %v, budget %d", trial, frame, n, Region(reg), bud.MaxPerRegion)
					}
				}
			}
		}
	})
}

// TestBudgetOrder: with more candidates than the budget, the highest
// scores win and equal scores go to the lower ID.
func TestBudgetOrder(t *testing.T) {
	s := mustNew(t, Options{Appearance: Appearance{NoFade: true}, Budget: Budget{Max: 3, MaxPerRegion: 3, NoMerge: true}})
	for _, p := range []float64{1, 3, 2, 3, 1} {
		s.Add(Indicator{Target: Vec3{X: -100, Y: -50}, Priority: p})
	}
	f := mustFrame(t, s, lookX, hd, nil)
	var got []ID
	for _, st := range f.States {
		got = append(got, st.ID)
	}
	if diff := cmp.Diff([]ID{2, 3, 4}, got); diff != "" {
		t.Errorf("shown IDs (-want +got):\n%s", diff)
	}
}

// TestHysteresis: a target whose score oscillates around the entry
// threshold every frame flickers without hysteresis, and is shown once and
// stays shown with separate enter/exit thresholds or a minimum dwell.
func TestHysteresis(t *testing.T) {
	tests := []struct {
		name    string
		bud     Budget
		maxFlip int
	}{
		{"none (the test can see flicker)", Budget{Enter: 0.5, Exit: 0.5, NoDwell: true}, 1000},
		{"thresholds", Budget{Enter: 0.5, Exit: 0.4, NoDwell: true}, 1},
		{"dwell", Budget{Enter: 0.5, Exit: 0.5, MinDwell: 500 * time.Millisecond}, 2 * 5},
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			s := mustNew(t, Options{Budget: tt.bud})
			id, _ := s.Add(Indicator{Target: Vec3{X: -2400}})
			flips, shown := 0, false
			var dst []State
			for frame := range 300 { // 5 s
				d := 2400.0 + 200*float64(frame%2) // score 0.52, 0.48
				s.UpdateLocation(id, Vec3{X: -d})
				f := mustFrame(t, s, lookX, hd, dst)
				dst = f.States
				st, ok := find(f.States, id)
				if now := ok && !st.Leaving; now != shown {
					flips++
					shown = now
				}
				time.Sleep(frameDT)
			}
			if tt.maxFlip == 1000 {
				if flips < 100 {
					t.Errorf("%s: %d flips; the oscillation does not cross the threshold", tt.name, flips)
				}
			} else if flips > tt.maxFlip || flips == 0 {
				t.Errorf("%s: %d flips in 5 s, want 1 … %d", tt.name, flips, tt.maxFlip)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	s := mustNew(t, Options{Appearance: Appearance{NoFade: true}})
	a, _ := s.Add(Indicator{Target: Vec3{X: 100, Y: -1000}, Priority: 2})
	s.Add(Indicator{Target: Vec3{X: 100, Y: -1001}})
	c, _ := s.Add(Indicator{Target: Vec3{X: 100, Y: 1000}})
	f := mustFrame(t, s, lookX, hd, nil)
	if len(f.States) != 2 {
		t.Fatalf("states %+v, want 2", f.States)
	}
	if st, _ := find(f.States, a); st.Merged != 1 {
		t.Errorf("survivor %+v, want Merged 1", st)
	}
	if st, _ := find(f.States, c); st.Merged != 0 {
		t.Errorf("far one %+v, want Merged 0", st)
	}
	if got, want := s.Stats(), (Stats{Indicators: 3, Shown: 2, Merged: 1, Frames: 1}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestGuide(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustNew(t, Options{Guide: Guide{Enabled: true}})
		s.Add(Indicator{Target: Vec3{X: 1000}, Kind: MinionNPC})
		hi, _ := s.Add(Indicator{Target: Vec3{Y: 1000}, Kind: MinionNPC, Priority: 2})
		f := mustFrame(t, s, lookX, hd, nil)
		if f.Guide != (GuideState{Active: true, Target: hi}) || len(f.States) != 0 {
			t.Fatalf("first frame: guide %+v, states %+v", f.Guide, f.States)
		}
		time.Sleep(2 * time.Second)
		f = mustFrame(t, s, lookX, hd, nil)
		if math.Abs(f.Guide.Position.Y-200) > 1e-9 || f.Guide.Position.X != 0 {
			t.Errorf("after 2 s: guide at %+v, want (0, 200, 0)", f.Guide.Position)
		}
		time.Sleep(time.Minute)
		f = mustFrame(t, s, lookX, hd, nil)
		if f.Guide.Position != (Vec3{Y: 1000}) {
			t.Errorf("after a minute: guide at %+v, want on the target", f.Guide.Position)
		}
		if g := mustFrame(t, mustNew(t, Options{}), lookX, hd, nil).Guide; g.Active {
			t.Errorf("guide on by default: %+v", g)
		}
	})
}

// TestPulseAndMotion: pulses run at most at the player's flash cap, and
// reduce-motion holds a static glow.
func TestPulseAndMotion(t *testing.T) {
	for _, tt := range []struct {
		name     string
		prof     Profile
		maxPeaks int
		static   bool
	}{
		{"style rate", Profile{}, 2 * 2, false},
		{"flash cap", Profile{MaxFlashHz: 1}, 2 * 1, false},
		{"reduce motion", Profile{ReduceMotion: true}, 0, true},
	} {
		synctest.Test(t, func(t *testing.T) {
			s := mustNew(t, Options{Appearance: Appearance{PulseHz: 2, NoFade: true}, Profile: tt.prof})
			s.Add(Indicator{Target: Vec3{X: -100}})
			var alphas []float64
			for range 120 { // 2 s at 60 fps
				f := mustFrame(t, s, lookX, hd, nil)
				alphas = append(alphas, f.States[0].Alpha)
				time.Sleep(frameDT)
			}
			peaks := 0
			lo, hi := 1.0, 0.0
			for i := 1; i+1 < len(alphas); i++ {
				if alphas[i] > alphas[i-1] && alphas[i] >= alphas[i+1] {
					peaks++
				}
				lo, hi = math.Min(lo, alphas[i]), math.Max(hi, alphas[i])
			}
			if peaks > tt.maxPeaks {
				t.Errorf("%s: %d peaks in 2 s, want ≤ %d", tt.name, peaks, tt.maxPeaks)
			}
			if tt.static != (hi-lo < 1e-12) {
				t.Errorf("%s: alpha ranges %g … %g, static %v", tt.name, lo, hi, tt.static)
			}
		})
	}
}

func TestAccessibilityInFrames(t *testing.T) {
	s := mustNew(t, Options{Appearance: Appearance{NoFade: true}, Profile: Profile{CVD: Deuteranopia, Scale: 2, HighContrast: true}})
	id, _ := s.Add(Indicator{Target: Vec3{X: -100, Y: 5}, Kind: ScreenEdge, Meaning: Enemy})
	f := mustFrame(t, s, lookX, hd, nil)
	st, _ := find(f.States, id)
	if st.Shape != Triangle || st.Size != 40 {
		t.Errorf("enemy marker %+v, want a 40 px triangle", st)
	}
	if c := Contrast(st.Color, Color{0.25, 0.25, 0.25, 1}); c < 3 {
		t.Errorf("contrast %g, want ≥ 3", c)
	}
	// Scale never breaks the subtlety limit: 2 × 20 px on a 400 px screen
	// is capped at 4% of the height.
	f = mustFrame(t, s, lookX, Viewport{W: 600, H: 400}, nil)
	if st, _ := find(f.States, id); st.Size != 16 {
		t.Errorf("size on a small screen = %g, want 16", st.Size)
	}
	if err := s.SetProfile(Profile{Scale: 9}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("SetProfile(scale 9) = %v", err)
	}
}

func TestSplitScreen(t *testing.T) {
	left, right := Viewport{W: 960, H: 1080}, Viewport{X: 960, W: 960, H: 1080}
	for _, vp := range []Viewport{left, right} {
		s := mustNew(t, Options{})
		s.Add(Indicator{Target: Vec3{X: 100, Y: 100}})
		s.Add(Indicator{Target: Vec3{X: -100, Y: -100}})
		f := mustFrame(t, s, lookX, vp, nil)
		for _, st := range f.States {
			if st.X < vp.X || st.X > vp.X+vp.W {
				t.Errorf("viewport %+v: state at x=%g outside", vp, st.X)
			}
		}
	}
}

func TestFrameBadInput(t *testing.T) {
	s := mustNew(t, Options{})
	s.Add(Indicator{Target: Vec3{X: 10}})
	if _, err := s.Frame(lookX, Viewport{}, nil); !errors.Is(err, ErrBadViewport) {
		t.Errorf("zero viewport: %v", err)
	}
	if _, err := s.Frame(Camera{}, hd, nil); !errors.Is(err, ErrBadCamera) {
		t.Errorf("zero camera: %v", err)
	}
	if _, err := s.Frame(lookX, Viewport{W: 30, H: 30}, nil); !errors.Is(err, ErrBadOptions) {
		t.Errorf("viewport smaller than the margins: %v", err)
	}
	if st := s.Stats(); st.Frames != 0 || st.Indicators != 1 {
		t.Errorf("Stats after failed frames = %+v", st)
	}
}

func TestFrameDoesNotAllocate(t *testing.T) {
	s := mustNew(t, Options{Budget: Budget{Max: 64, MaxPerRegion: 64}})
	r := rand.New(rand.NewPCG(1, 1))
	for range 1000 {
		s.Add(Indicator{Target: Vec3{r.NormFloat64() * 3000, r.NormFloat64() * 3000, r.NormFloat64() * 100}, Kind: Kind(r.IntN(4))})
	}
	dst := make([]State, 0, 1000)
	mustFrame(t, s, lookX, hd, dst)
	if n := testing.AllocsPerRun(20, func() { s.Frame(lookX, hd, dst) }); n != 0 {
		t.Errorf("Frame allocates %g times per call, want 0", n)
	}
}

// TestConcurrentUse runs writers and frames at once, for the race detector.
func TestConcurrentUse(t *testing.T) {
	s := mustNew(t, Options{})
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			var dst []State
			for range 200 {
				switch r.IntN(5) {
				case 0:
					s.Add(Indicator{Target: Vec3{r.NormFloat64() * 1000, r.NormFloat64() * 1000, 0}})
				case 1:
					s.UpdateLocation(ID(r.IntN(50)+1), Vec3{X: r.NormFloat64() * 1000})
				case 2:
					s.Remove(ID(r.IntN(50) + 1))
				case 3:
					s.SetProfile(Profile{Scale: 1 + r.Float64()})
					s.Stats()
				default:
					f, err := s.Frame(lookX, hd, dst)
					if err != nil {
						t.Error(err)
						return
					}
					dst = f.States
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

// TestMergeCountsBeyondBudget: indicators that would merge into a shown one
// count toward it even when the budget is already full.
func TestMergeCountsBeyondBudget(t *testing.T) {
	s := mustNew(t, Options{Appearance: Appearance{NoFade: true}, Budget: Budget{Max: 1}})
	top, _ := s.Add(Indicator{Target: Vec3{X: 100, Y: -1000}, Priority: 3})
	for range 4 {
		s.Add(Indicator{Target: Vec3{X: 100, Y: -1001}})
	}
	s.Add(Indicator{Target: Vec3{X: 100, Y: 1000}}) // far away: hidden by the budget, not merged
	f := mustFrame(t, s, lookX, hd, nil)
	if len(f.States) != 1 || f.States[0].ID != top || f.States[0].Merged != 4 {
		t.Errorf("states %+v, want only %d with Merged 4", f.States, top)
	}
}

// TestContextualStyleDwell: a shown contextual indicator whose target
// hovers at the screen edge changes style at most once per MinDwell.
func TestContextualStyleDwell(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustNew(t, Options{Budget: Budget{MinDwell: 500 * time.Millisecond}})
		id, _ := s.Add(Indicator{Target: Vec3{X: 100}, Kind: Contextual})
		var dst []State
		changes, last := 0, Style(0)
		for frame := range 300 { // 5 s
			// Just inside, then just outside the right edge.
			y := -100*math.Tan(math.Pi/6)*16/9 + 1 - 2*float64(frame%2)
			s.UpdateLocation(id, Vec3{X: 100, Y: y})
			f := mustFrame(t, s, lookX, hd, dst)
			dst = f.States
			if st, ok := find(f.States, id); ok {
				if last != 0 && st.Style != last {
					changes++
				}
				last = st.Style
			}
			time.Sleep(frameDT)
		}
		if changes > 11 {
			t.Errorf("%d style changes in 5 s, want ≤ 11 (one per 500 ms dwell)", changes)
		}
		if changes == 0 {
			t.Error("the style never changed; the target does not cross the edge")
		}
	})
}

// TestSectors: an indicator with Sectors shows only quantised bearings,
// still on the safe area's boundary.
func TestSectors(t *testing.T) {
	s := mustNew(t, Options{Appearance: Appearance{NoFade: true}, Budget: Budget{NoDwell: true}})
	id, _ := s.Add(Indicator{Kind: ScreenEdge, Sectors: 8})
	seen := map[float64]bool{}
	for deg := 0; deg < 360; deg++ {
		th := float64(deg) * math.Pi / 180
		s.UpdateLocation(id, Vec3{1000 * math.Cos(th), 1000 * math.Sin(th), 300 * math.Sin(3*th)})
		f := mustFrame(t, s, lookX, hd, nil)
		st, ok := find(f.States, id)
		if !ok {
			continue
		}
		k := st.Angle / (math.Pi / 4)
		if math.Abs(k-math.Round(k)) > 1e-9 {
			t.Fatalf("at %d°: angle %g is not a multiple of 45°", deg, st.Angle*180/math.Pi)
		}
		seen[math.Round(k)] = true
		if ux, uy := math.Abs(st.X-960)/940, math.Abs(st.Y-540)/520; math.Abs(math.Max(ux, uy)-1) > 1e-9 {
			t.Fatalf("at %d°: %+v is off the boundary", deg, st)
		}
	}
	if len(seen) < 4 {
		t.Errorf("only %d distinct sectors seen", len(seen))
	}
	if _, err := s.Add(Indicator{Sectors: 400}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("Add(Sectors 400) = %v, want ErrBadOptions", err)
	}
}
