package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/bodybroker/sdk/batching/sim"
)

// BenchmarkHour10kPlayers simulates one hour of 10,000 players on four
// H200 replicas with session affinity. The target is ≤ 10 s per
// iteration on one core: go test -bench Hour10k -benchtime 1x -cpu 1.
func BenchmarkHour10kPlayers(b *testing.B) {
	w := sim.Workload{Players: 10000, Duration: benchDuration, Seed: 1}
	reqs, err := w.Requests()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var rep *sim.Report
	for b.Loop() {
		rep, err = sim.Run(context.Background(), sim.Options{Replicas: 4, Routing: sim.RouteSession}, reqs)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rep.Completed), "requests")
	b.ReportMetric(float64(rep.Steps)/b.Elapsed().Seconds()*float64(b.N), "steps/s")
	b.ReportMetric(rep.Duration.Seconds(), "sim-s")
	b.Logf("%+v", *rep)
}

var benchDuration = time.Hour
