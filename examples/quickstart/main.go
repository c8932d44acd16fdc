// Command quickstart shows what the Body Broker SDK does, on embedded
// defaults: no servers, no keys, no configuration.
//
//	go run ./examples/quickstart
package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/bodybroker/sdk/internal/stats"
)

func main() {
	fmt.Println("Body Broker SDK quickstart")
	fmt.Println()

	// Every package reports p50/p95/p99 from the same streaming sketch.
	// Here it summarises 100,000 simulated time-to-first-token samples.
	var ttft stats.Histogram
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		ttft.Record(time.Duration((40 + r.ExpFloat64()*25) * float64(time.Millisecond)))
	}
	s := ttft.Snapshot()
	fmt.Printf("latency sketch: %d samples, p50 %v, p95 %v, p99 %v (within %.2f%%)\n",
		s.Count, s.P50.Round(time.Microsecond), s.P95.Round(time.Microsecond),
		s.P99.Round(time.Microsecond), stats.RelativeError*100)
}
