package stripepay_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/redisstore"
	"github.com/bodybroker/sdk/payment/stripepay"
)

// A production setup: Stripe as the provider, entitlements and webhook
// de-duplication in Redis shared by every game server, the webhook endpoint
// on the public mux and the entitlement check on the game's request path.
func Example() {
	ctx := context.Background()
	stripe, err := stripepay.New(stripepay.Options{APIKey: payment.Secret(os.Getenv("STRIPE_SECRET_KEY"))})
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	store, err := redisstore.New(rdb, redisstore.Options{Prefix: "game:pay:"})
	if err != nil {
		log.Fatal(err)
	}
	svc, err := payment.New(payment.Options{
		Provider: stripe,
		Store:    store,
		Plans: []payment.Plan{
			{ID: "premium", Rank: 2, Prices: []payment.Price{{ID: "price_premium_monthly"}}},
		},
		// During a rotation both the old and the new secret verify.
		WebhookSecrets:    []payment.Secret{payment.Secret(os.Getenv("STRIPE_WEBHOOK_SECRET"))},
		DefaultSuccessURL: "https://game.example/paid?session={CHECKOUT_SESSION_ID}",
		DefaultCancelURL:  "https://game.example/store",
	})
	if err != nil {
		log.Fatal(err)
	}

	// Stripe posts here; only Admin() belongs on an operator-only route.
	http.Handle("POST /stripe/webhook", svc.Webhooks())

	// A player asks to subscribe with a creator's code.
	res, err := svc.Checkout().Start(ctx, payment.CheckoutRequest{
		PlayerID: "player-7", Plan: "premium", Code: "CREATOR10", RequestID: "attempt-1",
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Println("send the player to", res.URL)

	// On every game request: one Redis round trip.
	if ok, err := svc.Entitlements().Has(ctx, "player-7", "premium"); err == nil && ok {
		log.Println("premium content unlocked")
	}
}
