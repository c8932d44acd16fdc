package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Router routes completion requests to tiers of models. Create it with
// [New]; it is safe for concurrent use. Close it when done.
type Router struct {
	cfg    atomic.Pointer[config]
	now    func() time.Time // Options.Now, fixed by New
	mu     sync.Mutex       // serializes Reconfigure; guards reg
	reg    statsRegistry
	closed atomic.Bool
	wgMu   sync.Mutex     // orders wg.Add against Close's wg.Wait
	wg     sync.WaitGroup // hedge losers being cleaned up
}

// New returns a Router configured by opts. Options.Tiers needs at least one
// tier, and every name a policy or fallback chain uses must be a tier. An
// invalid field gives an [*OptionsError] naming it (errors.Is(err,
// ErrInvalidOptions) holds). New starts no goroutine.
func New(opts Options) (*Router, error) {
	r := &Router{now: opts.Now, reg: statsRegistry{
		tiers:    make(map[string]*tierStats),
		replicas: make(map[[2]string]*replicaStats),
	}}
	if r.now == nil {
		r.now = time.Now
	}
	if err := r.Reconfigure(opts); err != nil {
		return nil, err
	}
	return r, nil
}

// Reconfigure replaces the router's whole configuration (Tiers, Fallbacks,
// Policy, Logger and Hooks) with the one opts describes, validated as by
// [New]. Options.Now is ignored: the router keeps the clock New gave it, so
// the Options given to New may be passed again. The swap is atomic:
// requests already admitted finish on the old configuration, under its
// limits, and new requests see the new one. Stats, affinity and circuit
// breakers carry over for tiers and replicas that keep their names. On
// error the old configuration stays.
func (r *Router) Reconfigure(opts Options) error {
	if r.closed.Load() {
		return ErrClosed
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.build(opts.clone())
	if err != nil {
		// Forget the stats entries the rejected configuration created.
		if old := r.cfg.Load(); old != nil {
			r.prune(old)
		}
		return err
	}
	for _, t := range c.tiers {
		for _, rep := range t.replicas {
			rep.st.br.setConfig(t.cfg.Breaker)
		}
	}
	r.cfg.Store(c)
	r.prune(c)
	return nil
}

// Close stops the router from taking new requests and waits for hedged
// requests that lost their race to be cancelled. Streams already returned
// keep working until closed. Close is idempotent; later calls return
// ErrClosed.
func (r *Router) Close() error {
	r.wgMu.Lock() // with cleanUp: no wg.Add once closed is set
	if r.closed.Swap(true) {
		r.wgMu.Unlock()
		return ErrClosed
	}
	r.wgMu.Unlock()
	r.wg.Wait()
	return nil
}

// Result is a complete completion with its route receipt.
type Result struct {
	Response
	Receipt Receipt
}

// Generate routes req and returns the whole completion. It is [Router.Stream]
// with the deltas joined, so every policy (fallback before the first token,
// stall guard, hedging) applies; a truncated stream returns the partial
// Result with a *TruncatedError.
func (r *Router) Generate(ctx context.Context, req Request) (*Result, error) {
	s, err := r.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var b strings.Builder
	res := &Result{}
	for {
		d, err := s.Recv()
		if err == io.EOF {
			break
		}
		b.WriteString(d.Text)
		if d.Usage != nil {
			res.Usage = *d.Usage
			res.Usage.Reported = true
		}
		if d.FinishReason != "" {
			res.FinishReason = d.FinishReason
		}
		if err != nil {
			res.Text = b.String()
			res.Receipt = s.Receipt()
			res.Model = res.Receipt.Model
			return res, err
		}
	}
	res.Text = b.String()
	res.Receipt = s.Receipt()
	res.Model = res.Receipt.Model
	return res, nil
}

// Stream routes req and returns once the first token has arrived, so that
// every error it returns happened before any token reached the caller:
// the request has then tried each tier of its fallback chain that applied
// and the error is a *RouteError listing them (or ErrClosed, or an error
// wrapping ErrUnknownTier or ErrInvalidRequest). The caller must Close the
// stream.
//
// Cancelling ctx cancels the request at any point; its deadline bounds
// queueing and drives the deadline prediction.
func (r *Router) Stream(ctx context.Context, req Request) (*RoutedStream, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if req.MaxTokens < 0 {
		return nil, fmt.Errorf("%w: negative MaxTokens %d", ErrInvalidRequest, req.MaxTokens)
	}
	if req.PromptTokens < 0 {
		return nil, fmt.Errorf("%w: negative PromptTokens %d", ErrInvalidRequest, req.PromptTokens)
	}
	c := r.cfg.Load()
	start := r.now()
	s := &RoutedStream{start: start}
	s.receipt.Reasons = s.reasonBuf[:0]
	t, why, err := c.route(&req)
	if err != nil {
		return nil, err
	}
	s.receipt.Reasons = append(s.receipt.Reasons, why)
	var failed []*AttemptError
	primary := true
	for t != nil {
		s.receipt.Tier = t.cfg.Name
		var a *attempt
		if t.cfg.HedgeAfter > 0 && t.next != nil {
			var last *tierRT
			a, last, failed = r.hedged(ctx, c, t, &req, primary, s, failed)
			t = last
		} else {
			s.receipt.Attempts++
			var err error
			a, err = r.try(ctx, t, &req, primary, nil)
			if err != nil {
				failed = append(failed, &AttemptError{Tier: t.cfg.Name, Replica: replicaName(a), Err: err})
				a = nil
			}
		}
		if a != nil {
			s.install(a)
			if c.hooks.OnRouted != nil {
				s.callOnRouted(c.hooks.OnRouted)
			}
			return s, nil
		}
		primary = false
		last := failed[len(failed)-1]
		if ctx.Err() != nil || t.next == nil || (t.cfg.Overflow == OverflowFail && errors.Is(last.Err, ErrSaturated)) {
			break
		}
		s.receipt.Reasons = append(s.receipt.Reasons, fallbackReasons(last.Err)...)
		t.st.fallbacks.Add(1)
		c.logger.Debug("router: fallback", "from", t.cfg.Name, "to", t.next.cfg.Name, "err", last.Err)
		if c.hooks.OnFallback != nil {
			c.hooks.OnFallback(t.cfg.Name, t.next.cfg.Name, last.Err)
		}
		t = t.next
	}
	s.receipt.Timing.Total = r.now().Sub(start)
	if n := len(failed); n > 0 {
		s.receipt.Tier, s.receipt.Replica = failed[n-1].Tier, failed[n-1].Replica
	}
	return nil, &RouteError{Receipt: s.Receipt(), Attempts: failed}
}

// callOnRouted runs the hook; when it panics, the stream (which the caller
// never gets) is closed so that its slots are not leaked.
func (s *RoutedStream) callOnRouted(h func(Receipt)) {
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	h(s.Receipt())
	ok = true
}

func replicaName(a *attempt) string {
	if a == nil || a.l.rep == nil {
		return ""
	}
	return a.l.rep.cfg.Name
}

var (
	reasonsDowngrade     = []Reason{ReasonDowngrade}
	reasonsCircuitOpen   = []Reason{ReasonCircuitOpen, ReasonFallback}
	reasonsPredictedLate = []Reason{ReasonPredictedLate, ReasonDowngrade}
	reasonsBackend       = []Reason{ReasonBackendError, ReasonFallback}
)

func fallbackReasons(err error) []Reason {
	switch {
	case errors.Is(err, ErrSaturated):
		return reasonsDowngrade
	case errors.Is(err, ErrCircuitOpen):
		return reasonsCircuitOpen
	case errors.Is(err, ErrPredictedLate):
		return reasonsPredictedLate
	default:
		return reasonsBackend
	}
}

// hedged runs tier t and, if it has no first token after t.HedgeAfter,
// tier t.next too; the first to produce a token wins and the other is
// cancelled. It returns the winning attempt (nil when both failed), the
// last tier tried and the failures so far. A Model that panics on a branch
// goroutine has its panic re-raised here, on the caller's goroutine, as it
// would be without hedging (the other branch is cancelled first).
func (r *Router) hedged(ctx context.Context, c *config, t *tierRT, req *Request, primary bool, s *RoutedStream, failed []*AttemptError) (*attempt, *tierRT, []*AttemptError) {
	type result struct {
		a     *attempt
		err   error
		t     *tierRT
		panic any // non-nil when the branch panicked; try released its slots
	}
	ch := make(chan result, 2)
	launch := func(t *tierRT, primary bool) context.CancelFunc {
		bctx, cancel := context.WithCancel(ctx)
		go func() {
			res := result{t: t}
			defer func() {
				if p := recover(); p != nil {
					res = result{t: t, err: errBranchPanicked, panic: p}
				}
				ch <- res
			}()
			res.a, res.err = r.try(bctx, t, req, primary, cancel)
		}()
		return cancel
	}
	// endLoser ends the branch still running once it reports.
	endLoser := func() {
		r.cleanUp(func() {
			loser := <-ch
			switch {
			case loser.panic != nil:
				c.logger.Error("router: model panicked in a hedge that lost", "tier", loser.t.cfg.Name, "panic", loser.panic)
			case loser.err == nil:
				loser.a.end(outcomeNeutral, KindCancelled, r.now())
			}
		})
	}
	s.receipt.Attempts++
	cancelA := launch(t, primary)
	timer := time.NewTimer(t.cfg.HedgeAfter)
	defer timer.Stop()
	var first result
	select {
	case first = <-ch:
		if first.panic != nil {
			cancelA()
			panic(first.panic)
		}
		if first.err != nil {
			cancelA()
			failed = append(failed, &AttemptError{Tier: t.cfg.Name, Replica: replicaName(first.a), Err: first.err})
			return nil, t, failed
		}
		return first.a, t, failed
	case <-timer.C:
	}
	// Hedge on the next tier.
	h := t.next
	t.st.hedges.Add(1)
	s.receipt.Attempts++
	s.receipt.Reasons = append(s.receipt.Reasons, ReasonHedge)
	cancelB := launch(h, false)
	cancels := map[*tierRT]context.CancelFunc{t: cancelA, h: cancelB}
	first = <-ch
	if first.panic != nil {
		cancelA()
		cancelB()
		endLoser()
		panic(first.panic)
	}
	if first.err == nil {
		cancels[other(first.t, t, h)]()
		endLoser()
		return first.a, first.t, failed
	}
	cancels[first.t]()
	failed = append(failed, &AttemptError{Tier: first.t.cfg.Name, Replica: replicaName(first.a), Err: first.err})
	second := <-ch
	if second.panic != nil {
		cancels[second.t]()
		panic(second.panic)
	}
	if second.err == nil {
		return second.a, second.t, failed
	}
	cancels[second.t]()
	failed = append(failed, &AttemptError{Tier: second.t.cfg.Name, Replica: replicaName(second.a), Err: second.err})
	return nil, h, failed
}

var errBranchPanicked = errors.New("router: model panicked")

// cleanUp runs f on a goroutine that Close waits for, or right here when
// the router is closing.
func (r *Router) cleanUp(f func()) {
	r.wgMu.Lock()
	if r.closed.Load() {
		r.wgMu.Unlock()
		f()
		return
	}
	r.wg.Add(1)
	r.wgMu.Unlock()
	go func() {
		defer r.wg.Done()
		f()
	}()
}

func other(x, a, b *tierRT) *tierRT {
	if x == a {
		return b
	}
	return a
}
