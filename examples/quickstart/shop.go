package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
)

// shop sells player-7 a subscription with an ambassador's code: the
// operator creates the code, the player checks out with it at the demo
// provider (payment/fakepay; payment/stripepay is the real Stripe), the
// provider's signed webhooks are delivered over HTTP to the service's
// handler, and the entitlement, its change event and the ambassador's
// attribution follow.
func shop(ctx context.Context, w io.Writer, bus *eventbus.Bus, log *slog.Logger) error {
	fake, err := fakepay.New(fakepay.Options{})
	if err != nil {
		return err
	}
	secret := "whsec_" + rand.Text() // Stripe's webhook signing secret
	svc, err := payment.New(payment.Options{
		Provider: fake,
		Plans: []payment.Plan{
			{ID: "premium", Rank: 1, Prices: []payment.Price{{ID: "price_premium"}}},
			{ID: "vip", Rank: 2, Prices: []payment.Price{{ID: "price_vip"}}},
		},
		WebhookSecrets:    []payment.Secret{payment.Secret(secret)},
		DefaultSuccessURL: "https://game.example/shop/done",
		DefaultCancelURL:  "https://game.example/shop",
		Events:            bus,
		Logger:            log,
	})
	if err != nil {
		return err
	}

	// The webhook endpoint, as a server mounts it.
	mux := http.NewServeMux()
	mux.Handle("POST /stripe/webhook", svc.Webhooks())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(lis) }()
	defer func() {
		_ = hs.Close()
		<-served
	}()

	// Operator: one shared coupon, one code per ambassador.
	admin := svc.Admin()
	coupon, err := admin.CreateCoupon(ctx, payment.CouponParams{
		ID: "creator-20", Name: "Creator 20%", PercentOff: 20, Duration: payment.DurationRepeating, DurationInMonths: 3,
	})
	if err != nil {
		return err
	}
	if _, err := admin.CreateAmbassadorCode(ctx, payment.AmbassadorCodeParams{
		AmbassadorID: "creator-alice", CouponID: coupon.ID, Code: "ALICE",
	}); err != nil {
		return err
	}

	// Player: checkout with the code, then pay at the provider.
	res, err := svc.Checkout().Start(ctx, payment.CheckoutRequest{
		PlayerID: "player-7", Plan: "vip", Code: "alice", RequestID: "shop-click-1",
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "shop: player-7 checks out vip with code ALICE (ambassador %s) → %s\n", res.AmbassadorID, res.URL)
	if _, err := fake.CompleteCheckout(res.SessionID, fakepay.CompleteOptions{}); err != nil {
		return err
	}

	// Provider: each event, signed, to the webhook endpoint.
	url := "http://" + lis.Addr().String() + "/stripe/webhook"
	for _, ev := range fake.Events() {
		body := fake.Payload(ev)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set(payment.SignatureHeader, fakepay.Sign(body, time.Now(), secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("webhook %s: %s: %s", ev.Type, resp.Status, msg)
		}
		fmt.Fprintf(w, "  webhook %-28s signed, %d %s\n", ev.Type, resp.StatusCode, strings.TrimSpace(string(msg)))
	}

	ent, err := svc.Entitlements().Get(ctx, "player-7")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  entitlement: %s\n", ent)
	evs, err := bus.History(ctx, payment.TopicEntitlementChanged, eventbus.FromStart(), 0)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		c, err := eventbus.Decode[payment.EntitlementChange](ev)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %s  %s: %s → %s (after %s)\n", payment.TopicEntitlementChanged, c.PlayerID,
			planOrNone(c.Previous), planOrNone(c.Current), c.EventType)
	}
	if len(evs) == 0 {
		return errors.New("no entitlement change was published")
	}
	st, err := admin.AmbassadorStats(ctx, "creator-alice")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  ambassador creator-alice: %d checkout, %d paid invoice, revenue", st.Checkouts, st.Invoices)
	for _, cur := range slices.Sorted(maps.Keys(st.Revenue)) {
		v := st.Revenue[cur] // minor units: cents
		fmt.Fprintf(w, " %d.%02d %s", v/100, v%100, strings.ToUpper(cur))
	}
	fmt.Fprint(w, "\n\n")
	return nil
}

func planOrNone(e payment.Entitlement) string {
	if !e.Active {
		return "none"
	}
	return e.Plan + " (" + string(e.Status) + ")"
}
