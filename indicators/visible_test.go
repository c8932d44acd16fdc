package indicators_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/indicators"
)

// The package starts no goroutines; the bus in TestVisibleOverBus does,
// and must stop them all on Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	cam    = indicators.Camera{Forward: indicators.Vec3{X: 1}}
	screen = indicators.Viewport{W: 1920, H: 1080}
)

func TestApply(t *testing.T) {
	now := time.Unix(0, 0)
	s, err := indicators.New(indicators.Options{Now: func() time.Time { return now }, Appearance: indicators.Appearance{NoFade: true}})
	if err != nil {
		t.Fatal(err)
	}
	own, _ := s.Add(indicators.Indicator{Target: indicators.Vec3{X: -50, Y: -600}})
	bands := []float64{500, 1500}
	v := indicators.Visible{Version: 1, PlayerID: "p1", Indicators: []indicators.VisibleIndicator{
		{Key: "chest", Kind: indicators.ScreenEdge, Meaning: indicators.Objective, Target: &indicators.Vec3{X: 100, Y: 900}},
		{Key: "sniper", Kind: indicators.EdgeGlow, Meaning: indicators.Enemy, Rough: &indicators.Rough{Sector: 4, Sectors: 8, Band: 1}},
	}}
	if err := s.Apply(v, indicators.Vec3{}, bands); err != nil {
		t.Fatal(err)
	}
	f, err := s.Frame(cam, screen, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.States) != 3 {
		t.Fatalf("states %+v, want own + chest + sniper", f.States)
	}
	// The sniper is known only as "behind, 500–1500 away": it is drawn at
	// the stand-in location, 1000 units straight behind.
	if st := f.States[2]; st.Meaning != indicators.Enemy || !st.Behind || st.Distance != 1000 {
		t.Errorf("sniper state %+v, want behind at distance 1000", st)
	}

	// The chest moves, the sniper is gone (it fades out; here at once).
	v.Indicators = []indicators.VisibleIndicator{{Key: "chest", Kind: indicators.ScreenEdge, Target: &indicators.Vec3{X: 100, Y: -900}}}
	if err := s.Apply(v, indicators.Vec3{}, bands); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	f, _ = s.Frame(cam, screen, f.States)
	if len(f.States) != 2 || f.States[0].ID != own || f.States[1].Region != indicators.RegionRight {
		t.Errorf("after the update: %+v, want own and the chest on the right", f.States)
	}
	if s.Len() != 2 {
		t.Errorf("Len = %d, want 2", s.Len())
	}

	for _, bad := range []indicators.Visible{
		{Version: 2},
		{Version: 1, Indicators: []indicators.VisibleIndicator{{Key: "", Target: &indicators.Vec3{}}}},
		{Version: 1, Indicators: []indicators.VisibleIndicator{{Key: "a"}}},
		{Version: 1, Indicators: []indicators.VisibleIndicator{{Key: "a", Target: &indicators.Vec3{}, Rough: &indicators.Rough{Sectors: 8}}}},
		{Version: 1, Indicators: []indicators.VisibleIndicator{{Key: "a", Rough: &indicators.Rough{Sector: 9, Sectors: 8}}}},
		{Version: 1, Indicators: []indicators.VisibleIndicator{{Key: "a", Target: &indicators.Vec3{}}, {Key: "a", Target: &indicators.Vec3{}}}},
		{Version: 1, Indicators: []indicators.VisibleIndicator{{Key: "ok", Target: &indicators.Vec3{}}, {Key: "nan", Priority: -1, Target: &indicators.Vec3{}}}},
	} {
		if err := s.Apply(bad, indicators.Vec3{}, bands); !errors.Is(err, indicators.ErrBadOptions) {
			t.Errorf("Apply(%+v) = %v, want ErrBadOptions", bad, err)
		}
	}
	if s.Len() != 2 {
		t.Errorf("Len after rejected payloads = %d, want 2 (nothing applied)", s.Len())
	}
}

// TestVisibleOverBus: a server publishes each player's visible set keyed by
// player; the client subscribes with KeepLatest and applies what arrives.
func TestVisibleOverBus(t *testing.T) {
	ctx := context.Background()
	bus, err := eventbus.New(eventbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	set, _ := indicators.New(indicators.Options{Appearance: indicators.Appearance{NoFade: true}})
	applied := make(chan int, 10)
	sub, err := bus.Subscribe(ctx, indicators.TopicVisible, eventbus.Handle(func(ctx context.Context, ev eventbus.Event, v indicators.Visible) error {
		if ev.Key != "p1" {
			return nil
		}
		if err := set.Apply(v, indicators.Vec3{}, nil); err != nil {
			return err
		}
		applied <- len(v.Indicators)
		return nil
	}), eventbus.SubscribeOptions{Overflow: eventbus.KeepLatest})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	v := indicators.Visible{Version: indicators.VisibleVersion, PlayerID: "p1", Indicators: []indicators.VisibleIndicator{
		{Key: "door", Kind: indicators.ScreenEdge, Target: &indicators.Vec3{X: -10, Y: 3}},
	}}
	if err := eventbus.Publish(ctx, bus, indicators.TopicVisible, v, eventbus.WithKey(v.PlayerID)); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-applied:
		if n != 1 {
			t.Fatalf("applied %d indicators, want 1", n)
		}
	case <-time.After(time.Minute): // only bounds a hang
		t.Fatal("the payload never arrived")
	}
	f, err := set.Frame(cam, screen, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.States) != 1 || f.States[0].Region != indicators.RegionLeft || f.States[0].Kind != indicators.ScreenEdge {
		t.Errorf("states %+v, want one marker on the left", f.States)
	}
}

// FuzzApply decodes arbitrary JSON as a Visible payload and applies it:
// no panic, and the next frame has no NaN.
func FuzzApply(f *testing.F) {
	f.Add([]byte(`{"version":1,"player_id":"p","indicators":[{"key":"a","kind":"screen-edge","target":{"x":-5,"y":2,"z":1}}]}`))
	f.Add([]byte(`{"version":1,"indicators":[{"key":"b","kind":"contextual","meaning":"enemy","rough":{"sector":3,"sectors":8,"band":2}}]}`))
	f.Add([]byte(`{"version":1,"indicators":[{"key":"c","priority":1e308,"target":{"x":1e300}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v indicators.Visible
		if json.Unmarshal(data, &v) != nil {
			return
		}
		s, _ := indicators.New(indicators.Options{})
		if err := s.Apply(v, indicators.Vec3{X: 1}, []float64{100, 1000}); err != nil {
			return
		}
		fr, err := s.Frame(cam, screen, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range fr.States {
			for _, x := range []float64{st.X, st.Y, st.Angle, st.Alpha, st.Intensity, st.Distance} {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					t.Fatalf("non-finite state %+v", st)
				}
			}
		}
	})
}
