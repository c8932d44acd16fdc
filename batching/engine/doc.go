// Package engine generates and validates serving-engine configurations
// for LLM dialogue: vLLM engine arguments, llama.cpp server flags and
// Ollama environment variables, sized from a model's shape, the GPUs it
// runs on and the dialogue workload it must serve.
//
// Continuous batching runs inside the engine; what an SDK speaking HTTP
// controls is how the engine is started. [Generate] turns a [Spec] into a
// [Config] with the predicted operating point (KV-cache capacity in
// tokens, the largest concurrency that fits), and [VLLM.Validate] rejects
// every configuration that vLLM refuses at startup or that cannot hold
// the workload, with a [*ConstraintError] naming the rule.
//
// # Usage
//
//	cfg, err := engine.Generate(engine.Spec{
//		Model:    engine.Llama31_8B,
//		GPU:      engine.GPU{Memory: 141 * engine.GiB, Count: 1},
//		Workload: engine.Workload{Conversations: 400, PrefixTokens: 1200, PromptP95: 1800, ReplyP95: 200, ITL: 50 * time.Millisecond},
//		Priority: true, // router/openai.Options.SendPriority
//	})
//	// cfg.VLLM.Args(): --max-num-seqs 400 --max-num-batched-tokens 512 …
//
// # Sizing rules
//
// KV bytes per token are 2 × layers × KV heads × head dim × dtype bytes.
// The KV cache holds gpu_memory_utilization × memory − weights − an
// activation reserve (Spec.ActivationReserve, default [DefaultActivationReserve]
// per GPU; vLLM measures it by profiling, so this is an estimate).
// --max-model-len is the p95 prompt plus the p95 reply, rounded up to a
// multiple of 256 and capped at the model's context length.
// --max-num-seqs is the number of conversations the cache holds at their
// p95 length, counting each shared persona/lore prefix once (prefix
// caching), capped at the workload's concurrency and at 1024.
// --max-num-batched-tokens follows the inter-token SLO: from the
// step-time model in Spec.Step when given, otherwise Sarathi-Serve's
// budgets (512 for an ITL SLO ≤ 50 ms, 2048 for ≤ 150 ms) and vLLM's
// server defaults beyond (8192 on GPUs of 70 GiB or more, 2048 below).
// With a step-time model, the predicted TTFT of a p95 prompt (its shared
// prefix cached) must also meet Workload.TTFT, or Generate reports
// [ErrSLOUnreachable]: the two SLOs pull the budget in opposite
// directions.
//
// llama.cpp gets one slot per sequence (-np) with a whole --max-model-len
// context each (-c is the total over the slots, which llama.cpp divides),
// as many as the KV cache holds; Ollama gets the same OLLAMA_NUM_PARALLEL
// and OLLAMA_CONTEXT_LENGTH per request.
//
// # The seed's fields
//
// [FromSeed] maps the original BatchingConfig: max_batch_size →
// --max-num-seqs (the smaller of it and max_num_seqs when both are set),
// max_seq_len → --max-model-len (unless max_model_len is set),
// gpu_memory_utilization 0 → the default 0.9 (the seed silently dropped
// it), and preemption_mode "swap" is rejected: vLLM V1 only preempts by
// recompute.
//
// # Concurrency
//
// Every function here is pure; values may be shared freely.
package engine
