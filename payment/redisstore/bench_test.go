package redisstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
)

func benchService(b *testing.B) (*payment.Service, []string) {
	b.Helper()
	s, _, _ := newStore(b)
	fake := newFake(b, nil)
	svc, err := payment.New(payment.Options{
		Provider: fake, Store: s, WebhookSecrets: []payment.Secret{"whsec_bench"},
		Plans:  []payment.Plan{{ID: "premium", Prices: []payment.Price{{ID: "price_premium"}}}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	subs := make([]string, 512)
	for i := range subs {
		subs[i] = fake.Subscribe(fmt.Sprint("p", i), "price_premium")
	}
	return svc, subs
}

func signedEvent(n int64, sub string) ([]byte, string) {
	now := time.Now()
	ev := payment.Event{ID: fmt.Sprint("evt_bench_", n), Type: payment.EventSubscriptionUpdated, APIVersion: fakepay.APIVersion,
		Created: now, ObjectID: sub, ObjectType: "subscription"}
	body := fakepay.EventPayload(ev, nil)
	return body, fakepay.Sign(body, now, "whsec_bench")
}

// BenchmarkWebhookRedis measures verify + dedup + entitlement update per
// event with the Redis store, one event at a time.
func BenchmarkWebhookRedis(b *testing.B) {
	svc, subs := benchService(b)
	ctx := context.Background()
	var n int64
	b.ReportAllocs()
	for b.Loop() {
		body, sig := signedEvent(n, subs[n%int64(len(subs))])
		if r, err := svc.Webhooks().Process(ctx, body, sig); err != nil || r != payment.ResultProcessed {
			b.Fatalf("Process = %v, %v", r, err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkWebhookRedisParallel is the same with concurrent deliveries,
// as an HTTP server receives them (GOMAXPROCS×8 goroutines).
func BenchmarkWebhookRedisParallel(b *testing.B) {
	svc, subs := benchService(b)
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body, sig := signedEvent(i, subs[i%int64(len(subs))])
			if r, err := svc.Webhooks().Process(ctx, body, sig); err != nil || r != payment.ResultProcessed {
				b.Errorf("Process = %v, %v", r, err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "events/s")
}

// BenchmarkEntitlementRedis measures one entitlement lookup (one HGETALL
// round trip).
func BenchmarkEntitlementRedis(b *testing.B) {
	svc, subs := benchService(b)
	ctx := context.Background()
	body, sig := signedEvent(-1, subs[7])
	if _, err := svc.Webhooks().Process(ctx, body, sig); err != nil {
		b.Fatal(err)
	}
	if ent, err := svc.Entitlements().Get(ctx, "p7"); err != nil || !ent.Active {
		b.Fatalf("p7 = %+v, %v", ent, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Entitlements().Get(ctx, "p7"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
}
