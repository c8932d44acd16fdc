package indicators_test

import (
	"fmt"
	"math"
	"time"

	"github.com/bodybroker/sdk/indicators"
)

// An off-screen edge glow follows a target that circles the player. While
// the target is on screen (30°, 330°) the edge glow is hidden; behind the
// camera the glow stays on the side the player must turn to and, the
// target being above eye level, passes over the top edge, never through
// the mirrored side or the centre.
func ExampleSet() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	set, err := indicators.New(indicators.Options{
		Now:        func() time.Time { return now },
		Appearance: indicators.Appearance{NoFade: true}, // so each step shows at once
	})
	if err != nil {
		panic(err)
	}
	id, _ := set.Add(indicators.Indicator{Kind: indicators.EdgeGlow, Priority: 2})
	cam := indicators.Camera{Forward: indicators.Vec3{X: 1}, LeftHanded: true} // Unreal: X forward, Y right, Z up
	screen := indicators.Viewport{W: 1920, H: 1080}
	var states []indicators.State
	for deg := 30; deg < 360; deg += 30 {
		th := float64(deg) * math.Pi / 180
		set.UpdateLocation(id, indicators.Vec3{X: 1000 * math.Cos(th), Y: 1000 * math.Sin(th), Z: 200})
		now = now.Add(time.Second)
		f, err := set.Frame(cam, screen, states)
		if err != nil {
			panic(err)
		}
		states = f.States
		for _, st := range f.States {
			fmt.Printf("target at %3d°: %-6v edge at (%4.0f, %4.0f) pointing %4.0f°, behind %v\n",
				deg, st.Region, st.X, st.Y, st.Angle*180/math.Pi, st.Behind)
		}
	}
	// Output:
	// target at  60°: right  edge at (1900,  323) pointing  -13°, behind false
	// target at  90°: right  edge at (1900,  352) pointing  -11°, behind true
	// target at 120°: right  edge at (1900,  323) pointing  -13°, behind true
	// target at 150°: right  edge at (1900,  164) pointing  -22°, behind true
	// target at 180°: top    edge at ( 960,   20) pointing  -90°, behind true
	// target at 210°: left   edge at (  20,  164) pointing -158°, behind true
	// target at 240°: left   edge at (  20,  323) pointing -167°, behind true
	// target at 270°: left   edge at (  20,  352) pointing -169°, behind true
	// target at 300°: left   edge at (  20,  323) pointing -167°, behind false
}

// Project reports where a point lands and whether it is behind the camera;
// Place clamps an off-screen one to the safe area.
func ExampleProjector_Project() {
	p, err := indicators.NewProjector(indicators.Camera{Forward: indicators.Vec3{X: 1}}, indicators.Viewport{W: 1920, H: 1080})
	if err != nil {
		panic(err)
	}
	for _, v := range []indicators.Vec3{{X: 10}, {X: 10, Z: 2}, {X: -10, Y: -3}, {X: -10}} {
		pr := p.Project(v)
		pl, _ := indicators.Place(pr, p.Viewport(), indicators.Uniform(20))
		fmt.Printf("%+v: on screen %v, behind %v, drawn at (%.0f, %.0f) %v\n", v, pr.OnScreen, pr.Behind, pl.X, pl.Y, pl.Region)
	}
	// Output:
	// {X:10 Y:0 Z:0}: on screen true, behind false, drawn at (960, 540) on-screen
	// {X:10 Y:0 Z:2}: on screen true, behind false, drawn at (960, 353) on-screen
	// {X:-10 Y:-3 Z:0}: on screen false, behind true, drawn at (1900, 540) right
	// {X:-10 Y:0 Z:0}: on screen false, behind true, drawn at (960, 1060) bottom
}

// A server sends a hidden enemy's rough bearing and distance band, not its
// position; the client indicates a stand-in location.
func ExampleRoughen() {
	bands := []float64{500, 1500, 4000}
	player := indicators.Vec3{X: 100, Y: 100}
	r, err := indicators.Roughen(player, indicators.Vec3{X: 900, Y: 1020, Z: 40}, 8, bands)
	if err != nil {
		panic(err)
	}
	loc := r.Location(player, bands)
	fmt.Printf("%+v → stand-in at (%.0f, %.0f)\n", r, loc.X, loc.Y)
	// Output:
	// {Sector:1 Sectors:8 Band:1} → stand-in at (807, 807)
}

// The subtlety rule is checked when a set is built.
func ExampleNew_notSubtle() {
	_, err := indicators.New(indicators.Options{Appearance: indicators.Appearance{Size: 120}})
	fmt.Println(err)
	// Output:
	// indicators: style is not subtle: Appearance.Size = 0.167 exceeds 0.04
}
