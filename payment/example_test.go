package payment_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
)

// exampleService wires a Service to the in-memory fake provider and a
// fixed clock. A real server uses stripepay.New and redisstore.New.
func exampleService() (*payment.Service, *fakepay.Provider) {
	now := func() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) }
	fake, err := fakepay.New(fakepay.Options{Now: now})
	if err != nil {
		panic(err)
	}
	svc, err := payment.New(payment.Options{
		Provider: fake,
		Plans: []payment.Plan{
			{ID: "basic", Rank: 1, Prices: []payment.Price{{ID: "price_basic"}}},
			{ID: "premium", Rank: 2, Prices: []payment.Price{{ID: "price_premium"}}},
			{ID: "vip", Rank: 3, Prices: []payment.Price{{ID: "price_vip"}}},
		},
		WebhookSecrets:    []payment.Secret{"whsec_example"},
		DefaultSuccessURL: "https://game.example/shop/done",
		DefaultCancelURL:  "https://game.example/shop",
		Logger:            slog.New(slog.DiscardHandler),
		Now:               now,
	})
	if err != nil {
		panic(err)
	}
	return svc, fake
}

// A player brings an ambassador's code: it is resolved server-side and
// applied as a promotion code, and the sale is attributed to the
// ambassador once the payment is confirmed by webhook.
func ExampleCheckout_Start() {
	svc, fake := exampleService()
	ctx := context.Background()

	// Operator side: one shared coupon, one code per ambassador.
	coupon, _ := svc.Admin().CreateCoupon(ctx, payment.CouponParams{
		ID: "amb-20", Name: "Creator 20%", PercentOff: 20, Duration: payment.DurationRepeating, DurationInMonths: 3,
	})
	_, _ = svc.Admin().CreateAmbassadorCode(ctx, payment.AmbassadorCodeParams{
		AmbassadorID: "creator-alice", CouponID: coupon.ID, Code: "ALICE",
	})

	// Player side.
	res, err := svc.Checkout().Start(ctx, payment.CheckoutRequest{
		PlayerID: "player-42", Plan: "premium", Code: "alice", RequestID: "shop-click-1",
	})
	if err != nil {
		fmt.Println("checkout failed:", err)
		return
	}
	fmt.Println("redirect to:", res.URL)
	fmt.Println("ambassador:", res.AmbassadorID)
	session, _ := fake.Session(res.SessionID)
	fmt.Println("promotion code applied:", session.Discount.Code)

	// Output:
	// redirect to: https://checkout.stripe.com/c/pay/cs_test_fake000003
	// ambassador: creator-alice
	// promotion code applied: ALICE
}

// Mount the webhook endpoint and check a player's entitlement after the
// provider reports a subscription.
func ExampleWebhooks() {
	svc, fake := exampleService()
	mux := http.NewServeMux()
	mux.Handle("POST /stripe/webhook", svc.Webhooks())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// At the provider: player-7 subscribes to vip; Stripe sends events.
	fake.Subscribe("player-7", "price_vip")
	for _, ev := range fake.Events() {
		body := fake.Payload(ev)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/stripe/webhook", bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", fakepay.Sign(body, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), "whsec_example"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(ev.Type, resp.StatusCode, string(msg))
	}

	ent, _ := svc.Entitlements().Get(context.Background(), "player-7")
	fmt.Println(ent)

	// Output:
	// customer.subscription.created 200 {"received":true,"result":"processed"}
	// invoice.paid 200 {"received":true,"result":"processed"}
	// player=player-7 plan=vip active status=active
}

// The per-request check a game server makes: is this player entitled to
// premium (or anything ranked above it)?
func ExampleEntitlements_Has() {
	svc, fake := exampleService()
	ctx := context.Background()
	fake.Subscribe("player-1", "price_vip")
	fake.Subscribe("player-2", "price_basic")
	if _, err := svc.Admin().Reconcile(ctx, payment.ReconcileOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range []string{"player-1", "player-2", "player-3"} {
		ok, _ := svc.Entitlements().Has(ctx, p, "premium")
		fmt.Printf("%s premium=%v\n", p, ok)
	}

	// Output:
	// player-1 premium=true
	// player-2 premium=false
	// player-3 premium=false
}
