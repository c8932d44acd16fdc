package router

import (
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// attempt is one request on one replica of one tier.
type attempt struct {
	t            *tierRT
	l            lease
	ms           Stream
	ctx          context.Context // the context the attempt was started with
	cancel       context.CancelFunc
	branchCancel context.CancelFunc // hedged branch's context, or nil
	timer        *time.Timer
	stalled      atomic.Bool

	sent      time.Time // Model.Stream was called
	firstAt   time.Time
	lastAt    time.Time
	waited    time.Duration // time Recv spent waiting for tokens after the first
	tokens    int
	maxTokens int // the reply's limit in text deltas
	bytes     int // text bytes so far
	maxBytes  int
	first     Delta
	usage     *Usage
	queued    time.Duration
	predicted time.Duration
	model     string
	ended     bool
	overload  bool // the backend refused or slowed for load (see LimitOverloaded)
}

// priorityOf maps importance to vLLM's priority (lower runs sooner).
func priorityOf(i Importance) int {
	switch i {
	case Major:
		return -1
	case Generic:
		return 1
	}
	return 0
}

// prepare fills a request's defaults from the tier. The request's own Model
// and Adapter apply only on the tier the policy chose (primary); fallback
// tiers use their own.
func (t *tierRT) prepare(req Request, primary bool) Request {
	if !primary {
		req.Model, req.Adapter = "", ""
	}
	if req.Model == "" {
		req.Model = t.cfg.ModelName
	}
	if req.Adapter == "" {
		req.Adapter = t.cfg.Adapter
	}
	if req.MaxTokens == 0 || (t.cfg.MaxTokens > 0 && req.MaxTokens > t.cfg.MaxTokens) {
		req.MaxTokens = t.cfg.MaxTokens
	}
	if req.MaxTokens == 0 {
		req.MaxTokens = DefaultMaxTokens
	}
	if req.Temperature == nil {
		req.Temperature = t.cfg.Temperature
	}
	if req.Priority == 0 {
		req.Priority = priorityOf(req.Importance)
	}
	req.Tier = t.cfg.Name
	return req
}

// try admits req on t and waits for its first token. On error the attempt
// (non-nil when a replica was chosen) has already ended.
func (r *Router) try(ctx context.Context, t *tierRT, req *Request, primary bool, branchCancel context.CancelFunc) (*attempt, error) {
	now := r.now()
	t.st.requests.Add(1)
	adm, err := t.admit(ctx, req, now, t.next != nil)
	if err != nil {
		kind, _ := classify(ctx, err, false)
		t.st.errors[kind].Add(1)
		return nil, err
	}
	a := &attempt{t: t, l: adm.l, ctx: ctx, branchCancel: branchCancel, queued: adm.queued, predicted: adm.predicted}
	rep := adm.l.rep
	rep.st.requests.Add(1)
	prepared := t.prepare(*req, primary)
	a.model = prepared.Model
	a.maxTokens = prepared.MaxTokens
	a.maxBytes = math.MaxInt
	if prepared.MaxTokens <= math.MaxInt/ReplyBytesPerToken {
		a.maxBytes = prepared.MaxTokens * ReplyBytesPerToken
	}
	if prepared.Adapter != "" {
		a.model = prepared.Adapter
	}
	actx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	a.timer = time.AfterFunc(t.cfg.StallTimeout, a.onStall)
	// A Model that panics must not keep the slots: end the attempt as a
	// backend failure and let the panic go on.
	defer func() {
		if !a.ended && a.firstAt.IsZero() {
			a.end(outcomeFailure, KindBackend, t.now())
		}
	}()
	a.sent = t.now()
	ms, err := rep.cfg.Model.Stream(actx, prepared)
	if err != nil {
		return a, a.fail(err, false)
	}
	a.ms = ms
	for {
		d, err := ms.Recv()
		if err != nil {
			if err == io.EOF {
				err = ErrEmptyStream
			}
			return a, a.fail(err, false)
		}
		if d.Usage != nil {
			a.usage = d.Usage
		}
		if d.Text == "" {
			if d.FinishReason == "" {
				continue
			}
			// Finished without a word: no line for the player, so the
			// next tier gets a chance.
			return a, a.fail(ErrEmptyStream, false)
		}
		now := t.now()
		a.tokens = 1
		a.limit(&d)
		a.first, a.firstAt, a.lastAt = d, now, now
		a.timer.Stop()
		a.l.recordFirst(now, now.Sub(a.sent))
		return a, nil
	}
}

// limit enforces the reply limit on d, a delta with text that has just
// been counted: past maxTokens deltas its text is dropped, past maxBytes
// it is cut on a rune boundary, and either way it becomes the last delta,
// with FinishLength (the router then ends the attempt, which cancels the
// backend's request).
func (a *attempt) limit(d *Delta) {
	a.bytes += len(d.Text)
	switch {
	case a.tokens > a.maxTokens:
		a.tokens--
		a.bytes -= len(d.Text)
		d.Text = ""
	case a.bytes > a.maxBytes:
		keep := len(d.Text) - (a.bytes - a.maxBytes)
		for keep > 0 && !utf8.RuneStart(d.Text[keep]) {
			keep--
		}
		a.bytes -= len(d.Text) - keep
		d.Text = d.Text[:keep]
	default:
		return
	}
	d.FinishReason = FinishLength
	d.Usage = nil
	a.l.tier.st.capped.Add(1)
	a.l.rep.st.capped.Add(1)
	a.t.logger.Debug("router: reply cut at its limit; the backend ignored max_tokens",
		"tier", a.t.cfg.Name, "replica", a.l.rep.cfg.Name, "max_tokens", a.maxTokens, "bytes", a.bytes)
}

func (a *attempt) onStall() {
	a.stalled.Store(true)
	a.cancel()
}

// classify maps an attempt's error to a stats kind and a breaker outcome.
func classify(ctx context.Context, err error, afterFirst bool) (ErrorKind, outcome) {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return KindDeadline, outcomeNeutral
		}
		return KindCancelled, outcomeNeutral
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return KindDeadline, outcomeNeutral
	case errors.Is(err, ErrSaturated):
		return KindSaturated, outcomeNeutral
	case errors.Is(err, ErrCircuitOpen):
		return KindCircuitOpen, outcomeNeutral
	case errors.Is(err, ErrPredictedLate):
		return KindPredictedLate, outcomeNeutral
	case errors.Is(err, ErrEmptyStream):
		// Says more about the prompt than about the replica's health.
		return KindBackend, outcomeNeutral
	case afterFirst:
		return KindTruncated, outcomeFailure
	}
	return KindBackend, outcomeFailure
}

// fail ends the attempt with err, returning the error to report.
func (a *attempt) fail(err error, afterFirst bool) error {
	if a.ctx.Err() != nil {
		err = a.ctx.Err()
	} else if a.stalled.Load() {
		err = ErrStalled
	} else if errors.Is(err, ErrSaturated) {
		a.overload = true
	}
	kind, o := classify(a.ctx, err, afterFirst)
	a.end(o, kind, a.t.now())
	return err
}

// end releases everything the attempt holds and records its outcome; kind
// is ignored on success. It is idempotent.
func (a *attempt) end(o outcome, kind ErrorKind, now time.Time) {
	if a.ended {
		return
	}
	a.ended = true
	a.timer.Stop()
	a.cancel()
	if a.ms != nil {
		a.ms.Close()
	}
	if a.branchCancel != nil {
		a.branchCancel()
	}
	a.l.finish(o, kind, now, a.sent, a.tokens, a.usage, a.limitOutcome(o, now))
}

// limitOutcome is what the replica's Limiter learns from the attempt.
func (a *attempt) limitOutcome(o outcome, now time.Time) LimitOutcome {
	var lo LimitOutcome
	switch {
	case a.ctx.Err() != nil && !a.stalled.Load():
		return lo // the caller gave up: no signal
	case o == outcomeSuccess:
		lo.Result = LimitSucceeded
	case a.overload || a.stalled.Load():
		lo.Result = LimitOverloaded
	default:
		return lo
	}
	if !a.firstAt.IsZero() {
		lo.TTFT = a.firstAt.Sub(a.sent)
	}
	if a.tokens > 1 {
		lo.ITL = a.waited / time.Duration(a.tokens-1)
	}
	lo.Total = now.Sub(a.sent)
	lo.Tokens = a.tokens
	if a.usage != nil {
		lo.Tokens = a.usage.CompletionTokens
	}
	return lo
}

// recordFirst records a first token that arrived ttft after the request
// was sent.
func (l lease) recordFirst(now time.Time, ttft time.Duration) {
	l.tier.st.recordTTFT(now, ttft)
	l.rep.st.ttft.Record(ttft)
}

// recordToken records the gap before a later token.
func (l lease) recordToken(itl time.Duration) {
	l.tier.st.itl.Record(itl)
	l.rep.st.itl.Record(itl)
}

// finish records how a request sent at sent ended and releases its slots.
// kind is ignored on success.
func (l lease) finish(o outcome, kind ErrorKind, now, sent time.Time, tokens int, usage *Usage, lo LimitOutcome) {
	t, rep := l.tier, l.rep
	if o == outcomeSuccess {
		t.st.successes.Add(1)
		rep.st.successes.Add(1)
		total := now.Sub(sent)
		t.st.total.Record(total)
		rep.st.total.Record(total)
		t.st.recordService(total)
		// Reported counts win, zeros included; without them the output
		// is the number of deltas.
		in, out := 0, tokens
		if usage != nil {
			in, out = usage.PromptTokens, usage.CompletionTokens
		}
		t.st.tokensIn.Add(uint64(in))
		rep.st.tokensIn.Add(uint64(in))
		t.st.tokensOut.Add(uint64(out))
		rep.st.tokensOut.Add(uint64(out))
	} else {
		t.st.errors[kind].Add(1)
		rep.st.errors[kind].Add(1)
	}
	t.release(l, o, lo, now)
}

// RoutedStream is a routed completion in progress. Recv returns the deltas
// in order and io.EOF after the one with the finish reason. A stream cut
// after its first delta ends with a *TruncatedError (never a silent io.EOF);
// cancelling the request's context ends it with the context's error.
//
// A RoutedStream is not safe for concurrent use; cancel the context to
// abort a blocked Recv from another goroutine. Close must be called, even
// after io.EOF or an error.
type RoutedStream struct {
	a         *attempt
	start     time.Time
	receipt   Receipt
	reasonBuf [8]Reason
	pending   bool
	err       error
}

func (s *RoutedStream) install(a *attempt) {
	s.a = a
	s.pending = true
	s.receipt.Tier = a.t.cfg.Name
	s.receipt.Replica = a.l.rep.cfg.Name
	s.receipt.Model = a.model
	s.receipt.Reasons = append(s.receipt.Reasons, a.l.reason)
	s.receipt.Timing.Queued = a.queued
	s.receipt.Timing.PredictedTTFT = a.predicted
	s.receipt.Timing.TTFT = a.firstAt.Sub(s.start)
}

// Receipt says how the request was routed. Timing.Total is set once the
// stream has ended.
func (s *RoutedStream) Receipt() Receipt {
	rc := s.receipt
	rc.Reasons = slices.Clone(rc.Reasons)
	return rc
}

// Recv returns the next delta, io.EOF after the last one, or an error.
func (s *RoutedStream) Recv() (Delta, error) {
	if s.err != nil {
		return Delta{}, s.err
	}
	a := s.a
	if s.pending {
		s.pending = false
		if a.first.FinishReason != "" {
			s.finish(a.first, a.firstAt)
		}
		return a.first, nil
	}
	// The stall guard runs only while Recv waits for the backend, so a
	// caller that reads slowly (pacing speech, say) never trips it.
	start := a.t.now()
	a.timer.Reset(a.t.cfg.StallTimeout)
	for {
		d, err := a.ms.Recv()
		now := a.t.now()
		if err != nil {
			a.timer.Stop()
			return Delta{}, s.cut(err, now)
		}
		if d.Usage != nil {
			a.usage = d.Usage
		}
		if d.Text == "" && d.FinishReason == "" {
			continue
		}
		a.timer.Stop()
		a.waited += now.Sub(start)
		a.l.recordToken(now.Sub(a.lastAt))
		a.lastAt = now
		a.tokens++
		if d.Text != "" {
			a.limit(&d)
		}
		if d.FinishReason != "" {
			s.finish(d, now)
			return d, nil
		}
		if min := a.t.cfg.MinTokensPerSecond; min > 0 && a.waited >= a.t.cfg.StallGrace &&
			float64(a.tokens-1)/a.waited.Seconds() < min {
			// Deliver this delta; the next Recv reports the cut.
			a.overload = true
			s.err = s.truncate(ErrTooSlow, now)
			return d, nil
		}
		return d, nil
	}
}

func (s *RoutedStream) finish(d Delta, now time.Time) {
	if d.Usage != nil {
		s.a.usage = d.Usage
	}
	s.a.end(outcomeSuccess, 0, now)
	s.receipt.Timing.Total = now.Sub(s.start)
	s.err = io.EOF
}

// cut ends the stream on an error from the backend after the first token.
func (s *RoutedStream) cut(err error, now time.Time) error {
	a := s.a
	switch {
	case a.ctx.Err() != nil:
		err = a.ctx.Err()
		kind, o := classify(a.ctx, err, true)
		a.end(o, kind, now)
		s.receipt.Timing.Total = now.Sub(s.start)
		s.err = err
		return err
	case a.stalled.Load():
		err = ErrStalled
	case errors.Is(err, ErrSaturated):
		a.overload = true
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	s.err = s.truncate(err, now)
	return s.err
}

func (s *RoutedStream) truncate(cause error, now time.Time) error {
	a := s.a
	a.end(outcomeFailure, KindTruncated, now)
	s.receipt.Timing.Total = now.Sub(s.start)
	return &TruncatedError{Tier: a.t.cfg.Name, Replica: a.l.rep.cfg.Name, Tokens: a.tokens, Cause: cause}
}

// Close ends the stream, cancelling the request if it is still running.
// It is idempotent and returns nil.
func (s *RoutedStream) Close() error {
	if s.a == nil || s.a.ended {
		return nil
	}
	now := s.a.t.now()
	s.a.end(outcomeNeutral, KindCancelled, now)
	s.receipt.Timing.Total = now.Sub(s.start)
	if s.err == nil {
		s.err = errStreamClosed
	}
	return nil
}

var errStreamClosed = errors.New("router: stream closed")
