package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/bodybroker/sdk/batching/sim"
)

// BenchmarkHour10kPlayers simulates one hour of 10,000 players (about
// 760,000 requests, 55 million reply tokens) on four H200 replicas with
// session affinity. The target is ≤ 10 s of CPU per hour simulated, on one
// core:
//
//	go test -run '^$' -bench Hour10k -benchtime 1x -cpu 1 ./batching/sim
//
// cpu-s/op is the process's CPU time (user + system) per iteration, where
// the platform reports it; on a shared machine it is the fairer figure,
// since ns/op also counts time spent waiting for the core.
func BenchmarkHour10kPlayers(b *testing.B) {
	w := sim.Workload{Players: 10000, Duration: time.Hour, Seed: 1}
	reqs, err := w.Requests()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var rep *sim.Report
	cpu0 := cpuTime()
	for b.Loop() {
		rep, err = sim.Run(context.Background(), sim.Options{Replicas: 4, Routing: sim.RouteSession}, reqs)
		if err != nil {
			b.Fatal(err)
		}
	}
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	}
	b.ReportMetric(float64(rep.Completed), "requests/op")
	b.ReportMetric(rep.Duration.Hours(), "sim-hours/op")
	b.Logf("TTFT p99 %v, ITL p99 %v, throughput %.0f tok/s, goodput %.1f req/s, prefix hit %.2f, mean batch %.1f",
		rep.TTFT.P99, rep.ITL.P99, rep.Throughput, rep.Goodput, rep.PrefixCacheHitRate, rep.MeanBatch)
}
