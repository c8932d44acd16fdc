package latency_test

import (
	"fmt"
	"time"

	"github.com/bodybroker/sdk/latency"
)

// A Histogram records durations from any number of goroutines; Summary reads
// them back as one plain value, the same type every package's Stats() uses.
func ExampleHistogram() {
	var h latency.Histogram // the zero value is ready to use
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := h.Summary()
	fmt.Println("count:", s.Count)
	fmt.Println("min:", s.Min, "max:", s.Max)
	// Quantiles are within RelativeError (0.78 %) of the exact ones.
	fmt.Println("p50 within bound:", within(s.P50, 50*time.Millisecond))
	fmt.Println("p99 within bound:", within(s.P99, 99*time.Millisecond))
	// Output:
	// count: 100
	// min: 1ms max: 100ms
	// p50 within bound: true
	// p99 within bound: true
}

func within(got, want time.Duration) bool {
	d := float64(got - want)
	return d <= latency.RelativeError*float64(want) && -d <= latency.RelativeError*float64(want)
}
