package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"time"
)

// Errors the simulator returns. Match them with errors.Is.
var (
	// ErrInvalidConfig: a Config, Options or Workload field is out of range.
	ErrInvalidConfig = errors.New("sim: invalid configuration")
	// ErrTooLarge: a request can never run on the engine (its prompt and
	// reply exceed the KV cache, or, without chunked prefill, its prompt
	// exceeds the step token budget).
	ErrTooLarge = errors.New("sim: request too large for the engine")
	// ErrClosed: the Model, or the stream being read, was closed.
	ErrClosed = errors.New("sim: closed")
)

// Defaults for a zero [Config]. The scheduler limits are vLLM's documented
// defaults for serving (the seed system's 8192 batched tokens and 256
// sequences); the KV cache size is what one H200 holds for a
// Llama-3.1-8B-shaped model, worked out in [DefaultKVBlocks].
const (
	DefaultMaxNumSeqs       = 256
	DefaultMaxBatchedTokens = 8192
	DefaultBlockSize        = 16
	// DefaultKVBlocks is 54,000 blocks of 16 tokens (864,000 tokens): an
	// 8B model in bf16 stores 2 (K and V) × 32 layers × 8 KV heads × 128
	// dims × 2 bytes = 128 KiB per token; an H200 has 140 GiB, of which
	// vLLM's default --gpu-memory-utilization 0.9 leaves 126 GiB, less
	// 15 GiB of weights and about 4 GiB of activations and graphs.
	DefaultKVBlocks = 54000
	DefaultMaxLoRAs = 1
)

// Config describes one simulated continuous-batching engine, in vLLM's
// terms. The zero value is vLLM V1's default scheduler (chunked prefill
// and prefix caching on, FCFS) on one H200 serving a Llama-3.1-8B-shaped
// model.
type Config struct {
	// Step prices each step; the zero StepModel means [H200Llama8B].
	Step StepModel
	// MaxNumSeqs is --max-num-seqs, the most sequences in one step.
	MaxNumSeqs int
	// MaxBatchedTokens is --max-num-batched-tokens, the per-step token
	// budget shared by prefill chunks and decodes.
	MaxBatchedTokens int
	// KVBlocks and BlockSize size the paged KV cache. When a decoding
	// sequence needs a block and none is free (after evicting unused
	// prefix-cache blocks), the most recently admitted running sequence
	// (with Priority, the least urgent) is preempted: its blocks are freed
	// and it is recomputed later (vLLM V1 only recomputes).
	KVBlocks  int
	BlockSize int
	// DisableChunkedPrefill makes a prompt's prefill run in one step, so a
	// request whose prompt and reply together exceed MaxBatchedTokens is
	// rejected with ErrTooLarge (a preempted sequence is recomputed in one
	// step, reply included; vLLM likewise requires max_model_len ≤
	// max_num_batched_tokens without chunked prefill).
	DisableChunkedPrefill bool
	// DisablePrefixCache turns off automatic prefix caching. With it on,
	// full blocks of a request's persona prefix and of its session history
	// are kept after use and reused by later requests with the same keys,
	// evicted least recently used when blocks run short.
	DisablePrefixCache bool
	// RequestLevel schedules as engines did before Orca: a batch is formed
	// only when the engine is empty and runs until its longest sequence
	// finishes; no request joins a batch in progress.
	RequestLevel bool
	// Priority schedules waiting requests by Request.Priority (lower
	// first), then arrival, like vLLM's --scheduling-policy priority; the
	// default is arrival order (FCFS).
	Priority bool
	// MaxLoRAs is --max-loras, the adapters one step may use; 0 means
	// DefaultMaxLoRAs. LoRALoad is added to the step that loads an
	// adapter into a free slot (0: loading is free).
	MaxLoRAs int
	LoRALoad time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Step == (StepModel{}) {
		c.Step = H200Llama8B()
	}
	if err := c.Step.validate(); err != nil {
		return c, err
	}
	def := func(v *int, d int, name string) error {
		if *v < 0 {
			return fmt.Errorf("%w: Config.%s is negative (%d)", ErrInvalidConfig, name, *v)
		}
		if *v == 0 {
			*v = d
		}
		return nil
	}
	for _, f := range []struct {
		v    *int
		d    int
		name string
	}{
		{&c.MaxNumSeqs, DefaultMaxNumSeqs, "MaxNumSeqs"},
		{&c.MaxBatchedTokens, DefaultMaxBatchedTokens, "MaxBatchedTokens"},
		{&c.KVBlocks, DefaultKVBlocks, "KVBlocks"},
		{&c.BlockSize, DefaultBlockSize, "BlockSize"},
		{&c.MaxLoRAs, DefaultMaxLoRAs, "MaxLoRAs"},
	} {
		if err := def(f.v, f.d, f.name); err != nil {
			return c, err
		}
	}
	if c.LoRALoad < 0 {
		return c, fmt.Errorf("%w: Config.LoRALoad is negative (%v)", ErrInvalidConfig, c.LoRALoad)
	}
	if c.MaxBatchedTokens < c.MaxNumSeqs {
		return c, fmt.Errorf("%w: Config.MaxBatchedTokens (%d) is below MaxNumSeqs (%d), so a full batch could not decode", ErrInvalidConfig, c.MaxBatchedTokens, c.MaxNumSeqs)
	}
	return c, nil
}

// Request is one completion request as the simulator sees it: token
// counts, not text.
//
// The prompt is PersonaTokens (the NPC's persona and lore, shared by every
// request with the same PersonaKey), then HistoryTokens (earlier turns of
// the conversation SessionKey), then NewTokens. With prefix caching, full
// blocks of the first two parts are reused when an earlier request left
// them in the cache.
type Request struct {
	// Arrival is when the request reaches the engine, from the start of
	// the run.
	Arrival time.Duration

	PersonaKey    string
	PersonaTokens int
	SessionKey    string
	HistoryTokens int
	NewTokens     int
	// OutputTokens is the length of the reply; at least 1.
	OutputTokens int

	// Adapter names a LoRA adapter; empty means the base model.
	Adapter string
	// Priority orders waiting requests when Config.Priority is set
	// (lower first).
	Priority int
	// Class labels the request in reports ("bark", "dialogue", …).
	Class string
}

// PromptTokens is the prompt's length.
func (r *Request) PromptTokens() int { return r.PersonaTokens + r.HistoryTokens + r.NewTokens }

func (r *Request) validate() error {
	if r.PersonaTokens < 0 || r.HistoryTokens < 0 || r.NewTokens < 0 || r.OutputTokens < 1 || r.PromptTokens() < 1 {
		return fmt.Errorf("%w: request token counts persona=%d history=%d new=%d output=%d (prompt and output must be positive)",
			ErrInvalidConfig, r.PersonaTokens, r.HistoryTokens, r.NewTokens, r.OutputTokens)
	}
	return nil
}

// chain holds the cached blocks of one key (a persona or a session) by
// block index; an evicted block leaves a nil.
type chain struct {
	key    string
	blocks []*cacheBlock
	live   int
}

type cacheBlock struct {
	ch         *chain
	i          int
	refs       int
	prev, next *cacheBlock // LRU list of unreferenced blocks
}

type seq struct {
	req      Request
	order    int64 // admission order for FCFS
	target   int   // tokens to prefill: prompt + tokens generated before a preemption
	computed int   // tokens with KV in the cache
	gen      int   // tokens generated
	blocks   int   // blocks covering the context, shared included
	shared   []*cacheBlock
	private  int
	cached   int // prompt tokens served from the prefix cache (first admission)
	admitted bool
	first    time.Duration // time of the first token
	last     time.Duration // time of the latest token
	maxITL   time.Duration
	preempts int
	running  bool
	done     bool

	// For the Model: set when the stream is closed early.
	cancelled bool
	sink      func(gen int)
}

type sched struct {
	s      *seq
	tokens int
}

// engine is one simulated engine: a scheduler over a paged KV cache. It is
// not safe for concurrent use; Model wraps it with a mutex.
type engine struct {
	c       Config
	now     time.Duration
	waiting waitQueue
	running []*seq
	step    []sched
	stepEnd time.Duration
	busy    bool
	kicked  bool // Run: work arrived while idle; plan before time moves on
	free    int  // free KV blocks (unreferenced cached blocks not counted)
	cache   map[string]*chain
	lru     cacheBlock // sentinel of the unreferenced-block list
	lruLen  int
	spare   []*cacheBlock // evicted blocks, reused
	loras   map[string]*loraSlot
	nextOrd int64
	obs     observer
	skipped []*seq
}

type loraSlot struct {
	users    int
	lastUsed int64
}

type observer interface {
	token(s *seq, now time.Duration)
	finish(s *seq, now time.Duration)
	preempt(s *seq)
	stepDone(batch int, dt time.Duration)
}

func newEngine(c Config, obs observer) *engine {
	e := &engine{c: c, free: c.KVBlocks, obs: obs, loras: map[string]*loraSlot{}}
	e.waiting.priority = c.Priority
	if !c.DisablePrefixCache {
		e.cache = make(map[string]*chain)
	}
	e.lru.next, e.lru.prev = &e.lru, &e.lru
	return e
}

// admissible reports whether r could ever run on the engine.
func (e *engine) admissible(r *Request) error {
	if err := r.validate(); err != nil {
		return err
	}
	if need := blocksFor(r.PromptTokens()+r.OutputTokens, e.c.BlockSize); need > e.c.KVBlocks {
		return fmt.Errorf("%w: prompt %d + output %d tokens need %d KV blocks, the engine has %d",
			ErrTooLarge, r.PromptTokens(), r.OutputTokens, need, e.c.KVBlocks)
	}
	if e.c.DisableChunkedPrefill && r.PromptTokens()+r.OutputTokens > e.c.MaxBatchedTokens {
		return fmt.Errorf("%w: prompt %d + output %d tokens exceed MaxBatchedTokens %d without chunked prefill",
			ErrTooLarge, r.PromptTokens(), r.OutputTokens, e.c.MaxBatchedTokens)
	}
	return nil
}

func blocksFor(tokens, bs int) int { return (tokens + bs - 1) / bs }

// enqueue adds a request that admissible accepted.
func (e *engine) enqueue(s *seq) {
	e.nextOrd++
	s.order = e.nextOrd
	s.target = s.req.PromptTokens()
	heap.Push(&e.waiting, s)
}

// load is the number of requests waiting or running, for routing.
func (e *engine) load() int { return len(e.waiting.s) + len(e.running) }

// lruPush appends b (now unreferenced) as most recently used.
func (e *engine) lruPush(b *cacheBlock) {
	b.prev, b.next = e.lru.prev, &e.lru
	e.lru.prev.next = b
	e.lru.prev = b
	e.lruLen++
}

func (e *engine) lruRemove(b *cacheBlock) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
	e.lruLen--
}

// alloc takes n free blocks, evicting unreferenced cached blocks first.
func (e *engine) alloc(n int) bool {
	for e.free < n && e.lruLen > 0 {
		b := e.lru.next
		e.lruRemove(b)
		ch := b.ch
		ch.blocks[b.i] = nil
		if ch.live--; ch.live == 0 {
			delete(e.cache, ch.key)
		}
		*b = cacheBlock{}
		e.spare = append(e.spare, b)
		e.free++
	}
	if e.free < n {
		return false
	}
	e.free -= n
	return true
}

// release frees everything s holds.
func (e *engine) release(s *seq) {
	for _, b := range s.shared {
		b.refs--
		if b.refs == 0 {
			e.lruPush(b)
		}
	}
	s.shared = s.shared[:0]
	e.free += s.private
	s.private, s.blocks = 0, 0
	if s.req.Adapter != "" && s.running {
		e.loras[s.req.Adapter].users--
	}
}

// keyFor names the owner of block i of r's context in the prefix cache: a
// block wholly inside the persona prefix is the persona's; any later block
// is the session's (a session's context starts with its persona). ok is
// false for a block no later request could share.
func (e *engine) keyFor(r *Request, i int) (key string, ok bool) {
	if (i+1)*e.c.BlockSize <= r.PersonaTokens && r.PersonaKey != "" {
		return r.PersonaKey, true
	}
	if r.SessionKey != "" {
		return r.SessionKey, true
	}
	return "", false
}

// lookup refs the cached blocks of s's prompt prefix (persona and history)
// and returns how many tokens they cover.
func (e *engine) lookup(s *seq) int {
	if e.cache == nil {
		return 0
	}
	bs := e.c.BlockSize
	// At least one prompt token is always computed, to sample from.
	limit := min(s.req.PersonaTokens+s.req.HistoryTokens, s.target-1) / bs
	if s.shared == nil {
		s.shared = make([]*cacheBlock, 0, blocksFor(s.req.PromptTokens()+s.req.OutputTokens, bs))
	}
	var ch *chain
	for i := range limit {
		k, ok := e.keyFor(&s.req, i)
		if !ok {
			break
		}
		if ch == nil || ch.key != k {
			if ch = e.cache[k]; ch == nil {
				break
			}
		}
		if i >= len(ch.blocks) || ch.blocks[i] == nil {
			break
		}
		b := ch.blocks[i]
		if b.refs == 0 {
			e.lruRemove(b)
		}
		b.refs++
		s.shared = append(s.shared, b)
	}
	s.blocks = len(s.shared)
	return len(s.shared) * bs
}

// register turns s's private blocks holding its first upto tokens into
// cached blocks, so that later requests can reuse them.
func (e *engine) register(s *seq, upto int) {
	if e.cache == nil {
		return
	}
	n := min(upto, s.computed) / e.c.BlockSize
	var ch *chain
	for i := len(s.shared); i < n; i++ {
		k, ok := e.keyFor(&s.req, i)
		if !ok {
			return
		}
		if ch == nil || ch.key != k {
			if ch = e.cache[k]; ch == nil {
				ch = &chain{key: k}
				e.cache[k] = ch
			}
		}
		for len(ch.blocks) <= i {
			ch.blocks = append(ch.blocks, nil)
		}
		b := ch.blocks[i]
		if b == nil {
			if n := len(e.spare); n > 0 {
				b, e.spare = e.spare[n-1], e.spare[:n-1]
				b.ch, b.i = ch, i
			} else {
				b = &cacheBlock{ch: ch, i: i}
			}
			ch.blocks[i] = b
			ch.live++
		} else {
			// Another sequence computed the same block meanwhile: share
			// theirs and free ours.
			if b.refs == 0 {
				e.lruRemove(b)
			}
			e.free++
		}
		b.refs++
		s.shared = append(s.shared, b)
		s.private--
	}
}
