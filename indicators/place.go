package indicators

import (
	"fmt"
	"math"
)

// AreaShape is the outline off-screen markers are clamped to.
type AreaShape uint8

const (
	// Rectangle clamps to the safe rectangle (the viewport inset by the
	// margins).
	Rectangle AreaShape = iota
	// Ellipse clamps to the ellipse inscribed in the safe rectangle.
	Ellipse
)

// Area is the safe area for off-screen markers: the viewport inset by a
// margin on each side, as a rectangle or its inscribed ellipse. The zero
// value is the whole viewport as a rectangle; [Options] defaults the
// margins to the marker size (20 px).
type Area struct {
	Shape                    AreaShape
	Left, Top, Right, Bottom float64 // margins in pixels, ≥ 0
}

// Uniform returns a rectangular Area with the same margin on every side.
func Uniform(margin float64) Area {
	return Area{Left: margin, Top: margin, Right: margin, Bottom: margin}
}

// Rect returns the safe rectangle inside vp: its centre and half extents.
// The error wraps [ErrBadOptions] when the margins leave no area.
func (a Area) Rect(vp Viewport) (cx, cy, hw, hh float64, err error) {
	if a.Shape > Ellipse || !finite(a.Left) || !finite(a.Top) || !finite(a.Right) || !finite(a.Bottom) ||
		a.Left < 0 || a.Top < 0 || a.Right < 0 || a.Bottom < 0 {
		return 0, 0, 0, 0, fmt.Errorf("%w: area %+v", ErrBadOptions, a)
	}
	w, h := vp.W-a.Left-a.Right, vp.H-a.Top-a.Bottom
	if !(w > 0 && h > 0) {
		return 0, 0, 0, 0, fmt.Errorf("%w: margins %+v leave no area in a %gx%g viewport", ErrBadOptions, a, vp.W, vp.H)
	}
	return vp.X + a.Left + w/2, vp.Y + a.Top + h/2, w / 2, h / 2, nil
}

// Region is the part of the screen an indicator occupies, for per-region
// budgets.
type Region uint8

const (
	RegionOnScreen Region = iota // on the target, inside the viewport
	RegionTop                    // clamped to the top edge
	RegionRight                  // clamped to the right edge
	RegionBottom                 // clamped to the bottom edge
	RegionLeft                   // clamped to the left edge
	numRegions
)

var regionNames = [...]string{"on-screen", "top", "right", "bottom", "left"}

func (r Region) String() string {
	if r < numRegions {
		return regionNames[r]
	}
	return fmt.Sprintf("Region(%d)", uint8(r))
}

// Placement is where an indicator is drawn: a plain value from [Place].
type Placement struct {
	X, Y   float64 // screen pixels, Y down
	Angle  float64 // see [Projection.Angle]
	Region Region
	// Clamped reports that the target is off screen and (X, Y) lies on
	// the safe area's boundary.
	Clamped bool

	dx, dy float64 // the direction Angle is computed from, lazily in frames
}

// Place returns where the indicator for p goes: on the target when it is
// on screen, else where the ray from the safe area's centre toward the
// target meets the safe area's boundary. Intersecting along the ray (not
// clamping X and Y independently) keeps the marker moving smoothly along
// the edge, and the result is always defined and inside the safe area
// (the fs2open class of bug cannot happen). vp must be the projector's
// viewport. The error wraps [ErrBadOptions] for an area with no room.
func Place(p Projection, vp Viewport, a Area) (Placement, error) {
	cx, cy, hw, hh, err := a.Rect(vp)
	if err != nil {
		return Placement{}, err
	}
	pl := place(p, a.Shape, cx, cy, hw, hh)
	pl.Angle = math.Atan2(pl.dy, pl.dx)
	return pl, nil
}

func place(p Projection, shape AreaShape, cx, cy, hw, hh float64) Placement {
	if p.OnScreen {
		return Placement{X: p.X, Y: p.Y, Region: RegionOnScreen, dx: p.DirX, dy: p.DirY}
	}
	dx, dy := p.DirX, p.DirY
	if !p.Behind {
		// In front: aim from the safe centre at the projected point, which
		// tends to Dir as the target nears the camera plane.
		if ex, ey := p.X-cx, p.Y-cy; ex != 0 || ey != 0 {
			dx, dy = ex, ey
		}
	}
	return clampDir(dx, dy, shape, cx, cy, hw, hh)
}

// clampDir places a marker where the ray from (cx, cy) along (dx, dy)
// meets the safe area's boundary.
func clampDir(dx, dy float64, shape AreaShape, cx, cy, hw, hh float64) Placement {
	if dx == 0 && dy == 0 {
		dy = 1
	}
	var t float64
	ax, ay := dx/hw, dy/hh
	if shape == Ellipse {
		t = 1 / math.Sqrt(ax*ax+ay*ay)
	} else {
		ax, ay = math.Abs(ax), math.Abs(ay)
		if ax > ay {
			t = 1 / ax
		} else {
			t = 1 / ay
		}
	}
	x, y := cx+dx*t, cy+dy*t
	if !finite(x) || !finite(y) { // a direction too small to scale: fall back to the bottom edge
		x, y, dx, dy = cx, cy+hh, 0, 1
	}
	pl := Placement{
		X: clamp(x, cx-hw, cx+hw), Y: clamp(y, cy-hh, cy+hh),
		Clamped: true, dx: dx, dy: dy,
	}
	// The region is the edge the direction points at, judged against the
	// safe rectangle's diagonals.
	if math.Abs(dx)*hh >= math.Abs(dy)*hw {
		pl.Region = RegionRight
		if dx < 0 {
			pl.Region = RegionLeft
		}
	} else {
		pl.Region = RegionBottom
		if dy < 0 {
			pl.Region = RegionTop
		}
	}
	return pl
}

// Quantize snaps angle (radians) to the centre of the nearest of n equal
// sectors, sector 0 centred on angle 0; n ≤ 0 returns angle unchanged. Use
// it with n = 8 or 16 to show a bearing the player may only know roughly.
func Quantize(angle float64, n int) float64 {
	if n <= 0 || !finite(angle) {
		return angle
	}
	w := 2 * math.Pi / float64(n)
	return w * math.Round(angle/w)
}

// Band returns the index of the distance band d falls in: 0 for d <
// edges[0], i for edges[i-1] ≤ d < edges[i], len(edges) beyond the last.
// edges must be ascending.
func Band(d float64, edges []float64) int {
	for i, e := range edges {
		if d < e {
			return i
		}
	}
	return len(edges)
}

// Rough is what a player may know of a hidden target: a horizontal bearing
// sector and a distance band, not its position. The zero value is sector 0
// of 1 (any bearing) in band 0. A server sends Rough
// instead of coordinates, so a modified client learns nothing more; the
// client turns it back into a stand-in location with [Rough.Location] and
// indicates that.
type Rough struct {
	Sector  int `json:"sector"`  // 0 … Sectors-1, counter-clockwise from the world +X axis
	Sectors int `json:"sectors"` // e.g. 8 or 16
	Band    int `json:"band"`    // index into the distance band edges, see [Band]
}

// Roughen returns the sector (of n around the world Z axis) and distance
// band of target as seen from viewer. Errors wrap [ErrBadTarget] or
// [ErrBadOptions] (n < 1).
func Roughen(viewer, target Vec3, n int, edges []float64) (Rough, error) {
	if err := ValidTarget(viewer); err != nil {
		return Rough{}, err
	}
	if err := ValidTarget(target); err != nil {
		return Rough{}, err
	}
	if n < 1 {
		return Rough{}, fmt.Errorf("%w: %d sectors", ErrBadOptions, n)
	}
	d := target.Sub(viewer)
	w := 2 * math.Pi / float64(n)
	s := int(math.Round(math.Atan2(d.Y, d.X)/w)) % n
	if s < 0 {
		s += n
	}
	return Rough{Sector: s, Sectors: n, Band: Band(math.Hypot(d.X, d.Y), edges)}, nil
}

// Location returns a stand-in world location for r as seen from viewer: on
// the sector's centre line, at the middle of the distance band (the last
// edge for the open outer band, half the first edge for band 0), at the
// viewer's height. With no edges the distance is 1.
func (r Rough) Location(viewer Vec3, edges []float64) Vec3 {
	n := max(r.Sectors, 1)
	a := 2 * math.Pi / float64(n) * float64(r.Sector%n)
	var d float64
	switch b := r.Band; {
	case len(edges) == 0:
		d = 1
	case b <= 0:
		d = edges[0] / 2
	case b >= len(edges):
		d = edges[len(edges)-1]
	default:
		d = (edges[b-1] + edges[b]) / 2
	}
	return Vec3{viewer.X + d*math.Cos(a), viewer.Y + d*math.Sin(a), viewer.Z}
}
