package indicators

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkFrame10k computes frames for 10,000 targets scattered around a
// turning camera, reusing the output slice. The target: ≤ 1 ms a
// frame on one core (≤ 100 ns a target), 0 allocations after warm-up.
//
//	go test ./indicators -run '^$' -bench Frame10k -benchtime 2s -cpu 1
func BenchmarkFrame10k(b *testing.B) {
	const n = 10000
	now := time.Unix(0, 0)
	s, err := New(Options{Now: func() time.Time { return now }, Budget: Budget{Max: 16, MaxPerRegion: 5}})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(10, 0))
	for i := range n {
		s.Add(Indicator{
			Target:   Vec3{r.NormFloat64() * 3000, r.NormFloat64() * 3000, r.NormFloat64() * 200},
			Kind:     Kind(i % int(numKinds)),
			Priority: 0.5 + r.Float64(),
			Meaning:  Meaning(i % int(numMeanings)),
		})
	}
	dst := make([]State, 0, n)
	cam := Camera{Forward: Vec3{X: 1}, Position: Vec3{Z: 2}}
	if _, err := s.Frame(cam, hd, dst); err != nil { // warm-up: grows the set's scratch slices
		b.Fatal(err)
	}
	frame := 0
	b.ReportAllocs()
	for b.Loop() {
		frame++
		now = now.Add(time.Second / 60)
		cam.Forward = Vec3{X: float64(frame%100) - 50, Y: 50}
		f, err := s.Frame(cam, hd, dst)
		if err != nil {
			b.Fatal(err)
		}
		dst = f.States
	}
	perFrame := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perFrame/n, "ns/target")
	b.ReportMetric(perFrame/1e6, "ms/frame")
}

// BenchmarkProject is the pure projection and placement of one point.
func BenchmarkProject(b *testing.B) {
	p := mustProjector(b, Camera{Forward: Vec3{1, 0.3, 0}}, hd)
	v := Vec3{-100, 40, 3}
	var sink Placement
	b.ReportAllocs()
	for b.Loop() {
		v.Y++
		sink = place(p.Project(v), Rectangle, 960, 540, 940, 520)
	}
	_ = sink
}
