package sim

import (
	"fmt"
	"math"
	"time"
)

// StepModel prices one engine step: the time a continuous-batching engine
// takes to run one forward pass over a batch that mixes prefill chunks and
// decoding sequences.
//
// A step that only decodes B sequences holding L cached tokens in all
// takes
//
//	DecodeFixed + DecodePerSeq·B + DecodePerKVToken·L
//
// and a step that only prefills takes
//
//	PrefillFixed + PrefillPerToken·T + PrefillPerTokenSquared·Σ c·(2p+c)
//
// for T prompt tokens in chunks of c tokens each following p tokens of the
// same sequence already in cache (for one whole prompt, c·(2p+c) is T²,
// the shape of causal attention). A mixed step is the sum of both parts
// minus the smaller fixed cost, as the reference profile's README advises.
//
// The per-unit coefficients are float64 nanoseconds because the measured
// ones are well below a nanosecond per token. In a [Config], the zero
// StepModel means [H200Llama8B]; a model that prices steps at (nearly)
// nothing is useful only in tests that pace a [Model] themselves.
type StepModel struct {
	DecodeFixed            time.Duration
	DecodePerSeq           float64 // ns per decoding sequence
	DecodePerKVToken       float64 // ns per cached token attended to
	PrefillFixed           time.Duration
	PrefillPerToken        float64 // ns per prefill token
	PrefillPerTokenSquared float64 // ns per unit of c·(2p+c)
}

// H200Llama8B returns the step model fitted to a Llama-3.1-8B-shaped
// decoder (32 layers, hidden 4096, 8 KV heads, bf16) on one NVIDIA H200.
//
// Source: the least-squares fit in the SDK's reference profile
// h200-step-profile.json (shared/reference/gpu, produced by
// step_profile.py with PyTorch 2.11, CUDA graphs, median of 20 replays).
// The fit's worst relative error over the measured grid is 18 % for
// prefill and 7 % for decode. It was measured with random weights and
// PyTorch SDPA, not inside a serving engine: vLLM's fused, paged kernels
// are somewhat faster, so absolute figures from this model are
// conservative; use it for shapes and magnitudes, not as a promise.
func H200Llama8B() StepModel {
	return StepModel{
		DecodeFixed:            msToDuration(4.4941392085907665),
		DecodePerSeq:           0.01108090617741706 * 1e6,
		DecodePerKVToken:       2.8057115842164853e-05 * 1e6,
		PrefillFixed:           msToDuration(2.906301038558699),
		PrefillPerToken:        0.01824373535025331 * 1e6,
		PrefillPerTokenSquared: 6.182617709103352e-07 * 1e6,
	}
}

// H200Phi3Mini returns the step model fitted to a Phi-3-mini-shaped
// decoder (32 layers, hidden 3072, 32 KV heads, bf16) on one NVIDIA H200,
// from the same reference profile as [H200Llama8B] and with the same
// caveats (worst fit error 22 % for prefill, 2 % for decode).
func H200Phi3Mini() StepModel {
	return StepModel{
		DecodeFixed:            msToDuration(2.9433106697799536),
		DecodePerSeq:           0.0038557242213800333 * 1e6,
		DecodePerKVToken:       8.972656385153435e-05 * 1e6,
		PrefillFixed:           msToDuration(1.7045513756157578),
		PrefillPerToken:        0.010306248109126984 * 1e6,
		PrefillPerTokenSquared: 4.847771881358184e-07 * 1e6,
	}
}

func msToDuration(ms float64) time.Duration { return time.Duration(math.Round(ms * 1e6)) }

func (m StepModel) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"DecodeFixed", float64(m.DecodeFixed)},
		{"DecodePerSeq", m.DecodePerSeq},
		{"DecodePerKVToken", m.DecodePerKVToken},
		{"PrefillFixed", float64(m.PrefillFixed)},
		{"PrefillPerToken", m.PrefillPerToken},
		{"PrefillPerTokenSquared", m.PrefillPerTokenSquared},
	} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%w: StepModel.%s is %v", ErrInvalidConfig, f.name, f.v)
		}
	}
	return nil
}

// stepShape is what one step does, as the step model needs it.
type stepShape struct {
	decodeSeqs    int
	kvTokens      int64
	prefillTokens int
	prefillPairs  float64 // Σ c·(2p+c)
}

// time returns the modelled duration of a step.
func (m StepModel) time(s stepShape) time.Duration {
	if s.decodeSeqs == 0 && s.prefillTokens == 0 {
		return 0
	}
	var ns float64
	var fixedD, fixedP time.Duration
	if s.decodeSeqs > 0 {
		fixedD = m.DecodeFixed
		ns += m.DecodePerSeq*float64(s.decodeSeqs) + m.DecodePerKVToken*float64(s.kvTokens)
	}
	if s.prefillTokens > 0 {
		fixedP = m.PrefillFixed
		ns += m.PrefillPerToken*float64(s.prefillTokens) + m.PrefillPerTokenSquared*s.prefillPairs
	}
	return max(fixedD, fixedP) + time.Duration(ns)
}
