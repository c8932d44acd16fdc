package payment_test

import (
	"context"
	"testing"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
	"github.com/google/go-cmp/cmp"
)

// TestRefundsReduceAmbassadorRevenue: refunds of an attributed invoice,
// partial and full, arrive as charge.refunded webhooks and come off the
// ambassador's revenue once each, however often they are redelivered.
func TestRefundsReduceAmbassadorRevenue(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	setupAmbassador(t, e)
	res, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "premium", Code: "ALICE"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.CompleteCheckout(res.SessionID, fakepay.CompleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	var invoice string
	for _, ev := range e.fake.Events() {
		if ev.Type == payment.EventInvoicePaid {
			invoice = ev.ObjectID
		}
	}
	stats := func() payment.AmbassadorStats {
		t.Helper()
		st, err := e.svc.Admin().AmbassadorStats(ctx, "amb_alice")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	want := payment.AmbassadorStats{AmbassadorID: "amb_alice", Checkouts: 1, Invoices: 1, Revenue: map[string]int64{"usd": 800}}
	if diff := cmp.Diff(want, stats()); diff != "" {
		t.Fatalf("stats after the sale (-want +got):\n%s", diff)
	}

	if err := e.fake.RefundInvoice(invoice, 300); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	e.deliverAll(t) // duplicates change nothing
	want.Refunds, want.Revenue = 1, map[string]int64{"usd": 500}
	if diff := cmp.Diff(want, stats()); diff != "" {
		t.Fatalf("stats after a partial refund (-want +got):\n%s", diff)
	}

	if err := e.fake.RefundInvoice(invoice, 0); err != nil { // the rest
		t.Fatal(err)
	}
	e.deliverAll(t)
	// Reconcile replays every event again through the same path.
	if _, err := e.svc.Admin().Reconcile(ctx, payment.ReconcileOptions{}); err != nil {
		t.Fatal(err)
	}
	want.Refunds, want.Revenue = 2, map[string]int64{"usd": 0}
	if diff := cmp.Diff(want, stats()); diff != "" {
		t.Fatalf("stats after the full refund (-want +got):\n%s", diff)
	}
}

// TestFullRefundReducesAmbassadorRevenue: one full refund, delivered
// before the invoice's own event, still nets the sale to zero.
func TestFullRefundReducesAmbassadorRevenue(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	setupAmbassador(t, e)
	res, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "vip", Code: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.CompleteCheckout(res.SessionID, fakepay.CompleteOptions{}); err != nil {
		t.Fatal(err)
	}
	sale := e.fake.Events()
	var invoice string
	for _, ev := range sale {
		if ev.Type == payment.EventInvoicePaid {
			invoice = ev.ObjectID
		}
	}
	if err := e.fake.RefundInvoice(invoice, 0); err != nil {
		t.Fatal(err)
	}
	all := e.fake.Events()
	for i := len(all) - 1; i >= 0; i-- { // newest first: the refund before the sale
		e.deliver(t, all[i])
	}
	got, err := e.svc.Admin().AmbassadorStats(ctx, "amb_alice")
	if err != nil {
		t.Fatal(err)
	}
	want := payment.AmbassadorStats{AmbassadorID: "amb_alice", Checkouts: 1, Invoices: 1, Refunds: 1, Revenue: map[string]int64{"usd": 0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("stats (-want +got):\n%s", diff)
	}
}
