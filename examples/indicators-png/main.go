// Command indicators-png renders indicator frames to PNG files so a
// designer can look at them: a target circles the player above eye level,
// and an edge glow and a small objective marker follow it around the
// screen edges, including behind the camera, fading in as it leaves the
// screen and out as it comes back. A top-down inset (bottom left) shows
// the camera, its view direction and the target.
//
//	go run ./examples/indicators-png -out /tmp/indicators
//
// It uses a fixed clock, so every run writes the same images.
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/bodybroker/sdk/indicators"
)

func main() {
	out := flag.String("out", "indicators-frames", "directory to write frame-NN.png into")
	n := flag.Int("frames", 24, "number of frames in one orbit")
	flag.Parse()
	files, err := render(*out, *n)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %d frames to %s\n", len(files), *out)
}

// render writes n frames of one orbit into dir and returns their paths.
func render(dir string, n int) ([]string, error) {
	if n < 1 {
		return nil, fmt.Errorf("frames must be positive, got %d", n)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	set, err := indicators.New(indicators.Options{
		Now:     func() time.Time { return now },
		Profile: indicators.Profile{Scale: 1.5},
	})
	if err != nil {
		return nil, err
	}
	glow, _ := set.Add(indicators.Indicator{Kind: indicators.EdgeGlow, Priority: 2})
	marker, _ := set.Add(indicators.Indicator{Kind: indicators.ScreenEdge, Meaning: indicators.Objective})
	cam := indicators.Camera{Position: indicators.Vec3{Z: 170}, Forward: indicators.Vec3{X: 1}, LeftHanded: true}
	vp := indicators.Viewport{W: 640, H: 360}
	orbit := 8 * time.Second
	step := orbit / time.Duration(n)
	var files []string
	var states []indicators.State
	for i := range n {
		th := 2 * math.Pi * float64(i) / float64(n)
		target := indicators.Vec3{X: 1500 * math.Cos(th), Y: 1500 * math.Sin(th), Z: 400}
		set.UpdateLocation(glow, target)
		set.UpdateLocation(marker, target)
		// Step the clock in game frames so fades run as they would in play.
		var f indicators.Frame
		for t := time.Duration(0); t < step; t += time.Second / 60 {
			now = now.Add(time.Second / 60)
			if f, err = set.Frame(cam, vp, states); err != nil {
				return nil, err
			}
			states = f.States
		}
		img := image.NewRGBA(image.Rect(0, 0, int(vp.W), int(vp.H)))
		draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{40, 44, 52, 255}}, image.Point{}, draw.Src)
		crosshair(img)
		inset(img, cam, target)
		indicators.Draw(img, f.States)
		path := filepath.Join(dir, fmt.Sprintf("frame-%02d.png", i))
		if err := writePNG(path, img); err != nil {
			return nil, err
		}
		files = append(files, path)
	}
	return files, nil
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func crosshair(img *image.RGBA) {
	c := color.RGBA{90, 96, 108, 255}
	cx, cy := img.Rect.Dx()/2, img.Rect.Dy()/2
	for d := -6; d <= 6; d++ {
		img.SetRGBA(cx+d, cy, c)
		img.SetRGBA(cx, cy+d, c)
	}
}

// inset draws a 90×90 top-down map in the bottom-left corner: the camera
// at the centre, its view direction, and the target (X up, Y right, as in
// Unreal's top view).
func inset(img *image.RGBA, cam indicators.Camera, target indicators.Vec3) {
	const size, pad = 90, 12
	r := image.Rect(pad, img.Rect.Dy()-pad-size, pad+size, img.Rect.Dy()-pad)
	draw.Draw(img, r, &image.Uniform{color.RGBA{28, 30, 36, 255}}, image.Point{}, draw.Src)
	cx, cy := float64(r.Min.X+size/2), float64(r.Min.Y+size/2)
	scale := float64(size/2-6) / 1500
	toMap := func(v indicators.Vec3) (float64, float64) {
		d := v.Sub(cam.Position)
		return cx + d.Y*scale, cy - d.X*scale
	}
	fx, fy := cam.Forward.X, cam.Forward.Y
	for t := 0.0; t <= 30; t++ {
		img.SetRGBA(int(cx+fy*t), int(cy-fx*t), color.RGBA{120, 130, 150, 255})
	}
	dot(img, cx, cy, 3, color.RGBA{200, 200, 210, 255})
	tx, ty := toMap(target)
	dot(img, tx, ty, 3, color.RGBA{255, 204, 51, 255})
}

func dot(img *image.RGBA, x, y, r float64, c color.RGBA) {
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			if dx*dx+dy*dy <= r*r {
				img.SetRGBA(int(x+dx), int(y+dy), c)
			}
		}
	}
}
