package audio

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkUpdate is one director/mixer update with 1,000 active voices on
// 20 buses, two ducking rules in motion and an ambient crossfade.
//
//	go test -run '^$' -bench BenchmarkUpdate -benchmem ./audio
func BenchmarkUpdate(b *testing.B) {
	buses := []BusConfig{{Name: BusMaster, Volume: 1}}
	for _, n := range []string{BusMusic, BusVoice, BusSFX, BusAmbient, BusUI} {
		buses = append(buses, BusConfig{Name: n, Parent: BusMaster, Volume: 0.9})
	}
	for i := len(buses); i < 20; i++ {
		buses = append(buses, BusConfig{Name: fmt.Sprint("sfx", i), Parent: BusSFX, Volume: 0.8})
	}
	clk := &fakeClock{t: t0}
	d, err := New(Options{Buses: buses, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	d.SetPhase(ctx, "day")
	d.SetWeather(ctx, WeatherRain, 0.7)
	for i := range 1000 {
		bus := buses[1+i%(len(buses)-1)].Name
		if _, err := d.Play(ctx, Voice{ID: fmt.Sprint("v", i), Sound: "s", Bus: bus, Volume: 0.5, Duration: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
	var f Frame
	d.Update(ctx, &f)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clk.Advance(time.Millisecond)
		if err := d.Update(ctx, &f); err != nil {
			b.Fatal(err)
		}
	}
	if len(f.Voices) != 1000 || len(f.Buses) != 20 {
		b.Fatalf("frame has %d voices, %d buses", len(f.Voices), len(f.Buses))
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/update")
}
