package batching

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/latency"
	"github.com/bodybroker/sdk/router"
)

// Defaults applied by [NewLimiter] to zero-valued [LimiterOptions] fields.
const (
	DefaultTTFTTarget    = 500 * time.Millisecond
	DefaultITLTarget     = 100 * time.Millisecond
	DefaultInitialWindow = 4
	DefaultMinWindow     = 1
	DefaultMaxWindow     = 256
	DefaultKVHigh        = 0.95
)

// ErrInvalidOptions means a constructor was given an invalid option; the
// error is an [*OptionsError] naming it.
var ErrInvalidOptions = errors.New("batching: invalid options")

// OptionsError reports an invalid options field. errors.Is(err,
// ErrInvalidOptions) holds.
type OptionsError struct {
	Field  string
	Reason string
}

func (e *OptionsError) Error() string {
	return "batching: invalid options: " + e.Field + ": " + e.Reason
}

// Is reports whether target is ErrInvalidOptions.
func (e *OptionsError) Is(target error) bool { return target == ErrInvalidOptions }

func optErr(field, format string, args ...any) error {
	return &OptionsError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// LimiterOptions configures a [Limiter]. The zero value means the
// documented defaults: a request window that starts at 4 and adapts
// between 1 and 256 against a 500 ms TTFT and 100 ms inter-token target,
// and no token window.
type LimiterOptions struct {
	// TTFTTarget and ITLTarget are the replica's latency objectives: the
	// window grows while requests meet both and shrinks, in proportion to
	// the excess, when one is missed. Defaults [DefaultTTFTTarget] and
	// [DefaultITLTarget]; DisableITL ignores inter-token latency.
	TTFTTarget time.Duration
	ITLTarget  time.Duration
	DisableITL bool

	// InitialWindow, MinWindow and MaxWindow bound the request window
	// (requests in flight). Defaults 4, 1 and 256.
	InitialWindow int
	MinWindow     int
	MaxWindow     int

	// MaxTokens, when positive, is the token window: the estimated prompt
	// plus reply-limit tokens ([router.Admission].Tokens) of the requests
	// in flight stay within it, beside the request window. Size it from
	// the engine's KV-cache capacity. A request larger than the whole
	// token window is admitted only when nothing else is in flight, so
	// that it runs alone rather than never. Zero means no token window.
	MaxTokens int

	// KVHigh is the KV-cache usage (0..1) at or above which, with requests
	// waiting in the engine, [Limiter.Observe] shrinks the window. Default
	// 0.95.
	KVHigh float64

	// OnChange, when non-nil, is called after the request window changed
	// by at least one request, with the reason. It runs on the goroutine
	// that reported the sample (often with the router's tier lock held)
	// and must be fast.
	OnChange func(old, new int, why Reason)
}

// Reason says why a [Limiter] changed (or kept) its window.
type Reason string

// Reasons counted in [LimiterStats].Reasons.
const (
	// ReasonOnTarget: a sample met the targets with the window in use; the
	// window grew.
	ReasonOnTarget Reason = "on_target"
	// ReasonAppLimited: a sample met the targets but fewer than half the
	// window was in use; the window held (demand, not the engine, was the
	// limit, so the sample says nothing about a larger window).
	ReasonAppLimited Reason = "app_limited"
	// ReasonTTFT and ReasonITL: the sample missed that target; the window
	// shrank by the ratio, by 10 % to 50 %.
	ReasonTTFT Reason = "ttft_over_target"
	ReasonITL  Reason = "itl_over_target"
	// ReasonHold: the sample missed a target, or the backend refused,
	// but the request started before the last cut took effect; the window
	// held.
	ReasonHold Reason = "hold"
	// ReasonOverloaded: the backend refused for load or stalled; the
	// window shrank by a quarter (once per round trip, like a miss).
	ReasonOverloaded Reason = "overloaded"
	// ReasonEngineQueue: the engine reported requests waiting with its KV
	// cache nearly full; the window shrank by a tenth and stops growing
	// until the engine stops queueing.
	ReasonEngineQueue Reason = "engine_queue"
	// ReasonPreemption: the engine preempted sequences since the last
	// report; the window shrank by a tenth.
	ReasonPreemption Reason = "preemption"
)

var reasons = [...]Reason{ReasonOnTarget, ReasonAppLimited, ReasonTTFT, ReasonITL, ReasonHold, ReasonOverloaded, ReasonEngineQueue, ReasonPreemption}

// Limiter is an adaptive concurrency limiter for one engine replica: a
// [router.Limiter] for [router.Replica].Limiter. It is a gradient
// controller in the manner of Netflix's concurrency-limits, with the
// latency objectives in place of a measured no-load latency. While
// finished requests meet both objectives with the window in use, the
// window grows by about √window per window of requests. A request that
// misses one cuts the window by the ratio target/observed (between 10 %
// and 50 %), once per round trip: the requests already in flight at a cut
// started under the old window, so their latencies are not held against
// the new one. So the window climbs while the engine keeps up and settles
// at the knee of the latency curve, where TTFT or inter-token latency
// reaches its objective, moving in a sawtooth around it (against a
// simulated engine behind the router, the window's mean sits within 10 %
// of the knee and swings about ±40 %; see TestLimiterBehindRouter).
// Backend refusals and stalls cut it by a quarter, also once per round
// trip; engine signals ([Limiter.Observe]) cut it when the engine queues
// with a full KV cache or preempts.
//
// Beside the request window, an optional token window bounds the
// estimated tokens in flight.
//
// A Limiter is safe for concurrent use. TryAcquire and Release take one
// short lock and do not allocate.
type Limiter struct {
	opts LimiterOptions

	mu          sync.Mutex
	window      float64
	inflight    int
	tokens      int
	drain       int    // misses to ignore: requests in flight at the last cut
	busy        bool   // the engine queues: hold growth
	preempted   uint64 // last reported preemption count
	seenPreempt bool

	admitted  atomic.Uint64
	refusedW  atomic.Uint64
	refusedT  atomic.Uint64
	overloads atomic.Uint64
	counts    [len(reasons)]atomic.Uint64
	last      atomic.Int32 // index+1 into reasons of the last change; 0 none
	ttft      latency.Histogram
	itl       latency.Histogram
}

var _ router.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter configured by opts; an invalid field gives an
// [*OptionsError]. It starts no goroutine and needs no Close.
func NewLimiter(opts LimiterOptions) (*Limiter, error) {
	if opts.TTFTTarget < 0 {
		return nil, optErr("TTFTTarget", "negative")
	}
	if opts.ITLTarget < 0 {
		return nil, optErr("ITLTarget", "negative")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"InitialWindow", opts.InitialWindow}, {"MinWindow", opts.MinWindow}, {"MaxWindow", opts.MaxWindow}, {"MaxTokens", opts.MaxTokens}} {
		if f.v < 0 {
			return nil, optErr(f.name, "negative")
		}
	}
	if opts.KVHigh < 0 || opts.KVHigh > 1 || math.IsNaN(opts.KVHigh) {
		return nil, optErr("KVHigh", "%v is outside (0, 1]", opts.KVHigh)
	}
	if opts.TTFTTarget == 0 {
		opts.TTFTTarget = DefaultTTFTTarget
	}
	if opts.ITLTarget == 0 {
		opts.ITLTarget = DefaultITLTarget
	}
	if opts.MinWindow == 0 {
		opts.MinWindow = DefaultMinWindow
	}
	if opts.MaxWindow == 0 {
		opts.MaxWindow = max(DefaultMaxWindow, opts.MinWindow)
	}
	if opts.MinWindow > opts.MaxWindow {
		return nil, optErr("MinWindow", "%d is above MaxWindow %d", opts.MinWindow, opts.MaxWindow)
	}
	if opts.InitialWindow == 0 {
		opts.InitialWindow = min(max(DefaultInitialWindow, opts.MinWindow), opts.MaxWindow)
	}
	if opts.InitialWindow < opts.MinWindow || opts.InitialWindow > opts.MaxWindow {
		return nil, optErr("InitialWindow", "%d is outside [MinWindow %d, MaxWindow %d]", opts.InitialWindow, opts.MinWindow, opts.MaxWindow)
	}
	if opts.KVHigh == 0 {
		opts.KVHigh = DefaultKVHigh
	}
	return &Limiter{opts: opts, window: float64(opts.InitialWindow)}, nil
}

// TryAcquire admits a request when the request window and the token window
// have room for it. It implements [router.Limiter].
func (l *Limiter) TryAcquire(a router.Admission) bool {
	l.mu.Lock()
	if l.inflight >= int(l.window) {
		l.mu.Unlock()
		l.refusedW.Add(1)
		return false
	}
	if l.opts.MaxTokens > 0 && l.inflight > 0 && l.tokens+a.Tokens > l.opts.MaxTokens {
		l.mu.Unlock()
		l.refusedT.Add(1)
		return false
	}
	l.inflight++
	l.tokens += a.Tokens
	l.mu.Unlock()
	l.admitted.Add(1)
	return true
}

// Release ends a request TryAcquire admitted and adapts the window to how
// it went. It implements [router.Limiter]. Each Release must match one
// TryAcquire that returned true, with the same Admission.
func (l *Limiter) Release(a router.Admission, o router.LimitOutcome) {
	switch o.Result {
	case router.LimitSucceeded:
		if o.TTFT > 0 {
			l.ttft.Record(o.TTFT)
		}
		if o.ITL > 0 {
			l.itl.Record(o.ITL)
		}
	case router.LimitOverloaded:
		l.overloads.Add(1)
	}
	l.mu.Lock()
	inflight := l.inflight
	l.inflight--
	l.tokens -= a.Tokens
	old := l.window
	var why Reason
	switch o.Result {
	case router.LimitSucceeded:
		why = l.sample(o, inflight)
	case router.LimitOverloaded:
		why = ReasonOverloaded
		if l.drain > 0 {
			l.drain--
			why = ReasonHold
			break
		}
		l.setWindow(l.window * 0.75)
		l.drain = inflight - 1
	}
	nw := l.window
	l.mu.Unlock()
	l.note(old, nw, why)
}

// sample adapts the window to a successful request that finished with
// inflight requests (itself included) in flight. l.mu must be held.
func (l *Limiter) sample(o router.LimitOutcome, inflight int) Reason {
	ratio, why := 0.0, ReasonOnTarget
	if o.TTFT > 0 {
		ratio = float64(o.TTFT) / float64(l.opts.TTFTTarget)
		if ratio > 1 {
			why = ReasonTTFT
		}
	}
	if !l.opts.DisableITL && o.ITL > 0 {
		if r := float64(o.ITL) / float64(l.opts.ITLTarget); r > ratio {
			ratio = r
			if r > 1 {
				why = ReasonITL
			}
		}
	}
	if ratio > 1 {
		if l.drain > 0 {
			// This request started before the last cut took effect:
			// its latency says nothing about the window now.
			l.drain--
			return ReasonHold
		}
		l.setWindow(l.window * min(maxCut, max(0.5, 1/ratio)))
		l.drain = inflight - 1
		return why
	}
	if l.drain > 0 {
		l.drain--
	}
	switch {
	case l.busy:
		return ReasonEngineQueue
	case float64(inflight)*2 < l.window:
		return ReasonAppLimited
	}
	// About √window more per window of requests.
	l.setWindow(l.window + math.Sqrt(l.window)/l.window)
	return why
}

// maxCut is the least a missed target cuts the window by (10 %), so that
// the controller backs off from the knee by a step that its growth takes
// a few round trips to undo, rather than hovering just past it.
const maxCut = 0.9

func (l *Limiter) setWindow(w float64) {
	l.window = min(max(w, float64(l.opts.MinWindow)), float64(l.opts.MaxWindow))
}

// note counts a decision and reports a change of the integer window.
func (l *Limiter) note(old, nw float64, why Reason) {
	if why == "" {
		return
	}
	for i, r := range reasons {
		if r == why {
			l.counts[i].Add(1)
			l.last.Store(int32(i + 1))
			break
		}
	}
	if f := l.opts.OnChange; f != nil && int(old) != int(nw) {
		f(int(old), int(nw), why)
	}
}

// EngineSignals are an engine's own load figures (for vLLM: the
// vllm:num_requests_waiting, vllm:gpu_cache_usage_perc and
// vllm:num_preemptions_total metrics), for [Limiter.Observe].
type EngineSignals struct {
	// Waiting is the number of requests queued inside the engine.
	Waiting int
	// KVCacheUsage is the fraction of KV-cache blocks in use (0..1).
	KVCacheUsage float64
	// Preemptions is the engine's cumulative count of preempted
	// sequences; Observe reacts to its increase.
	Preemptions uint64
}

// Observe adapts the window to an engine's signals, typically scraped
// every few seconds: a rise in preemptions, or requests waiting in the
// engine with its KV cache at or above KVHigh, shrinks the window by a
// tenth; while the engine has requests waiting at all, the window does not
// grow (the engine's own queue would hide the latency the controller
// needs to see).
func (l *Limiter) Observe(s EngineSignals) {
	l.mu.Lock()
	old := l.window
	var why Reason
	preempted := l.seenPreempt && s.Preemptions > l.preempted
	l.preempted, l.seenPreempt = s.Preemptions, true
	l.busy = s.Waiting > 0
	switch {
	case preempted:
		why = ReasonPreemption
	case l.busy && s.KVCacheUsage >= l.opts.KVHigh:
		why = ReasonEngineQueue
	}
	if why != "" {
		l.setWindow(l.window * 0.9)
	}
	nw := l.window
	l.mu.Unlock()
	l.note(old, nw, why)
}

// LimiterStats is a snapshot of a [Limiter].
type LimiterStats struct {
	// Window is the request window now; WindowExact its fractional value.
	Window      int
	WindowExact float64
	InFlight    int
	// TokenWindow is LimiterOptions.MaxTokens (0: none); TokensInFlight
	// the estimated tokens of the requests in flight.
	TokenWindow    int
	TokensInFlight int
	// Admitted counts admitted requests; RefusedWindow and RefusedTokens
	// the refusals by the request window and by the token window.
	Admitted      uint64
	RefusedWindow uint64
	RefusedTokens uint64
	// Overloads counts requests that ended with LimitOverloaded.
	Overloads uint64
	// Reasons counts the controller's decisions by reason; LastReason is
	// the latest ("" before any).
	Reasons    map[Reason]uint64
	LastReason Reason
	// TTFT and InterToken summarise the samples the controller saw.
	TTFT       latency.Summary
	InterToken latency.Summary
}

// Stats returns a snapshot of the limiter.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	st := LimiterStats{
		Window:         int(l.window),
		WindowExact:    l.window,
		InFlight:       l.inflight,
		TokenWindow:    l.opts.MaxTokens,
		TokensInFlight: l.tokens,
	}
	l.mu.Unlock()
	st.Admitted = l.admitted.Load()
	st.RefusedWindow = l.refusedW.Load()
	st.RefusedTokens = l.refusedT.Load()
	st.Overloads = l.overloads.Load()
	st.Reasons = make(map[Reason]uint64, len(reasons))
	for i, r := range reasons {
		if n := l.counts[i].Load(); n > 0 {
			st.Reasons[r] = n
		}
	}
	if i := l.last.Load(); i > 0 {
		st.LastReason = reasons[i-1]
	}
	st.TTFT = l.ttft.Summary()
	st.InterToken = l.itl.Summary()
	return st
}
