package sim

import (
	"container/heap"
	"slices"
	"time"
)

// waitQueue orders waiting sequences by arrival (FCFS) or by priority,
// then arrival. A preempted sequence keeps its place, so it goes first.
type waitQueue struct {
	s        []*seq
	priority bool
}

func (q *waitQueue) Len() int { return len(q.s) }
func (q *waitQueue) Less(i, j int) bool {
	a, b := q.s[i], q.s[j]
	if q.priority && a.req.Priority != b.req.Priority {
		return a.req.Priority < b.req.Priority
	}
	return a.order < b.order
}
func (q *waitQueue) Swap(i, j int) { q.s[i], q.s[j] = q.s[j], q.s[i] }
func (q *waitQueue) Push(x any)    { q.s = append(q.s, x.(*seq)) }
func (q *waitQueue) Pop() any {
	n := len(q.s) - 1
	s := q.s[n]
	q.s[n] = nil
	q.s = q.s[:n]
	return s
}

// plan chooses the next step's work at e.now and returns its duration;
// ok is false when there is nothing to do.
func (e *engine) plan() (dt time.Duration, ok bool) {
	e.step = e.step[:0]
	bs := e.c.BlockSize
	// Drop cancelled sequences.
	if e.anyCancelled() {
		e.running = slices.DeleteFunc(e.running, func(s *seq) bool {
			if s.cancelled {
				e.release(s)
				s.running = false
				s.done = true
				return true
			}
			return false
		})
	}
	if e.c.Priority {
		slices.SortStableFunc(e.running, func(a, b *seq) int {
			if a.req.Priority != b.req.Priority {
				return a.req.Priority - b.req.Priority
			}
			return int(a.order - b.order)
		})
	}
	budget := e.c.MaxBatchedTokens
	var shape stepShape
	preempted := false
	add := func(s *seq, c int) {
		e.step = append(e.step, sched{s, c})
		budget -= c
		if s.computed < s.target {
			shape.prefillTokens += c
			shape.prefillPairs += float64(c) * float64(2*s.computed+c)
		} else {
			shape.decodeSeqs++
			shape.kvTokens += int64(s.computed + 1)
		}
	}
	// Running sequences first, in order: decodes take one token each,
	// chunked prefills what the budget leaves.
	for i := 0; i < len(e.running) && budget > 0; i++ {
		s := e.running[i]
		c := 1
		if s.computed < s.target {
			c = min(s.target-s.computed, budget)
		}
		need := blocksFor(s.computed+c, bs) - s.blocks
		self := false
		for need > 0 && !e.alloc(need) {
			v := e.running[len(e.running)-1]
			e.running = e.running[:len(e.running)-1]
			e.preempt(v)
			preempted = true
			if v == s {
				self = true
				break
			}
		}
		if self {
			break
		}
		if need > 0 {
			s.private += need
			s.blocks += need
		}
		add(s, c)
	}
	// Then waiting sequences, unless this step preempted (vLLM V1 admits
	// nothing then) or a request-level batch is in progress.
	loads := 0
	if !preempted && !(e.c.RequestLevel && len(e.running) > 0) {
		for (budget > 0 || e.c.RequestLevel) && len(e.running) < e.c.MaxNumSeqs && e.waiting.Len() > 0 {
			s := heap.Pop(&e.waiting).(*seq)
			if s.cancelled {
				s.done = true
				continue
			}
			load := false
			if a := s.req.Adapter; a != "" {
				var can bool
				can, load = e.loraSlot(a)
				if !can {
					e.skipped = append(e.skipped, s)
					continue
				}
			}
			hit := e.lookup(s)
			if !s.admitted {
				s.cached = hit
			}
			s.computed = hit
			c := min(s.target-s.computed, max(budget, 0))
			if e.c.DisableChunkedPrefill && c < s.target-s.computed && !e.c.RequestLevel {
				e.unlookup(s)
				heap.Push(&e.waiting, s)
				break
			}
			need := blocksFor(s.computed+c, bs) - s.blocks
			if need > 0 && !e.alloc(need) {
				e.unlookup(s)
				heap.Push(&e.waiting, s)
				break
			}
			s.private += max(need, 0)
			s.blocks += max(need, 0)
			if a := s.req.Adapter; a != "" {
				if load {
					loads++
					e.loras[a] = &loraSlot{}
				}
				sl := e.loras[a]
				sl.users++
				sl.lastUsed = s.order
			}
			s.admitted, s.running = true, true
			e.running = append(e.running, s)
			if c > 0 {
				add(s, c)
			}
		}
		for _, s := range e.skipped {
			heap.Push(&e.waiting, s)
		}
		clear(e.skipped)
		e.skipped = e.skipped[:0]
	}
	if len(e.step) == 0 {
		e.busy = false
		return 0, false
	}
	dt = e.c.Step.time(shape) + time.Duration(loads)*e.c.LoRALoad
	e.busy = true
	e.stepEnd = e.now + dt
	if e.obs != nil {
		e.obs.stepDone(len(e.step), dt)
	}
	return dt, true
}

func (e *engine) anyCancelled() bool {
	for _, s := range e.running {
		if s.cancelled {
			return true
		}
	}
	return false
}

// loraSlot reports whether adapter a can run now and whether it must be
// loaded first (evicting the least recently used idle adapter).
func (e *engine) loraSlot(a string) (can, load bool) {
	if _, ok := e.loras[a]; ok {
		return true, false
	}
	if len(e.loras) < e.c.MaxLoRAs {
		return true, true
	}
	victim := ""
	var oldest int64
	for name, sl := range e.loras {
		if sl.users == 0 && (victim == "" || sl.lastUsed < oldest) {
			victim, oldest = name, sl.lastUsed
		}
	}
	if victim == "" {
		return false, false
	}
	delete(e.loras, victim)
	return true, true
}

// unlookup undoes lookup for a sequence that was not admitted.
func (e *engine) unlookup(s *seq) {
	e.release(s)
	s.computed = 0
}

// preempt frees a running sequence's blocks; it will be recomputed.
func (e *engine) preempt(s *seq) {
	e.release(s)
	s.running = false
	s.computed = 0
	s.target = s.req.PromptTokens() + s.gen
	s.preempts++
	if e.obs != nil {
		e.obs.preempt(s)
	}
	heap.Push(&e.waiting, s)
}

// complete applies the planned step at its end time.
func (e *engine) complete() {
	e.now = e.stepEnd
	e.busy = false
	finished := false
	for _, sc := range e.step {
		s := sc.s
		if s.cancelled || !s.running {
			continue
		}
		wasPrefill := s.computed < s.target
		s.computed += sc.tokens
		if s.computed < s.target {
			continue
		}
		if wasPrefill && s.gen == 0 {
			e.register(s, s.req.PersonaTokens+s.req.HistoryTokens)
		}
		s.gen++
		if s.gen == 1 {
			s.first = e.now
		} else if itl := e.now - s.last; itl > s.maxITL {
			s.maxITL = itl
		}
		if e.obs != nil {
			e.obs.token(s, e.now)
		}
		s.last = e.now
		if s.gen >= s.req.OutputTokens {
			// The reply becomes history for the session's next turn.
			e.register(s, s.computed)
			e.release(s)
			s.running = false
			s.done = true
			finished = true
			if e.obs != nil {
				e.obs.finish(s, e.now)
			}
		}
	}
	if finished {
		e.running = slices.DeleteFunc(e.running, func(s *seq) bool { return s.done })
	}
}
