package indicators

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

var (
	hd     = Viewport{W: 1920, H: 1080}
	lookX  = Camera{Forward: Vec3{X: 1}}
	lookXL = Camera{Forward: Vec3{X: 1}, LeftHanded: true}
)

func mustProjector(t testing.TB, cam Camera, vp Viewport) Projector {
	t.Helper()
	p, err := NewProjector(cam, vp)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProjectAxes(t *testing.T) {
	p := mustProjector(t, lookX, hd)
	tests := []struct {
		name       string
		cam        Camera
		target     Vec3
		wantX      int // sign of X − centre
		wantY      int // sign of Y − centre
		onScreen   bool
		wantBehind bool
	}{
		{"ahead is the centre", lookX, Vec3{X: 10}, 0, 0, true, false},
		{"up is smaller Y", lookX, Vec3{X: 10, Z: 2}, 0, -1, true, false},
		{"down is larger Y", lookX, Vec3{X: 10, Z: -2}, 0, 1, true, false},
		{"right-handed: -Y is right", lookX, Vec3{X: 10, Y: -2}, 1, 0, true, false},
		{"left-handed (Unreal): +Y is right", lookXL, Vec3{X: 10, Y: 2}, 1, 0, true, false},
		{"far right is off screen", lookX, Vec3{X: 10, Y: -100}, 1, 0, false, false},
		{"behind right points right", lookX, Vec3{X: -10, Y: -3}, 1, 0, false, true},
		{"behind left points left", lookX, Vec3{X: -10, Y: 3}, -1, 0, false, true},
		{"behind above points up", lookX, Vec3{X: -10, Z: 3}, 0, -1, false, true},
		{"straight behind points down", lookX, Vec3{X: -10}, 0, 1, false, true},
		{"behind the near plane", lookX, Vec3{X: 0.01, Y: -1}, 1, 0, false, true},
	}
	sign := func(f float64) int {
		switch {
		case f > 1e-9:
			return 1
		case f < -1e-9:
			return -1
		}
		return 0
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p = mustProjector(t, tt.cam, hd)
			got := p.Project(tt.target)
			if sign(got.X-960) != tt.wantX || sign(got.Y-540) != tt.wantY {
				t.Errorf("Project(%v) = (%g, %g), want signs (%d, %d) around the centre", tt.target, got.X, got.Y, tt.wantX, tt.wantY)
			}
			if sign(got.DirX) != tt.wantX || sign(got.DirY) != tt.wantY {
				t.Errorf("Project(%v) dir = (%g, %g), want signs (%d, %d)", tt.target, got.DirX, got.DirY, tt.wantX, tt.wantY)
			}
			if got.OnScreen != tt.onScreen || got.Behind != tt.wantBehind {
				t.Errorf("Project(%v): OnScreen, Behind = %v, %v; want %v, %v", tt.target, got.OnScreen, got.Behind, tt.onScreen, tt.wantBehind)
			}
		})
	}
}

func TestProjectFOVEdge(t *testing.T) {
	// With a 90° vertical FOV a point at 45° up lands on the top edge.
	p := mustProjector(t, Camera{Forward: Vec3{X: 1}, VerticalFOV: math.Pi / 2}, hd)
	got := p.Project(Vec3{X: 10, Z: 10})
	if math.Abs(got.Y-0) > 1e-9 || math.Abs(got.X-960) > 1e-9 || !got.OnScreen {
		t.Errorf("Project(45° up) = %+v, want (960, 0) on screen", got)
	}
}

func TestProjectMatrixMatchesCamera(t *testing.T) {
	cam := Camera{Position: Vec3{1, 2, 3}, Forward: Vec3{1, 1, -0.2}, VerticalFOV: 1}
	p := mustProjector(t, cam, hd)
	m := Mat4{}
	copy(m[0:4], p.rx[:])
	copy(m[4:8], p.ry[:])
	copy(m[12:16], p.rw[:])
	q := mustProjector(t, Camera{Position: cam.Position, ViewProjection: &m}, hd)
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		v := Vec3{r.NormFloat64() * 100, r.NormFloat64() * 100, r.NormFloat64() * 100}
		if a, b := p.Project(v), q.Project(v); a != b {
			t.Fatalf("Project(%v): camera %+v, matrix %+v", v, a, b)
		}
	}
}

func TestNewProjectorErrors(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		cam  Camera
		vp   Viewport
		want error
	}{
		{"zero viewport", lookX, Viewport{}, ErrBadViewport},
		{"negative width", lookX, Viewport{W: -1, H: 10}, ErrBadViewport},
		{"NaN height", lookX, Viewport{W: 10, H: nan}, ErrBadViewport},
		{"zero camera", Camera{}, hd, ErrBadCamera},
		{"NaN forward", Camera{Forward: Vec3{X: nan}}, hd, ErrBadCamera},
		{"infinite position", Camera{Position: Vec3{Y: math.Inf(1)}, Forward: Vec3{X: 1}}, hd, ErrBadCamera},
		{"up parallel to forward", Camera{Forward: Vec3{Z: 1}}, hd, ErrBadCamera},
		{"FOV of π", Camera{Forward: Vec3{X: 1}, VerticalFOV: math.Pi}, hd, ErrBadCamera},
		{"negative near", Camera{Forward: Vec3{X: 1}, Near: -1}, hd, ErrBadCamera},
		{"negative aspect", Camera{Forward: Vec3{X: 1}, Aspect: -1}, hd, ErrBadCamera},
		{"zero matrix", Camera{ViewProjection: &Mat4{}}, hd, ErrBadCamera},
		{"NaN matrix", Camera{ViewProjection: &Mat4{0: nan}}, hd, ErrBadCamera},
	}
	for _, tt := range tests {
		if _, err := NewProjector(tt.cam, tt.vp); !errors.Is(err, tt.want) {
			t.Errorf("%s: NewProjector = %v, want %v", tt.name, err, tt.want)
		}
	}
	for _, v := range []Vec3{{X: nan}, {Y: math.Inf(-1)}, {Z: 2 * MaxCoord}} {
		if err := ValidTarget(v); !errors.Is(err, ErrBadTarget) {
			t.Errorf("ValidTarget(%v) = %v, want ErrBadTarget", v, err)
		}
	}
}

// randomCamera returns a camera with a random position, direction and FOV.
func randomCamera(r *rand.Rand) Camera {
	for {
		c := Camera{
			Position:    Vec3{r.NormFloat64() * 1000, r.NormFloat64() * 1000, r.NormFloat64() * 100},
			Forward:     Vec3{r.NormFloat64(), r.NormFloat64(), r.NormFloat64() * 0.5},
			VerticalFOV: 0.3 + r.Float64()*2.5,
			LeftHanded:  r.IntN(2) == 0,
		}
		if math.Hypot(c.Forward.X, c.Forward.Y) > 0.05 {
			return c
		}
	}
}

func randomViewport(r *rand.Rand) Viewport {
	return Viewport{X: float64(r.IntN(3)) * 640, Y: float64(r.IntN(2)) * 360, W: 100 + r.Float64()*3000, H: 100 + r.Float64()*2000}
}

// TestPlaceProperties: for random cameras, viewports, areas and targets the
// placement is never NaN, lies inside the safe area, lies on its boundary
// when the target is off screen, and a behind target is never at the
// viewport centre.
func TestPlaceProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 1))
	for i := range 20000 {
		vp := randomViewport(r)
		p := mustProjector(t, randomCamera(r), vp)
		a := Area{Shape: AreaShape(r.IntN(2)), Left: r.Float64() * 40, Top: r.Float64() * 40, Right: r.Float64() * 40, Bottom: r.Float64() * 40}
		scale := math.Pow(10, r.Float64()*8-2) // 0.01 … 1e6 units away
		target := p.pos.Add(Vec3{r.NormFloat64(), r.NormFloat64(), r.NormFloat64()}.Scale(scale))
		pr := p.Project(target)
		pl, err := Place(pr, vp, a)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []float64{pr.X, pr.Y, pr.DirX, pr.DirY, pr.Depth, pr.Distance, pl.X, pl.Y, pl.Angle} {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				t.Fatalf("case %d: non-finite output %+v %+v", i, pr, pl)
			}
		}
		if pr.Behind && math.Hypot(pr.X-(vp.X+vp.W/2), pr.Y-(vp.Y+vp.H/2)) < 1 {
			t.Fatalf("case %d: behind target at the centre: %+v", i, pr)
		}
		if pr.OnScreen {
			continue
		}
		cx, cy, hw, hh, _ := a.Rect(vp)
		if pl.X < cx-hw || pl.X > cx+hw || pl.Y < cy-hh || pl.Y > cy+hh {
			t.Fatalf("case %d: %+v outside the safe area (%g, %g ± %g, %g)", i, pl, cx, cy, hw, hh)
		}
		if !pl.Clamped {
			t.Fatalf("case %d: off-screen target not clamped: %+v", i, pl)
		}
		const eps = 1e-6
		ux, uy := (pl.X-cx)/hw, (pl.Y-cy)/hh
		var onBoundary bool
		if a.Shape == Ellipse {
			onBoundary = math.Abs(ux*ux+uy*uy-1) < eps
		} else {
			onBoundary = math.Abs(math.Max(math.Abs(ux), math.Abs(uy))-1) < eps
		}
		if !onBoundary {
			t.Fatalf("case %d (shape %d): %+v not on the boundary (u = %g, %g)", i, a.Shape, pl, ux, uy)
		}
	}
}

// angleStep is the absolute difference between two angles, wrapped to [0, π].
func angleStep(a, b float64) float64 {
	d := math.Mod(math.Abs(a-b), 2*math.Pi)
	return math.Min(d, 2*math.Pi-d)
}

// TestAngleContinuous: a target orbiting the camera (above or below the
// horizon, so it never passes the straight-behind axis) moves its marker's
// angle by small steps only, also where it crosses behind the camera.
func TestAngleContinuous(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 2))
	for range 200 {
		cam := Camera{Position: Vec3{r.NormFloat64() * 100, r.NormFloat64() * 100, 0}, Forward: Vec3{r.NormFloat64(), r.NormFloat64(), 0}, VerticalFOV: 0.5 + r.Float64()*2}
		vp := randomViewport(r)
		p := mustProjector(t, cam, vp)
		a := Area{Shape: AreaShape(r.IntN(2)), Left: 20, Top: 20, Right: 20, Bottom: 20}
		radius := 10 + r.Float64()*1000
		elev := (0.2 + r.Float64()) * radius
		if r.IntN(2) == 0 {
			elev = -elev
		}
		const steps = 3600
		prev := math.NaN()
		for i := range steps + 1 {
			th := 2 * math.Pi * float64(i) / steps
			target := cam.Position.Add(Vec3{radius * math.Cos(th), radius * math.Sin(th), elev})
			pr := p.Project(target)
			pl, _ := Place(pr, vp, a)
			if pr.OnScreen { // on screen the angle is the point's own; skip
				prev = math.NaN()
				continue
			}
			if !math.IsNaN(prev) && angleStep(prev, pl.Angle) > 0.2 {
				t.Fatalf("angle jumps from %g to %g at orbit angle %g (elevation %g, radius %g, behind %v)", prev, pl.Angle, th, elev, radius, pr.Behind)
			}
			prev = pl.Angle
		}
	}
}

// TestBehindRule: a target passing straight behind the camera flips sides
// through the bottom edge, never through the centre.
func TestBehindRule(t *testing.T) {
	p := mustProjector(t, lookX, hd)
	pl, _ := Place(p.Project(Vec3{X: -100}), hd, Uniform(20))
	if pl.Region != RegionBottom || math.Abs(pl.Y-(1080-20)) > 1e-9 || math.Abs(pl.X-960) > 1e-9 {
		t.Errorf("straight behind placed at %+v, want the bottom edge centre", pl)
	}
	left, _ := Place(p.Project(Vec3{X: -100, Y: 1}), hd, Uniform(20))
	right, _ := Place(p.Project(Vec3{X: -100, Y: -1}), hd, Uniform(20))
	if left.Region != RegionLeft || right.Region != RegionRight {
		t.Errorf("just left/right of straight behind: regions %v, %v; want left, right", left.Region, right.Region)
	}
}

func TestQuantizeAndRough(t *testing.T) {
	if got := Quantize(0.5, 8); got != math.Pi/4 {
		t.Errorf("Quantize(0.5, 8) = %g, want π/4", got)
	}
	if got := Quantize(0.3, 0); got != 0.3 {
		t.Errorf("Quantize(0.3, 0) = %g, want unchanged", got)
	}
	edges := []float64{10, 50, 200}
	viewer := Vec3{100, 100, 5}
	rough, err := Roughen(viewer, Vec3{100, 130, 0}, 16, edges)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Rough{Sector: 4, Sectors: 16, Band: 1}); rough != want {
		t.Errorf("Roughen = %+v, want %+v", rough, want)
	}
	loc := rough.Location(viewer, edges)
	if math.Abs(loc.X-100) > 1e-9 || math.Abs(loc.Y-130) > 1e-9 || loc.Z != 5 {
		t.Errorf("Location = %+v, want (100, 130, 5)", loc)
	}
	if _, err := Roughen(viewer, Vec3{X: math.NaN()}, 8, nil); !errors.Is(err, ErrBadTarget) {
		t.Errorf("Roughen(NaN) = %v, want ErrBadTarget", err)
	}
	r, _ := Roughen(Vec3{}, Vec3{X: -1, Y: -0.01}, 8, edges)
	if r.Sector != 4 {
		t.Errorf("sector of -X = %d, want 4", r.Sector)
	}
}

func FuzzProject(f *testing.F) {
	f.Add(1.0, 0.0, 0.0, 10.0, 1.0, 2.0, 1.0, 0.0)
	f.Add(1.0, 0.0, 0.0, -10.0, 0.0, 0.0, 0.0, 20.0)
	f.Fuzz(func(t *testing.T, fx, fy, fz, tx, ty, tz, fov, margin float64) {
		p, err := NewProjector(Camera{Forward: Vec3{fx, fy, fz}, VerticalFOV: fov}, hd)
		if err != nil {
			return
		}
		v := Vec3{tx, ty, tz}
		if ValidTarget(v) != nil {
			return
		}
		pr := p.Project(v)
		pl, err := Place(pr, hd, Area{Shape: Ellipse, Left: margin, Top: margin, Right: margin, Bottom: margin})
		if err != nil {
			return
		}
		for _, f := range []float64{pr.X, pr.Y, pr.DirX, pr.DirY, pl.X, pl.Y, pl.Angle} {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				t.Fatalf("non-finite: %+v %+v", pr, pl)
			}
		}
	})
}
