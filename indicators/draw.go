package indicators

import (
	"image"
	"math"
)

// Draw renders states onto dst, blending over what is there: a reference
// renderer for designers, golden tests and tools, not a game's renderer.
// Glows are soft ellipses (along the edge when clamped, around the target
// otherwise) whose peak opacity is Alpha × Intensity; markers are their
// Shape, Size pixels across, rotated by Angle, at opacity Alpha. Pixels
// outside dst's bounds are skipped.
func Draw(dst *image.RGBA, states []State) {
	for i := range states {
		st := &states[i]
		switch st.Style {
		case Glow:
			drawGlow(dst, st)
		case Marker:
			drawMarker(dst, st)
		}
	}
}

// blend composites colour c at opacity a over the pixel at (x, y).
func blend(dst *image.RGBA, x, y int, c Color, a float64) {
	if !(image.Point{x, y}.In(dst.Rect)) || a <= 0 {
		return
	}
	a = math.Min(a*c.A, 1)
	o := dst.PixOffset(x, y)
	p := dst.Pix[o : o+4 : o+4]
	mix := func(old uint8, v float64) uint8 {
		return uint8(math.Round(float64(old)*(1-a) + 255*clamp(v, 0, 1)*a))
	}
	p[0], p[1], p[2] = mix(p[0], c.R), mix(p[1], c.G), mix(p[2], c.B)
	p[3] = uint8(math.Round(float64(p[3])*(1-a) + 255*a))
}

func drawGlow(dst *image.RGBA, st *State) {
	// Axes: u along the bearing (across the edge), v along the edge.
	cu, su := math.Cos(st.Angle), math.Sin(st.Angle)
	ru, rv := st.Size, st.Width/2
	if !st.Clamped {
		ru, rv = st.Size, st.Size
	}
	r := math.Max(ru, rv)
	peak := st.Alpha * st.Intensity
	for y := int(math.Floor(st.Y - r)); y <= int(math.Ceil(st.Y+r)); y++ {
		for x := int(math.Floor(st.X - r)); x <= int(math.Ceil(st.X+r)); x++ {
			dx, dy := float64(x)+0.5-st.X, float64(y)+0.5-st.Y
			u, v := (dx*cu+dy*su)/ru, (-dx*su+dy*cu)/rv
			if d := u*u + v*v; d < 1 {
				f := 1 - d
				blend(dst, x, y, st.Color, peak*f*f)
			}
		}
	}
}

// shapes holds each marker outline as a polygon in unit coordinates,
// pointing along +u; Circle is handled apart.
var shapes = [numShapes][][2]float64{
	Chevron:  {{1, 0}, {-1, 0.8}, {-0.4, 0}, {-1, -0.8}},
	Diamond:  {{1, 0}, {0, 0.8}, {-1, 0}, {0, -0.8}},
	Triangle: {{1, 0}, {-0.6, 0.85}, {-0.6, -0.85}},
	Square:   {{0.75, 0.75}, {-0.75, 0.75}, {-0.75, -0.75}, {0.75, -0.75}},
}

func inShape(s Shape, u, v float64) bool {
	if s == Circle || s >= numShapes {
		return u*u+v*v <= 0.8*0.8
	}
	poly := shapes[s]
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a[1] > v) != (b[1] > v) && u < (b[0]-a[0])*(v-a[1])/(b[1]-a[1])+a[0] {
			in = !in
		}
	}
	return in
}

func drawMarker(dst *image.RGBA, st *State) {
	cu, su := math.Cos(st.Angle), math.Sin(st.Angle)
	r := st.Size / 2
	if r <= 0 {
		return
	}
	const ss = 4 // 4×4 supersampling for smooth edges
	for y := int(math.Floor(st.Y - r)); y <= int(math.Ceil(st.Y+r)); y++ {
		for x := int(math.Floor(st.X - r)); x <= int(math.Ceil(st.X+r)); x++ {
			n := 0
			for sy := range ss {
				for sx := range ss {
					dx := float64(x) + (float64(sx)+0.5)/ss - st.X
					dy := float64(y) + (float64(sy)+0.5)/ss - st.Y
					if inShape(st.Shape, (dx*cu+dy*su)/r, (-dx*su+dy*cu)/r) {
						n++
					}
				}
			}
			blend(dst, x, y, st.Color, st.Alpha*float64(n)/(ss*ss))
		}
	}
}
