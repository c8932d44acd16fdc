// Package sim is a discrete-event simulator of a continuous-batching
// inference engine (vLLM V1's scheduler, in its terms) and a generator of
// NPC dialogue workloads, so that engine settings, replica counts and
// routing choices can be compared before a GPU is bought.
//
// # Engine model
//
// Each step the scheduler gives running sequences a token each (decodes)
// or a chunk of their prompt (chunked prefill), within a per-step token
// budget ([Config].MaxBatchedTokens) and a sequence limit (MaxNumSeqs),
// then admits waiting requests while budget and KV blocks last. The KV
// cache is paged: when a decode needs a block and none is free, the most
// recently admitted sequence is preempted and later recomputed. Full
// blocks of a persona prefix and of a conversation's history stay in a
// prefix cache (LRU) and are reused by later requests with the same keys.
// Requests naming a LoRA adapter need one of MaxLoRAs slots. With
// RequestLevel the engine batches as engines did before Orca.
//
// # Step times
//
// A step's duration comes from a [StepModel]: fixed + per prefill token
// (+ a quadratic attention term) + per decoding sequence + per cached
// token attended to. The defaults ([H200Llama8B], [H200Phi3Mini]) are
// least-squares fits to step times measured on one NVIDIA H200 with
// PyTorch (CUDA graphs, bf16, random weights); see the reference profile
// h200-step-profile.json in the project's shared reference material. They
// are not a serving engine's kernels (vLLM's are somewhat faster), so
// read absolute figures as conservative magnitudes and compare shapes.
//
// # Usage
//
// Standalone, [Run] simulates a request sequence on its own virtual
// clock and returns a [Report] (TTFT, inter-token and end-to-end
// p50/p95/p99, throughput, goodput under an [SLO], prefix-cache hit rate):
//
//	reqs, _ := sim.Workload{Players: 10000, Seed: 1}.Requests()
//	rep, err := sim.Run(ctx, sim.Options{Replicas: 4, Routing: sim.RouteSession}, reqs)
//
// Behind the router, [Model] is a router.Model whose replies are paced by
// the same engine in real time (or in testing/synctest's fake time), so
// a router and a per-replica limiter (batching.Limiter) can be tested
// against a realistic engine; [Model.Stats] gives the engine's own
// signals (waiting, KV usage, preemptions, busy time). The package's
// tests compare the adaptive limiter with a sweep of static windows and
// with the original system's ±8 rule this way.
//
// Runs are deterministic: the same Workload (seed included) and Options
// give the same Report. One simulated hour of 10,000 players on four
// replicas (about 760,000 requests) takes about 7 s of CPU.
//
// # Concurrency
//
// Run is a pure function of its inputs; a Model is safe for concurrent
// use.
package sim
