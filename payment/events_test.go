package payment_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
)

// Entitlement changes reach the event bus as typed events keyed by player,
// carrying the same payload the hook sees.
func TestEntitlementChangesArePublished(t *testing.T) {
	bus, err := eventbus.New(eventbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	e := newEnv(t, func(o *payment.Options) { o.Events = bus })
	ctx := context.Background()

	res, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "premium"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.CompleteCheckout(res.SessionID, fakepay.CompleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)

	evs, err := bus.History(ctx, payment.TopicEntitlementChanged, eventbus.FromStart(), 0)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	hooked := append([]payment.EntitlementChange(nil), e.changes...)
	e.mu.Unlock()
	if len(evs) == 0 || len(evs) != len(hooked) {
		t.Fatalf("published %d events, hook saw %d changes; want the same, at least one", len(evs), len(hooked))
	}
	for i, ev := range evs {
		if ev.Key != "p1" {
			t.Errorf("event %d key = %q, want the player ID", i, ev.Key)
		}
		got, err := eventbus.Decode[payment.EntitlementChange](ev)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(hooked[i], got); diff != "" {
			t.Errorf("event %d payload (-hook +bus):\n%s", i, diff)
		}
	}
	last, _ := eventbus.Decode[payment.EntitlementChange](evs[len(evs)-1])
	if !last.Current.Active || last.Current.Plan != "premium" {
		t.Errorf("last change = %+v, want premium active", last.Current)
	}
	if s := e.svc.Stats(); s.EntitlementChanges != uint64(len(evs)) || s.PublishErrors != 0 {
		t.Errorf("stats: %d changes, %d publish errors; want %d, 0", s.EntitlementChanges, s.PublishErrors, len(evs))
	}

	// A closed bus refuses; the sync still succeeds and the refusal is counted.
	bus.Close()
	res2, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p2", Plan: "basic"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.CompleteCheckout(res2.SessionID, fakepay.CompleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	if got := e.ent(t, "p2"); !got.Active {
		t.Errorf("p2 not entitled after a failed publish: %+v", got)
	}
	if s := e.svc.Stats(); s.PublishErrors == 0 {
		t.Error("publish to a closed bus was not counted")
	}
}
