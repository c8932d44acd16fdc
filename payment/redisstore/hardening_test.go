package redisstore_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
	"github.com/bodybroker/sdk/payment/redisstore"
)

// hangingProvider blocks subscription reads until ctx ends while hang is
// set: a provider call that runs into Options.SyncTimeout.
type hangingProvider struct {
	*fakepay.Provider
	hang chan struct{} // closed: stop hanging
}

func (p hangingProvider) GetSubscription(ctx context.Context, id string) (payment.Subscription, error) {
	select {
	case <-p.hang:
		return p.Provider.GetSubscription(ctx, id)
	case <-ctx.Done():
		return payment.Subscription{}, ctx.Err()
	}
}

// TestTimedOutSyncIsRetried: a sync cut short by SyncTimeout answers an
// error, and the provider's redelivery is processed. With a store that
// honours ctx (Redis), releasing the claim with the expired sync context
// failed, so the redelivery was taken for a duplicate and the payment
// never became an entitlement.
func TestTimedOutSyncIsRetried(t *testing.T) {
	s, _, _ := newStore(t)
	fake := newFake(t, nil)
	prov := hangingProvider{Provider: fake, hang: make(chan struct{})}
	svc, err := payment.New(payment.Options{
		Provider: prov, Store: s, WebhookSecrets: []payment.Secret{"whsec_t"}, SyncTimeout: 50 * time.Millisecond,
		Plans:  []payment.Plan{{ID: "vip", Prices: []payment.Price{{ID: "price_vip"}}}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	fake.Subscribe("p1", "price_vip")
	body := fake.Payload(fake.Events()[0])
	ctx := context.Background()
	if _, err := svc.Webhooks().Process(ctx, body, fakepay.Sign(body, time.Now(), "whsec_t")); err == nil {
		t.Fatal("Process with a hanging provider succeeded")
	}
	close(prov.hang)
	r, err := svc.Webhooks().Process(ctx, body, fakepay.Sign(body, time.Now(), "whsec_t"))
	if err != nil || r != payment.ResultProcessed {
		t.Fatalf("redelivery = %v, %v; want processed", r, err)
	}
	if ent, err := svc.Entitlements().Get(ctx, "p1"); err != nil || !ent.Active {
		t.Fatalf("entitlement = %+v, %v", ent, err)
	}
}

// TestConcurrentDuplicatesAcrossServers: sixteen deliveries of one event
// race on two servers sharing Redis. Exactly one syncs; the others are
// refused while it holds the claim (and retried, as Stripe does) or
// answered as duplicates afterwards.
func TestConcurrentDuplicatesAcrossServers(t *testing.T) {
	s, rdb, p := newStore(t)
	s2, err := redisstore.New(rdb, redisstore.Options{Prefix: p})
	if err != nil {
		t.Fatal(err)
	}
	fake := newFake(t, nil)
	var changes atomic.Int32
	mk := func(store payment.Store) *payment.Service {
		svc, err := payment.New(payment.Options{
			Provider: fake, Store: store, WebhookSecrets: []payment.Secret{"whsec_c"},
			Plans:               []payment.Plan{{ID: "vip", Prices: []payment.Price{{ID: "price_vip"}}}},
			Logger:              slog.New(slog.DiscardHandler),
			OnEntitlementChange: func(context.Context, payment.EntitlementChange) { changes.Add(1) },
		})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	servers := []*payment.Service{mk(s), mk(s2)}
	fake.Subscribe("p1", "price_vip")
	body := fake.Payload(fake.Events()[0])
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for {
				_, err := servers[i%2].Webhooks().Process(context.Background(), body, fakepay.Sign(body, time.Now(), "whsec_c"))
				if errors.Is(err, payment.ErrEventInProgress) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					t.Error(err)
				}
				return
			}
		})
	}
	wg.Wait()
	a, b := servers[0].Stats(), servers[1].Stats()
	if a.Processed+b.Processed != 1 || a.Duplicates+b.Duplicates != 15 {
		t.Fatalf("stats A = %+v, B = %+v; want 1 processed and 15 duplicates in all", a, b)
	}
	if got := changes.Load(); got != 1 {
		t.Fatalf("%d entitlement changes, want 1", got)
	}
	if ent, err := servers[1].Entitlements().Get(context.Background(), "p1"); err != nil || !ent.Active {
		t.Fatalf("entitlement = %+v, %v", ent, err)
	}
}

// TestDuplicateWebhookKeepsVersion: redelivering a processed event is
// answered as a duplicate without touching the version counter (every
// duplicate used to INCR it).
func TestDuplicateWebhookKeepsVersion(t *testing.T) {
	s, rdb, p := newStore(t)
	fake := newFake(t, nil)
	svc, err := payment.New(payment.Options{
		Provider: fake, Store: s, WebhookSecrets: []payment.Secret{"whsec_d"},
		Plans:  []payment.Plan{{ID: "vip", Prices: []payment.Price{{ID: "price_vip"}}}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	fake.Subscribe("p1", "price_vip")
	body := fake.Payload(fake.Events()[0])
	ctx := context.Background()
	deliver := func() payment.Result {
		t.Helper()
		r, err := svc.Webhooks().Process(ctx, body, fakepay.Sign(body, time.Now(), "whsec_d"))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := deliver(); r != payment.ResultProcessed {
		t.Fatalf("first delivery = %v, want processed", r)
	}
	version := func() string {
		t.Helper()
		v, err := rdb.Get(ctx, p+"version").Result()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := version()
	for range 3 {
		if r := deliver(); r != payment.ResultDuplicate {
			t.Fatalf("redelivery = %v, want duplicate", r)
		}
	}
	if got := version(); got != before {
		t.Fatalf("version counter after 3 duplicates = %s, want %s", got, before)
	}
}
