package batching_test

import (
	"errors"
	"testing"
	"time"

	"github.com/bodybroker/sdk/batching"
	"github.com/bodybroker/sdk/router"
)

func mustLimiter(t testing.TB, o batching.LimiterOptions) *batching.Limiter {
	t.Helper()
	l, err := batching.NewLimiter(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// engineCurve is a replica's TTFT against requests in flight: flat up to
// the knee, then rising steeply, like a continuous-batching engine whose
// step budget is full.
type engineCurve struct {
	base time.Duration
	knee int
}

func (c engineCurve) ttft(n int) time.Duration {
	if n <= c.knee {
		return c.base
	}
	return c.base + time.Duration(float64(c.base)*3*float64(n-c.knee)/float64(c.knee))
}

// loop is a closed-loop load on a limiter: demand never runs out, so the
// limiter is always full.
type loop struct {
	l        *batching.Limiter
	inflight int
}

// run completes steps requests, one at a time, each with the TTFT the
// curve gives for the requests in flight, refilling the window after each,
// and returns the window (the requests in flight) after each.
func (lp *loop) run(c engineCurve, steps int) []int {
	a := router.Admission{Tokens: 100}
	fill := func() {
		for lp.l.TryAcquire(a) {
			lp.inflight++
		}
	}
	fill()
	windows := make([]int, 0, steps)
	for range steps {
		lp.l.Release(a, router.LimitOutcome{Result: router.LimitSucceeded, TTFT: c.ttft(lp.inflight), ITL: time.Millisecond})
		lp.inflight--
		fill()
		windows = append(windows, lp.inflight)
	}
	return windows
}

func closedLoop(l *batching.Limiter, c engineCurve, steps int) []int {
	return (&loop{l: l}).run(c, steps)
}

// TestLimiterConvergesToKnee runs the controller against engines with
// different knees, starting below and above them, and checks that the
// window settles where TTFT reaches its target (knee × 7/6 for these
// curves) and stays there.
func TestLimiterConvergesToKnee(t *testing.T) {
	for _, knee := range []int{4, 16, 64, 200} {
		for _, initial := range []int{1, 256} {
			c := engineCurve{base: 100 * time.Millisecond, knee: knee}
			l := mustLimiter(t, batching.LimiterOptions{TTFTTarget: 150 * time.Millisecond, InitialWindow: initial, MaxWindow: 256})
			w := closedLoop(l, c, 20000)
			lo, hi := span(w[len(w)-2000:])
			want := float64(knee) * 7 / 6
			t.Logf("knee %d from %d: window settles in [%d, %d], want about %.1f", knee, initial, lo, hi, want)
			if float64(lo) < 0.85*want-1 || float64(hi) > 1.15*want+1 {
				t.Errorf("knee %d from %d: window in [%d, %d] over the last 2000 requests, want within 15%% of %.1f", knee, initial, lo, hi, want)
			}
			if float64(hi-lo) > max(2, 0.15*want) {
				t.Errorf("knee %d from %d: window swings over [%d, %d], want steady", knee, initial, lo, hi)
			}
		}
	}
}

// TestLimiterFollowsKneeChange checks that the window follows an engine
// whose capacity drops (another tenant, a longer context mix) and recovers.
func TestLimiterFollowsKneeChange(t *testing.T) {
	lp := &loop{l: mustLimiter(t, batching.LimiterOptions{TTFTTarget: 150 * time.Millisecond})}
	for _, knee := range []int{64, 12, 64} {
		w := lp.run(engineCurve{base: 100 * time.Millisecond, knee: knee}, 10000)
		lo, hi := span(w[len(w)-1000:])
		want := float64(knee) * 7 / 6
		if float64(lo) < 0.85*want-1 || float64(hi) > 1.15*want+1 {
			t.Errorf("after the knee moved to %d: window in [%d, %d], want about %.1f", knee, lo, hi, want)
		}
	}
}

// TestLimiterITL checks that inter-token latency over its target shrinks
// the window even when TTFT is fine, and that DisableITL ignores it.
func TestLimiterITL(t *testing.T) {
	slow := router.LimitOutcome{Result: router.LimitSucceeded, TTFT: time.Millisecond, ITL: 300 * time.Millisecond}
	for _, disable := range []bool{false, true} {
		l := mustLimiter(t, batching.LimiterOptions{InitialWindow: 100, DisableITL: disable})
		a := router.Admission{}
		for range 100 {
			l.TryAcquire(a)
		}
		for range 50 {
			l.Release(a, slow)
			l.TryAcquire(a)
		}
		st := l.Stats()
		if !disable && (st.Window >= 100 || st.Reasons[batching.ReasonITL] == 0) {
			t.Errorf("ITL 3× its target: window %d, reasons %v; want < 100 and %q", st.Window, st.Reasons, batching.ReasonITL)
		}
		if disable && (st.Window <= 100 || st.Reasons[batching.ReasonITL] != 0) {
			t.Errorf("DisableITL: window %d, reasons %v; want > 100 and no %q", st.Window, st.Reasons, batching.ReasonITL)
		}
	}
}

// TestLimiterAppLimited checks that samples taken with most of the window
// idle do not grow it: they say nothing about a larger window.
func TestLimiterAppLimited(t *testing.T) {
	l := mustLimiter(t, batching.LimiterOptions{InitialWindow: 20})
	a := router.Admission{}
	fast := router.LimitOutcome{Result: router.LimitSucceeded, TTFT: time.Millisecond}
	for range 1000 {
		l.TryAcquire(a)
		l.Release(a, fast)
	}
	st := l.Stats()
	if st.Window != 20 || st.Reasons[batching.ReasonAppLimited] != 1000 {
		t.Errorf("one request at a time: window %d, reasons %v; want 20 and 1000 app_limited", st.Window, st.Reasons)
	}
}

// TestLimiterWindowAndTokens checks the two windows and the refusals they
// count: the request window, the token window, and a request larger than
// the token window, admitted only alone.
func TestLimiterWindowAndTokens(t *testing.T) {
	l := mustLimiter(t, batching.LimiterOptions{InitialWindow: 3, MaxTokens: 1000})
	small, big, huge := router.Admission{Tokens: 100}, router.Admission{Tokens: 450}, router.Admission{Tokens: 5000}
	steps := []struct {
		what string
		ok   bool
		do   func() bool
	}{
		{"big 1", true, func() bool { return l.TryAcquire(big) }},
		{"big 2", true, func() bool { return l.TryAcquire(big) }},
		{"big 3 (1350 tokens > 1000)", false, func() bool { return l.TryAcquire(big) }},
		{"small (1000 tokens)", true, func() bool { return l.TryAcquire(small) }},
		{"small (window 3 full)", false, func() bool { return l.TryAcquire(small) }},
		{"release big, small", true, func() bool { l.Release(big, router.LimitOutcome{}); return l.TryAcquire(small) }},
		{"huge with others in flight", false, func() bool { l.Release(small, router.LimitOutcome{}); return l.TryAcquire(huge) }},
		{"huge alone", true, func() bool {
			l.Release(big, router.LimitOutcome{})
			l.Release(small, router.LimitOutcome{})
			return l.TryAcquire(huge)
		}},
	}
	for _, s := range steps {
		if got := s.do(); got != s.ok {
			t.Errorf("%s: admitted %v, want %v", s.what, got, s.ok)
		}
	}
	st := l.Stats()
	if st.InFlight != 1 || st.TokensInFlight != 5000 || st.Admitted != 5 || st.RefusedWindow != 1 || st.RefusedTokens != 2 {
		t.Errorf("stats: %+v", st)
	}
}

// TestLimiterOverloadAndEngineSignals checks the multiplicative cuts: a
// backend refusal, a rise in preemptions, and a queueing engine with a
// full KV cache; and that an engine with requests waiting holds growth.
func TestLimiterOverloadAndEngineSignals(t *testing.T) {
	var changes []batching.Reason
	l := mustLimiter(t, batching.LimiterOptions{InitialWindow: 100, OnChange: func(old, nw int, why batching.Reason) {
		changes = append(changes, why)
	}})
	a := router.Admission{}
	l.TryAcquire(a)
	l.Release(a, router.LimitOutcome{Result: router.LimitOverloaded})
	if st := l.Stats(); st.Window != 75 || st.Overloads != 1 {
		t.Errorf("after an overload: window %d, overloads %d; want 75, 1", st.Window, st.Overloads)
	}
	l.Observe(batching.EngineSignals{Preemptions: 10}) // first report: a baseline
	if st := l.Stats(); st.Window != 75 {
		t.Errorf("first preemption report moved the window to %d", st.Window)
	}
	l.Observe(batching.EngineSignals{Preemptions: 12})
	if st := l.Stats(); st.Window != 67 {
		t.Errorf("after preemptions: window %d, want 67", st.Window)
	}
	l.Observe(batching.EngineSignals{Preemptions: 12, Waiting: 3, KVCacheUsage: 0.97})
	if st := l.Stats(); st.Window != 60 {
		t.Errorf("engine queueing with a full KV cache: window %d, want 60", st.Window)
	}
	// Waiting with room in the KV cache: no cut, but no growth either.
	l.Observe(batching.EngineSignals{Preemptions: 12, Waiting: 3, KVCacheUsage: 0.5})
	for range 60 {
		l.TryAcquire(a)
	}
	for range 100 {
		l.Release(a, router.LimitOutcome{Result: router.LimitSucceeded, TTFT: time.Millisecond})
		l.TryAcquire(a)
	}
	if st := l.Stats(); st.Window != 60 {
		t.Errorf("while the engine queues: window %d, want 60 (held)", st.Window)
	}
	l.Observe(batching.EngineSignals{Preemptions: 12})
	l.Release(a, router.LimitOutcome{Result: router.LimitSucceeded, TTFT: time.Millisecond})
	if st := l.Stats(); st.WindowExact <= 60.4 {
		t.Errorf("engine idle again: window %v, want growth", st.WindowExact)
	}
	want := []batching.Reason{batching.ReasonOverloaded, batching.ReasonPreemption, batching.ReasonEngineQueue}
	if len(changes) < 3 || !equalReasons(changes[:3], want) {
		t.Errorf("OnChange reasons %v, want %v first", changes, want)
	}
}

func equalReasons(a, b []batching.Reason) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNewLimiterOptions(t *testing.T) {
	for _, tc := range []struct {
		field string
		o     batching.LimiterOptions
	}{
		{"TTFTTarget", batching.LimiterOptions{TTFTTarget: -1}},
		{"ITLTarget", batching.LimiterOptions{ITLTarget: -1}},
		{"InitialWindow", batching.LimiterOptions{InitialWindow: -1}},
		{"MinWindow", batching.LimiterOptions{MinWindow: -1}},
		{"MaxWindow", batching.LimiterOptions{MaxWindow: -1}},
		{"MaxTokens", batching.LimiterOptions{MaxTokens: -1}},
		{"KVHigh", batching.LimiterOptions{KVHigh: 2}},
		{"MinWindow", batching.LimiterOptions{MinWindow: 10, MaxWindow: 5}},
		{"InitialWindow", batching.LimiterOptions{InitialWindow: 300}},
	} {
		_, err := batching.NewLimiter(tc.o)
		var oe *batching.OptionsError
		if !errors.As(err, &oe) || oe.Field != tc.field || !errors.Is(err, batching.ErrInvalidOptions) {
			t.Errorf("%+v: got %v, want an *OptionsError for %s", tc.o, err, tc.field)
		}
	}
	l := mustLimiter(t, batching.LimiterOptions{})
	if st := l.Stats(); st.Window != batching.DefaultInitialWindow || st.TokenWindow != 0 {
		t.Errorf("defaults: %+v", st)
	}
	l = mustLimiter(t, batching.LimiterOptions{MinWindow: 8})
	if st := l.Stats(); st.Window != 8 {
		t.Errorf("MinWindow 8 alone: initial window %d, want 8", st.Window)
	}
}

func span(xs []int) (lo, hi int) {
	lo, hi = xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// BenchmarkLimiterAcquireRelease is one admission and one release with a
// latency sample: the limiter's cost per request. Budget: ≤ 200 ns, 0
// allocs.
func BenchmarkLimiterAcquireRelease(b *testing.B) {
	l := mustLimiter(b, batching.LimiterOptions{InitialWindow: 64, MaxTokens: 1 << 20})
	a := router.Admission{Tokens: 900, Importance: router.Elite}
	o := router.LimitOutcome{Result: router.LimitSucceeded, TTFT: 120 * time.Millisecond, ITL: 20 * time.Millisecond, Total: time.Second, Tokens: 40}
	b.ReportAllocs()
	for b.Loop() {
		if !l.TryAcquire(a) {
			b.Fatal("refused")
		}
		l.Release(a, o)
	}
}

// TestLimiterCutsOncePerRoundTrip checks that a burst of refusals from
// requests that were all in flight together cuts the window once, not once
// per request, and that the next burst cuts again.
func TestLimiterCutsOncePerRoundTrip(t *testing.T) {
	l := mustLimiter(t, batching.LimiterOptions{InitialWindow: 100})
	a := router.Admission{}
	burst := func() {
		for range 40 {
			l.TryAcquire(a)
		}
		for range 40 {
			l.Release(a, router.LimitOutcome{Result: router.LimitOverloaded})
		}
	}
	burst()
	if st := l.Stats(); st.Window != 75 || st.Reasons[batching.ReasonHold] != 39 {
		t.Errorf("after one burst: window %d, reasons %v; want 75 and 39 holds", st.Window, st.Reasons)
	}
	burst()
	if st := l.Stats(); st.Window != 56 {
		t.Errorf("after a second burst: window %d, want 56", st.Window)
	}
}
