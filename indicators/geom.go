package indicators

import "math"

// Vec3 is a point or direction in world space. The world is Z-up (Unreal
// convention) unless a [Camera] says otherwise through its Up vector. The
// zero value is the origin.
type Vec3 struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	Z float64 `json:"z"`
}

// Add returns v+w.
func (v Vec3) Add(w Vec3) Vec3 { return Vec3{v.X + w.X, v.Y + w.Y, v.Z + w.Z} }

// Sub returns v−w.
func (v Vec3) Sub(w Vec3) Vec3 { return Vec3{v.X - w.X, v.Y - w.Y, v.Z - w.Z} }

// Scale returns v·k.
func (v Vec3) Scale(k float64) Vec3 { return Vec3{v.X * k, v.Y * k, v.Z * k} }

// Dot returns the dot product of v and w.
func (v Vec3) Dot(w Vec3) float64 { return v.X*w.X + v.Y*w.Y + v.Z*w.Z }

// Cross returns the cross product v×w.
func (v Vec3) Cross(w Vec3) Vec3 {
	return Vec3{v.Y*w.Z - v.Z*w.Y, v.Z*w.X - v.X*w.Z, v.X*w.Y - v.Y*w.X}
}

// Len returns the length of v.
func (v Vec3) Len() float64 { return math.Sqrt(v.Dot(v)) }

// finite reports whether every coordinate is a finite number.
func (v Vec3) finite() bool { return finite(v.X) && finite(v.Y) && finite(v.Z) }

// finite reports whether f is neither NaN nor infinite (both give NaN for
// f−f).
func finite(f float64) bool { return f-f == 0 }

// Color is a straight (not premultiplied) RGBA colour with components in
// [0, 1], in sRGB. The zero value is transparent black.
type Color struct {
	R float64 `json:"r"`
	G float64 `json:"g"`
	B float64 `json:"b"`
	A float64 `json:"a"`
}

// Mat4 is a 4×4 matrix in row-major order that maps a world point
// (x, y, z, 1), as a column vector, to clip space: clip = M·p. It follows the
// common OpenGL/Direct3D convention for the rows this package reads: clip x
// points right, clip y up, and clip w is the distance in front of the camera
// (positive in front). Row 2 (clip z) is not used. The zero matrix is
// rejected as singular.
type Mat4 [16]float64

func clamp(x, lo, hi float64) float64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}
