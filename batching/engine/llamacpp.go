package engine

import "strconv"

// LlamaCpp is a llama.cpp server (llama-server) configuration.
// Continuous batching is on by default there; requests beyond the slots
// are deferred, not rejected.
type LlamaCpp struct {
	// Parallel is the number of slots (-np); each serves one sequence.
	Parallel int
	// Context is the total context over all slots (-c); each slot gets
	// Context / Parallel tokens.
	Context int
	// BatchSize is the logical batch (-b), the tokens one step may carry.
	BatchSize int
}

// Args returns the configuration as llama-server flags.
func (l LlamaCpp) Args() []string {
	return []string{"-np", strconv.Itoa(l.Parallel), "-c", strconv.Itoa(l.Context), "-b", strconv.Itoa(l.BatchSize)}
}

// Validate checks that every slot holds a conversation of maxLen tokens
// (0: not checked): llama.cpp splits -c between slots, which surprises
// users whose per-slot context then truncates.
func (l LlamaCpp) Validate(maxLen int) error {
	var c checker
	switch {
	case l.Parallel < 1:
		c.fail(RulePositive, "-np %d, want ≥ 1", l.Parallel)
	case l.Context < l.Parallel:
		c.fail(RulePositive, "-c %d, want ≥ -np %d", l.Context, l.Parallel)
	case maxLen > 0 && l.Context/l.Parallel < maxLen:
		c.fail(RuleSlotContext, "-c %d / -np %d gives each slot %d tokens, below the %d a conversation needs", l.Context, l.Parallel, l.Context/l.Parallel, maxLen)
	}
	if l.BatchSize < 1 {
		c.fail(RulePositive, "-b %d, want ≥ 1", l.BatchSize)
	}
	return c.err()
}

// Ollama is an Ollama server configuration, set through its environment.
// Ollama allocates ContextLength × NumParallel tokens of KV cache per
// loaded model.
type Ollama struct {
	NumParallel   int // OLLAMA_NUM_PARALLEL (Ollama's default is 1)
	ContextLength int // OLLAMA_CONTEXT_LENGTH, per request
}

// Env returns the configuration as KEY=value environment variables.
func (o Ollama) Env() []string {
	return []string{"OLLAMA_NUM_PARALLEL=" + strconv.Itoa(o.NumParallel), "OLLAMA_CONTEXT_LENGTH=" + strconv.Itoa(o.ContextLength)}
}

// Validate checks that the values are usable and that one request's
// context holds maxLen tokens (0: not checked).
func (o Ollama) Validate(maxLen int) error {
	var c checker
	if o.NumParallel < 1 {
		c.fail(RulePositive, "OLLAMA_NUM_PARALLEL %d, want ≥ 1", o.NumParallel)
	}
	if o.ContextLength < 1 {
		c.fail(RulePositive, "OLLAMA_CONTEXT_LENGTH %d, want ≥ 1", o.ContextLength)
	} else if maxLen > 0 && o.ContextLength < maxLen {
		c.fail(RuleSlotContext, "OLLAMA_CONTEXT_LENGTH %d is below the %d tokens a conversation needs", o.ContextLength, maxLen)
	}
	return c.err()
}
