package payment_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
)

// BenchmarkEntitlementsGet measures the per-request entitlement check
// with the in-memory store (target: well under 1 µs, no allocations).
func BenchmarkEntitlementsGet(b *testing.B) {
	e := newEnv(b, func(o *payment.Options) { o.OnEntitlementChange = nil })
	ctx := context.Background()
	for i := range 1000 {
		e.fake.Subscribe(fmt.Sprint("p", i), []string{"price_basic", "price_premium", "price_vip"}[i%3])
	}
	e.deliverAll(b)
	ents := e.svc.Entitlements()
	if got, _ := ents.Get(ctx, "p7"); !got.Active {
		b.Fatalf("p7 not entitled: %+v", got)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ents.Get(ctx, "p7")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
}

// BenchmarkEntitlementsGetParallel is the same check from every core at
// once, as game servers make it (the store's read lock is shared).
func BenchmarkEntitlementsGetParallel(b *testing.B) {
	e := newEnv(b, func(o *payment.Options) { o.OnEntitlementChange = nil })
	ctx := context.Background()
	for i := range 1000 {
		e.fake.Subscribe(fmt.Sprint("p", i), []string{"price_basic", "price_premium", "price_vip"}[i%3])
	}
	e.deliverAll(b)
	ents := e.svc.Entitlements()
	players := make([]string, 1000)
	for i := range players {
		players[i] = fmt.Sprint("p", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if got, _ := ents.Get(ctx, players[i%len(players)]); !got.Active {
				b.Errorf("%s not entitled", players[i%len(players)])
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
}

// BenchmarkWebhookMemory measures verify + dedup + sync with the
// in-memory store and the fake provider, through ServeHTTP.
func BenchmarkWebhookMemory(b *testing.B) {
	e := newEnv(b, func(o *payment.Options) { o.OnEntitlementChange = nil })
	subs := make([]string, 256)
	for i := range subs {
		subs[i] = e.fake.Subscribe(fmt.Sprint("p", i), "price_premium")
	}
	h := e.svc.Webhooks()
	now := e.clk.Now()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		ev := payment.Event{ID: fmt.Sprint("evt_bench_", n), Type: payment.EventSubscriptionUpdated, APIVersion: fakepay.APIVersion,
			Created: now, ObjectID: subs[n%len(subs)], ObjectType: "subscription"}
		body := fakepay.EventPayload(ev, nil)
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", fakepay.Sign(body, now, secret))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("HTTP %d %s", rec.Code, rec.Body)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
