// Package vllmmetrics reads an inference engine's Prometheus /metrics page
// into a [Snapshot]: requests running and waiting, KV-cache usage,
// preemptions, token counters, TTFT and inter-token histograms' sums, the
// prefix-cache hit counters and the loaded LoRA adapters. It reads vLLM
// (V1 names, and the V0 names gpu_cache_usage_perc and
// time_per_output_token_seconds) and llama.cpp's server (llamacpp:*,
// started with --metrics). Ollama has no /metrics page.
//
// Parsing uses github.com/prometheus/common/expfmt, not a hand-written
// parser; this package is the only part of batching that links it (the
// core batching package does not, see deps_test.go).
//
// # Usage
//
//	sc, err := vllmmetrics.New(vllmmetrics.Options{URL: "http://10.0.0.5:8000/metrics"})
//	snap, err := sc.Scrape(ctx)
//	// snap.Running, snap.Waiting, snap.KVCacheUsage, snap.Preemptions …
//
// Counters are cumulative, as the engine reports them; the difference of
// two snapshots ([Snapshot.Sub]) gives the rates and means over the
// interval (mean TTFT, mean ITL, preemptions) that an adaptive limiter
// wants.
//
// # Limits
//
// A page is read up to Options.MaxBytes (default 4 MiB; a larger one is
// [ErrTooLarge]), within Options.Timeout (default 5 s).
//
// # Concurrency
//
// A Scraper is safe for concurrent use and owns no goroutine; it needs no
// Close.
package vllmmetrics
