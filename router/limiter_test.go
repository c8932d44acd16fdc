package router_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/google/go-cmp/cmp"
)

// countLimiter admits at most Max requests and MaxTokens tokens at once
// (zero: no bound) and records what it saw.
type countLimiter struct {
	Max, MaxTokens int

	mu       sync.Mutex
	inflight int
	tokens   int
	admitted []router.Admission
	outcomes []router.LimitOutcome
}

func (l *countLimiter) TryAcquire(a router.Admission) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Max > 0 && l.inflight >= l.Max {
		return false
	}
	if l.MaxTokens > 0 && l.tokens+a.Tokens > l.MaxTokens {
		return false
	}
	l.inflight++
	l.tokens += a.Tokens
	l.admitted = append(l.admitted, a)
	return true
}

func (l *countLimiter) Release(a router.Admission, o router.LimitOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	l.tokens -= a.Tokens
	l.outcomes = append(l.outcomes, o)
}

func (l *countLimiter) snapshot() (inflight int, admitted []router.Admission, outcomes []router.LimitOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight, append([]router.Admission(nil), l.admitted...), append([]router.LimitOutcome(nil), l.outcomes...)
}

// TestLimiterGatesQueue checks the seam: a request the replica's limiter
// refuses waits in the tier's queue and starts when an earlier request
// ends; the limiter sees each request's token estimate and its timings,
// and the replica's stats count the refusal.
func TestLimiterGatesQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := &countLimiter{Max: 1}
		m := &paced{TTFT: 100 * time.Millisecond, Gap: 10 * time.Millisecond, Tokens: []string{"a", "b", "c"}}
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{
			Name:      "main",
			Replicas:  []router.Replica{{Name: "m", Model: m, Limiter: lim}},
			MaxQueued: 4, QueueTimeout: time.Minute, MaxTokens: 50,
		}}})
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, req := range []router.Request{
			{PromptTokens: 30},
			{Messages: []router.Message{{Role: router.RoleUser, Content: "twelve bytes"}}, MaxTokens: 7},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = r.Generate(ctx, req)
			}()
			synctest.Wait()
		}
		st, _ := r.Stats().Tier("main")
		if st.Queued != 1 || st.InFlight != 1 {
			t.Errorf("with the limiter full: queued %d, in flight %d; want 1 and 1", st.Queued, st.InFlight)
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}
		inflight, admitted, outcomes := lim.snapshot()
		if inflight != 0 {
			t.Errorf("limiter in flight after both ended: %d", inflight)
		}
		// 30 + the tier's 50; 12 bytes / 4 + 7.
		want := []router.Admission{{Tokens: 80}, {Tokens: 10}}
		if diff := cmp.Diff(want, admitted); diff != "" {
			t.Errorf("admissions (-want +got):\n%s", diff)
		}
		wantOut := router.LimitOutcome{Result: router.LimitSucceeded, TTFT: 100 * time.Millisecond, ITL: 10 * time.Millisecond, Total: 120 * time.Millisecond, Tokens: 3}
		if diff := cmp.Diff([]router.LimitOutcome{wantOut, wantOut}, outcomes); diff != "" {
			t.Errorf("outcomes (-want +got):\n%s", diff)
		}
		st, _ = r.Stats().Tier("main")
		if got := st.Replicas[0].Limited; got == 0 {
			t.Error("Stats: Limited = 0 after a refusal")
		}
	})
}

// TestLimiterWaitIsNotStallOrTTFT checks that a long wait for the limiter
// neither trips the stall guard nor enters the TTFT statistics; it is
// queueing, reported as such in the receipt.
func TestLimiterWaitIsNotStallOrTTFT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := &countLimiter{Max: 1}
		m := &paced{TTFT: 10 * time.Second, Gap: time.Millisecond, Tokens: []string{"a"}}
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{
			Name:      "main",
			Replicas:  []router.Replica{{Name: "m", Model: m, Limiter: lim}},
			MaxQueued: 1, QueueTimeout: time.Minute, StallTimeout: 11 * time.Second,
		}}})
		ctx := context.Background()
		done := make(chan error, 1)
		go func() {
			_, err := r.Generate(ctx, router.Request{})
			done <- err
		}()
		synctest.Wait()
		res, err := r.Generate(ctx, router.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := res.Receipt.Timing.Queued, 10*time.Second; got != want {
			t.Errorf("Timing.Queued = %v, want %v", got, want)
		}
		st, _ := r.Stats().Tier("main")
		if st.TTFT.Max > 11*time.Second || st.Errors.Total() != 0 {
			t.Errorf("TTFT max %v (want about 10s, the backend's own), errors %+v", st.TTFT.Max, st.Errors)
		}
	})
}

// TestLimiterShedIsSaturatedError checks that a request no limiter admits
// within the tier's queue bound fails with a *SaturatedError, which the
// breaker does not count against the replica.
func TestLimiterShedIsSaturatedError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := &countLimiter{Max: 1}
		g := newGate("x")
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{
			Name:      "main",
			Replicas:  []router.Replica{{Name: "m", Model: g, Limiter: lim}},
			MaxQueued: 1, QueueTimeout: time.Second,
			Breaker: router.Breaker{ConsecutiveFailures: 1},
		}}})
		ctx := context.Background()
		held := make(chan error, 1)
		go func() {
			_, err := r.Generate(ctx, router.Request{})
			held <- err
		}()
		synctest.Wait()
		queued := make(chan error, 1)
		go func() {
			_, err := r.Generate(ctx, router.Request{})
			queued <- err
		}()
		synctest.Wait()
		// The queue is full: the third is shed at once; the second is shed
		// when its QueueTimeout passes.
		for _, ch := range []chan error{nil, queued} {
			var err error
			if ch == nil {
				_, err = r.Generate(ctx, router.Request{})
			} else {
				err = <-ch
			}
			var se *router.SaturatedError
			if !errors.As(err, &se) || !errors.Is(err, router.ErrSaturated) {
				t.Errorf("shed request: %v, want a *SaturatedError", err)
			}
		}
		g.release(1)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		st, _ := r.Stats().Tier("main")
		if b := st.Replicas[0].Breaker; b != router.BreakerClosed {
			t.Errorf("breaker %v after shedding, want closed", b)
		}
		if st.Errors.Saturated != 2 {
			t.Errorf("saturated errors %d, want 2", st.Errors.Saturated)
		}
	})
}

// TestLimiterOverloadOutcome checks that a backend's refusal for load
// reaches the limiter as LimitOverloaded, and a caller's cancellation as
// LimitIgnored.
func TestLimiterOverloadOutcome(t *testing.T) {
	lim := &countLimiter{}
	g := newGate("x")
	g.fail = &router.SaturatedError{RetryAfter: time.Second}
	r := mustRouter(t, router.Options{Tiers: []router.Tier{{
		Name: "main", Replicas: []router.Replica{{Name: "m", Model: g, Limiter: lim}},
	}}})
	if _, err := r.Generate(context.Background(), router.Request{}); !errors.Is(err, router.ErrSaturated) {
		t.Fatalf("got %v, want ErrSaturated", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Generate(ctx, router.Request{})
	_, _, outcomes := lim.snapshot()
	var got []router.LimitResult
	for _, o := range outcomes {
		got = append(got, o.Result)
	}
	want := []router.LimitResult{router.LimitOverloaded, router.LimitIgnored}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

// TestFairnessRoundRobin checks that queued requests of one importance
// level are served round-robin across fairness keys: a player with three
// queued requests gets one per round.
func TestFairnessRoundRobin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate("x")
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{
			Name:          "main",
			Replicas:      []router.Replica{{Name: "m", Model: g}},
			MaxConcurrent: 1, MaxQueued: 16, QueueTimeout: time.Minute,
		}}})
		ctx := context.Background()
		var wg sync.WaitGroup
		send := func(npc, player string, imp router.Importance) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.Generate(ctx, router.Request{NPC: npc, FairnessKey: player, Importance: imp}); err != nil {
					t.Error(err)
				}
			}()
			synctest.Wait()
		}
		send("a1", "alice", router.Elite) // starts
		send("a2", "alice", router.Elite)
		send("a3", "alice", router.Elite)
		send("a4", "alice", router.Elite)
		send("b1", "bob", router.Elite)
		send("n1", "", router.Elite)
		send("c1", "carol", router.Elite)
		send("m1", "alice", router.Major) // importance still comes first
		for range 8 {
			g.release(1)
			synctest.Wait()
		}
		wg.Wait()
		want := []string{"a1", "m1", "a2", "b1", "n1", "c1", "a3", "a4"}
		if diff := cmp.Diff(want, g.order()); diff != "" {
			t.Errorf("service order (-want +got):\n%s", diff)
		}
	})
}

// TestFairnessNewKeyJoinsCurrentRound checks that a player who arrives
// after others have been served joins the round being served, not the
// first round: it does not jump ahead of players already waiting.
func TestFairnessNewKeyJoinsCurrentRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate("x")
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{
			Name:          "main",
			Replicas:      []router.Replica{{Name: "m", Model: g}},
			MaxConcurrent: 1, MaxQueued: 16, QueueTimeout: time.Minute,
		}}})
		ctx := context.Background()
		var wg sync.WaitGroup
		send := func(npc, player string) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.Generate(ctx, router.Request{NPC: npc, FairnessKey: player}); err != nil {
					t.Error(err)
				}
			}()
			synctest.Wait()
		}
		send("a1", "alice") // starts
		send("a2", "alice") // round 0
		send("a3", "alice") // round 1
		send("b1", "bob")   // round 0
		send("b2", "bob")   // round 1
		g.release(1)        // a1 ends; a2 starts
		synctest.Wait()
		g.release(1) // a2 ends; b1 starts: round 0 is being served
		synctest.Wait()
		send("c1", "carol") // joins round 0: after b1, before a3 and b2
		for range 4 {
			g.release(1)
			synctest.Wait()
		}
		wg.Wait()
		want := []string{"a1", "a2", "b1", "c1", "a3", "b2"}
		if diff := cmp.Diff(want, g.order()); diff != "" {
			t.Errorf("service order (-want +got):\n%s", diff)
		}
	})
}

// TestPromptTokensNegative checks the request validation.
func TestPromptTokensNegative(t *testing.T) {
	r := mustRouter(t, router.Options{Tiers: []router.Tier{tier("main", router.Replica{Name: "m", Model: instant{tokens: []string{"x"}}})}})
	if _, err := r.Generate(context.Background(), router.Request{PromptTokens: -1}); !errors.Is(err, router.ErrInvalidRequest) {
		t.Errorf("got %v, want ErrInvalidRequest", err)
	}
}

// TestQueuedPastDeadline checks that a request whose deadline passes while
// it waits for admission (with no fallback to leave for) fails with
// context.DeadlineExceeded at its deadline, counted as a deadline, not as
// saturation, whichever of the two timers the runtime runs first.
func TestQueuedPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := &countLimiter{Max: 1}
		g := newGate("x")
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{
			Name:      "main",
			Replicas:  []router.Replica{{Name: "m", Model: g, Limiter: lim}},
			MaxQueued: 1, QueueTimeout: time.Minute,
		}}})
		held := make(chan error, 1)
		go func() {
			_, err := r.Generate(context.Background(), router.Request{})
			held <- err
		}()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := r.Generate(ctx, router.Request{})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 200*time.Millisecond {
			t.Errorf("got %v after %v, want context.DeadlineExceeded after 200ms", err, time.Since(start))
		}
		g.release(1)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		st, _ := r.Stats().Tier("main")
		if st.Errors.Deadline != 1 || st.Errors.Saturated != 0 {
			t.Errorf("errors %+v, want one deadline", st.Errors)
		}
		if inflight, _, _ := lim.snapshot(); inflight != 0 {
			t.Errorf("limiter holds %d after both ended", inflight)
		}
	})
}

// TestLimiterSharedAcrossTiers checks that one Limiter can gate replicas of
// two tiers (one engine serving both through adapters): a request queued
// on one tier starts as soon as a request of the other tier frees the
// limiter, not at its QueueTimeout.
func TestLimiterSharedAcrossTiers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := &countLimiter{Max: 1}
		g := newGate("x")
		r := mustRouter(t, router.Options{Tiers: []router.Tier{
			{Name: "a", Replicas: []router.Replica{{Name: "gpu", Model: g, Limiter: lim}}},
			{Name: "b", Replicas: []router.Replica{{Name: "gpu", Model: g, Limiter: lim}}, MaxQueued: 1, QueueTimeout: time.Minute},
		}})
		held := make(chan error, 1)
		go func() {
			_, err := r.Generate(context.Background(), router.Request{Tier: "a"})
			held <- err
		}()
		synctest.Wait()
		queued := make(chan error, 1)
		go func() {
			_, err := r.Generate(context.Background(), router.Request{Tier: "b"})
			queued <- err
		}()
		synctest.Wait()
		start := time.Now()
		g.release(2)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		if err := <-queued; err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("tier b's request started %v after tier a's freed the limiter, want at once", waited)
		}
	})
}
