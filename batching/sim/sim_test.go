package sim_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/bodybroker/sdk/batching/sim"
)

func run(t *testing.T, o sim.Options, reqs []sim.Request) *sim.Report {
	t.Helper()
	rep, err := sim.Run(context.Background(), o, slices.Values(reqs))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Completed+rep.Rejected != rep.Requests {
		t.Fatalf("completed %d + rejected %d != requests %d", rep.Completed, rep.Rejected, rep.Requests)
	}
	return rep
}

// burst is n requests arriving at once, with reply lengths spread from
// short to long (as NPC barks and monologues are).
func burst(n, prompt int) []sim.Request {
	reqs := make([]sim.Request, n)
	for i := range reqs {
		reqs[i] = sim.Request{NewTokens: prompt, OutputTokens: 10 + (i*37)%490}
	}
	return reqs
}

// TestOrcaGap: iteration-level (continuous) batching finishes the same
// work sooner and with lower latency than request-level batching, where a
// batch waits for its longest reply (Orca, OSDI '22).
func TestOrcaGap(t *testing.T) {
	reqs := burst(512, 200)
	cfg := sim.Config{MaxNumSeqs: 64}
	cont := run(t, sim.Options{Engine: cfg}, reqs)
	cfg.RequestLevel = true
	static := run(t, sim.Options{Engine: cfg}, reqs)
	t.Logf("continuous: throughput %.0f tok/s, E2E p50 %v; request-level: %.0f tok/s, E2E p50 %v",
		cont.Throughput, cont.E2E.P50, static.Throughput, static.E2E.P50)
	if cont.OutputTokens != static.OutputTokens {
		t.Fatalf("output tokens differ: %d vs %d", cont.OutputTokens, static.OutputTokens)
	}
	if cont.Throughput < 1.3*static.Throughput {
		t.Errorf("continuous throughput %.0f tok/s, want ≥ 1.3 × request-level %.0f", cont.Throughput, static.Throughput)
	}
	if cont.E2E.P50 >= static.E2E.P50 {
		t.Errorf("continuous E2E p50 %v, want below request-level %v", cont.E2E.P50, static.E2E.P50)
	}
	if cont.MeanBatch <= static.MeanBatch {
		t.Errorf("continuous mean batch %.1f, want above request-level %.1f", cont.MeanBatch, static.MeanBatch)
	}
}

// TestSarathiBudget: a smaller per-step token budget chunks long prefills
// finer, so decodes stall less behind them (lower ITL p99) at the cost of
// more fixed per-step overhead (lower throughput): Sarathi-Serve's
// trade-off (OSDI '24).
func TestSarathiBudget(t *testing.T) {
	reqs := burst(256, 3000)
	var small, large *sim.Report
	for _, b := range []struct {
		budget int
		rep    **sim.Report
	}{{512, &small}, {8192, &large}} {
		*b.rep = run(t, sim.Options{Engine: sim.Config{MaxNumSeqs: 64, MaxBatchedTokens: b.budget}}, reqs)
		t.Logf("budget %d: ITL p99 %v, throughput %.0f tok/s, steps %d", b.budget, (*b.rep).ITL.P99, (*b.rep).Throughput, (*b.rep).Steps)
	}
	if small.ITL.P99 >= large.ITL.P99 {
		t.Errorf("ITL p99 with budget 512 = %v, want below budget 8192's %v", small.ITL.P99, large.ITL.P99)
	}
	if small.Throughput >= large.Throughput {
		t.Errorf("throughput with budget 512 = %.0f, want below budget 8192's %.0f", small.Throughput, large.Throughput)
	}
}

// TestPrefixCacheAffinity: routing by session keeps a conversation's
// history on one replica, so more of its prompt comes from the prefix
// cache than when requests are spread round-robin; with the cache off the
// hit rate is zero.
func TestPrefixCacheAffinity(t *testing.T) {
	reqs := collect(t, sim.Workload{Players: 300, Duration: 5 * time.Minute, Seed: 7})
	hit := map[sim.Routing]float64{}
	for _, r := range []sim.Routing{sim.RouteSession, sim.RoutePersona, sim.RouteRoundRobin} {
		rep := run(t, sim.Options{Replicas: 4, Routing: r}, reqs)
		hit[r] = rep.PrefixCacheHitRate
		t.Logf("%v: hit rate %.3f, TTFT p99 %v", r, rep.PrefixCacheHitRate, rep.TTFT.P99)
	}
	if hit[sim.RouteSession] <= hit[sim.RouteRoundRobin] {
		t.Errorf("session affinity hit rate %.3f, want above round-robin's %.3f", hit[sim.RouteSession], hit[sim.RouteRoundRobin])
	}
	off := run(t, sim.Options{Replicas: 4, Routing: sim.RouteSession, Engine: sim.Config{DisablePrefixCache: true}}, reqs)
	if off.PrefixCacheHitRate != 0 {
		t.Errorf("hit rate with the cache off = %v, want 0", off.PrefixCacheHitRate)
	}
	if hit[sim.RouteSession] < 0.5 {
		t.Errorf("session affinity hit rate %.3f, want most of the prompt (persona + history) cached", hit[sim.RouteSession])
	}
}

// TestPreemption: a KV cache too small for the batch preempts sequences
// and recomputes them; every request still completes with its full reply.
func TestPreemption(t *testing.T) {
	reqs := burst(64, 500)
	var want int64
	for _, r := range reqs {
		want += int64(r.OutputTokens)
	}
	rep := run(t, sim.Options{Engine: sim.Config{KVBlocks: 200, MaxNumSeqs: 64}}, reqs)
	if rep.Preemptions == 0 {
		t.Error("no preemptions with a 3,200-token KV cache and 64 × 500-token prompts")
	}
	if rep.OutputTokens != want {
		t.Errorf("output tokens %d, want %d", rep.OutputTokens, want)
	}
	roomy := run(t, sim.Options{Engine: sim.Config{MaxNumSeqs: 64}}, reqs)
	if roomy.Preemptions != 0 {
		t.Errorf("preemptions with the default KV cache = %d, want 0", roomy.Preemptions)
	}
}

// TestLoRASlots: with one adapter slot, requests for two adapters cannot
// share a step, so the run takes longer than with two slots.
func TestLoRASlots(t *testing.T) {
	var reqs []sim.Request
	for i := range 64 {
		reqs = append(reqs, sim.Request{NewTokens: 100, OutputTokens: 100, Adapter: []string{"a", "b"}[i%2]})
	}
	one := run(t, sim.Options{Engine: sim.Config{MaxLoRAs: 1, LoRALoad: 20 * time.Millisecond}}, reqs)
	two := run(t, sim.Options{Engine: sim.Config{MaxLoRAs: 2, LoRALoad: 20 * time.Millisecond}}, reqs)
	if one.Duration <= two.Duration {
		t.Errorf("one slot took %v, want longer than two slots' %v", one.Duration, two.Duration)
	}
	if one.MeanBatch >= two.MeanBatch {
		t.Errorf("one slot mean batch %.1f, want below two slots' %.1f", one.MeanBatch, two.MeanBatch)
	}
}

func TestRejectsWhatNeverFits(t *testing.T) {
	reqs := []sim.Request{
		{NewTokens: 10, OutputTokens: 5},
		{NewTokens: 5000, OutputTokens: 5},
	}
	rep := run(t, sim.Options{Engine: sim.Config{KVBlocks: 100}}, reqs)
	if rep.Rejected != 1 || rep.Completed != 1 {
		t.Errorf("rejected %d, completed %d; want 1 and 1", rep.Rejected, rep.Completed)
	}
	rep = run(t, sim.Options{Engine: sim.Config{DisableChunkedPrefill: true, MaxBatchedTokens: 4096}}, reqs)
	if rep.Rejected != 1 {
		t.Errorf("without chunked prefill: rejected %d, want 1 (prompt over the budget)", rep.Rejected)
	}
}

func TestInvalid(t *testing.T) {
	ctx := context.Background()
	one := slices.Values([]sim.Request{{NewTokens: 1, OutputTokens: 1}})
	for name, o := range map[string]sim.Options{
		"negative seqs":    {Engine: sim.Config{MaxNumSeqs: -1}},
		"budget below seq": {Engine: sim.Config{MaxNumSeqs: 512, MaxBatchedTokens: 256}},
		"negative step":    {Engine: sim.Config{Step: sim.StepModel{DecodePerSeq: -1}}},
		"replicas":         {Replicas: -2},
		"routing":          {Routing: 99},
		"slo":              {SLO: sim.SLO{TTFT: -time.Second}},
	} {
		if _, err := sim.Run(ctx, o, one); !errors.Is(err, sim.ErrInvalidConfig) {
			t.Errorf("%s: err %v, want ErrInvalidConfig", name, err)
		}
	}
	bad := slices.Values([]sim.Request{{NewTokens: 1, OutputTokens: 0}})
	if _, err := sim.Run(ctx, sim.Options{}, bad); !errors.Is(err, sim.ErrInvalidConfig) {
		t.Errorf("zero output: err %v, want ErrInvalidConfig", err)
	}
	backwards := slices.Values([]sim.Request{{Arrival: time.Second, NewTokens: 1, OutputTokens: 1}, {NewTokens: 1, OutputTokens: 1}})
	if _, err := sim.Run(ctx, sim.Options{}, backwards); !errors.Is(err, sim.ErrInvalidConfig) {
		t.Errorf("out of order: err %v, want ErrInvalidConfig", err)
	}
	if _, err := (sim.Workload{}).Requests(); !errors.Is(err, sim.ErrInvalidConfig) {
		t.Errorf("no players: err %v, want ErrInvalidConfig", err)
	}
	if _, err := (sim.Workload{Players: 1, Classes: []sim.Class{{Name: "x", Share: 1}}}).Requests(); !errors.Is(err, sim.ErrInvalidConfig) {
		t.Errorf("class without lengths: err %v, want ErrInvalidConfig", err)
	}
}

func collect(t *testing.T, w sim.Workload) []sim.Request {
	t.Helper()
	seq, err := w.Requests()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Collect(seq)
}

// TestWorkload: the generator is reproducible, ordered, near its mean
// rate, and its multi-turn conversations carry their history.
func TestWorkload(t *testing.T) {
	w := sim.Workload{Players: 1000, Duration: 10 * time.Minute, Seed: 3}
	a, b := collect(t, w), collect(t, w)
	if !slices.Equal(a, b) {
		t.Fatal("same workload, different requests")
	}
	if !slices.IsSortedFunc(a, func(x, y sim.Request) int { return int(x.Arrival - y.Arrival) }) {
		t.Fatal("requests out of arrival order")
	}
	want := w.Rate() * w.Duration.Seconds()
	if got := float64(len(a)); got < 0.85*want || got > 1.15*want {
		t.Errorf("%v requests, want about %.0f", got, want)
	}
	classes := map[string]int{}
	history := 0
	for _, r := range a {
		classes[r.Class]++
		if r.HistoryTokens > 0 {
			history++
		}
		if r.Class == "bark" && r.HistoryTokens != 0 {
			t.Fatalf("a bark with history: %+v", r)
		}
	}
	if classes["bark"] == 0 || classes["dialogue"] == 0 || classes["story"] == 0 || history == 0 {
		t.Errorf("classes %v, %d follow-up turns; want every class and some follow-ups", classes, history)
	}
	// Stopping early ends the generator.
	seq, _ := w.Requests()
	next, stop := iter.Pull(seq)
	next()
	stop()
}

func TestRunHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	seq, _ := sim.Workload{Players: 100, Seed: 1}.Requests()
	if _, err := sim.Run(ctx, sim.Options{}, seq); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

// TestWorkloadAdapters: personas map to LoRA adapters, and an engine with
// fewer adapter slots than adapters in use batches less.
func TestWorkloadAdapters(t *testing.T) {
	reqs := collect(t, sim.Workload{Players: 2000, Duration: 2 * time.Minute, Adapters: 4, Seed: 5})
	seen := map[string]bool{}
	for _, r := range reqs {
		if r.Adapter == "" {
			t.Fatalf("request without an adapter: %+v", r)
		}
		seen[r.Adapter] = true
	}
	if len(seen) != 4 {
		t.Errorf("adapters %v, want 4", seen)
	}
	one := run(t, sim.Options{Engine: sim.Config{MaxLoRAs: 1, LoRALoad: 10 * time.Millisecond}}, reqs)
	four := run(t, sim.Options{Engine: sim.Config{MaxLoRAs: 4, LoRALoad: 10 * time.Millisecond}}, reqs)
	t.Logf("1 slot: TTFT p99 %v, mean batch %.1f; 4 slots: TTFT p99 %v, mean batch %.1f", one.TTFT.P99, one.MeanBatch, four.TTFT.P99, four.MeanBatch)
	if one.TTFT.P99 <= four.TTFT.P99 {
		t.Errorf("TTFT p99 with 1 slot %v, want above 4 slots' %v", one.TTFT.P99, four.TTFT.P99)
	}
}
