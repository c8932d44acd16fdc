package indicators

import (
	"bytes"
	"encoding/json"
	"flag"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// scene is one golden scene: it draws into img and returns the frames it
// computed.
type scene struct {
	name string
	run  func(t *testing.T, img *image.RGBA) []Frame
}

var small = Viewport{W: 320, H: 180}

// smallOpts suits the 320×180 golden images.
func smallOpts(now *time.Time) Options {
	return Options{
		Now:        func() time.Time { return *now },
		Appearance: Appearance{Size: 8, GlowLength: 40, NoFade: true},
		Area:       Uniform(8),
	}
}

var scenes = []scene{
	{"orbit", func(t *testing.T, img *image.RGBA) []Frame {
		// A target circles the camera slightly above eye level: the glow
		// and the marker follow it around the edges and, behind the
		// camera, along the top, never through the centre.
		now := time.Unix(0, 0)
		s := mustNew(t, smallOpts(&now))
		cam := Camera{Forward: Vec3{X: 1}}
		glow, _ := s.Add(Indicator{Kind: EdgeGlow})
		mark, _ := s.Add(Indicator{Kind: ScreenEdge, Meaning: Objective})
		var frames []Frame
		for i := range 16 {
			th := 2 * math.Pi * float64(i) / 16
			v := Vec3{1000 * math.Cos(th), 1000 * math.Sin(th), 150}
			s.UpdateLocation(glow, v)
			s.UpdateLocation(mark, v)
			now = now.Add(time.Second)
			f := mustFrame(t, s, cam, small, nil)
			Draw(img, f.States)
			frames = append(frames, f)
		}
		return frames
	}},
	{"accessible", func(t *testing.T, img *image.RGBA) []Frame {
		// Deuteranopia palette with shapes, high contrast, a contextual
		// glow on screen, two close markers merged, a budget of four.
		now := time.Unix(0, 0)
		o := smallOpts(&now)
		o.Profile = Profile{CVD: Deuteranopia, HighContrast: true, Scale: 1.5}
		o.Budget = Budget{Max: 4}
		s := mustNew(t, o)
		s.Add(Indicator{Target: Vec3{X: 500, Y: -30, Z: 10}, Kind: Contextual, Meaning: Ally})
		s.Add(Indicator{Target: Vec3{X: 100, Y: 800}, Kind: ScreenEdge, Meaning: Enemy, Priority: 2})
		s.Add(Indicator{Target: Vec3{X: 100, Y: 810}, Kind: ScreenEdge, Meaning: Enemy})
		s.Add(Indicator{Target: Vec3{X: 100, Y: -800, Z: 300}, Kind: ScreenEdge, Meaning: Danger})
		s.Add(Indicator{Target: Vec3{X: -400, Y: -50}, Kind: ScreenEdge, Meaning: Objective})
		s.Add(Indicator{Target: Vec3{X: 100, Z: -900}, Kind: EdgeGlow, Priority: 0.2})
		f := mustFrame(t, s, Camera{Forward: Vec3{X: 1}}, small, nil)
		Draw(img, f.States)
		return []Frame{f}
	}},
	{"splitscreen", func(t *testing.T, img *image.RGBA) []Frame {
		// Two local players, one set and viewport each.
		now := time.Unix(0, 0)
		var frames []Frame
		for i, vp := range []Viewport{{W: 160, H: 180}, {X: 160, W: 160, H: 180}} {
			s := mustNew(t, smallOpts(&now))
			s.Add(Indicator{Target: Vec3{X: -300, Y: 300}, Kind: EdgeGlow})
			s.Add(Indicator{Target: Vec3{X: 300, Y: -600}, Kind: ScreenEdge})
			cam := Camera{Forward: Vec3{X: 1, Y: float64(i)}}
			f := mustFrame(t, s, cam, vp, nil)
			Draw(img, f.States)
			frames = append(frames, f)
		}
		return frames
	}},
}

func TestGolden(t *testing.T) {
	for _, sc := range scenes {
		t.Run(sc.name, func(t *testing.T) {
			img := image.NewRGBA(image.Rect(0, 0, int(small.W), int(small.H)))
			draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{64, 64, 64, 255}}, image.Point{}, draw.Src)
			frames := sc.run(t, img)
			js, err := json.MarshalIndent(roundFrames(frames), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			js = append(js, '\n')
			var pngBuf bytes.Buffer
			if err := png.Encode(&pngBuf, img); err != nil {
				t.Fatal(err)
			}
			jsonPath := filepath.Join("testdata", sc.name+".json")
			pngPath := filepath.Join("testdata", sc.name+".png")
			if *update {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(jsonPath, js, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(pngPath, pngBuf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(jsonPath)
			if err != nil {
				t.Fatalf("%v (run go test ./indicators -update)", err)
			}
			if !bytes.Equal(js, want) {
				t.Errorf("%s differs from the computed frames; run go test ./indicators -run TestGolden -update and review the diff\ngot:\n%s", jsonPath, js)
			}
			f, err := os.Open(pngPath)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			golden, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if n := differentPixels(img, golden); n > 0 {
				t.Errorf("%s: %d pixels differ by more than 2 levels; run with -update and look at the image", pngPath, n)
			}
		})
	}
}

// differentPixels counts pixels that differ by more than 2 levels in any
// channel (rounding may differ across architectures).
func differentPixels(a *image.RGBA, b image.Image) int {
	if a.Bounds() != b.Bounds() {
		return a.Bounds().Dx() * a.Bounds().Dy()
	}
	n := 0
	for y := a.Rect.Min.Y; y < a.Rect.Max.Y; y++ {
		for x := a.Rect.Min.X; x < a.Rect.Max.X; x++ {
			c1 := a.RGBAAt(x, y)
			r, g, bl, al := b.At(x, y).RGBA()
			for _, d := range []int{int(c1.R) - int(r>>8), int(c1.G) - int(g>>8), int(c1.B) - int(bl>>8), int(c1.A) - int(al>>8)} {
				if d > 2 || d < -2 {
					n++
					break
				}
			}
		}
	}
	return n
}

// roundFrames rounds every float to 1/1000 so golden JSON does not depend
// on the last bits of floating-point arithmetic.
func roundFrames(frames []Frame) []Frame {
	r := func(f float64) float64 { return math.Round(f*1000)/1000 + 0 }
	out := make([]Frame, len(frames))
	for i, f := range frames {
		g := f
		g.States = append([]State(nil), f.States...)
		for j := range g.States {
			s := &g.States[j]
			s.X, s.Y, s.Angle, s.Alpha, s.Intensity = r(s.X), r(s.Y), r(s.Angle), r(s.Alpha), r(s.Intensity)
			s.Size, s.Width, s.Distance = r(s.Size), r(s.Width), r(s.Distance)
			s.Color = Color{r(s.Color.R), r(s.Color.G), r(s.Color.B), r(s.Color.A)}
		}
		g.Guide.Position = Vec3{r(g.Guide.Position.X), r(g.Guide.Position.Y), r(g.Guide.Position.Z)}
		out[i] = g
	}
	return out
}
