package engine_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bodybroker/sdk/batching/engine"
	"github.com/google/go-cmp/cmp"
)

// rules returns the rules of every *ConstraintError joined in err.
func rules(err error) []engine.Rule {
	var out []engine.Rule
	var walk func(error)
	walk = func(e error) {
		if ce, ok := e.(*engine.ConstraintError); ok {
			out = append(out, ce.Rule)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	slices.Sort(out)
	return out
}

func baseSpec() engine.Spec {
	return engine.Spec{
		Model:    engine.Llama31_8B,
		GPU:      engine.GPU{Memory: 80 * engine.GiB},
		Workload: engine.Workload{Conversations: 200, PrefixTokens: 1000, PromptP95: 1500, ReplyP95: 300},
	}
}

// A vLLM configuration that passes every rule; each case below breaks it
// in one way.
func goodVLLM() engine.VLLM {
	return engine.VLLM{
		DType: engine.BFloat16, TensorParallelSize: 1, MaxModelLen: 2048, MaxNumSeqs: 256, MaxNumBatchedTokens: 2048,
		GPUMemoryUtilization: 0.9, EnableChunkedPrefill: true, EnablePrefixCaching: true, SchedulingPolicy: engine.FCFS,
	}
}

func TestVLLMValidateRules(t *testing.T) {
	if err := goodVLLM().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	tests := []struct {
		name string
		edit func(*engine.VLLM)
		want []engine.Rule
	}{
		{"zero seqs", func(v *engine.VLLM) { v.MaxNumSeqs = 0 }, []engine.Rule{engine.RulePositive}},
		{"zero model len", func(v *engine.VLLM) { v.MaxModelLen = 0 }, []engine.Rule{engine.RulePositive}},
		{"zero tp", func(v *engine.VLLM) { v.TensorParallelSize = 0 }, []engine.Rule{engine.RulePositive}},
		{"negative partial", func(v *engine.VLLM) { v.MaxNumPartialPrefills = -1 }, []engine.Rule{engine.RulePositive}},
		{"gpu util 0", func(v *engine.VLLM) { v.GPUMemoryUtilization = 0 }, []engine.Rule{engine.RuleGPUMemoryUtilization}},
		{"gpu util over 1", func(v *engine.VLLM) { v.GPUMemoryUtilization = 1.2 }, []engine.Rule{engine.RuleGPUMemoryUtilization}},
		{"dtype", func(v *engine.VLLM) { v.DType = "int3" }, []engine.Rule{engine.RuleDType}},
		{"budget below seqs", func(v *engine.VLLM) { v.MaxNumBatchedTokens = 128 }, []engine.Rule{engine.RuleBatchedTokensBelowSeqs}},
		{"no chunking, budget below model len", func(v *engine.VLLM) { v.EnableChunkedPrefill = false; v.MaxModelLen = 4096 },
			[]engine.Rule{engine.RuleBatchedTokensBelowModelLen}},
		{"long partial over partial", func(v *engine.VLLM) { v.MaxNumPartialPrefills = 2; v.MaxLongPartialPrefills = 3 },
			[]engine.Rule{engine.RuleLongPartialPrefills}},
		{"long partial over default", func(v *engine.VLLM) { v.MaxLongPartialPrefills = 2 }, []engine.Rule{engine.RuleLongPartialPrefills}},
		{"partial needs chunking", func(v *engine.VLLM) { v.EnableChunkedPrefill = false; v.MaxNumPartialPrefills = 2 },
			[]engine.Rule{engine.RulePartialPrefillsNeedChunking}},
		{"policy", func(v *engine.VLLM) { v.SchedulingPolicy = "lpm" }, []engine.Rule{engine.RuleSchedulingPolicy}},
		{"lora rank", func(v *engine.VLLM) { v.EnableLoRA, v.MaxLoRAs, v.MaxCPULoRAs, v.MaxLoRARank = true, 1, 1, 24 },
			[]engine.Rule{engine.RuleLoRARank}},
		{"max loras", func(v *engine.VLLM) { v.EnableLoRA, v.MaxLoRAs, v.MaxCPULoRAs, v.MaxLoRARank = true, 0, 0, 16 },
			[]engine.Rule{engine.RuleMaxLoRAs}},
		{"cpu loras", func(v *engine.VLLM) { v.EnableLoRA, v.MaxLoRAs, v.MaxCPULoRAs, v.MaxLoRARank = true, 4, 2, 16 },
			[]engine.Rule{engine.RuleCPULoRAs}},
		{"runtime lora without lora", func(v *engine.VLLM) { v.AllowRuntimeLoRAUpdating = true },
			[]engine.Rule{engine.RuleRuntimeLoRANeedsLoRA}},
		{"two at once", func(v *engine.VLLM) { v.GPUMemoryUtilization = 0; v.SchedulingPolicy = "x" },
			[]engine.Rule{engine.RuleGPUMemoryUtilization, engine.RuleSchedulingPolicy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := goodVLLM()
			tt.edit(&v)
			err := v.Validate()
			if !errors.Is(err, engine.ErrConstraint) {
				t.Fatalf("Validate() = %v, want ErrConstraint", err)
			}
			var ce *engine.ConstraintError
			if !errors.As(err, &ce) || ce.Msg == "" {
				t.Fatalf("Validate() = %v, want a *ConstraintError with a message", err)
			}
			if diff := cmp.Diff(tt.want, rules(err)); diff != "" {
				t.Errorf("rules (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestVLLMValidateForRules(t *testing.T) {
	spec := baseSpec()
	if err := goodVLLM().ValidateFor(spec); err != nil {
		t.Fatalf("good config: %v", err)
	}
	withLoRA := func(v *engine.VLLM) { v.EnableLoRA, v.MaxLoRAs, v.MaxCPULoRAs, v.MaxLoRARank = true, 2, 2, 16 }
	tests := []struct {
		name string
		edit func(*engine.VLLM, *engine.Spec)
		want []engine.Rule
	}{
		{"model len over context", func(v *engine.VLLM, s *engine.Spec) {
			s.Model = engine.Phi3Mini
			v.MaxModelLen = 8192
			v.MaxNumBatchedTokens = 8192
		},
			[]engine.Rule{engine.RuleModelLenOverContext}},
		{"weights do not fit", func(v *engine.VLLM, s *engine.Spec) { s.GPU.Memory = 16 * engine.GiB },
			[]engine.Rule{engine.RuleWeightsDoNotFit}},
		{"tensor parallel makes it fit", func(v *engine.VLLM, s *engine.Spec) { s.GPU.Memory = 16 * engine.GiB; v.TensorParallelSize = 2 }, nil},
		{"model len over kv cache", func(v *engine.VLLM, s *engine.Spec) { s.GPU.Memory = 20 * engine.GiB; v.MaxModelLen = 131072 },
			[]engine.Rule{engine.RuleModelLenOverKVCache}},
		{"adapters need lora", func(v *engine.VLLM, s *engine.Spec) { s.Adapters = []engine.Adapter{{Name: "a", Rank: 8}} },
			[]engine.Rule{engine.RuleAdaptersNeedLoRA}},
		{"adapter rank", func(v *engine.VLLM, s *engine.Spec) {
			withLoRA(v)
			s.Adapters = []engine.Adapter{{Name: "a", Rank: 8}, {Name: "b", Rank: 64}}
		}, []engine.Rule{engine.RuleAdapterRank}},
		{"priority needs policy", func(v *engine.VLLM, s *engine.Spec) { s.Priority = true }, []engine.Rule{engine.RulePriorityNeedsPolicy}},
		{"priority with policy", func(v *engine.VLLM, s *engine.Spec) { s.Priority = true; v.SchedulingPolicy = engine.PriorityPolicy }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, s := goodVLLM(), baseSpec()
			tt.edit(&v, &s)
			err := v.ValidateFor(s)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidateFor() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, engine.ErrConstraint) {
				t.Fatalf("ValidateFor() = %v, want ErrConstraint", err)
			}
			if diff := cmp.Diff(tt.want, rules(err)); diff != "" {
				t.Errorf("rules (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestVLLMWarnings(t *testing.T) {
	v := goodVLLM()
	if w := v.Warnings(); w != nil {
		t.Errorf("Warnings() = %q, want none", w)
	}
	v.MaxNumSeqs, v.MaxModelLen, v.MaxNumBatchedTokens = 2, 512, 8192
	if w := v.Warnings(); len(w) != 1 || !strings.Contains(w[0], "1024") {
		t.Errorf("Warnings() = %q, want one naming 2 × 512 = 1024", w)
	}
}

func TestLlamaCppOllamaValidate(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []engine.Rule
	}{
		{"llama ok", engine.LlamaCpp{Parallel: 4, Context: 8192, BatchSize: 512}.Validate(2048), nil},
		{"llama slot context", engine.LlamaCpp{Parallel: 8, Context: 8192, BatchSize: 512}.Validate(2048), []engine.Rule{engine.RuleSlotContext}},
		{"llama zero slots", engine.LlamaCpp{Parallel: 0, Context: 8192, BatchSize: 512}.Validate(0), []engine.Rule{engine.RulePositive}},
		{"llama context below slots", engine.LlamaCpp{Parallel: 4, Context: 2, BatchSize: 512}.Validate(0), []engine.Rule{engine.RulePositive}},
		{"llama batch", engine.LlamaCpp{Parallel: 1, Context: 8192}.Validate(0), []engine.Rule{engine.RulePositive}},
		{"ollama ok", engine.Ollama{NumParallel: 4, ContextLength: 4096}.Validate(2048), nil},
		{"ollama context", engine.Ollama{NumParallel: 4, ContextLength: 1024}.Validate(2048), []engine.Rule{engine.RuleSlotContext}},
		{"ollama parallel", engine.Ollama{ContextLength: 4096}.Validate(0), []engine.Rule{engine.RulePositive}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil {
				if tt.err != nil {
					t.Fatalf("Validate() = %v, want nil", tt.err)
				}
				return
			}
			if !errors.Is(tt.err, engine.ErrConstraint) {
				t.Fatalf("Validate() = %v, want ErrConstraint", tt.err)
			}
			if diff := cmp.Diff(tt.want, rules(tt.err)); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

// Every generated configuration passes the validator against its own
// spec, each engine's part holds a conversation, and the vLLM flags
// round-trip through ParseVLLMArgs.
func TestGenerateValidatesAndRoundTrips(t *testing.T) {
	specs := map[string]engine.Spec{
		"8B on H100": baseSpec(),
		"8B on H200, priority, adapters": {
			Model: engine.Llama31_8B, GPU: engine.GPU{Memory: 141 * engine.GiB},
			Workload: engine.Workload{Conversations: 2000, PrefixTokens: 1200, Prefixes: 50, PromptP95: 2000, ReplyP95: 250, ITL: 40 * time.Millisecond},
			Adapters: []engine.Adapter{{"a", 8}, {"b", 16}, {"c", 100}}, LoRAsPerBatch: 2, Priority: true,
		},
		"phi on L4": {
			Model: engine.Phi3Mini, GPU: engine.GPU{Memory: 24 * engine.GiB},
			Workload: engine.Workload{PromptP95: 3000, ReplyP95: 2000, ITL: 100 * time.Millisecond},
		},
		"8B on two L4s": {
			Model: engine.Llama31_8B, GPU: engine.GPU{Memory: 24 * engine.GiB, Count: 2},
			Workload: engine.Workload{Conversations: 50, PromptP95: 1000, ReplyP95: 100},
		},
		"step model": {
			Model: engine.Llama31_8B, GPU: engine.GPU{Memory: 141 * engine.GiB},
			Workload: engine.Workload{PromptP95: 1800, ReplyP95: 200, ITL: 30 * time.Millisecond, TTFT: 500 * time.Millisecond},
			Step:     engine.StepH200Llama8B,
		},
		"fixed model len": {
			Model: engine.Llama31_8B, GPU: engine.GPU{Memory: 80 * engine.GiB}, MaxModelLen: 32768,
			Workload: engine.Workload{PromptP95: 1000, ReplyP95: 100},
		},
	}
	for name, s := range specs {
		t.Run(name, func(t *testing.T) {
			cfg, err := engine.Generate(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.VLLM.ValidateFor(s); err != nil {
				t.Errorf("generated vLLM config fails validation: %v\nargs: %q", err, cfg.VLLM.Args())
			}
			if w := cfg.VLLM.Warnings(); w != nil {
				t.Errorf("generated vLLM config has warnings: %q", w)
			}
			need := min(s.Workload.PromptP95+s.Workload.ReplyP95, cfg.VLLM.MaxModelLen)
			if err := cfg.LlamaCpp.Validate(need); err != nil {
				t.Errorf("llama.cpp: %v", err)
			}
			if err := cfg.Ollama.Validate(need); err != nil {
				t.Errorf("ollama: %v", err)
			}
			back, err := engine.ParseVLLMArgs(cfg.VLLM.Args(), cfg.VLLM.Env())
			if err != nil {
				t.Fatalf("ParseVLLMArgs(%q): %v", cfg.VLLM.Args(), err)
			}
			if diff := cmp.Diff(cfg.VLLM, back); diff != "" {
				t.Errorf("round trip (-generated +parsed):\n%s", diff)
			}
			p := cfg.Point
			if p.KVTokens < int64(cfg.VLLM.MaxModelLen) || p.MaxConcurrency < 1 {
				t.Errorf("operating point %+v: KV cache smaller than one sequence", p)
			}
			if w := s.Workload.Conversations; w > 0 && cfg.VLLM.MaxNumSeqs+p.Shortfall != w {
				t.Errorf("MaxNumSeqs %d + Shortfall %d, want %d conversations", cfg.VLLM.MaxNumSeqs, p.Shortfall, w)
			}
			if s.Step != (engine.Step{}) && p.StepTime > s.Workload.ITL {
				t.Errorf("predicted step %v exceeds the ITL SLO %v", p.StepTime, s.Workload.ITL)
			}
			if s.Step != (engine.Step{}) && (p.TTFT < p.StepTime || (s.Workload.TTFT > 0 && p.TTFT > s.Workload.TTFT)) {
				t.Errorf("predicted TTFT %v: want at least one step (%v) and within the SLO %v", p.TTFT, p.StepTime, s.Workload.TTFT)
			}
		})
	}
}

func TestGenerateSizing(t *testing.T) {
	// Hand-computed for Llama-3.1-8B on one 80 GiB GPU at 0.9 with the
	// default 2 GiB reserve.
	cfg, err := engine.Generate(baseSpec())
	if err != nil {
		t.Fatal(err)
	}
	kvPerToken := int64(2 * 32 * 8 * 128 * 2)
	wantKV := (int64(0.9*float64(80*engine.GiB)) - 8_030_000_000*2 - 2*engine.GiB) / kvPerToken
	got := cfg.Point
	if got.KVBytesPerToken != kvPerToken || got.KVTokens != wantKV {
		t.Errorf("KV = %d B/token, %d tokens; want %d, %d", got.KVBytesPerToken, got.KVTokens, kvPerToken, wantKV)
	}
	if cfg.VLLM.MaxModelLen != 2048 { // 1500 + 300 rounded up to 256
		t.Errorf("MaxModelLen = %d, want 2048", cfg.VLLM.MaxModelLen)
	}
	if want := int((wantKV - 1000) / 800); got.ConversationsByKV != want {
		t.Errorf("ConversationsByKV = %d, want %d", got.ConversationsByKV, want)
	}
	if cfg.VLLM.MaxNumSeqs != 200 || got.LimitedBy != engine.LimitConversations {
		t.Errorf("MaxNumSeqs = %d (%s), want 200 (conversations)", cfg.VLLM.MaxNumSeqs, got.LimitedBy)
	}
	if cfg.VLLM.MaxNumBatchedTokens != 8192 {
		t.Errorf("MaxNumBatchedTokens = %d, want vLLM's 8192 for an 80 GiB GPU without ITL SLO", cfg.VLLM.MaxNumBatchedTokens)
	}

	// More conversations than fit: capped by the cache, the rest reported.
	s := baseSpec()
	s.GPU.Memory = 24 * engine.GiB
	s.Workload.Conversations = 100000
	cfg, err = engine.Generate(s)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Point.LimitedBy != engine.LimitKVCache || cfg.VLLM.MaxNumSeqs != cfg.Point.ConversationsByKV || cfg.Point.Shortfall == 0 {
		t.Errorf("point %+v, seqs %d: want limited by the KV cache with a shortfall", cfg.Point, cfg.VLLM.MaxNumSeqs)
	}

	// ITL SLOs pick Sarathi-Serve's budgets; LoRA ranks round up.
	for _, tt := range []struct {
		itl  time.Duration
		want int
	}{{30 * time.Millisecond, 512}, {100 * time.Millisecond, 2048}, {time.Second, 8192}} {
		s := baseSpec()
		s.Workload.ITL = tt.itl
		s.Adapters = []engine.Adapter{{"x", 100}}
		cfg, err := engine.Generate(s)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.VLLM.MaxNumBatchedTokens != tt.want || cfg.VLLM.MaxLoRARank != 128 {
			t.Errorf("ITL %v: budget %d, rank %d; want %d, 128", tt.itl, cfg.VLLM.MaxNumBatchedTokens, cfg.VLLM.MaxLoRARank, tt.want)
		}
	}
}

// A tighter ITL SLO under the step model gives a smaller budget or fewer
// sequences, never more.
func TestGenerateStepModelMonotonic(t *testing.T) {
	prevSeqs, prevBudget := 0, 0
	for _, itl := range []time.Duration{15, 20, 30, 50, 80} {
		s := engine.Spec{
			Model: engine.Llama31_8B, GPU: engine.GPU{Memory: 141 * engine.GiB},
			Workload: engine.Workload{PromptP95: 1800, ReplyP95: 200, ITL: itl * time.Millisecond},
			Step:     engine.StepH200Llama8B,
		}
		cfg, err := engine.Generate(s)
		if err != nil {
			t.Fatalf("ITL %v: %v", s.Workload.ITL, err)
		}
		if cfg.VLLM.MaxNumSeqs < prevSeqs || cfg.VLLM.MaxNumBatchedTokens < prevBudget {
			t.Errorf("ITL %v: seqs %d, budget %d; smaller than at a tighter SLO (%d, %d)",
				s.Workload.ITL, cfg.VLLM.MaxNumSeqs, cfg.VLLM.MaxNumBatchedTokens, prevSeqs, prevBudget)
		}
		prevSeqs, prevBudget = cfg.VLLM.MaxNumSeqs, cfg.VLLM.MaxNumBatchedTokens
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*engine.Spec)
		want  error
		field string
	}{
		{"no layers", func(s *engine.Spec) { s.Model.Layers = 0 }, engine.ErrSpec, "Model.Layers"},
		{"dtype", func(s *engine.Spec) { s.Model.DType = "fp4" }, engine.ErrSpec, "Model.DType"},
		{"no memory", func(s *engine.Spec) { s.GPU.Memory = 0 }, engine.ErrSpec, "GPU.Memory"},
		{"no prompt", func(s *engine.Spec) { s.Workload.PromptP95 = 0 }, engine.ErrSpec, "Workload.PromptP95"},
		{"p50 over p95", func(s *engine.Spec) { s.Workload.ReplyP50 = 400 }, engine.ErrSpec, "Workload.ReplyP50"},
		{"prefix over prompt", func(s *engine.Spec) { s.Workload.PrefixTokens = 2000 }, engine.ErrSpec, "Workload.PrefixTokens"},
		{"gpu util", func(s *engine.Spec) { s.GPUMemoryUtilization = 1.5 }, engine.ErrSpec, "GPUMemoryUtilization"},
		{"adapter rank", func(s *engine.Spec) { s.Adapters = []engine.Adapter{{"a", 1000}} }, engine.ErrSpec, "Adapters[0].Rank"},
		{"duplicate adapter", func(s *engine.Spec) { s.Adapters = []engine.Adapter{{"a", 8}, {"a", 8}} }, engine.ErrSpec, "Adapters[1].Name"},
		{"loras without adapters", func(s *engine.Spec) { s.LoRAsPerBatch = 2 }, engine.ErrSpec, "LoRAsPerBatch"},
		{"step without prefill cost", func(s *engine.Spec) { s.Step = engine.Step{Fixed: time.Millisecond} }, engine.ErrSpec, "Step.PerPrefillToken"},
		{"weights do not fit", func(s *engine.Spec) { s.GPU.Memory = 12 * engine.GiB }, engine.ErrDoesNotFit, ""},
		{"sequence does not fit", func(s *engine.Spec) { s.GPU.Memory = 20 * engine.GiB; s.MaxModelLen = 131072 }, engine.ErrDoesNotFit, ""},
		{"prefixes fill the cache", func(s *engine.Spec) { s.GPU.Memory = 20 * engine.GiB; s.Workload.Prefixes = 100000 }, engine.ErrDoesNotFit, ""},
		{"itl slo unreachable", func(s *engine.Spec) { s.Step = engine.StepH200Llama8B; s.Workload.ITL = 5 * time.Millisecond }, engine.ErrSLOUnreachable, ""},
		{"ttft slo unreachable under the itl budget", func(s *engine.Spec) {
			s.Step = engine.StepH200Llama8B
			s.Workload.ITL, s.Workload.TTFT = 25*time.Millisecond, 20*time.Millisecond
		}, engine.ErrSLOUnreachable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			tt.edit(&s)
			_, err := engine.Generate(s)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Generate() = %v, want %v", err, tt.want)
			}
			if tt.field != "" {
				var se *engine.SpecError
				if !errors.As(err, &se) || se.Field != tt.field {
					t.Errorf("Generate() = %v, want a *SpecError for %s", err, tt.field)
				}
			}
		})
	}
}

func TestFromSeed(t *testing.T) {
	seed := engine.Seed{ // the original defaults
		MaxBatchSize: 32, MaxSeqLen: 2048, MaxNumBatchedTokens: 8192, MaxNumSeqs: 256,
		EnableChunkedPrefill: true, PreemptionMode: "recompute", GPUMemoryUtilization: 0.9, EnablePrefixCaching: true,
	}
	got, err := engine.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	want := engine.VLLM{
		TensorParallelSize: 1, MaxModelLen: 2048, MaxNumSeqs: 32, MaxNumBatchedTokens: 8192,
		GPUMemoryUtilization: 0.9, EnableChunkedPrefill: true, EnablePrefixCaching: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromSeed(defaults) (-want +got):\n%s", diff)
	}

	seed.MaxModelLen, seed.GPUMemoryUtilization, seed.MaxBatchSize, seed.PreemptionMode = 4096, 0, 0, ""
	got, err = engine.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxModelLen != 4096 || got.GPUMemoryUtilization != 0.9 || got.MaxNumSeqs != 256 {
		t.Errorf("FromSeed = %+v, want max_model_len over max_seq_len, util 0 → 0.9, max_num_seqs when no batch size", got)
	}

	for _, mode := range []string{"swap", "offload"} {
		s := seed
		s.PreemptionMode = mode
		if _, err := engine.FromSeed(s); !slices.Equal(rules(err), []engine.Rule{engine.RulePreemptionSwap}) {
			t.Errorf("FromSeed(preemption %q) = %v, want RulePreemptionSwap", mode, err)
		}
	}
	s := seed
	s.EnableChunkedPrefill, s.MaxNumBatchedTokens = false, 1024
	if _, err := engine.FromSeed(s); !slices.Equal(rules(err), []engine.Rule{engine.RuleBatchedTokensBelowModelLen}) {
		t.Errorf("FromSeed(no chunking, 1024 < 4096) = %v, want RuleBatchedTokensBelowModelLen", err)
	}
}

func TestParseVLLMArgs(t *testing.T) {
	got, err := engine.ParseVLLMArgs([]string{"--max-num-seqs=64", "--no-enable-prefix-caching", "--gpu-memory-utilization", "0.85"}, []string{"PATH=/bin", "VLLM_ALLOW_RUNTIME_LORA_UPDATING=1"})
	if err != nil {
		t.Fatal(err)
	}
	want := engine.VLLM{MaxNumSeqs: 64, GPUMemoryUtilization: 0.85, AllowRuntimeLoRAUpdating: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, args := range [][]string{
		{"--max-num-seqs"}, {"--max-num-seqs", "many"}, {"--swap-space", "4"}, {"max-num-seqs", "4"}, {"--"},
		{"--gpu-memory-utilization", "high"},
	} {
		if _, err := engine.ParseVLLMArgs(args, nil); !errors.Is(err, engine.ErrArgs) {
			t.Errorf("ParseVLLMArgs(%q) = %v, want ErrArgs", args, err)
		}
	}
}

func FuzzParseVLLMArgs(f *testing.F) {
	f.Add("--max-num-seqs 64 --enable-lora --max-loras=2")
	f.Add("--no-enable-chunked-prefill --dtype bfloat16")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := engine.ParseVLLMArgs(strings.Fields(s), nil)
		if err != nil {
			return
		}
		// Whatever parses, re-emitted, parses to the same value (Args
		// leaves out the LoRA sizes when LoRA is off).
		back, err := engine.ParseVLLMArgs(v.Args(), v.Env())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", v.Args(), err)
		}
		if !v.EnableLoRA {
			v.MaxLoRAs, v.MaxLoRARank, v.MaxCPULoRAs = 0, 0, 0
		}
		if back != v {
			t.Fatalf("round trip: %+v != %+v", back, v)
		}
	})
}
