package engine

// Seed is the original system's BatchingConfig (ContinuousBatchingManager),
// with its field names. Its defaults were max_batch_size 32, max_seq_len
// 2048, max_num_batched_tokens 8192, max_num_seqs 256, chunked prefill and
// prefix caching on, preemption_mode "recompute", gpu_memory_utilization
// 0.9, max_model_len unset.
type Seed struct {
	MaxBatchSize         int     // max_batch_size: not a vLLM flag
	MaxSeqLen            int     // max_seq_len: not a vLLM flag
	MaxNumBatchedTokens  int     // max_num_batched_tokens
	MaxNumSeqs           int     // max_num_seqs
	EnableChunkedPrefill bool    // enable_chunked_prefill
	PreemptionMode       string  // preemption_mode: "recompute" or "swap"
	GPUMemoryUtilization float64 // gpu_memory_utilization
	MaxModelLen          int     // max_model_len (0: max_seq_len)
	EnablePrefixCaching  bool    // enable_prefix_caching
}

// FromSeed maps the seed's configuration onto vLLM's flags and validates
// the result:
//
//   - max_batch_size → --max-num-seqs; when max_num_seqs is set too, the
//     smaller of the two (the seed enforced max_batch_size in serving and
//     passed max_num_seqs to the engine; the smaller bound is the one
//     that held);
//   - max_seq_len → --max-model-len, unless max_model_len is set;
//   - gpu_memory_utilization 0 → 0.9 (the seed silently dropped a 0);
//   - preemption_mode "swap" is rejected (RulePreemptionSwap): vLLM V1
//     only preempts by recompute; "" and "recompute" are accepted and
//     need no flag.
func FromSeed(s Seed) (VLLM, error) {
	var c checker
	switch s.PreemptionMode {
	case "", "recompute":
	case "swap":
		c.fail(RulePreemptionSwap, `preemption_mode "swap" was removed in vLLM V1, which only recomputes preempted requests`)
	default:
		c.fail(RulePreemptionSwap, "preemption_mode %q, want recompute", s.PreemptionMode)
	}
	seqs := s.MaxBatchSize
	if seqs == 0 || (s.MaxNumSeqs > 0 && s.MaxNumSeqs < seqs) {
		seqs = s.MaxNumSeqs
	}
	modelLen := s.MaxModelLen
	if modelLen == 0 {
		modelLen = s.MaxSeqLen
	}
	util := s.GPUMemoryUtilization
	if util == 0 {
		util = DefaultGPUMemoryUtilization
	}
	v := VLLM{
		TensorParallelSize:   1,
		MaxModelLen:          modelLen,
		MaxNumSeqs:           seqs,
		MaxNumBatchedTokens:  s.MaxNumBatchedTokens,
		GPUMemoryUtilization: util,
		EnableChunkedPrefill: s.EnableChunkedPrefill,
		EnablePrefixCaching:  s.EnablePrefixCaching,
	}
	v.check(&c)
	if err := c.err(); err != nil {
		return VLLM{}, err
	}
	return v, nil
}
