package lora_test

import (
	"fmt"
	"testing"

	"github.com/bodybroker/sdk/batching/lora"
)

// BenchmarkHolds is the cost a router pays per candidate replica to
// prefer one that holds a request's adapter.
func BenchmarkHolds(b *testing.B) {
	var rs []lora.Replica
	for i := range 8 {
		rs = append(rs, lora.Replica{Name: fmt.Sprintf("r%d", i), BaseURL: "http://127.0.0.1:1/v1"})
	}
	m, err := lora.New(lora.Options{Replicas: rs})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	m.Register(lora.Adapter{Name: "smith", Path: "/p"})
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range rs {
			m.Holds(r.Name, "smith")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rs)), "ns/replica")
}
