package redisstore_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/paymenttest"
)

// hangingProvider blocks subscription reads until ctx ends while hang is
// set: a provider call that runs into Options.SyncTimeout.
type hangingProvider struct {
	*paymenttest.Fake
	hang chan struct{} // closed: stop hanging
}

func (p hangingProvider) GetSubscription(ctx context.Context, id string) (payment.Subscription, error) {
	select {
	case <-p.hang:
		return p.Fake.GetSubscription(ctx, id)
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
	fake := paymenttest.NewFake(nil)
	prov := hangingProvider{Fake: fake, hang: make(chan struct{})}
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
	if _, err := svc.Webhooks().Process(ctx, body, paymenttest.Sign(body, time.Now(), "whsec_t")); err == nil {
		t.Fatal("Process with a hanging provider succeeded")
	}
	close(prov.hang)
	r, err := svc.Webhooks().Process(ctx, body, paymenttest.Sign(body, time.Now(), "whsec_t"))
	if err != nil || r != payment.ResultProcessed {
		t.Fatalf("redelivery = %v, %v; want processed", r, err)
	}
	if ent, err := svc.Entitlements().Get(ctx, "p1"); err != nil || !ent.Active {
		t.Fatalf("entitlement = %+v, %v", ent, err)
	}
}
