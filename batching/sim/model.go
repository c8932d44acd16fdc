package sim

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/internal/wordsplit"
	"github.com/bodybroker/sdk/latency"
	"github.com/bodybroker/sdk/router"
)

// ModelOptions configures a [Model]. The zero value is a default engine
// (see [Config]) answering every request with [DefaultReply].
type ModelOptions struct {
	// Engine is the simulated engine; its StepModel paces the replies.
	Engine Config
	// Reply returns the text to stream for a request, one token per
	// whitespace-separated word (each word keeps the whitespace after
	// it); nil means DefaultReply for every request.
	Reply func(router.Request) string
	// Name is reported as Response.Model when the request names none;
	// default "sim".
	Name string
	// Now is the engine's clock; nil means time.Now. Steps wait on the
	// standard library's timers, so tests run inside testing/synctest.
	Now func() time.Time
}

// DefaultReply is the text a Model streams when ModelOptions.Reply is nil.
const DefaultReply = "The road north is watched, so keep to the trees and speak to no one until you reach the mill."

// Model is a [router.Model] backed by one simulated engine running in
// real time: each step sleeps for the step model's duration, so a router
// (and an admission limiter) in front of it sees the latency of a real
// continuous-batching engine under the same load. Inside testing/synctest
// the sleeps are on the fake clock, so such tests are instant.
//
// A request maps to the engine as follows: system messages are the
// persona prefix (keyed by Request.NPC), earlier messages the history
// (keyed by Request.AffinityKey), the last message the new input; a
// token is four bytes of prompt or one word of reply. Request.MaxTokens
// cuts the reply with [router.FinishLength]; Adapter and Priority are
// passed on.
//
// The engine's goroutine runs only while requests are in flight. A Model
// is safe for concurrent use; Close cancels what is in flight.
type Model struct {
	o  ModelOptions
	mu sync.Mutex
	e  *engine
	// start anchors the engine's clock.
	start    time.Time
	looping  bool
	closed   bool
	closedCh chan struct{}
	wg       sync.WaitGroup
	col      collector
}

var _ router.Model = (*Model)(nil)

// NewModel validates o and returns a Model.
func NewModel(o ModelOptions) (*Model, error) {
	c, err := o.Engine.withDefaults()
	if err != nil {
		return nil, err
	}
	o.Engine = c
	if o.Reply == nil {
		o.Reply = func(router.Request) string { return DefaultReply }
	}
	if o.Name == "" {
		o.Name = "sim"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Model{o: o, start: o.Now(), closedCh: make(chan struct{})}
	m.col.slo = DefaultSLO
	m.e = newEngine(c, (*modelObs)(m))
	return m, nil
}

type modelObs Model

func (o *modelObs) token(s *seq, now time.Duration) {
	(*Model)(o).col.token(s, now)
	s.sink(s.gen)
}
func (o *modelObs) finish(s *seq, now time.Duration) { (*Model)(o).col.finish(s, now) }
func (o *modelObs) preempt(s *seq)                   { (*Model)(o).col.preempt(s) }
func (o *modelObs) stepDone(batch int, dt time.Duration) {
	(*Model)(o).col.stepDone(batch, dt)
}

// ModelStats is a snapshot of a Model's engine.
type ModelStats struct {
	Waiting, Running int
	// KVBlocks is the KV cache's size; FreeKVBlocks excludes blocks held
	// only by the prefix cache, and CachedBlocks counts those.
	KVBlocks, FreeKVBlocks, CachedBlocks int
	Steps                                int64
	// Busy is the modelled time spent in steps (GPU busy time): its
	// growth over an interval, divided by the interval, is the
	// utilisation an NVML source would report.
	Busy                   time.Duration
	Completed, Preemptions int
	// TTFT is measured from when the engine received the request, ITL
	// between tokens of one reply, on the engine's clock.
	TTFT, ITL latency.Summary
}

// Stats returns a snapshot.
func (m *Model) Stats() ModelStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return ModelStats{
		Waiting: m.e.waiting.Len(), Running: len(m.e.running),
		KVBlocks: m.e.c.KVBlocks, FreeKVBlocks: m.e.free, CachedBlocks: m.e.lruLen,
		Steps: m.col.steps, Busy: m.col.busy, Completed: m.col.completed, Preemptions: m.col.preempts,
		TTFT: m.col.ttft.Summary(), ITL: m.col.itl.Summary(),
	}
}

func (m *Model) now() time.Duration { return m.o.Now().Sub(m.start) }

// Close cancels every request in flight and waits for the engine's
// goroutine; later calls to Stream and Generate return ErrClosed. It is
// idempotent.
func (m *Model) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.closedCh)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

func promptTokens(msgs []router.Message) int { // four bytes a token, rounded up
	n := 0
	for _, msg := range msgs {
		n += len(msg.Content)
	}
	return (n + 3) / 4
}

// Stream queues req on the engine and returns its reply as it is
// generated. It fails with ErrTooLarge (before any token) when the engine
// could never hold the request.
func (m *Model) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	words := wordsplit.Split(m.o.Reply(req))
	finish := router.FinishStop
	if req.MaxTokens > 0 && len(words) > req.MaxTokens {
		words, finish = words[:req.MaxTokens], router.FinishLength
	}
	if len(words) == 0 {
		words = []string{""}
	}
	var r Request
	msgs := req.Messages
	i := 0
	for i < len(msgs) && msgs[i].Role == router.RoleSystem {
		i++
	}
	r.PersonaTokens = promptTokens(msgs[:i])
	if i < len(msgs) {
		r.HistoryTokens = promptTokens(msgs[i : len(msgs)-1])
		r.NewTokens = promptTokens(msgs[len(msgs)-1:])
	}
	if r.PromptTokens() == 0 {
		r.NewTokens = 1
	}
	r.PersonaKey, r.SessionKey = req.NPC, req.AffinityKey
	r.OutputTokens = len(words)
	r.Adapter, r.Priority = req.Adapter, req.Priority

	st := &stream{m: m, ctx: ctx, words: words, finish: finish, model: m.o.Name,
		tokens: make(chan int, len(words)), prompt: r.PromptTokens()}
	if req.Model != "" {
		st.model = req.Model
	} else if req.Adapter != "" {
		st.model = req.Adapter
	}
	s := &seq{req: r, sink: func(n int) { st.tokens <- n }}
	st.s = s
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if err := m.e.admissible(&s.req); err != nil {
		return nil, err
	}
	s.req.Arrival = m.now()
	m.e.enqueue(s)
	st.stopCtx = context.AfterFunc(ctx, func() { st.Close() })
	if !m.looping {
		m.looping = true
		m.wg.Add(1)
		go m.loop()
	}
	return st, nil
}

// loop runs engine steps while there is work, sleeping for each step's
// modelled duration.
func (m *Model) loop() {
	defer m.wg.Done()
	var t *time.Timer
	for {
		m.mu.Lock()
		if m.closed {
			for _, s := range m.e.running {
				s.cancelled = true
			}
			for _, s := range m.e.waiting.s {
				s.cancelled = true
			}
		}
		m.e.now = m.now()
		dt, ok := m.e.plan()
		if !ok || m.closed {
			m.looping = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		if dt > 0 {
			if t == nil {
				t = time.NewTimer(dt)
			} else {
				t.Reset(dt)
			}
			select {
			case <-t.C:
			case <-m.closedCh:
			}
		}
		m.mu.Lock()
		m.e.complete()
		m.mu.Unlock()
	}
}

// Generate runs req to completion and returns the whole reply.
func (m *Model) Generate(ctx context.Context, req router.Request) (*router.Response, error) {
	s, err := m.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	return router.Collect(s, s.(*stream).model)
}

type stream struct {
	m       *Model
	ctx     context.Context
	s       *seq
	words   []string
	finish  router.FinishReason
	model   string
	prompt  int
	tokens  chan int
	next    int
	stopCtx func() bool
	once    sync.Once
	closed  atomic.Bool
}

func (st *stream) Recv() (router.Delta, error) {
	if st.closed.Load() {
		return router.Delta{}, ErrClosed
	}
	if st.next >= len(st.words) {
		return router.Delta{}, io.EOF
	}
	select {
	case <-st.tokens:
	case <-st.ctx.Done():
		return router.Delta{}, st.ctx.Err()
	case <-st.m.closedCh:
		return router.Delta{}, ErrClosed
	}
	d := router.Delta{Text: st.words[st.next]}
	st.next++
	if st.next == len(st.words) {
		d.FinishReason = st.finish
		d.Usage = &router.Usage{PromptTokens: st.prompt, CompletionTokens: len(st.words), Reported: true}
	}
	return d, nil
}

// Close cancels the request if it is still running; it is idempotent.
func (st *stream) Close() error {
	st.once.Do(func() {
		st.closed.Store(true)
		st.stopCtx()
		st.m.mu.Lock()
		if !st.s.done {
			st.s.cancelled = true
		}
		st.m.mu.Unlock()
	})
	return nil
}
