package indicators

import (
	"fmt"
	"math"
)

// MaxCoord bounds the magnitude of every world coordinate this package
// accepts, so that projection arithmetic cannot overflow to infinity.
const MaxCoord = 1e12

// Camera describes the viewer. Give either an orientation (Forward, Up and
// a field of view) or a ViewProjection matrix. The zero value is not a
// usable camera: Forward must be set (or ViewProjection).
type Camera struct {
	// Position is the eye point; distances are measured from it.
	Position Vec3
	// Forward is the view direction; it need not be unit length.
	Forward Vec3
	// Up is the world's up direction as the camera sees it; zero means
	// +Z. It must not be parallel to Forward.
	Up Vec3
	// VerticalFOV is the full vertical field of view in radians; zero
	// means π/3 (60°, about 91° horizontally at 16:9).
	VerticalFOV float64
	// Aspect is width/height of the image; zero means the viewport's.
	Aspect float64
	// Near is the near-plane distance in world units; zero means 0.1.
	// A target closer than Near in the view direction, or behind the
	// camera, is reported as Behind.
	Near float64
	// LeftHanded selects a left-handed world (Unreal: X forward, Y right,
	// Z up). The default is right-handed (X forward, Y left, Z up).
	LeftHanded bool
	// ViewProjection, if non-nil, replaces Forward, Up, VerticalFOV,
	// Aspect and LeftHanded: clip = M·(p, 1) (see [Mat4]). Position
	// still gives distances and Near still applies to clip w.
	ViewProjection *Mat4
}

// Viewport is one player's rectangle on the screen, in pixels, with the
// origin at the top-left corner of the whole screen and Y growing
// downwards (image convention). Split-screen games use one viewport, and
// one [Set], per local player. The zero value is invalid.
type Viewport struct {
	X, Y, W, H float64
}

func (vp Viewport) validate() error {
	if !finite(vp.X) || !finite(vp.Y) || !finite(vp.W) || !finite(vp.H) ||
		vp.W <= 0 || vp.H <= 0 || math.Abs(vp.X) > MaxCoord || math.Abs(vp.Y) > MaxCoord ||
		vp.W > MaxCoord || vp.H > MaxCoord {
		return fmt.Errorf("%w: %+v", ErrBadViewport, vp)
	}
	return nil
}

// Projection is where a world point lands on a viewport: a plain value
// from [Projector.Project].
type Projection struct {
	// X, Y is the projected point in screen pixels (Y down). For a target
	// that is Behind it is not the perspective image (which would be
	// mirrored and could fall on the screen centre) but a point pushed
	// out of the viewport along Dir, so naive clamping still lands on
	// the correct edge.
	X, Y float64
	// DirX, DirY is the unit direction in screen pixels from the viewport
	// centre toward the target, (0, 0) only for a target exactly at the
	// centre of the view. For a target behind the camera it is the
	// direction the player should turn: a target behind and to the right
	// points right; one straight behind points down.
	DirX, DirY float64
	// Depth is the target's distance along the view direction (clip w);
	// negative behind the camera.
	Depth float64
	// Distance is the straight-line distance from the camera position.
	Distance float64
	// OnScreen reports that the target is in front of the near plane and
	// inside the viewport.
	OnScreen bool
	// Behind reports that the target is behind the camera's near plane.
	Behind bool
}

// Angle returns the bearing of Dir in radians, in screen coordinates with
// Y down: 0 points right, π/2 down, −π/2 up, ±π left. It is the clockwise
// rotation to apply to a marker drawn pointing right.
func (p Projection) Angle() float64 { return math.Atan2(p.DirY, p.DirX) }

// Projector projects world points for one camera and viewport. Build it
// once per frame with [NewProjector]; its methods are pure and safe for
// concurrent use. The zero value is not usable.
type Projector struct {
	rx, ry, rw [4]float64
	pos        Vec3
	near       float64
	vp         Viewport
	cx, cy     float64 // viewport centre
	hw, hh     float64 // half extents
}

// NewProjector validates cam and vp and returns their projector. Errors
// wrap [ErrBadCamera] or [ErrBadViewport].
func NewProjector(cam Camera, vp Viewport) (Projector, error) {
	if err := vp.validate(); err != nil {
		return Projector{}, err
	}
	if !cam.Position.finite() || vecTooBig(cam.Position) {
		return Projector{}, fmt.Errorf("%w: position %+v", ErrBadCamera, cam.Position)
	}
	near := cam.Near
	if near == 0 {
		near = 0.1
	}
	if !finite(near) || near <= 0 {
		return Projector{}, fmt.Errorf("%w: near plane %g", ErrBadCamera, cam.Near)
	}
	p := Projector{pos: cam.Position, near: near, vp: vp,
		hw: vp.W / 2, hh: vp.H / 2, cx: vp.X + vp.W/2, cy: vp.Y + vp.H/2}
	if m := cam.ViewProjection; m != nil {
		for _, f := range m {
			if !finite(f) {
				return Projector{}, fmt.Errorf("%w: non-finite view-projection matrix", ErrBadCamera)
			}
		}
		copy(p.rx[:], m[0:4])
		copy(p.ry[:], m[4:8])
		copy(p.rw[:], m[12:16])
		if isZero3(p.rx) || isZero3(p.ry) || isZero3(p.rw) {
			return Projector{}, fmt.Errorf("%w: singular view-projection matrix", ErrBadCamera)
		}
		return p, nil
	}
	fwd := cam.Forward
	if !fwd.finite() || vecTooBig(fwd) || fwd.Len() == 0 {
		return Projector{}, fmt.Errorf("%w: forward %+v", ErrBadCamera, fwd)
	}
	fwd = fwd.Scale(1 / fwd.Len())
	up := cam.Up
	if up == (Vec3{}) {
		up = Vec3{Z: 1}
	}
	if !up.finite() || vecTooBig(up) {
		return Projector{}, fmt.Errorf("%w: up %+v", ErrBadCamera, cam.Up)
	}
	right := fwd.Cross(up)
	if cam.LeftHanded {
		right = right.Scale(-1)
	}
	if l := right.Len(); l < 1e-9*up.Len() || l == 0 {
		return Projector{}, fmt.Errorf("%w: up %+v is parallel to forward", ErrBadCamera, cam.Up)
	} else {
		right = right.Scale(1 / l)
	}
	trueUp := right.Cross(fwd)
	if cam.LeftHanded {
		trueUp = trueUp.Scale(-1)
	}
	fov := cam.VerticalFOV
	if fov == 0 {
		fov = math.Pi / 3
	}
	if !finite(fov) || fov <= 0 || fov >= math.Pi {
		return Projector{}, fmt.Errorf("%w: vertical field of view %g", ErrBadCamera, cam.VerticalFOV)
	}
	aspect := cam.Aspect
	if aspect == 0 {
		aspect = vp.W / vp.H
	}
	if !finite(aspect) || aspect <= 0 {
		return Projector{}, fmt.Errorf("%w: aspect %g", ErrBadCamera, cam.Aspect)
	}
	ty := math.Tan(fov / 2)
	tx := ty * aspect
	row := func(axis Vec3, k float64) [4]float64 {
		a := axis.Scale(k)
		return [4]float64{a.X, a.Y, a.Z, -a.Dot(cam.Position)}
	}
	p.rx, p.ry, p.rw = row(right, 1/tx), row(trueUp, 1/ty), row(fwd, 1)
	return p, nil
}

func isZero3(r [4]float64) bool { return r[0] == 0 && r[1] == 0 && r[2] == 0 }

func vecTooBig(v Vec3) bool {
	return math.Abs(v.X) > MaxCoord || math.Abs(v.Y) > MaxCoord || math.Abs(v.Z) > MaxCoord
}

// Viewport returns the projector's viewport.
func (p *Projector) Viewport() Viewport { return p.vp }

// Project projects a world point. t must be finite and within [MaxCoord]
// (see [ValidTarget]); for other input the result is defined and free of
// NaN but meaningless.
func (p *Projector) Project(t Vec3) Projection {
	xc := p.rx[0]*t.X + p.rx[1]*t.Y + p.rx[2]*t.Z + p.rx[3]
	yc := p.ry[0]*t.X + p.ry[1]*t.Y + p.ry[2]*t.Z + p.ry[3]
	wc := p.rw[0]*t.X + p.rw[1]*t.Y + p.rw[2]*t.Z + p.rw[3]
	d := t.Sub(p.pos)
	out := Projection{Depth: wc, Distance: math.Sqrt(d.Dot(d))}
	if !finite(xc) || !finite(yc) || !finite(wc) || !finite(out.Distance) {
		// Only reachable with input outside the documented range.
		return Projection{X: p.cx, Y: p.vp.Y + p.vp.H*2, DirY: 1, Behind: true, Distance: math.MaxFloat64}
	}
	if wc >= p.near {
		nx, ny := xc/wc, yc/wc
		out.X, out.Y = p.cx+nx*p.hw, p.cy-ny*p.hh
		out.OnScreen = nx >= -1 && nx <= 1 && ny >= -1 && ny <= 1
		dx, dy := nx*p.hw, -ny*p.hh
		if l := math.Sqrt(dx*dx + dy*dy); l > 0 {
			out.DirX, out.DirY = dx/l, dy/l
		}
		return out
	}
	// Behind the near plane. The perspective divide by a negative w would
	// mirror the point; the undivided clip direction is the bearing the
	// player must turn toward, and it agrees with the divided direction
	// just in front of the plane, so the bearing is continuous there.
	out.Behind = true
	dx, dy := xc*p.hw, -yc*p.hh
	l := math.Sqrt(dx*dx + dy*dy)
	if l <= 1e-12*math.Abs(wc)*(p.hw+p.hh) {
		dx, dy, l = 0, 1, 1 // straight behind: the bottom edge
	}
	out.DirX, out.DirY = dx/l, dy/l
	push := 2 * (p.hw + p.hh)
	out.X, out.Y = p.cx+out.DirX*push, p.cy+out.DirY*push
	return out
}

// ValidTarget reports whether t is a location this package accepts: every
// coordinate finite and within [MaxCoord]. The error wraps [ErrBadTarget].
func ValidTarget(t Vec3) error {
	if !t.finite() || vecTooBig(t) {
		return fmt.Errorf("%w: %+v", ErrBadTarget, t)
	}
	return nil
}
