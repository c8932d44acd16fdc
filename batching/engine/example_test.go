package engine_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/bodybroker/sdk/batching/engine"
)

func ExampleGenerate() {
	cfg, err := engine.Generate(engine.Spec{
		Model: engine.Llama31_8B,
		GPU:   engine.GPU{Memory: 141 * engine.GiB},
		Workload: engine.Workload{
			Conversations: 400,
			PrefixTokens:  1200, Prefixes: 20,
			PromptP50: 1500, PromptP95: 1800,
			ReplyP50: 60, ReplyP95: 200,
			ITL: 50 * time.Millisecond,
		},
		Adapters: []engine.Adapter{{Name: "blacksmith", Rank: 16}, {Name: "queen", Rank: 64}},
		Priority: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("vllm serve MODEL", strings.Join(cfg.VLLM.Args(), " "))
	fmt.Println(strings.Join(cfg.VLLM.Env(), " "))
	fmt.Println("llama-server", strings.Join(cfg.LlamaCpp.Args(), " "))
	fmt.Println(strings.Join(cfg.Ollama.Env(), " "))
	p := cfg.Point
	fmt.Printf("KV cache %d tokens (%d B/token); max concurrency %.2f at %d tokens; %d conversations fit, limited by %s\n",
		p.KVTokens, p.KVBytesPerToken, p.MaxConcurrency, cfg.VLLM.MaxModelLen, p.ConversationsByKV, p.LimitedBy)
	// Output:
	// vllm serve MODEL --dtype bfloat16 --tensor-parallel-size 1 --max-model-len 2048 --max-num-seqs 400 --max-num-batched-tokens 512 --gpu-memory-utilization 0.9 --enable-chunked-prefill --enable-prefix-caching --scheduling-policy priority --enable-lora --max-loras 2 --max-lora-rank 64 --max-cpu-loras 2
	// VLLM_ALLOW_RUNTIME_LORA_UPDATING=True
	// llama-server -np 400 -c 819200 -b 512
	// OLLAMA_NUM_PARALLEL=400 OLLAMA_CONTEXT_LENGTH=2048
	// KV cache 900652 tokens (131072 B/token); max concurrency 439.77 at 2048 tokens; 1095 conversations fit, limited by conversations
}

// With a step-time model, the token budget and the number of sequences
// follow the ITL SLO instead of a rule of thumb.
func ExampleGenerate_stepModel() {
	cfg, err := engine.Generate(engine.Spec{
		Model: engine.Llama31_8B,
		GPU:   engine.GPU{Memory: 141 * engine.GiB},
		Workload: engine.Workload{
			PromptP95: 1800, ReplyP95: 200,
			ITL: 25 * time.Millisecond, TTFT: 300 * time.Millisecond,
		},
		Step: engine.StepH200Llama8B,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, p := cfg.VLLM, cfg.Point
	fmt.Printf("--max-num-seqs %d (limited by %s) --max-num-batched-tokens %d, predicted step %v, TTFT %v\n",
		v.MaxNumSeqs, p.LimitedBy, v.MaxNumBatchedTokens, p.StepTime.Round(100*time.Microsecond), p.TTFT.Round(time.Millisecond))
	// Output:
	// --max-num-seqs 246 (limited by itl) --max-num-batched-tokens 503, predicted step 25ms, TTFT 200ms
}

func ExampleFromSeed() {
	_, err := engine.FromSeed(engine.Seed{MaxBatchSize: 32, MaxSeqLen: 2048, MaxNumBatchedTokens: 8192, MaxNumSeqs: 256,
		EnableChunkedPrefill: true, PreemptionMode: "swap", GPUMemoryUtilization: 0.9, EnablePrefixCaching: true})
	fmt.Println(err)
	// Output:
	// engine: preemption-swap: preemption_mode "swap" was removed in vLLM V1, which only recomputes preempted requests
}
