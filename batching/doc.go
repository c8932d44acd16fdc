// Package batching decides how much work an LLM engine gets and in what
// shape, from outside the engine.
//
// Continuous batching itself runs inside the engine (vLLM's step
// scheduler, llama.cpp's slots, Ollama's runners); an SDK speaking HTTP
// cannot reorder an engine's step. What it controls is how much is in
// flight per engine, which requests go first, what they carry, and how the
// engine is configured. The router ([github.com/bodybroker/sdk/router])
// owns the one queue per tier and the order (importance, fair rounds by
// player, deadline); this package plugs into it through the router's
// admission seam, [router.Limiter], and never adds a second queue.
//
// # Usage
//
// One [Limiter] per engine replica, set on the replica:
//
//	lim, err := batching.NewLimiter(batching.LimiterOptions{
//		TTFTTarget: 300 * time.Millisecond,
//		ITLTarget:  60 * time.Millisecond,
//		MaxTokens:  kvCapacityTokens, // the token window
//	})
//	...
//	router.Replica{Name: "gpu-0", Model: m, Limiter: lim}
//
// The limiter's window adapts to the engine's latency against the
// objectives (see [Limiter]); [Limiter.Observe] feeds it the engine's own
// signals (requests waiting, KV-cache usage, preemptions) when a
// telemetry source has them. [Limiter.Stats] reports the window, what is in
// flight and why the window last moved.
//
// For APIs that take batches (embeddings, moderation, text to speech), a
// [Batcher] groups single items into batches, flushed at a maximum size or
// after a maximum delay, behind a bounded queue.
//
// # Subpackages
//
// batching/engine generates and validates engine configurations (vLLM,
// llama.cpp, Ollama) from a model's shape, the GPUs and the workload, with
// the predicted operating point (KV capacity in tokens, concurrency), and
// says how the original ContinuousBatchingManager's fields map onto them.
//
// batching/lora manages LoRA adapters across replicas: which replica has
// which adapter loaded, loading missing ones through vLLM's runtime
// endpoints (one call per adapter however many requests want it), and
// evicting the least recently used within the engine's --max-loras.
//
// batching/vllmmetrics scrapes vLLM's and llama.cpp's Prometheus /metrics
// pages (with github.com/prometheus/common/expfmt) into [EngineSignals];
// batching/nvml reads GPU utilization and memory through NVIDIA's NVML and
// returns its ErrUnavailable on a machine without a GPU or driver. Only
// these two link their libraries: the core package links neither, nor
// grpc nor go-redis.
//
// batching/sim is a discrete-event model of a continuous-batching engine
// (step token budget, sequence limit, paged KV cache with preemption,
// chunked prefill, prefix cache, LoRA slots) with an NPC-dialogue workload
// generator. It implements router.Model, so the router and a Limiter can be
// tested against a realistic engine on a virtual clock.
//
// # Concurrency
//
// A Limiter and a Batcher are safe for concurrent use. A Limiter starts no
// goroutine and needs no Close; a Batcher runs one goroutine that
// [Batcher.Shutdown] or [Batcher.Close] stops.
package batching
