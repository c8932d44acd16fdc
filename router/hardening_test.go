package router_test

import (
	"context"
	"errors"
	"maps"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/router"
)

// panicky panics in Stream (or, with inRecv, in the stream's first Recv)
// on its first request and answers "ok" after that.
type panicky struct {
	inRecv bool
	calls  atomic.Int32
}

func (m *panicky) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("panicky: Generate not used")
}

func (m *panicky) Stream(context.Context, router.Request) (router.Stream, error) {
	first := m.calls.Add(1) == 1
	if first && !m.inRecv {
		panic("panicky: Stream")
	}
	s := &instantStream{tokens: []string{"ok"}}
	if first {
		return panicStream{}, nil
	}
	return s, nil
}

type panicStream struct{}

func (panicStream) Recv() (router.Delta, error) { panic("panicky: Recv") }
func (panicStream) Close() error                { return nil }

// TestPanickingModelReleasesSlot: a Model that panics before its first
// token does not keep its tier's only slot.
func TestPanickingModelReleasesSlot(t *testing.T) {
	for _, inRecv := range []bool{false, true} {
		m := &panicky{inRecv: inRecv}
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "p", Model: m}}, MaxConcurrent: 1}}})
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("inRecv=%v: the Model's panic did not reach the caller", inRecv)
				}
			}()
			r.Generate(context.Background(), router.Request{})
		}()
		st, _ := r.Stats().Tier("t")
		if st.InFlight != 0 || st.Errors.Backend != 1 {
			t.Errorf("inRecv=%v: after the panic InFlight = %d, Errors.Backend = %d; want 0, 1", inRecv, st.InFlight, st.Errors.Backend)
		}
		res, err := r.Generate(context.Background(), router.Request{})
		if err != nil || res.Text != "ok" {
			t.Errorf("inRecv=%v: next request: %v, %+v", inRecv, err, res)
		}
	}
}

// flaky fails every stream before its first token while bad is set, and
// answers "ok" otherwise.
type flaky struct{ bad atomic.Bool }

func (m *flaky) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("flaky: Generate not used")
}

func (m *flaky) Stream(context.Context, router.Request) (router.Stream, error) {
	if m.bad.Load() {
		return nil, errors.New("flaky: down")
	}
	return &instantStream{tokens: []string{"ok"}}, nil
}

// TestQueuedRequestTakesProbeAfterCooldown: a request that finds the
// healthy replica full and the other one cooling down queues (it does not
// fail with ErrCircuitOpen), and is admitted as the half-open probe when
// the cooldown ends, not at its queue timeout.
func TestQueuedRequestTakesProbeAfterCooldown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate("a")
		bad := &flaky{}
		bad.bad.Store(true)
		const cooldown = time.Second
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{
					Name:         "main",
					Replicas:     []router.Replica{{Name: "a", Model: g, MaxConcurrent: 1}, {Name: "b", Model: bad, MaxConcurrent: 1}},
					MaxQueued:    1,
					QueueTimeout: 10 * time.Second,
					StallTimeout: time.Hour,
					Breaker:      router.Breaker{ConsecutiveFailures: 1, Cooldown: cooldown},
				},
				tier("backup", router.Replica{Name: "x", Model: instant{tokens: []string{"backup"}}}),
			},
			Fallbacks: [][]string{{"main", "backup"}},
		})
		ctx := context.Background()
		// Two requests: one holds a (its gate stays shut), the other
		// fails on b and opens its breaker, whichever comes first.
		for range 2 {
			go func() {
				if s, err := r.Stream(ctx, router.Request{Tier: "main"}); err == nil {
					drain(s)
				}
			}()
			synctest.Wait()
		}
		st, _ := r.Stats().Tier("main")
		a, _ := st.Replica("a")
		b, _ := st.Replica("b")
		if a.InFlight != 1 || b.Breaker != router.BreakerOpen {
			t.Fatalf("setup: a in flight %d, b breaker %v; want 1, open", a.InFlight, b.Breaker)
		}
		bad.bad.Store(false)

		start := time.Now()
		res, err := r.Generate(ctx, router.Request{Tier: "main"})
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); res.Receipt.Tier != "main" || res.Receipt.Replica != "b" || got != cooldown {
			t.Errorf("served by %s/%s after %v; want main/b after the %v cooldown", res.Receipt.Tier, res.Receipt.Replica, got, cooldown)
		}
		if st, _ := r.Stats().Tier("main"); st.Replicas[1].Breaker != router.BreakerClosed {
			t.Errorf("after a good probe: breaker %v, want closed", st.Replicas[1].Breaker)
		}
		g.release(1)
		synctest.Wait()
	})
}

// doomed streams wait for die to close, then fail before their first
// token.
type doomed struct{ die chan struct{} }

func (m doomed) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("doomed: Generate not used")
}

func (m doomed) Stream(ctx context.Context, _ router.Request) (router.Stream, error) {
	return doomedStream{ctx, m.die}, nil
}

type doomedStream struct {
	ctx context.Context
	die chan struct{}
}

func (s doomedStream) Recv() (router.Delta, error) {
	select {
	case <-s.die:
		return router.Delta{}, errors.New("doomed: engine died")
	case <-s.ctx.Done():
		return router.Delta{}, s.ctx.Err()
	}
}
func (doomedStream) Close() error { return nil }

// TestQueuedRequestsFallBackWhenCircuitOpens: when the failure of the
// request in flight opens the only replica's breaker, the queued requests
// fall back at once, as a new request would, instead of waiting out their
// queue timeout.
func TestQueuedRequestsFallBackWhenCircuitOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		die := make(chan struct{})
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{
					Name:          "main",
					Replicas:      []router.Replica{{Name: "m", Model: doomed{die}}},
					MaxConcurrent: 1,
					MaxQueued:     4,
					QueueTimeout:  10 * time.Second,
					StallTimeout:  time.Hour,
					Breaker:       router.Breaker{ConsecutiveFailures: 1, Cooldown: time.Minute},
				},
				tier("backup", router.Replica{Name: "x", Model: instant{tokens: []string{"backup"}}}),
			},
			Fallbacks: [][]string{{"main", "backup"}},
		})
		ctx := context.Background()
		type result struct {
			res  *router.Result
			err  error
			took time.Duration
		}
		results := make(chan result, 3)
		for range 3 {
			go func() {
				start := time.Now()
				res, err := r.Generate(ctx, router.Request{Tier: "main"})
				results <- result{res, err, time.Since(start)}
			}()
			synctest.Wait()
		}
		if st, _ := r.Stats().Tier("main"); st.InFlight != 1 || st.Queued != 2 {
			t.Fatalf("setup: in flight %d, queued %d; want 1, 2", st.InFlight, st.Queued)
		}
		close(die)
		for range 3 {
			got := <-results
			if got.err != nil {
				t.Fatal(got.err)
			}
			if got.res.Receipt.Tier != "backup" || got.took != 0 {
				t.Errorf("served by %s after %v; want backup at once", got.res.Receipt.Tier, got.took)
			}
		}
		st, _ := r.Stats().Tier("main")
		if st.Queued != 0 || st.Errors.CircuitOpen != 2 || st.Errors.Backend != 1 {
			t.Errorf("main: queued %d, errors %+v; want 0 queued, 2 circuit open, 1 backend", st.Queued, st.Errors)
		}
	})
}

// TestQueuedRequestKeepsTimeForFallback: a queued request with a fallback
// leaves the queue while the next tier's predicted TTFT still fits in its
// deadline, so the player gets a line from the next tier instead of a
// deadline error.
func TestQueuedRequestKeepsTimeForFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		const backupTTFT = 50 * time.Millisecond
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "main", Replicas: []router.Replica{{Name: "m", Model: g}}, MaxConcurrent: 1, MaxQueued: 1, QueueTimeout: 10 * time.Second, StallTimeout: time.Hour},
				{Name: "backup", Replicas: []router.Replica{{Name: "x", Model: instant{tokens: []string{"backup"}}}}, TTFTTarget: backupTTFT},
			},
			Fallbacks: [][]string{{"main", "backup"}},
		})
		go func() {
			if s, err := r.Stream(context.Background(), router.Request{Tier: "main"}); err == nil {
				drain(s)
			}
		}()
		synctest.Wait()
		const deadline = 500 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		res, err := r.Generate(ctx, router.Request{Tier: "main"})
		if err != nil {
			t.Errorf("no line for the player: %v", err)
		} else if got, want := time.Since(start), deadline-backupTTFT; res.Receipt.Tier != "backup" || got != want {
			t.Errorf("served by %s after %v; want backup after %v", res.Receipt.Tier, got, want)
		}
		g.release(1)
		synctest.Wait()
	})
}

// TestFailedReconfigureKeepsBreakers: a configuration that Reconfigure
// rejects changes nothing, not even the breaker settings of tiers it
// shares with the running one.
//
// On a fake clock, so that the 5s cooldown cannot end before the check.
func TestFailedReconfigureKeepsBreakers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		main := router.Tier{Name: "main", Replicas: []router.Replica{{Name: "m", Model: failing{}}}, Breaker: router.Breaker{ConsecutiveFailures: 1}}
		r := mustRouter(t, router.Options{Tiers: []router.Tier{main}})
		lenient := main
		lenient.Breaker.ConsecutiveFailures = 100
		if err := r.Reconfigure(router.Options{Tiers: []router.Tier{lenient}, Fallbacks: [][]string{{"main", "nowhere"}}}); err == nil {
			t.Fatal("Reconfigure accepted a chain to an unknown tier")
		}
		r.Generate(context.Background(), router.Request{})
		if st, _ := r.Stats().Tier("main"); st.Replicas[0].Breaker != router.BreakerOpen {
			t.Errorf("after 1 failure with ConsecutiveFailures 1: breaker %v, want open", st.Replicas[0].Breaker)
		}
	})
}

// TestHedgeTie: when the primary and the hedge both have a first token,
// one wins and the other is ended: its slot comes back, it counts as
// cancelled, and no goroutine outlives the request.
func TestHedgeTie(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ga, gb := newGate("primary"), newGate("hedge")
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "big", Replicas: []router.Replica{{Name: "a", Model: ga}}, MaxConcurrent: 1, HedgeAfter: 10 * time.Millisecond, StallTimeout: time.Hour},
				{Name: "small", Replicas: []router.Replica{{Name: "b", Model: gb}}, MaxConcurrent: 1, StallTimeout: time.Hour},
			},
			Fallbacks: [][]string{{"big", "small"}},
		})
		done := make(chan *router.Result, 1)
		go func() {
			res, err := r.Generate(context.Background(), router.Request{Tier: "big"})
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		time.Sleep(20 * time.Millisecond) // past HedgeAfter
		synctest.Wait()
		if len(ga.order()) != 1 || len(gb.order()) != 1 {
			t.Fatalf("started %d primary and %d hedge streams, want 1 and 1", len(ga.order()), len(gb.order()))
		}
		ga.release(1)
		gb.release(1)
		res := <-done
		synctest.Wait()
		loser := "small"
		if res.Receipt.Tier == "small" {
			loser = "big"
		}
		if want := map[string]string{"big": "primary", "small": "hedge"}[res.Receipt.Tier]; res.Text != want {
			t.Errorf("text %q from %s, want %q", res.Text, res.Receipt.Tier, want)
		}
		for _, name := range []string{"big", "small"} {
			st, _ := r.Stats().Tier(name)
			if st.InFlight != 0 {
				t.Errorf("%s: %d in flight after the request", name, st.InFlight)
			}
			if name == loser && st.Errors.Cancelled != 1 {
				t.Errorf("loser %s: errors %+v, want 1 cancelled", name, st.Errors)
			}
		}
	})
}

// TestReconfigureKeepsAdmittedOnOldConfig: requests admitted or queued
// before Reconfigure finish on the old configuration's replica and limits;
// new requests see only the new configuration's.
func TestReconfigureKeepsAdmittedOnOldConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ga, gb := newGate("old"), newGate("new")
		cfg := func(name string, m router.Model) router.Options {
			return router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: name, Model: m}}, MaxConcurrent: 1, MaxQueued: 1, QueueTimeout: time.Hour, StallTimeout: time.Hour}}}
		}
		r := mustRouter(t, cfg("a", ga))
		type result struct {
			res *router.Result
			err error
		}
		results := make(chan result, 4)
		generate := func() {
			go func() {
				res, err := r.Generate(context.Background(), router.Request{})
				results <- result{res, err}
			}()
			synctest.Wait()
		}
		generate() // admitted on a
		generate() // queued on the old configuration
		if err := r.Reconfigure(cfg("b", gb)); err != nil {
			t.Fatal(err)
		}
		generate() // admitted on b: the old request does not count here
		if got := len(gb.order()); got != 1 {
			t.Fatalf("new configuration started %d streams, want 1", got)
		}
		generate() // queued on the new configuration
		ga.release(2)
		gb.release(2)
		served := map[string]int{}
		for range 4 {
			got := <-results
			if got.err != nil {
				t.Fatal(got.err)
			}
			served[got.res.Receipt.Replica+":"+got.res.Text]++
		}
		if want := map[string]int{"a:old": 2, "b:new": 2}; !maps.Equal(served, want) {
			t.Errorf("served %v, want %v", served, want)
		}
		if st, _ := r.Stats().Tier("t"); st.InFlight != 0 || st.Queued != 0 {
			t.Errorf("after the load: in flight %d, queued %d", st.InFlight, st.Queued)
		}
	})
}

// TestFullQueueOverflowsAtOnce: with the queue full, a request overflows
// to the next tier without waiting at all.
func TestFullQueueOverflowsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate("big")
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "big", Replicas: []router.Replica{{Name: "g", Model: g}}, MaxConcurrent: 1, MaxQueued: 1, QueueTimeout: time.Hour, StallTimeout: time.Hour},
				tier("small", router.Replica{Name: "s", Model: instant{tokens: []string{"small"}}}),
			},
			Fallbacks: [][]string{{"big", "small"}},
		})
		for range 2 { // one holds the slot, one holds the queue
			go func() {
				if _, err := r.Generate(context.Background(), router.Request{Tier: "big"}); err != nil {
					t.Error(err)
				}
			}()
			synctest.Wait()
		}
		start := time.Now()
		res, err := r.Generate(context.Background(), router.Request{Tier: "big"})
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 0 || res.Receipt.Tier != "small" {
			t.Errorf("served by %s after %v, want small at once", res.Receipt.Tier, got)
		}
		if st, _ := r.Stats().Tier("big"); st.Errors.Saturated != 1 || st.Queued != 1 {
			t.Errorf("big: %d saturated, %d queued; want 1, 1", st.Errors.Saturated, st.Queued)
		}
		g.release(2)
		synctest.Wait()
	})
}

// TestHedgePanicReachesCaller: a Model that panics on a hedged branch
// panics in the caller's goroutine, as it would without hedging, instead
// of crashing the process from a goroutine nobody can recover; the other
// branch is cancelled and both slots come back.
func TestHedgePanicReachesCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate("primary")
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "big", Replicas: []router.Replica{{Name: "a", Model: g}}, HedgeAfter: 10 * time.Millisecond, StallTimeout: time.Hour},
				{Name: "small", Replicas: []router.Replica{{Name: "p", Model: &panicky{}}}},
			},
			Fallbacks: [][]string{{"big", "small"}},
		})
		func() {
			defer func() {
				if recover() == nil {
					t.Error("the hedge's panic did not reach the caller")
				}
			}()
			r.Generate(context.Background(), router.Request{Tier: "big"})
		}()
		synctest.Wait()
		for _, name := range []string{"big", "small"} {
			if st, _ := r.Stats().Tier(name); st.InFlight != 0 {
				t.Errorf("%s: %d in flight after the panic", name, st.InFlight)
			}
		}
	})
}
