package router_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai/openaitest"
	"github.com/bodybroker/sdk/router/scripted"
)

func threeTiers() router.Options {
	m := instant{tokens: []string{"x"}}
	var opts router.Options
	for _, name := range []string{router.Tier1, router.Tier2, router.Tier3} {
		opts.Tiers = append(opts.Tiers, tier(name, router.Replica{Name: name + "-a", Model: m}))
	}
	return opts
}

func TestPolicy(t *testing.T) {
	r := mustRouter(t, threeTiers())
	tests := []struct {
		name       string
		req        router.Request
		wantTier   string
		wantReason router.Reason
	}{
		{"explicit wins", router.Request{Tier: router.Tier3, Responsibility: router.Greeting, Importance: router.Generic}, router.Tier3, router.ReasonExplicitTier},
		{"greeting", router.Request{Responsibility: router.Greeting, Importance: router.Major}, router.Tier1, router.ReasonResponsibility},
		{"farewell", router.Request{Responsibility: router.Farewell}, router.Tier1, router.ReasonResponsibility},
		{"generic", router.Request{Responsibility: router.GenericDialogue}, router.Tier1, router.ReasonResponsibility},
		{"simple", router.Request{Responsibility: router.SimpleResponse}, router.Tier1, router.ReasonResponsibility},
		{"elite dialogue", router.Request{Responsibility: router.EliteDialogue}, router.Tier2, router.ReasonResponsibility},
		{"quest", router.Request{Responsibility: router.QuestDialogue}, router.Tier2, router.ReasonResponsibility},
		{"complex", router.Request{Responsibility: router.ComplexQuestion}, router.Tier2, router.ReasonResponsibility},
		{"story progression", router.Request{Responsibility: router.StoryProgression}, router.Tier2, router.ReasonResponsibility},
		{"major npc", router.Request{Responsibility: router.MajorNPC}, router.Tier3, router.ReasonResponsibility},
		{"personalized", router.Request{Responsibility: router.Personalized}, router.Tier3, router.ReasonResponsibility},
		{"character development", router.Request{Responsibility: router.CharacterDevelopment}, router.Tier3, router.ReasonResponsibility},
		{"story critical", router.Request{Responsibility: router.StoryCritical}, router.Tier3, router.ReasonResponsibility},
		{"unknown responsibility falls to importance", router.Request{Responsibility: "haggling", Importance: router.Major}, router.Tier3, router.ReasonImportance},
		{"generic npc", router.Request{Importance: router.Generic}, router.Tier1, router.ReasonImportance},
		{"elite npc", router.Request{Importance: router.Elite}, router.Tier2, router.ReasonImportance},
		{"no substring matching", router.Request{Responsibility: "generic_npc_dialogue_major"}, router.Tier2, router.ReasonDefault},
		{"default", router.Request{}, router.Tier2, router.ReasonDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.Generate(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Receipt.Tier != tt.wantTier || res.Receipt.Reasons[0] != tt.wantReason {
				t.Errorf("tier %s reasons %v, want %s %s", res.Receipt.Tier, res.Receipt.Reasons, tt.wantTier, tt.wantReason)
			}
		})
	}
	if _, err := r.Generate(context.Background(), router.Request{Tier: "tier9"}); !errors.Is(err, router.ErrUnknownTier) {
		t.Errorf("unknown explicit tier: err = %v", err)
	}
}

func TestCustomPolicy(t *testing.T) {
	m := instant{tokens: []string{"x"}}
	r := mustRouter(t, router.Options{
		Tiers: []router.Tier{
			tier("small", router.Replica{Name: "a", Model: m}),
			tier("big", router.Replica{Name: "b", Model: m}),
		},
		Policy: router.Policy{
			Responsibilities: map[router.Responsibility]string{"haggling": "big"},
			Default:          "small",
		},
	})
	for req, want := range map[router.Responsibility]string{"haggling": "big", router.StoryCritical: "small"} {
		res, err := r.Generate(context.Background(), router.Request{Responsibility: req})
		if err != nil {
			t.Fatal(err)
		}
		if res.Receipt.Tier != want {
			t.Errorf("%s → %s, want %s", req, res.Receipt.Tier, want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	m := instant{tokens: []string{"x"}}
	ok := router.Replica{Name: "a", Model: m}
	tests := []struct {
		name      string
		opts      router.Options
		wantField string
	}{
		{"no tiers", router.Options{}, "Tiers"},
		{"no name", router.Options{Tiers: []router.Tier{tier("", ok)}}, "Tiers[0].Name"},
		{"no replicas", router.Options{Tiers: []router.Tier{tier("t")}}, "Tiers[0].Replicas"},
		{"nil model", router.Options{Tiers: []router.Tier{tier("t", router.Replica{Name: "a"})}}, "Tiers[0].Replicas[0].Model"},
		{"duplicate tier", router.Options{Tiers: []router.Tier{tier("t", ok), tier("t", ok)}}, "Tiers[1].Name"},
		{"duplicate replica", router.Options{Tiers: []router.Tier{tier("t", ok, ok)}}, "Tiers[0].Replicas[1].Name"},
		{"negative", router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{ok}, MaxConcurrent: -1}}}, "Tiers[0].MaxConcurrent"},
		{"unknown fallback", router.Options{Tiers: []router.Tier{tier("t", ok)}, Fallbacks: [][]string{{"t", "u"}}}, "Fallbacks[0][1]"},
		{"short chain", router.Options{Tiers: []router.Tier{tier("t", ok)}, Fallbacks: [][]string{{"t"}}}, "Fallbacks[0]"},
		{"cycle", router.Options{Tiers: []router.Tier{tier("t", ok), tier("u", ok)}, Fallbacks: [][]string{{"t", "u", "t"}}}, "Fallbacks"},
		{"two successors", router.Options{Tiers: []router.Tier{tier("t", ok), tier("u", ok), tier("v", ok)}, Fallbacks: [][]string{{"t", "u"}, {"t", "v"}}}, "Fallbacks[1][1]"},
		{"policy unknown tier", router.Options{Tiers: []router.Tier{tier("t", ok)}, Policy: router.Policy{Default: "u"}}, "Policy.Default"},
		{"policy no default", router.Options{Tiers: []router.Tier{tier("t", ok)}, Policy: router.Policy{Importance: map[router.Importance]string{router.Elite: "t"}}}, "Policy.Default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := router.New(tt.opts)
			var oe *router.OptionsError
			if !errors.As(err, &oe) || !errors.Is(err, router.ErrInvalidOptions) {
				t.Fatalf("New = %v, want an *OptionsError", err)
			}
			if oe.Field != tt.wantField {
				t.Errorf("Field = %q, want %q (%v)", oe.Field, tt.wantField, err)
			}
		})
	}
}

// TestQueueThenDowngrade: a full tier queues the request for at most
// QueueTimeout, then downgrades it; a full queue downgrades at once; with
// OverflowFail the request fails with ErrSaturated. It runs on a fake
// clock, so that the wait is measured exactly and a waiter is known to be
// queued once every goroutine is blocked.
func TestQueueThenDowngrade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &paced{Tokens: openaitest.Words(3), StallAfter: 1}
		fast := instant{tokens: []string{"fast"}}
		big := router.Tier{Name: "big", Replicas: []router.Replica{{Name: "s", Model: slow}}, MaxConcurrent: 1, MaxQueued: 1, QueueTimeout: 30 * time.Millisecond}
		small := tier("small", router.Replica{Name: "f", Model: fast})
		r := mustRouter(t, router.Options{
			Tiers:     []router.Tier{big, small},
			Fallbacks: [][]string{{"big", "small"}},
		})
		ctx := context.Background()
		hold, err := r.Stream(ctx, router.Request{Tier: "big"})
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()

		// Queued, then timed out, then downgraded.
		start := time.Now()
		res, err := r.Generate(ctx, router.Request{Tier: "big"})
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 30*time.Millisecond {
			t.Errorf("downgraded after %v, want the queue timeout (30ms)", waited)
		}
		if diff := cmp.Diff([]router.Reason{router.ReasonExplicitTier, router.ReasonDowngrade, router.ReasonLeastLoaded}, res.Receipt.Reasons); diff != "" {
			t.Errorf("reasons (-want +got):\n%s", diff)
		}
		if res.Receipt.Tier != "small" || res.Text != "fast" || res.Receipt.Attempts != 2 {
			t.Errorf("result %+v", res)
		}

		// Queue full: a waiter holds the only queue slot, the next request
		// downgrades without waiting.
		waiterDone := make(chan error, 1)
		go func() {
			_, err := r.Generate(ctx, router.Request{Tier: "big"})
			waiterDone <- err
		}()
		synctest.Wait()
		if st, _ := r.Stats().Tier("big"); st.Queued != 1 {
			t.Fatalf("%d queued, want the waiter", st.Queued)
		}
		start = time.Now()
		res, err = r.Generate(ctx, router.Request{Tier: "big"})
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); res.Receipt.Tier != "small" || waited != 0 {
			t.Errorf("full queue: served by %s after %v, want small at once", res.Receipt.Tier, waited)
		}
		if err := <-waiterDone; err != nil {
			t.Errorf("waiter: %v", err)
		}
		st, _ := r.Stats().Tier("big")
		if st.Errors.Saturated != 3 || st.Fallbacks != 3 || st.InFlight != 1 {
			t.Errorf("big stats: %+v", st)
		}

		// OverflowFail: ErrSaturated, no downgrade.
		big.Overflow = router.OverflowFail
		big.MaxQueued = 0
		if err := r.Reconfigure(router.Options{Tiers: []router.Tier{big, small}, Fallbacks: [][]string{{"big", "small"}}}); err != nil {
			t.Fatal(err)
		}
		hold2, err := r.Stream(ctx, router.Request{Tier: "big"})
		if err != nil {
			t.Fatal(err)
		}
		defer hold2.Close()
		_, err = r.Generate(ctx, router.Request{Tier: "big"})
		var re *router.RouteError
		if !errors.Is(err, router.ErrSaturated) || !errors.As(err, &re) || len(re.Attempts) != 1 {
			t.Errorf("OverflowFail: err = %v", err)
		}
	})
}

// TestQueueOrder: waiters are served by importance, then deadline, then
// arrival. It runs on a fake clock, so that each waiter is queued before
// the next arrives however loaded the machine is.
func TestQueueOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "a", Model: g}}, MaxConcurrent: 1, MaxQueued: 10, QueueTimeout: 10 * time.Second}}})
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		start := func(npc string, imp router.Importance, deadline time.Duration) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := ctx
				if deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, deadline)
					defer cancel()
				}
				_, err := r.Generate(ctx, router.Request{NPC: npc, Importance: imp})
				errs <- err
			}()
			synctest.Wait()
		}
		queued := func() int64 {
			st, _ := r.Stats().Tier("t")
			return st.Queued
		}
		start("first", router.Generic, 0)
		if got := g.order(); len(got) != 1 {
			t.Fatalf("started %v, want the first request", got)
		}
		for i, w := range []struct {
			npc      string
			imp      router.Importance
			deadline time.Duration
		}{
			{"generic-early", router.Generic, 0},
			{"generic-late", router.Generic, 0},
			{"generic-deadline", router.Generic, 5 * time.Second},
			{"major", router.Major, 0},
			{"elite", router.Elite, 0},
		} {
			start(w.npc, w.imp, w.deadline)
			if got, want := queued(), int64(i+1); got != want {
				t.Fatalf("after %s: %d queued, want %d", w.npc, got, want)
			}
		}
		g.release(6)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		want := []string{"first", "major", "elite", "generic-deadline", "generic-early", "generic-late"}
		if diff := cmp.Diff(want, g.order()); diff != "" {
			t.Errorf("service order (-want +got):\n%s", diff)
		}
	})
}

// TestQueueWaitBoundedByDeadline: a queued request gives up at its
// deadline even when QueueTimeout is longer, and reports the deadline.
func TestQueueWaitBoundedByDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "a", Model: g}}, MaxConcurrent: 1, MaxQueued: 1, QueueTimeout: 10 * time.Second, StallTimeout: time.Hour}}})
		// The first stream holds the only slot until its gate opens.
		done := make(chan struct{})
		go func() {
			defer close(done)
			if s, err := r.Stream(context.Background(), router.Request{}); err == nil {
				drain(s)
			}
		}()
		synctest.Wait()
		if got := g.order(); len(got) != 1 {
			t.Fatalf("started %v, want the first request", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := r.Generate(ctx, router.Request{})
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, router.ErrSaturated) {
			t.Errorf("err = %v", err)
		}
		if got, want := time.Since(start), 30*time.Millisecond; got != want {
			t.Errorf("waited %v with a %v deadline", got, want)
		}
		g.release(1)
		<-done
	})
}

func TestBackendErrorFallsBack(t *testing.T) {
	bad := newBackend(t, openaitest.Behavior{Status: 500, ErrorMessage: "engine dead"})
	busy := newBackend(t, openaitest.Behavior{Status: 429, RetryAfter: time.Second})
	good := newBackend(t, openaitest.Behavior{Tokens: []string{"ok"}})
	r := mustRouter(t, router.Options{
		Tiers: []router.Tier{
			tier(router.Tier3, bad.replica("bad")),
			tier(router.Tier2, busy.replica("busy")),
			tier(router.Tier1, good.replica("good")),
		},
		Fallbacks: [][]string{{router.Tier3, router.Tier2, router.Tier1}},
	})
	res, err := r.Generate(context.Background(), router.Request{Responsibility: router.StoryCritical})
	if err != nil {
		t.Fatal(err)
	}
	want := []router.Reason{router.ReasonResponsibility, router.ReasonBackendError, router.ReasonFallback, router.ReasonDowngrade, router.ReasonLeastLoaded}
	if diff := cmp.Diff(want, res.Receipt.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	if res.Text != "ok" || res.Receipt.Tier != router.Tier1 || res.Receipt.Replica != "good" || res.Receipt.Attempts != 3 {
		t.Errorf("result %+v", res)
	}
	st := r.Stats()
	t3, _ := st.Tier(router.Tier3)
	t2, _ := st.Tier(router.Tier2)
	if t3.Errors.Backend != 1 || t3.Fallbacks != 1 || t2.Errors.Saturated != 1 || t2.Fallbacks != 1 {
		t.Errorf("stats tier3 %+v tier2 %+v", t3.Errors, t2.Errors)
	}

	// Everything fails: a RouteError listing each tier, never a success.
	good.srv.SetBehavior(openaitest.Behavior{Status: 500})
	_, err = r.Generate(context.Background(), router.Request{Responsibility: router.StoryCritical})
	var re *router.RouteError
	if !errors.As(err, &re) || len(re.Attempts) != 3 || !errors.Is(err, router.ErrSaturated) {
		t.Fatalf("err = %v", err)
	}
	if re.Attempts[0].Tier != router.Tier3 || re.Attempts[0].Replica != "bad" || re.Attempts[2].Tier != router.Tier1 {
		t.Errorf("attempts %+v", re.Attempts)
	}
}

// TestBreaker: consecutive failures open the breaker, an open breaker is
// skipped without a request, and after the cooldown one probe closes it.
// The cooldown runs on a fake clock: on a loaded machine a wall-clock one
// could end before the test looks at the open breaker.
func TestBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		flaky := &switchable{}
		flaky.Fail.Store(true)
		good := instant{tokens: []string{"ok"}}
		const cooldown = 100 * time.Millisecond
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "main", Replicas: []router.Replica{{Name: "only", Model: flaky}}, Breaker: router.Breaker{ConsecutiveFailures: 3, Cooldown: cooldown}},
				tier("backup", router.Replica{Name: "b", Model: good}),
			},
			Fallbacks: [][]string{{"main", "backup"}},
		})
		ctx := context.Background()
		breaker := func() router.BreakerState {
			st, _ := r.Stats().Tier("main")
			rs, _ := st.Replica("only")
			return rs.Breaker
		}
		for i := range 3 {
			res, err := r.Generate(ctx, router.Request{Tier: "main"})
			if err != nil || res.Receipt.Tier != "backup" {
				t.Fatalf("request %d: %v %+v", i, err, res)
			}
		}
		if b := breaker(); b != router.BreakerOpen {
			t.Fatalf("breaker %v after 3 failures, want open", b)
		}
		res, err := r.Generate(ctx, router.Request{Tier: "main"})
		if err != nil {
			t.Fatal(err)
		}
		if !containsReason(res.Receipt.Reasons, router.ReasonCircuitOpen) {
			t.Errorf("open breaker: reasons %v", res.Receipt.Reasons)
		}
		if n := flaky.calls.Load(); n != 3 {
			t.Errorf("open breaker still sent requests: model saw %d, want 3", n)
		}

		// Half-open: the probe fails, the breaker opens again.
		time.Sleep(cooldown - time.Millisecond)
		if b := breaker(); b != router.BreakerOpen {
			t.Errorf("before the cooldown: %v, want open", b)
		}
		time.Sleep(time.Millisecond)
		if b := breaker(); b != router.BreakerHalfOpen {
			t.Errorf("after cooldown: %v, want half_open", b)
		}
		if _, err := r.Generate(ctx, router.Request{Tier: "main"}); err != nil {
			t.Fatal(err)
		}
		if n := flaky.calls.Load(); n != 4 {
			t.Errorf("half-open probe: model saw %d requests, want 4", n)
		}
		if b := breaker(); b != router.BreakerOpen {
			t.Errorf("failed probe: %v, want open", b)
		}

		// Half-open: the probe succeeds, the breaker closes.
		flaky.Fail.Store(false)
		time.Sleep(cooldown)
		res, err = r.Generate(ctx, router.Request{Tier: "main"})
		if err != nil || res.Receipt.Tier != "main" || res.Text != "ok" {
			t.Fatalf("probe: %v %+v", err, res)
		}
		if b := breaker(); b != router.BreakerClosed {
			t.Errorf("after a good probe: %v, want closed", b)
		}
	})
}

func TestBreakerFailureRate(t *testing.T) {
	g := newGate()
	r := mustRouter(t, router.Options{
		Tiers: []router.Tier{
			{Name: "t", Replicas: []router.Replica{{Name: "a", Model: g}},
				Breaker: router.Breaker{ConsecutiveFailures: 100, FailureRate: 0.5, MinRequests: 4, Window: time.Minute}},
		},
	})
	ctx := context.Background()
	for range 2 {
		g.fail = nil
		g.release(1)
		if _, err := r.Generate(ctx, router.Request{}); err != nil {
			t.Fatal(err)
		}
		g.fail = errors.New("boom")
		if _, err := r.Generate(ctx, router.Request{}); err == nil {
			t.Fatal("want an error")
		}
	}
	st, _ := r.Stats().Tier("t")
	if st.Replicas[0].Breaker != router.BreakerOpen {
		t.Errorf("2 of 4 failed: breaker %v, want open", st.Replicas[0].Breaker)
	}
	if _, err := r.Generate(ctx, router.Request{}); !errors.Is(err, router.ErrCircuitOpen) {
		t.Errorf("single replica, open: err = %v, want ErrCircuitOpen", err)
	}
}

func containsReason(rs []router.Reason, want router.Reason) bool {
	for _, r := range rs {
		if r == want {
			return true
		}
	}
	return false
}

// TestPredictedDeadlineMiss: a tier whose TTFT p95 exceeds the time left
// is skipped for the next one; the prior is the TTFT target, then the
// measured p95. It runs on a fake clock so that the measured TTFT is the
// model's 60ms, not the machine's load.
func TestPredictedDeadlineMiss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &paced{TTFT: 60 * time.Millisecond, Tokens: []string{"slow"}}
		fast := instant{tokens: []string{"quick"}}
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "big", Replicas: []router.Replica{{Name: "s", Model: slow}}, TTFTTarget: 500 * time.Millisecond},
				tier("small", router.Replica{Name: "f", Model: fast}),
			},
			Fallbacks: [][]string{{"big", "small"}},
		})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		res, err := r.Generate(ctx, router.Request{Tier: "big"})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if res.Receipt.Tier != "small" || !containsReason(res.Receipt.Reasons, router.ReasonPredictedLate) {
			t.Errorf("prior 500ms vs 200ms left: %+v", res.Receipt)
		}
		if n := slow.started.Load(); n != 0 {
			t.Errorf("predicted-late tier got %d requests", n)
		}
		// Without a deadline the tier serves, and learns its real TTFT (60ms).
		for range 3 {
			if res, err := r.Generate(context.Background(), router.Request{Tier: "big"}); err != nil || res.Receipt.Tier != "big" {
				t.Fatalf("%v %+v", err, res)
			}
		}
		st, _ := r.Stats().Tier("big")
		if st.RecentTTFTP95 < 50*time.Millisecond || st.RecentTTFTP95 > 80*time.Millisecond {
			t.Fatalf("recent TTFT p95 = %v, want about 60ms", st.RecentTTFTP95)
		}
		// 200ms left now fits the measured p95.
		ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond+st.RecentTTFTP95)
		res, err = r.Generate(ctx, router.Request{Tier: "big"})
		cancel()
		if err != nil || res.Receipt.Tier != "big" {
			t.Errorf("measured p95 fits: %v %+v", err, res)
		} else if res.Receipt.Timing.PredictedTTFT != st.RecentTTFTP95 {
			t.Errorf("predicted TTFT %v, want the p95 %v", res.Receipt.Timing.PredictedTTFT, st.RecentTTFTP95)
		}
		// 20ms left does not.
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
		res, err = r.Generate(ctx, router.Request{Tier: "big"})
		cancel()
		if err != nil || res.Receipt.Tier != "small" {
			t.Errorf("measured p95 too slow: %v %+v", err, res)
		}
	})
}

// TestHedge: a slow tier is hedged on the next one; the first token wins
// and the loser is cancelled on the wire. The slow tier takes a minute, so
// only the hedge can answer in time, however loaded the machine.
func TestHedge(t *testing.T) {
	slow := newBackend(t, openaitest.Behavior{TTFT: time.Minute, Tokens: []string{"slow"}})
	fast := newBackend(t, openaitest.Behavior{TTFT: 5 * time.Millisecond, Tokens: []string{"fast"}})
	r := mustRouter(t, router.Options{
		Tiers: []router.Tier{
			{Name: "big", Replicas: []router.Replica{slow.replica("s")}, HedgeAfter: 20 * time.Millisecond, StallTimeout: 2 * time.Minute},
			tier("small", fast.replica("f")),
		},
		Fallbacks: [][]string{{"big", "small"}},
	})
	res, err := r.Generate(context.Background(), router.Request{Tier: "big"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "fast" || res.Receipt.Tier != "small" || !containsReason(res.Receipt.Reasons, router.ReasonHedge) || res.Receipt.Attempts != 2 {
		t.Errorf("result %+v", res)
	}
	waitFor(t, slow.srv, "loser cancelled", func(s openaitest.Stats) bool { return s.Cancelled == 1 && s.InFlight == 0 })
	st, _ := r.Stats().Tier("big")
	if st.Hedges != 1 || st.InFlight != 0 {
		t.Errorf("big stats %+v", st)
	}
}

// TestNoHedgeBeforeDelay: a primary that answers before HedgeAfter is not
// hedged. On a fake clock, so that "before" does not depend on the load.
func TestNoHedgeBeforeDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		primary := &paced{TTFT: 19 * time.Millisecond, Tokens: []string{"slow"}}
		hedge := &paced{Tokens: []string{"fast"}}
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "big", Replicas: []router.Replica{{Name: "s", Model: primary}}, HedgeAfter: 20 * time.Millisecond},
				tier("small", router.Replica{Name: "f", Model: hedge}),
			},
			Fallbacks: [][]string{{"big", "small"}},
		})
		res, err := r.Generate(context.Background(), router.Request{Tier: "big"})
		if err != nil || res.Text != "slow" || containsReason(res.Receipt.Reasons, router.ReasonHedge) {
			t.Errorf("no hedge: %v %+v", err, res)
		}
		if n := hedge.started.Load(); n != 0 {
			t.Errorf("hedge tier got %d requests", n)
		}
	})
}

// TestNoFallbackAfterFirstToken: a stream cut after its first token ends
// with a TruncatedError and never moves to the next tier.
func TestNoFallbackAfterFirstToken(t *testing.T) {
	cut := newBackend(t, openaitest.Behavior{Tokens: openaitest.Words(5), Fault: openaitest.Drop, FaultAfter: 2})
	next := newBackend(t, openaitest.Behavior{})
	r := mustRouter(t, router.Options{
		Tiers: []router.Tier{
			tier("big", cut.replica("c")),
			tier("small", next.replica("n")),
		},
		Fallbacks: [][]string{{"big", "small"}},
	})
	s, err := r.Stream(context.Background(), router.Request{Tier: "big"})
	if err != nil {
		t.Fatal(err)
	}
	text, err := drain(s)
	var te *router.TruncatedError
	if !errors.As(err, &te) || !errors.Is(err, router.ErrTruncated) || te.Tokens != 2 || te.Tier != "big" {
		t.Fatalf("err = %v", err)
	}
	if text != "w0 w1" {
		t.Errorf("partial text %q", text)
	}
	if n := next.srv.Stats().Requests; n != 0 {
		t.Errorf("next tier got %d requests after the first token", n)
	}
	st, _ := r.Stats().Tier("big")
	if st.Errors.Truncated != 1 || st.Successes != 0 || st.InFlight != 0 {
		t.Errorf("stats %+v", st)
	}

	// Before the first token the same drop falls back.
	cut.srv.SetBehavior(openaitest.Behavior{Fault: openaitest.Drop})
	res, err := r.Generate(context.Background(), router.Request{Tier: "big"})
	if err != nil || res.Receipt.Tier != "small" {
		t.Errorf("drop before the first token: %v %+v", err, res)
	}
}

// TestStallGuard: a stream whose next token does not come within
// StallTimeout is truncated with ErrStalled and cancelled; a stall before
// the first token falls back. On a fake clock, so that a loaded machine's
// slow token is never taken for a stall.
func TestStallGuard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stall := &paced{Tokens: openaitest.Words(5), StallAfter: 2}
		next := instant{tokens: []string{"next"}}
		const timeout = 40 * time.Millisecond
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "big", Replicas: []router.Replica{{Name: "s", Model: stall}}, StallTimeout: timeout},
				tier("small", router.Replica{Name: "n", Model: next}),
			},
			Fallbacks: [][]string{{"big", "small"}},
		})
		s, err := r.Stream(context.Background(), router.Request{Tier: "big"})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = drain(s)
		var te *router.TruncatedError
		if !errors.As(err, &te) || !errors.Is(err, router.ErrStalled) || te.Tokens != 2 {
			t.Fatalf("err = %v, want a stall truncation", err)
		}
		if got := time.Since(start); got != timeout {
			t.Errorf("stalled stream cut after %v, want %v", got, timeout)
		}
		synctest.Wait()
		if n, inFlight := stall.cancelled.Load(), stall.inFlight.Load(); n != 1 || inFlight != 0 {
			t.Errorf("stalled request: %d cancelled, %d in flight; want 1, 0", n, inFlight)
		}

		// A stall before the first token falls back.
		r2 := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "big", Replicas: []router.Replica{{Name: "s", Model: newGate()}}, StallTimeout: timeout},
				tier("small", router.Replica{Name: "n", Model: next}),
			},
			Fallbacks: [][]string{{"big", "small"}},
		})
		res, err := r2.Generate(context.Background(), router.Request{Tier: "big"})
		if err != nil || res.Receipt.Tier != "small" || !containsReason(res.Receipt.Reasons, router.ReasonBackendError) {
			t.Errorf("stall before first token: %v %+v", err, res)
		}
	})
}

func TestMinTokensPerSecond(t *testing.T) {
	trickle := newBackend(t, openaitest.Behavior{Tokens: openaitest.Words(20), TokenDelay: 25 * time.Millisecond})
	r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{trickle.replica("a")}, MinTokensPerSecond: 100, StallGrace: 60 * time.Millisecond}}})
	s, err := r.Stream(context.Background(), router.Request{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = drain(s)
	var te *router.TruncatedError
	if !errors.As(err, &te) || !errors.Is(err, router.ErrTooSlow) || te.Tokens >= 20 {
		t.Fatalf("err = %v, want a too-slow truncation", err)
	}
}

// TestAffinityAndSpill: one key sticks to its rendezvous replica until
// that replica is full, then spills; different keys spread.
func TestAffinityAndSpill(t *testing.T) {
	g := newGate()
	var reps []router.Replica
	for i := range 4 {
		reps = append(reps, router.Replica{Name: fmt.Sprintf("r%d", i), Model: g, MaxConcurrent: 2})
	}
	r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: reps}}})
	ctx := context.Background()
	g.release(1000)
	owner := ""
	for i := range 20 {
		res, err := r.Generate(ctx, router.Request{AffinityKey: "persona-7"})
		if err != nil {
			t.Fatal(err)
		}
		if owner == "" {
			owner = res.Receipt.Replica
		}
		if res.Receipt.Replica != owner || res.Receipt.Reasons[1] != router.ReasonAffinity {
			t.Fatalf("request %d: %s %v, want sticky on %s", i, res.Receipt.Replica, res.Receipt.Reasons, owner)
		}
	}
	owners := map[string]int{}
	for i := range 200 {
		res, err := r.Generate(ctx, router.Request{AffinityKey: fmt.Sprintf("conv-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		owners[res.Receipt.Replica]++
	}
	for _, rep := range reps {
		if n := owners[rep.Name]; n < 20 {
			t.Errorf("replica %s owns %d of 200 keys; rendezvous should spread them", rep.Name, n)
		}
	}
}

// TestSpill is the deterministic form: the owner is full, so the request
// goes elsewhere with ReasonSpill.
func TestSpill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		held := newGate()
		free := instant{tokens: []string{"x"}}
		// Find which of two names owns the key by asking a router with both
		// replicas free.
		probe := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "a", Model: free}, {Name: "b", Model: free}}}}})
		res, err := probe.Generate(context.Background(), router.Request{AffinityKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		owner := res.Receipt.Replica
		other := map[string]string{"a": "b", "b": "a"}[owner]
		models := map[string]router.Model{owner: held, other: free}
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "t", Replicas: []router.Replica{
					{Name: "a", Model: models["a"], MaxConcurrent: 1},
					{Name: "b", Model: models["b"], MaxConcurrent: 1},
				}},
			},
		})
		done := make(chan struct{})
		go func() {
			defer close(done)
			if s, err := r.Stream(context.Background(), router.Request{AffinityKey: "k"}); err == nil {
				drain(s)
			}
		}()
		synctest.Wait() // the held stream has started and waits for its gate
		res, err = r.Generate(context.Background(), router.Request{AffinityKey: "k"})
		if err != nil {
			t.Fatalf("owner %s full: %v", owner, err)
		}
		if res.Receipt.Replica != other || res.Receipt.Reasons[1] != router.ReasonSpill {
			t.Errorf("owner full: %s %v, want spill to %s", res.Receipt.Replica, res.Receipt.Reasons, other)
		}
		held.release(2)
		<-done
		res, err = r.Generate(context.Background(), router.Request{AffinityKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Receipt.Replica != owner || res.Receipt.Reasons[1] != router.ReasonAffinity {
			t.Errorf("owner free again: %v %+v", err, res.Receipt)
		}
	})
}

// TestLeastLoaded: with no affinity key, power-of-two choices avoids the
// busy replica.
func TestLeastLoaded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		held := newGate()
		free := instant{tokens: []string{"x"}}
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "busy", Model: held}, {Name: "idle", Model: free}}}}})
		// Requests spread until one lands on busy and stays there.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s, err := r.Stream(context.Background(), router.Request{Tier: "t"})
				if err != nil {
					return
				}
				rc := s.Receipt()
				drain(s)
				if rc.Replica == "busy" {
					return
				}
			}
		}()
		synctest.Wait() // the held stream has started and waits for its gate
		for i := range 50 {
			res, err := r.Generate(context.Background(), router.Request{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Receipt.Replica != "idle" || res.Receipt.Reasons[1] != router.ReasonLeastLoaded {
				t.Fatalf("request %d went to %s (%v) while busy had a request outstanding", i, res.Receipt.Replica, res.Receipt.Reasons)
			}
		}
		held.release(1)
		wg.Wait()
	})
}

// TestReconfigureUnderLoad: streams keep flowing while the configuration
// is swapped; in-flight streams finish on the old configuration.
func TestReconfigureUnderLoad(t *testing.T) {
	a := newBackend(t, openaitest.Behavior{Tokens: openaitest.Words(10), TokenDelay: time.Millisecond})
	b := newBackend(t, openaitest.Behavior{Tokens: openaitest.Words(10), TokenDelay: time.Millisecond})
	cfg := func(rep router.Replica, limit int) router.Options {
		return router.Options{
			Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{rep}, MaxConcurrent: limit, MaxQueued: 100, QueueTimeout: time.Minute, StallTimeout: time.Minute}},
		}
	}
	r := mustRouter(t, cfg(a.replica("a"), 8))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	streamed := make(chan struct{}, 80) // one per stream that ended well
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				s, err := r.Stream(ctx, router.Request{AffinityKey: fmt.Sprint(i, j)})
				if err != nil {
					errs <- err
					return
				}
				text, err := drain(s)
				if err != nil || len(text) == 0 {
					errs <- fmt.Errorf("text %q: %w", text, err)
					return
				}
				streamed <- struct{}{}
			}
		}()
	}
	workersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(workersDone)
	}()
	// Reconfigure after every 7 streams, so that the swaps interleave with
	// the load whatever the machine's speed; the last comes while the
	// last 10 streams are still to finish.
	for i := range 10 {
		for range 7 {
			select {
			case <-streamed:
			case <-workersDone: // a worker failed; its error is reported below
			}
		}
		rep, limit := a.replica("a"), 8
		if i%2 == 0 {
			rep, limit = b.replica("b"), 3
		}
		if err := r.Reconfigure(cfg(rep, limit)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := r.Reconfigure(cfg(b.replica("b"), 3)); err != nil {
		t.Fatal(err)
	}
	st, _ := r.Stats().Tier("t")
	if st.InFlight != 0 || st.Queued != 0 {
		t.Errorf("after the load: in flight %d queued %d", st.InFlight, st.Queued)
	}
	if n := a.srv.Stats().Requests + b.srv.Stats().Requests; n != 80 {
		t.Errorf("servers saw %d requests, want 80", n)
	}
	// A bad configuration leaves the old one.
	if err := r.Reconfigure(router.Options{}); err == nil {
		t.Error("empty Reconfigure succeeded")
	}
	if res, err := r.Generate(ctx, router.Request{}); err != nil || res.Receipt.Replica != "b" {
		t.Errorf("after a failed Reconfigure: %v %+v", err, res)
	}
}

func TestCancelBeforeFirstToken(t *testing.T) {
	slow := newBackend(t, openaitest.Behavior{TTFT: 5 * time.Second})
	next := newBackend(t, openaitest.Behavior{})
	r := mustRouter(t, router.Options{
		Tiers: []router.Tier{
			tier("big", slow.replica("s")),
			tier("small", next.replica("n")),
		},
		Fallbacks: [][]string{{"big", "small"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := r.Stream(ctx, router.Request{Tier: "big"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if n := next.srv.Stats().Requests; n != 0 {
		t.Errorf("the caller's deadline caused a fallback (%d requests)", n)
	}
	waitFor(t, slow.srv, "cancelled on the wire", func(s openaitest.Stats) bool { return s.Cancelled == 1 && s.InFlight == 0 })
	st, _ := r.Stats().Tier("big")
	if st.Errors.Deadline != 1 || st.InFlight != 0 {
		t.Errorf("stats %+v", st.Errors)
	}
}

func TestClose(t *testing.T) {
	r, err := router.New(threeTiers())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); !errors.Is(err, router.ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	if _, err := r.Stream(context.Background(), router.Request{}); !errors.Is(err, router.ErrClosed) {
		t.Errorf("Stream after Close = %v", err)
	}
}

func TestEmptyCompletionFallsBack(t *testing.T) {
	empty := newBackend(t, openaitest.Behavior{Tokens: []string{}})
	lines := mustScripted(t, scripted.Options{Default: []string{"A line."}, Lines: map[router.Responsibility][]string{}})
	r := mustRouter(t, router.Options{
		Tiers: []router.Tier{
			tier("llm", empty.replica("e")),
			tier("scripted", router.Replica{Name: "lines", Model: lines}),
		},
		Fallbacks: [][]string{{"llm", "scripted"}},
	})
	res, err := r.Generate(context.Background(), router.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "A line." || res.Receipt.Tier != "scripted" {
		t.Errorf("an empty completion was not replaced: %+v", res)
	}
	st, _ := r.Stats().Tier("llm")
	if st.Errors.Backend != 1 || st.Replicas[0].Breaker != router.BreakerClosed {
		t.Errorf("stats %+v", st)
	}
}

func TestHooksAndStatsCarryOver(t *testing.T) {
	bad := newBackend(t, openaitest.Behavior{Status: 500})
	good := newBackend(t, openaitest.Behavior{Tokens: []string{"a", "b"}})
	var mu sync.Mutex
	var routed []string
	var fallbacks []string
	hooks := router.Hooks{
		OnRouted: func(rc router.Receipt) {
			mu.Lock()
			routed = append(routed, rc.Tier)
			mu.Unlock()
		},
		OnFallback: func(from, to string, cause error) {
			mu.Lock()
			fallbacks = append(fallbacks, from+"→"+to)
			mu.Unlock()
		},
	}
	opts := router.Options{
		Tiers: []router.Tier{
			tier("big", bad.replica("b")),
			tier("small", good.replica("g")),
		},
		Fallbacks: [][]string{{"big", "small"}},
		Hooks:     hooks,
	}
	r := mustRouter(t, opts)
	if _, err := r.Generate(context.Background(), router.Request{Tier: "big"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if diff := cmp.Diff([]string{"small"}, routed); diff != "" {
		t.Errorf("OnRouted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"big→small"}, fallbacks); diff != "" {
		t.Errorf("OnFallback (-want +got):\n%s", diff)
	}
	mu.Unlock()
	if err := r.Reconfigure(opts); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	big, _ := st.Tier("big")
	small, _ := st.Tier("small")
	if big.Requests != 1 || big.Errors.Backend != 1 || small.Successes != 1 || small.TokensOut != 2 || small.TTFT.Count != 1 || small.Total.Count != 1 || small.InterToken.Count != 1 {
		t.Errorf("stats after Reconfigure: big %+v small %+v", big, small)
	}
	if rs, ok := small.Replica("g"); !ok || rs.Successes != 1 || rs.TokensOut != 2 {
		t.Errorf("replica stats %+v", rs)
	}
}

// TestSlowReaderIsNotAStall: the stall guard measures the backend, not the
// caller; a caller that pauses longer than StallTimeout between reads gets
// the whole line. On a fake clock: the backend has every token ready, the
// reader pauses 30ms each time.
func TestSlowReaderIsNotAStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fast := &paced{Tokens: openaitest.Words(4)}
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "a", Model: fast}}, StallTimeout: 20 * time.Millisecond, MinTokensPerSecond: 1000, StallGrace: time.Millisecond}}})
		s, err := r.Stream(context.Background(), router.Request{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var text string
		for {
			time.Sleep(30 * time.Millisecond) // the player listens
			d, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("slow reader cut off: %v", err)
			}
			text += d.Text
		}
		if text != "w0 w1 w2 w3" {
			t.Errorf("text %q", text)
		}
	})
}

// TestHedgeOutcomes: the primary can still win after the hedge started
// (the hedge is cancelled), and when both fail the chain goes on.
func TestHedgeOutcomes(t *testing.T) {
	t.Run("primary wins late", func(t *testing.T) {
		// On a fake clock, so that the primary's 40ms always comes after
		// the 10ms hedge delay and before the hedge's 2s.
		synctest.Test(t, func(t *testing.T) {
			primary := &paced{TTFT: 40 * time.Millisecond, Tokens: []string{"primary"}}
			hedge := &paced{TTFT: 2 * time.Second, Tokens: []string{"hedge"}}
			r := mustRouter(t, router.Options{
				Tiers: []router.Tier{
					{Name: "a", Replicas: []router.Replica{{Name: "p", Model: primary}}, HedgeAfter: 10 * time.Millisecond},
					tier("b", router.Replica{Name: "h", Model: hedge}),
				},
				Fallbacks: [][]string{{"a", "b"}},
			})
			res, err := r.Generate(context.Background(), router.Request{Tier: "a"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != "primary" || res.Receipt.Tier != "a" || !containsReason(res.Receipt.Reasons, router.ReasonHedge) {
				t.Errorf("result %+v", res)
			}
			synctest.Wait()
			if n, inFlight := hedge.cancelled.Load(), hedge.inFlight.Load(); n != 1 || inFlight != 0 {
				t.Errorf("hedge: %d cancelled, %d in flight; want 1, 0", n, inFlight)
			}
		})
	})
	t.Run("both fail", func(t *testing.T) {
		slowBad := newBackend(t, openaitest.Behavior{HeaderDelay: 30 * time.Millisecond, Status: 500})
		bad := newBackend(t, openaitest.Behavior{HeaderDelay: 30 * time.Millisecond, Status: 500})
		good := newBackend(t, openaitest.Behavior{Tokens: []string{"last"}})
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "a", Replicas: []router.Replica{slowBad.replica("x")}, HedgeAfter: 10 * time.Millisecond},
				tier("b", bad.replica("y")),
				tier("c", good.replica("z")),
			},
			Fallbacks: [][]string{{"a", "b", "c"}},
		})
		res, err := r.Generate(context.Background(), router.Request{Tier: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Text != "last" || res.Receipt.Tier != "c" || res.Receipt.Attempts != 3 {
			t.Errorf("result %+v", res)
		}
		if n := bad.srv.Stats().Requests; n != 1 {
			t.Errorf("hedge tier got %d requests, want 1 (no second try after the hedge failed)", n)
		}
	})
	t.Run("primary fails before the hedge delay", func(t *testing.T) {
		bad := newBackend(t, openaitest.Behavior{Status: 500})
		good := newBackend(t, openaitest.Behavior{Tokens: []string{"ok"}})
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "a", Replicas: []router.Replica{bad.replica("x")}, HedgeAfter: time.Minute},
				tier("b", good.replica("y")),
			},
			Fallbacks: [][]string{{"a", "b"}},
		})
		// A minute's HedgeAfter: waiting for it instead of falling back
		// at once would show as a hedge (or a hung test).
		res, err := r.Generate(context.Background(), router.Request{Tier: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := r.Stats().Tier("a"); st.Hedges != 0 {
			t.Errorf("hedged %d times", st.Hedges)
		}
		if res.Receipt.Tier != "b" || containsReason(res.Receipt.Reasons, router.ReasonHedge) || !containsReason(res.Receipt.Reasons, router.ReasonBackendError) {
			t.Errorf("result %+v", res.Receipt)
		}
	})
}
