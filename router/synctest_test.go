package router_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/router"
)

// failing fails every stream before its first token.
type failing struct{}

func (failing) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("down")
}

func (failing) Stream(context.Context, router.Request) (router.Stream, error) {
	return nil, errors.New("down")
}

// TestDefaultTimers checks the documented defaults with a fake clock: the
// breaker opens after 5 failures and half-opens after 5s; a queued request
// waits QueueTimeout (1s) before it is downgraded; the stall guard fires
// after 5s without a token.
func TestDefaultTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		backup := instant{tokens: []string{"ok"}}
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				tier("main", router.Replica{Name: "m", Model: failing{}}),
				tier("backup", router.Replica{Name: "b", Model: backup}),
			},
			Fallbacks: [][]string{{"main", "backup"}},
		})
		ctx := context.Background()
		breaker := func() router.BreakerState {
			st, _ := r.Stats().Tier("main")
			return st.Replicas[0].Breaker
		}
		for range 4 {
			if _, err := r.Generate(ctx, router.Request{Tier: "main"}); err != nil {
				t.Fatal(err)
			}
		}
		if b := breaker(); b != router.BreakerClosed {
			t.Fatalf("after 4 failures: %v", b)
		}
		r.Generate(ctx, router.Request{Tier: "main"})
		if b := breaker(); b != router.BreakerOpen {
			t.Fatalf("after 5 failures: %v", b)
		}
		time.Sleep(5*time.Second - time.Millisecond)
		if b := breaker(); b != router.BreakerOpen {
			t.Fatalf("before the cooldown: %v", b)
		}
		time.Sleep(time.Millisecond)
		if b := breaker(); b != router.BreakerHalfOpen {
			t.Fatalf("after the cooldown: %v", b)
		}
	})

	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				{Name: "main", Replicas: []router.Replica{{Name: "m", Model: g}}, MaxConcurrent: 1, MaxQueued: 1, StallTimeout: time.Hour},
				tier("backup", router.Replica{Name: "b", Model: instant{tokens: []string{"ok"}}}),
			},
			Fallbacks: [][]string{{"main", "backup"}},
		})
		ctx := context.Background()
		go func() {
			if s, err := r.Stream(ctx, router.Request{Tier: "main"}); err == nil {
				drain(s)
			}
		}()
		synctest.Wait()
		start := time.Now()
		res, err := r.Generate(ctx, router.Request{Tier: "main"})
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != router.DefaultQueueTimeout || res.Receipt.Tier != "backup" {
			t.Errorf("waited %v, served by %s; want %v then backup", waited, res.Receipt.Tier, router.DefaultQueueTimeout)
		}
		if res.Receipt.Timing.Queued != 0 {
			t.Errorf("Timing.Queued = %v for a request served without queueing on backup", res.Receipt.Timing.Queued)
		}
		g.release(1)
	})

	synctest.Test(t, func(t *testing.T) {
		g := newGate("a", "b")
		r := mustRouter(t, router.Options{
			Tiers: []router.Tier{
				tier("main", router.Replica{Name: "m", Model: g}),
				tier("backup", router.Replica{Name: "b", Model: instant{tokens: []string{"ok"}}}),
			},
			Fallbacks: [][]string{{"main", "backup"}},
		})
		start := time.Now()
		res, err := r.Generate(context.Background(), router.Request{Tier: "main"})
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != router.DefaultStallTimeout || res.Receipt.Tier != "backup" {
			t.Errorf("no first token: fell back after %v to %s, want %v to backup", waited, res.Receipt.Tier, router.DefaultStallTimeout)
		}
	})
}
