package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// GiB is 2³⁰ bytes.
const GiB int64 = 1 << 30

// DType is the data type of the weights and the KV cache, as vLLM's
// --dtype names it.
type DType string

// Supported data types.
const (
	BFloat16 DType = "bfloat16"
	Float16  DType = "float16"
	Float32  DType = "float32"
)

// Bytes returns the size of one element, or 0 for an unknown type.
func (d DType) Bytes() int64 {
	switch d {
	case BFloat16, Float16:
		return 2
	case Float32:
		return 4
	}
	return 0
}

// Model is a decoder's shape: what KV-cache and weight memory depend on.
type Model struct {
	Layers  int
	KVHeads int
	HeadDim int
	// DType is the weight and KV-cache type; "" means BFloat16.
	DType DType
	// Params is the parameter count.
	Params int64
	// MaxContext is the longest context the model supports
	// (max_position_embeddings); 0 means no limit is checked.
	MaxContext int
}

// Model shapes the original tiers used.
var (
	// Llama31_8B is Llama-3.1-8B: 32 layers, 8 KV heads of 128, 8.03 B
	// parameters, a 128 Ki-token context.
	Llama31_8B = Model{Layers: 32, KVHeads: 8, HeadDim: 128, DType: BFloat16, Params: 8_030_000_000, MaxContext: 131072}
	// Phi3Mini is Phi-3-mini-4k: 32 layers, 32 KV heads of 96, 3.82 B
	// parameters, a 4 Ki-token context.
	Phi3Mini = Model{Layers: 32, KVHeads: 32, HeadDim: 96, DType: BFloat16, Params: 3_820_000_000, MaxContext: 4096}
)

func (m Model) dtype() DType {
	if m.DType == "" {
		return BFloat16
	}
	return m.DType
}

// KVBytesPerToken is 2 (K and V) × layers × KV heads × head dim × dtype
// bytes.
func (m Model) KVBytesPerToken() int64 {
	return 2 * int64(m.Layers) * int64(m.KVHeads) * int64(m.HeadDim) * m.dtype().Bytes()
}

// WeightBytes is the parameter count × dtype bytes.
func (m Model) WeightBytes() int64 { return m.Params * m.dtype().Bytes() }

// GPU describes the accelerators one engine instance runs on.
type GPU struct {
	// Memory is one GPU's memory in bytes (an H200 has 141 GiB, an H100
	// 80 GiB, an L4 24 GiB).
	Memory int64
	// Count is the number of GPUs (vLLM's --tensor-parallel-size); 0
	// means 1.
	Count int
}

func (g GPU) count() int { return max(g.Count, 1) }

// Workload is the dialogue traffic one engine instance must serve. Token
// counts are per request; a prompt includes its shared prefix.
type Workload struct {
	// Conversations is how many conversations are generating at once at
	// peak; 0 means "as many as fit".
	Conversations int
	// PrefixTokens is the length of the shared persona/lore prefix that
	// prompts start with; Prefixes is how many distinct ones are live at
	// once (0 means 1 when PrefixTokens > 0). With prefix caching, each is
	// held in the KV cache once.
	PrefixTokens int
	Prefixes     int
	// Prompt and reply lengths in tokens, median and 95th percentile. A
	// zero p50 means the p95.
	PromptP50, PromptP95 int
	ReplyP50, ReplyP95   int
	// TTFT and ITL are the latency SLOs (time to first token, time between
	// tokens); 0 means none. ITL sizes the token budget; TTFT is checked
	// against the step-time model (Spec.Step) when one is given.
	TTFT, ITL time.Duration
}

// Adapter is a LoRA adapter the engine must be able to serve.
type Adapter struct {
	Name string
	Rank int
}

// Step is a step-time model: the duration of one engine step that
// carries P prefill tokens and D decoding sequences holding K KV tokens
// in all is Fixed + P·PerPrefillToken + D·PerDecodeSeq + K·PerKVToken.
type Step struct {
	Fixed           time.Duration
	PerPrefillToken time.Duration
	PerDecodeSeq    time.Duration
	PerKVToken      time.Duration
}

// StepH200Llama8B is the step-time model of a Llama-3.1-8B-shaped decoder
// on one NVIDIA H200 in bf16, from the least-squares fit in
// shared/reference/gpu/h200-step-profile.json (decode fit: fixed 4.494 ms,
// 11.08 µs per sequence, 28.06 ns per KV token; prefill fit: 18.24 µs per
// token). It was measured with PyTorch SDPA under CUDA graphs, not a
// serving engine: vLLM's kernels are somewhat faster.
var StepH200Llama8B = Step{
	Fixed:           4494 * time.Microsecond,
	PerPrefillToken: 18244 * time.Nanosecond,
	PerDecodeSeq:    11081 * time.Nanosecond,
	PerKVToken:      28 * time.Nanosecond,
}

// Time returns the predicted duration of a step with prefill prefill
// tokens and decodes sequences holding kv KV tokens in all.
func (s Step) Time(prefill, decodes int, kv int64) time.Duration {
	return s.Fixed + time.Duration(prefill)*s.PerPrefillToken + time.Duration(decodes)*s.PerDecodeSeq + time.Duration(kv)*s.PerKVToken
}

// Spec is what [Generate] sizes a configuration from.
type Spec struct {
	Model    Model
	GPU      GPU
	Workload Workload
	// Adapters are the LoRA adapters to serve; LoRAsPerBatch is how many
	// distinct ones are expected in one batch (--max-loras; 0 means all of
	// them, at most 8).
	Adapters      []Adapter
	LoRAsPerBatch int
	// Priority makes vLLM schedule by the request's priority
	// (--scheduling-policy priority); set it exactly when the client sends
	// one (router/openai Options.SendPriority).
	Priority bool
	// GPUMemoryUtilization is the fraction of each GPU vLLM may use; 0
	// means 0.9.
	GPUMemoryUtilization float64
	// ActivationReserve is the memory per GPU kept for activations, CUDA
	// graphs and LoRA buffers; 0 means [DefaultActivationReserve].
	ActivationReserve int64
	// MaxModelLen, when non-zero, fixes --max-model-len instead of deriving
	// it from the workload.
	MaxModelLen int
	// Step, when non-zero, sizes --max-num-batched-tokens from the ITL SLO;
	// see [StepH200Llama8B].
	Step Step
}

// Defaults and limits of the generator.
const (
	// DefaultActivationReserve is the per-GPU memory kept out of the KV
	// cache when Spec.ActivationReserve is 0.
	DefaultActivationReserve = 2 * GiB
	// DefaultGPUMemoryUtilization is vLLM's default.
	DefaultGPUMemoryUtilization = 0.9
	// MaxNumSeqsCap is the largest --max-num-seqs the generator emits
	// (vLLM's default on large GPUs).
	MaxNumSeqsCap = 1024
	// MinPrefillChunk is the smallest prefill share of a step's token
	// budget the generator accepts when it fits the budget to an ITL SLO.
	MinPrefillChunk = 256
	// ModelLenAlign is the multiple --max-model-len is rounded up to.
	ModelLenAlign = 256
)

// Why --max-num-seqs has the value it has.
const (
	LimitKVCache       = "kv-cache"      // the KV cache holds no more conversations
	LimitConversations = "conversations" // the workload needs no more
	LimitITL           = "itl"           // more decodes per step would break the ITL SLO
	LimitCap           = "cap"           // MaxNumSeqsCap
)

// Point is the predicted operating point of a configuration.
type Point struct {
	KVBytesPerToken int64
	WeightBytes     int64
	// KVTokens is the KV-cache capacity in tokens, over all GPUs.
	KVTokens int64
	// MaxConcurrency is KVTokens / --max-model-len: the figure vLLM logs at
	// startup as "maximum concurrency for N tokens per request".
	MaxConcurrency float64
	// TokensPerConversation is what one conversation holds in the cache at
	// its p95 length, its shared prefix not counted.
	TokensPerConversation int
	// ConversationsByKV is how many such conversations the cache holds
	// beside the shared prefixes.
	ConversationsByKV int
	// LimitedBy says what set --max-num-seqs (LimitKVCache, …).
	LimitedBy string
	// Shortfall is how many of Workload.Conversations do not fit at once
	// (they queue in the engine).
	Shortfall int
	// StepTime is the predicted step time (the inter-token latency) with
	// every sequence decoding and a full prefill chunk, when Spec.Step is
	// set.
	StepTime time.Duration
	// TTFT is the predicted time to first token of a p95 prompt whose
	// shared prefix is cached, at full load with no queueing: its prefill
	// chunks, one step each. Set when Spec.Step is.
	TTFT time.Duration
}

// Config is a generated configuration for each engine.
type Config struct {
	VLLM     VLLM
	LlamaCpp LlamaCpp
	Ollama   Ollama
	Point    Point
}

// Sentinel errors. Every error from this package matches one of them with
// errors.Is.
var (
	// ErrSpec: a Spec field is missing or out of range; the error is a
	// *SpecError naming it.
	ErrSpec = errors.New("engine: invalid spec")
	// ErrDoesNotFit: the weights (or a single max-model-len sequence) do
	// not fit in the memory given.
	ErrDoesNotFit = errors.New("engine: model does not fit")
	// ErrSLOUnreachable: under the step-time model, not even one sequence
	// meets the ITL SLO, or the ITL-sized token budget makes a p95 prompt's
	// prefill miss the TTFT SLO.
	ErrSLOUnreachable = errors.New("engine: latency SLO unreachable")
	// ErrConstraint: a configuration breaks an engine constraint; the
	// error is a *ConstraintError naming the rule.
	ErrConstraint = errors.New("engine: constraint violated")
)

// SpecError names a bad Spec field.
type SpecError struct {
	Field  string
	Reason string
}

func (e *SpecError) Error() string { return fmt.Sprintf("engine: spec %s: %s", e.Field, e.Reason) }

// Unwrap returns ErrSpec.
func (e *SpecError) Unwrap() error { return ErrSpec }

func (s Spec) validate() error {
	bad := func(f, r string) error { return &SpecError{Field: f, Reason: r} }
	m, w := s.Model, s.Workload
	switch {
	case m.Layers <= 0:
		return bad("Model.Layers", "must be positive")
	case m.KVHeads <= 0:
		return bad("Model.KVHeads", "must be positive")
	case m.HeadDim <= 0:
		return bad("Model.HeadDim", "must be positive")
	case m.Params <= 0:
		return bad("Model.Params", "must be positive")
	case m.dtype().Bytes() == 0:
		return bad("Model.DType", fmt.Sprintf("unknown dtype %q (want bfloat16, float16 or float32)", m.DType))
	case m.MaxContext < 0:
		return bad("Model.MaxContext", "must not be negative")
	case s.GPU.Memory <= 0:
		return bad("GPU.Memory", "must be positive")
	case s.GPU.Count < 0:
		return bad("GPU.Count", "must not be negative")
	case w.Conversations < 0:
		return bad("Workload.Conversations", "must not be negative")
	case w.PrefixTokens < 0 || w.Prefixes < 0:
		return bad("Workload.PrefixTokens", "must not be negative")
	case w.PromptP95 <= 0 && s.MaxModelLen == 0:
		return bad("Workload.PromptP95", "must be positive (or set MaxModelLen)")
	case w.PromptP50 < 0 || w.PromptP50 > w.PromptP95:
		return bad("Workload.PromptP50", "must be between 0 and PromptP95")
	case w.ReplyP95 <= 0 && s.MaxModelLen == 0:
		return bad("Workload.ReplyP95", "must be positive (or set MaxModelLen)")
	case w.ReplyP50 < 0 || w.ReplyP50 > w.ReplyP95:
		return bad("Workload.ReplyP50", "must be between 0 and ReplyP95")
	case w.PrefixTokens > w.PromptP95 && w.PromptP95 > 0:
		return bad("Workload.PrefixTokens", "longer than PromptP95 (a prompt includes its prefix)")
	case w.TTFT < 0 || w.ITL < 0:
		return bad("Workload.ITL", "SLOs must not be negative")
	case s.GPUMemoryUtilization < 0 || s.GPUMemoryUtilization > 1:
		return bad("GPUMemoryUtilization", "must be in (0, 1]")
	case s.ActivationReserve < 0:
		return bad("ActivationReserve", "must not be negative")
	case s.MaxModelLen < 0:
		return bad("MaxModelLen", "must not be negative")
	case s.LoRAsPerBatch < 0:
		return bad("LoRAsPerBatch", "must not be negative")
	case s.LoRAsPerBatch > 0 && len(s.Adapters) == 0:
		return bad("LoRAsPerBatch", "set without Adapters")
	case s.Step.Fixed < 0 || s.Step.PerPrefillToken < 0 || s.Step.PerDecodeSeq < 0 || s.Step.PerKVToken < 0:
		return bad("Step", "durations must not be negative")
	case s.Step != (Step{}) && s.Step.PerPrefillToken == 0:
		return bad("Step.PerPrefillToken", "must be positive when Step is set")
	}
	seen := map[string]bool{}
	for i, a := range s.Adapters {
		switch {
		case a.Name == "":
			return bad(fmt.Sprintf("Adapters[%d].Name", i), "empty")
		case seen[a.Name]:
			return bad(fmt.Sprintf("Adapters[%d].Name", i), fmt.Sprintf("duplicate %q", a.Name))
		case a.Rank <= 0 || a.Rank > maxLoRARank():
			return bad(fmt.Sprintf("Adapters[%d].Rank", i), fmt.Sprintf("%d not in 1..%d", a.Rank, maxLoRARank()))
		}
		seen[a.Name] = true
	}
	return nil
}

// kvTokens returns the KV-cache capacity, in tokens, of gpuUtil of the
// GPUs' memory.
func kvTokens(s Spec, gpuUtil float64) (int64, error) {
	reserve := s.ActivationReserve
	if reserve == 0 {
		reserve = DefaultActivationReserve
	}
	n := int64(s.GPU.count())
	usable := int64(gpuUtil*float64(s.GPU.Memory)) * n
	free := usable - s.Model.WeightBytes() - reserve*n
	if free <= 0 {
		return 0, fmt.Errorf("%w: %d B of weights and %d B of activation reserve exceed %.2f of %d × %d B",
			ErrDoesNotFit, s.Model.WeightBytes(), reserve*n, gpuUtil, n, s.GPU.Memory)
	}
	return free / s.Model.KVBytesPerToken(), nil
}

func p50(a, b int) int {
	if a == 0 {
		return b
	}
	return a
}

// Generate sizes engine configurations for s; see the package
// documentation for the rules. The result passes [VLLM.ValidateFor] with
// the same spec. Errors match ErrSpec, ErrDoesNotFit or
// ErrSLOUnreachable.
func Generate(s Spec) (Config, error) {
	if err := s.validate(); err != nil {
		return Config{}, err
	}
	w := s.Workload
	util := s.GPUMemoryUtilization
	if util == 0 {
		util = DefaultGPUMemoryUtilization
	}
	kv, err := kvTokens(s, util)
	if err != nil {
		return Config{}, err
	}

	modelLen := s.MaxModelLen
	if modelLen == 0 {
		modelLen = roundUp(w.PromptP95+w.ReplyP95, ModelLenAlign)
		if c := s.Model.MaxContext; c > 0 && modelLen > c {
			modelLen = c
		}
	}
	if int64(modelLen) > kv {
		return Config{}, fmt.Errorf("%w: one %d-token sequence needs more than the %d-token KV cache", ErrDoesNotFit, modelLen, kv)
	}

	// Conversations the cache holds at p95 length, shared prefixes once.
	prefixes := w.Prefixes
	if prefixes == 0 && w.PrefixTokens > 0 {
		prefixes = 1
	}
	perConv := max(min(w.PromptP95+w.ReplyP95, modelLen)-w.PrefixTokens, 1)
	byKV := int((kv - int64(prefixes*w.PrefixTokens)) / int64(perConv))
	if byKV < 1 {
		return Config{}, fmt.Errorf("%w: %d shared prefixes of %d tokens fill the %d-token KV cache", ErrDoesNotFit, prefixes, w.PrefixTokens, kv)
	}
	seqs, limit := byKV, LimitKVCache
	if w.Conversations > 0 && w.Conversations <= seqs {
		seqs, limit = w.Conversations, LimitConversations
	}
	if seqs > MaxNumSeqsCap {
		seqs, limit = MaxNumSeqsCap, LimitCap
	}

	// Token budget per step.
	ctx := int64(p50(w.PromptP50, w.PromptP95) + p50(w.ReplyP50, w.ReplyP95)/2)
	var budget int
	switch {
	case s.Step != (Step{}) && w.ITL > 0:
		perSeq := s.Step.PerDecodeSeq + time.Duration(ctx)*s.Step.PerKVToken
		room := w.ITL - s.Step.Fixed - MinPrefillChunk*s.Step.PerPrefillToken
		if room < perSeq {
			return Config{}, fmt.Errorf("%w: a step with one sequence and a %d-token prefill chunk takes %v, over the %v SLO",
				ErrSLOUnreachable, MinPrefillChunk, s.Step.Time(MinPrefillChunk, 1, ctx), w.ITL)
		}
		if n := int(room / perSeq); n < seqs {
			seqs, limit = n, LimitITL
		}
		prefill := int((w.ITL - s.Step.Fixed - time.Duration(seqs)*perSeq) / s.Step.PerPrefillToken)
		budget = seqs + prefill
	case w.ITL > 0 && w.ITL <= 50*time.Millisecond:
		budget = 512 // Sarathi-Serve's strict tail-TBT budget
	case w.ITL > 0 && w.ITL <= 150*time.Millisecond:
		budget = 2048 // Sarathi-Serve's relaxed budget
	case s.GPU.Memory >= 70*GiB:
		budget = 8192 // vLLM's API-server default on H100-class GPUs
	default:
		budget = 2048
	}
	budget = max(budget, seqs) // vLLM: max_num_batched_tokens ≥ max_num_seqs
	var stepTime, ttft time.Duration
	if s.Step != (Step{}) {
		stepTime = s.Step.Time(budget-seqs, seqs, int64(seqs)*ctx)
		// Prefill shares each step with the running decodes.
		chunk := max(budget-seqs, 1)
		uncached := max(w.PromptP95-w.PrefixTokens, 1)
		ttft = time.Duration((uncached+chunk-1)/chunk) * stepTime
		if w.TTFT > 0 && ttft > w.TTFT {
			return Config{}, fmt.Errorf("%w: a %d-token uncached prompt needs %d prefill steps of %v (TTFT %v) under the ITL-sized budget of %d tokens, over the %v TTFT SLO; relax the ITL SLO or shorten prompts",
				ErrSLOUnreachable, uncached, (uncached+chunk-1)/chunk, stepTime.Round(time.Microsecond), ttft.Round(time.Microsecond), budget, w.TTFT)
		}
	}

	v := VLLM{
		DType:                s.Model.dtype(),
		TensorParallelSize:   s.GPU.count(),
		MaxModelLen:          modelLen,
		MaxNumSeqs:           seqs,
		MaxNumBatchedTokens:  budget,
		GPUMemoryUtilization: util,
		EnableChunkedPrefill: true,
		EnablePrefixCaching:  true,
		SchedulingPolicy:     FCFS,
	}
	if s.Priority {
		v.SchedulingPolicy = PriorityPolicy
	}
	if len(s.Adapters) > 0 {
		v.EnableLoRA = true
		v.AllowRuntimeLoRAUpdating = true
		v.MaxLoRAs = s.LoRAsPerBatch
		if v.MaxLoRAs == 0 {
			v.MaxLoRAs = min(len(s.Adapters), 8)
		}
		v.MaxCPULoRAs = max(v.MaxLoRAs, len(s.Adapters))
		top := 0
		for _, a := range s.Adapters {
			top = max(top, a.Rank)
		}
		v.MaxLoRARank = LoRARanks[slices.IndexFunc(LoRARanks, func(r int) bool { return r >= top })]
	}

	// llama.cpp and Ollama: one slot per sequence, each with a whole
	// max-model-len context (-c is the total over slots).
	slots := int(min(int64(seqs), kv/int64(modelLen)))
	lc := LlamaCpp{Parallel: slots, Context: slots * modelLen, BatchSize: min(budget, 2048)}
	ol := Ollama{NumParallel: slots, ContextLength: modelLen}

	pt := Point{
		KVBytesPerToken:       s.Model.KVBytesPerToken(),
		WeightBytes:           s.Model.WeightBytes(),
		KVTokens:              kv,
		MaxConcurrency:        math.Round(float64(kv)/float64(modelLen)*100) / 100,
		TokensPerConversation: perConv,
		ConversationsByKV:     byKV,
		LimitedBy:             limit,
		Shortfall:             max(w.Conversations-seqs, 0),
		StepTime:              stepTime,
		TTFT:                  ttft,
	}
	return Config{VLLM: v, LlamaCpp: lc, Ollama: ol, Point: pt}, nil
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }
