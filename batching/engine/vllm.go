package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Scheduling policies (--scheduling-policy).
const (
	FCFS           = "fcfs"
	PriorityPolicy = "priority"
)

// LoRARanks are the values vLLM accepts for --max-lora-rank.
var LoRARanks = []int{1, 8, 16, 32, 64, 128, 256, 320, 512}

func maxLoRARank() int { return LoRARanks[len(LoRARanks)-1] }

// VLLM is a vLLM (V1) engine configuration. The zero value is not valid:
// [Generate] fills one, [ParseVLLMArgs] reads one, [VLLM.Validate] checks
// one.
type VLLM struct {
	DType                DType   // --dtype
	TensorParallelSize   int     // --tensor-parallel-size
	MaxModelLen          int     // --max-model-len
	MaxNumSeqs           int     // --max-num-seqs
	MaxNumBatchedTokens  int     // --max-num-batched-tokens
	GPUMemoryUtilization float64 // --gpu-memory-utilization
	EnableChunkedPrefill bool    // --[no-]enable-chunked-prefill (always on in V1)
	EnablePrefixCaching  bool    // --[no-]enable-prefix-caching
	// Partial prefills (0 means vLLM's default, 1).
	MaxNumPartialPrefills  int    // --max-num-partial-prefills
	MaxLongPartialPrefills int    // --max-long-partial-prefills
	SchedulingPolicy       string // --scheduling-policy: FCFS or PriorityPolicy ("" means FCFS)
	EnableLoRA             bool   // --enable-lora
	MaxLoRAs               int    // --max-loras
	MaxLoRARank            int    // --max-lora-rank
	MaxCPULoRAs            int    // --max-cpu-loras
	// AllowRuntimeLoRAUpdating sets VLLM_ALLOW_RUNTIME_LORA_UPDATING=True,
	// which enables /v1/load_lora_adapter and /v1/unload_lora_adapter (see
	// package batching/lora).
	AllowRuntimeLoRAUpdating bool
}

// Args returns the configuration as `vllm serve` flags, in a fixed order;
// [ParseVLLMArgs] reads them back.
func (v VLLM) Args() []string {
	var a []string
	flag := func(name string, val any) { a = append(a, "--"+name, fmt.Sprint(val)) }
	onOff := func(name string, on bool) {
		if on {
			a = append(a, "--"+name)
		} else {
			a = append(a, "--no-"+name)
		}
	}
	if v.DType != "" {
		flag("dtype", v.DType)
	}
	flag("tensor-parallel-size", v.TensorParallelSize)
	flag("max-model-len", v.MaxModelLen)
	flag("max-num-seqs", v.MaxNumSeqs)
	flag("max-num-batched-tokens", v.MaxNumBatchedTokens)
	flag("gpu-memory-utilization", strconv.FormatFloat(v.GPUMemoryUtilization, 'g', -1, 64))
	onOff("enable-chunked-prefill", v.EnableChunkedPrefill)
	onOff("enable-prefix-caching", v.EnablePrefixCaching)
	if v.MaxNumPartialPrefills != 0 {
		flag("max-num-partial-prefills", v.MaxNumPartialPrefills)
	}
	if v.MaxLongPartialPrefills != 0 {
		flag("max-long-partial-prefills", v.MaxLongPartialPrefills)
	}
	if v.SchedulingPolicy != "" {
		flag("scheduling-policy", v.SchedulingPolicy)
	}
	if v.EnableLoRA {
		a = append(a, "--enable-lora")
		flag("max-loras", v.MaxLoRAs)
		flag("max-lora-rank", v.MaxLoRARank)
		flag("max-cpu-loras", v.MaxCPULoRAs)
	}
	return a
}

// Env returns the environment variables the configuration needs, as
// KEY=value.
func (v VLLM) Env() []string {
	if v.AllowRuntimeLoRAUpdating {
		return []string{"VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"}
	}
	return nil
}

// ErrArgs: ParseVLLMArgs met a flag it does not know or a bad value.
var ErrArgs = errors.New("engine: bad vllm arguments")

// ParseVLLMArgs reads the flags [VLLM.Args] writes (both "--flag value"
// and "--flag=value" forms) and the environment [VLLM.Env] writes. Flags
// it does not know are an error matching ErrArgs, so that a configuration
// it cannot check is not mistaken for a checked one.
func ParseVLLMArgs(args, env []string) (VLLM, error) {
	var v VLLM
	for _, e := range env {
		if k, val, ok := strings.Cut(e, "="); ok && k == "VLLM_ALLOW_RUNTIME_LORA_UPDATING" {
			v.AllowRuntimeLoRAUpdating = val == "True" || val == "true" || val == "1"
		}
	}
	ints := map[string]*int{
		"tensor-parallel-size":      &v.TensorParallelSize,
		"max-model-len":             &v.MaxModelLen,
		"max-num-seqs":              &v.MaxNumSeqs,
		"max-num-batched-tokens":    &v.MaxNumBatchedTokens,
		"max-num-partial-prefills":  &v.MaxNumPartialPrefills,
		"max-long-partial-prefills": &v.MaxLongPartialPrefills,
		"max-loras":                 &v.MaxLoRAs,
		"max-lora-rank":             &v.MaxLoRARank,
		"max-cpu-loras":             &v.MaxCPULoRAs,
	}
	bools := map[string]*bool{
		"enable-chunked-prefill": &v.EnableChunkedPrefill,
		"enable-prefix-caching":  &v.EnablePrefixCaching,
		"enable-lora":            &v.EnableLoRA,
	}
	for i := 0; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		if !ok || name == "" {
			return VLLM{}, fmt.Errorf("%w: %q is not a flag", ErrArgs, args[i])
		}
		if b, ok := bools[name]; ok {
			*b = true
			continue
		}
		if b, ok := bools[strings.TrimPrefix(name, "no-")]; ok && strings.HasPrefix(name, "no-") {
			*b = false
			continue
		}
		name, val, hasVal := strings.Cut(name, "=")
		if !hasVal {
			if i+1 >= len(args) {
				return VLLM{}, fmt.Errorf("%w: --%s needs a value", ErrArgs, name)
			}
			i++
			val = args[i]
		}
		if p, ok := ints[name]; ok {
			n, err := strconv.Atoi(val)
			if err != nil {
				return VLLM{}, fmt.Errorf("%w: --%s %q: not an integer", ErrArgs, name, val)
			}
			*p = n
			continue
		}
		switch name {
		case "dtype":
			v.DType = DType(val)
		case "gpu-memory-utilization":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return VLLM{}, fmt.Errorf("%w: --%s %q: not a number", ErrArgs, name, val)
			}
			v.GPUMemoryUtilization = f
		case "scheduling-policy":
			v.SchedulingPolicy = val
		default:
			return VLLM{}, fmt.Errorf("%w: unknown flag --%s", ErrArgs, name)
		}
	}
	return v, nil
}

// Rule names one constraint a configuration must meet.
type Rule string

// The rules [VLLM.Validate], [VLLM.ValidateFor], [LlamaCpp.Validate],
// [Ollama.Validate] and [FromSeed] check. The vLLM ones come from
// vllm/config/scheduler.py, vllm/config/lora.py and vLLM's startup checks.
const (
	RulePositive                    Rule = "positive"                       // sizes must be ≥ 1
	RuleGPUMemoryUtilization        Rule = "gpu-memory-utilization"         // in (0, 1]
	RuleDType                       Rule = "dtype"                          // bfloat16, float16, float32
	RuleBatchedTokensBelowSeqs      Rule = "batched-tokens-below-seqs"      // max_num_batched_tokens ≥ max_num_seqs
	RuleBatchedTokensBelowModelLen  Rule = "batched-tokens-below-model-len" // without chunked prefill: max_num_batched_tokens ≥ max_model_len
	RuleLongPartialPrefills         Rule = "long-partial-prefills"          // max_long_partial_prefills ≤ max_num_partial_prefills
	RulePartialPrefillsNeedChunking Rule = "partial-prefills-need-chunking" // max_num_partial_prefills > 1 requires chunked prefill
	RuleSchedulingPolicy            Rule = "scheduling-policy"              // fcfs or priority
	RuleLoRARank                    Rule = "lora-rank"                      // max_lora_rank in LoRARanks
	RuleMaxLoRAs                    Rule = "max-loras"                      // with --enable-lora, max_loras ≥ 1
	RuleCPULoRAs                    Rule = "cpu-loras"                      // max_cpu_loras ≥ max_loras
	RuleRuntimeLoRANeedsLoRA        Rule = "runtime-lora-needs-lora"        // runtime adapter loading needs --enable-lora
	RulePreemptionSwap              Rule = "preemption-swap"                // vLLM V1 preempts by recompute only
	RuleModelLenOverContext         Rule = "model-len-over-context"         // max_model_len ≤ the model's context length
	RuleWeightsDoNotFit             Rule = "weights-do-not-fit"             // weights fit in gpu_memory_utilization × memory
	RuleModelLenOverKVCache         Rule = "model-len-over-kv-cache"        // one max_model_len sequence fits in the KV cache
	RuleAdapterRank                 Rule = "adapter-rank"                   // every adapter's rank ≤ max_lora_rank
	RuleAdaptersNeedLoRA            Rule = "adapters-need-lora"             // adapters to serve need --enable-lora
	RulePriorityNeedsPolicy         Rule = "priority-needs-policy"          // a client sending priority needs --scheduling-policy priority
	RuleSlotContext                 Rule = "slot-context"                   // llama.cpp: -c / -np ≥ the longest conversation
)

// ConstraintError is one broken rule.
type ConstraintError struct {
	Rule Rule
	Msg  string
}

func (e *ConstraintError) Error() string { return fmt.Sprintf("engine: %s: %s", e.Rule, e.Msg) }

// Unwrap returns ErrConstraint.
func (e *ConstraintError) Unwrap() error { return ErrConstraint }

type checker struct{ errs []error }

func (c *checker) fail(r Rule, format string, args ...any) {
	c.errs = append(c.errs, &ConstraintError{Rule: r, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error { return errors.Join(c.errs...) }

// Validate checks the rules vLLM itself enforces at startup, and returns
// every broken one joined (each a *ConstraintError, all matching
// ErrConstraint), or nil.
func (v VLLM) Validate() error {
	var c checker
	v.check(&c)
	return c.err()
}

func (v VLLM) check(c *checker) {
	for _, f := range []struct {
		name string
		n    int
	}{
		{"--tensor-parallel-size", v.TensorParallelSize},
		{"--max-model-len", v.MaxModelLen},
		{"--max-num-seqs", v.MaxNumSeqs},
		{"--max-num-batched-tokens", v.MaxNumBatchedTokens},
	} {
		if f.n < 1 {
			c.fail(RulePositive, "%s is %d, want ≥ 1", f.name, f.n)
		}
	}
	if v.MaxNumPartialPrefills < 0 || v.MaxLongPartialPrefills < 0 {
		c.fail(RulePositive, "partial-prefill limits must not be negative")
	}
	if !(v.GPUMemoryUtilization > 0 && v.GPUMemoryUtilization <= 1) {
		c.fail(RuleGPUMemoryUtilization, "--gpu-memory-utilization is %g, want in (0, 1]", v.GPUMemoryUtilization)
	}
	if v.DType != "" && v.DType.Bytes() == 0 {
		c.fail(RuleDType, "--dtype %q, want bfloat16, float16 or float32", v.DType)
	}
	if v.MaxNumSeqs >= 1 && v.MaxNumBatchedTokens >= 1 && v.MaxNumBatchedTokens < v.MaxNumSeqs {
		c.fail(RuleBatchedTokensBelowSeqs, "--max-num-batched-tokens %d is below --max-num-seqs %d", v.MaxNumBatchedTokens, v.MaxNumSeqs)
	}
	if !v.EnableChunkedPrefill && v.MaxNumBatchedTokens >= 1 && v.MaxNumBatchedTokens < v.MaxModelLen {
		c.fail(RuleBatchedTokensBelowModelLen, "without chunked prefill, --max-num-batched-tokens %d must be ≥ --max-model-len %d (a prompt cannot be split)", v.MaxNumBatchedTokens, v.MaxModelLen)
	}
	partial, long := max(v.MaxNumPartialPrefills, 1), max(v.MaxLongPartialPrefills, 1)
	if long > partial {
		c.fail(RuleLongPartialPrefills, "--max-long-partial-prefills %d exceeds --max-num-partial-prefills %d", long, partial)
	}
	if partial > 1 && !v.EnableChunkedPrefill {
		c.fail(RulePartialPrefillsNeedChunking, "--max-num-partial-prefills %d needs chunked prefill", partial)
	}
	if v.SchedulingPolicy != "" && v.SchedulingPolicy != FCFS && v.SchedulingPolicy != PriorityPolicy {
		c.fail(RuleSchedulingPolicy, "--scheduling-policy %q, want fcfs or priority", v.SchedulingPolicy)
	}
	if v.EnableLoRA {
		if !slices.Contains(LoRARanks, v.MaxLoRARank) {
			c.fail(RuleLoRARank, "--max-lora-rank %d, want one of %v", v.MaxLoRARank, LoRARanks)
		}
		if v.MaxLoRAs < 1 {
			c.fail(RuleMaxLoRAs, "--max-loras %d, want ≥ 1", v.MaxLoRAs)
		}
		if v.MaxCPULoRAs < v.MaxLoRAs {
			c.fail(RuleCPULoRAs, "--max-cpu-loras %d is below --max-loras %d", v.MaxCPULoRAs, v.MaxLoRAs)
		}
	} else if v.AllowRuntimeLoRAUpdating {
		c.fail(RuleRuntimeLoRANeedsLoRA, "VLLM_ALLOW_RUNTIME_LORA_UPDATING without --enable-lora: the load endpoints would refuse every adapter")
	}
}

// ValidateFor checks v as [VLLM.Validate] does, and also against the
// spec it must serve: the model's context length, the weights and one
// --max-model-len sequence fitting in memory, the adapters' ranks, and
// the scheduling policy the client's priorities need.
func (v VLLM) ValidateFor(s Spec) error {
	if err := s.validate(); err != nil {
		return err
	}
	var c checker
	v.check(&c)
	if m := s.Model.MaxContext; m > 0 && v.MaxModelLen > m {
		c.fail(RuleModelLenOverContext, "--max-model-len %d exceeds the model's %d-token context", v.MaxModelLen, m)
	}
	if v.GPUMemoryUtilization > 0 && v.GPUMemoryUtilization <= 1 {
		s.GPU.Count = max(v.TensorParallelSize, 1)
		kv, err := kvTokens(s, v.GPUMemoryUtilization)
		switch {
		case err != nil:
			c.fail(RuleWeightsDoNotFit, "%v", err)
		case int64(v.MaxModelLen) > kv:
			c.fail(RuleModelLenOverKVCache, "--max-model-len %d exceeds the %d-token KV cache", v.MaxModelLen, kv)
		}
	}
	if len(s.Adapters) > 0 && !v.EnableLoRA {
		c.fail(RuleAdaptersNeedLoRA, "%d adapters to serve but --enable-lora is off", len(s.Adapters))
	}
	if v.EnableLoRA {
		for _, a := range s.Adapters {
			if a.Rank > v.MaxLoRARank {
				c.fail(RuleAdapterRank, "adapter %q has rank %d, above --max-lora-rank %d", a.Name, a.Rank, v.MaxLoRARank)
			}
		}
	}
	if s.Priority && v.SchedulingPolicy != PriorityPolicy {
		c.fail(RulePriorityNeedsPolicy, "the client sends priorities, which vLLM rejects unless --scheduling-policy priority")
	}
	return c.err()
}

// Warnings returns what vLLM accepts but warns about: a token budget
// larger than max_num_seqs × max_model_len can ever use.
func (v VLLM) Warnings() []string {
	if v.MaxNumSeqs > 0 && v.MaxModelLen > 0 && int64(v.MaxNumBatchedTokens) > int64(v.MaxNumSeqs)*int64(v.MaxModelLen) {
		return []string{fmt.Sprintf("--max-num-batched-tokens %d exceeds --max-num-seqs × --max-model-len = %d; the excess is never used",
			v.MaxNumBatchedTokens, int64(v.MaxNumSeqs)*int64(v.MaxModelLen))}
	}
	return nil
}
