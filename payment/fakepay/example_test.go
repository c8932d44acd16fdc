package fakepay_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
)

// A player pays for a subscription at the fake Stripe; the fake records the
// events Stripe would send, renders them as webhook bodies and signs them.
func Example() {
	now := func() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) }
	fake, err := fakepay.New(fakepay.Options{Now: now})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	cus, err := fake.CreateCustomer(ctx, payment.CustomerParams{PlayerID: "p1"})
	if err != nil {
		panic(err)
	}
	cs, err := fake.CreateCheckoutSession(ctx, payment.CheckoutParams{
		Mode: payment.ModeSubscription, PriceID: "price_premium", CustomerID: cus,
		SuccessURL: "https://game.example/ok", CancelURL: "https://game.example/cancel",
		Metadata: map[string]string{payment.MetaPlayerID: "p1"},
	})
	if err != nil {
		panic(err)
	}
	if _, err := fake.CompleteCheckout(cs.ID, fakepay.CompleteOptions{}); err != nil {
		panic(err)
	}
	for _, ev := range fake.Events() {
		body := fake.Payload(ev)
		header := fakepay.Sign(body, now(), "whsec_example")
		fmt.Println(ev.Type, strings.HasPrefix(header, "t=1780315200,v1="))
	}
	// Output:
	// customer.subscription.created true
	// checkout.session.completed true
	// invoice.paid true
}
