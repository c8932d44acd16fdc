package sim_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/bodybroker/sdk/batching/sim"
)

// Compare continuous batching with request-level batching on the same
// burst of 256 NPC lines, on one simulated H200.
func ExampleRun() {
	var reqs []sim.Request
	for i := range 256 {
		reqs = append(reqs, sim.Request{PersonaKey: "innkeeper", PersonaTokens: 800, NewTokens: 40, OutputTokens: 10 + (i*37)%190})
	}
	for _, requestLevel := range []bool{false, true} {
		rep, err := sim.Run(context.Background(), sim.Options{Engine: sim.Config{MaxNumSeqs: 64, RequestLevel: requestLevel}}, slices.Values(reqs))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("request-level %-5v: %d done in %.1f s, E2E p50 %.1f s, prefix cache hit %.0f%%\n", requestLevel,
			rep.Completed, rep.Duration.Seconds(), rep.E2E.P50.Seconds(), 100*rep.PrefixCacheHitRate)
	}
	// Output:
	// request-level false: 256 done in 3.7 s, E2E p50 2.0 s, prefix cache hit 92%
	// request-level true : 256 done in 5.7 s, E2E p50 3.3 s, prefix cache hit 71%
}

// Generate an hour of NPC traffic for 1,000 players and look at its shape.
func ExampleWorkload() {
	w := sim.Workload{Players: 1000, Duration: time.Hour, Seed: 1}
	reqs, err := w.Requests()
	if err != nil {
		fmt.Println(err)
		return
	}
	n, classes := 0, map[string]int{}
	for r := range reqs {
		n++
		classes[r.Class]++
	}
	fmt.Printf("mean rate %.1f req/s; %d requests: %d barks, %d dialogue turns, %d story turns\n",
		w.Rate(), n, classes["bark"], classes["dialogue"], classes["story"])
	// Output:
	// mean rate 21.2 req/s; 74739 requests: 16206 barks, 41212 dialogue turns, 17321 story turns
}
