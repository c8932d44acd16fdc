package fakepay

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bodybroker/sdk/payment"
)

// ---- Simulation: what happens at Stripe between API calls. ----

// CompleteOptions describes how a player finishes a checkout.
type CompleteOptions struct {
	// Code is a promotion code typed into the box (only when the session
	// offered it).
	Code string
	// Unpaid leaves a payment-mode session unpaid (an asynchronous method).
	Unpaid bool
}

// CompleteCheckout finishes a session as if the player paid: subscription
// mode creates an active subscription (metadata copied from the session)
// and a paid invoice; payment mode creates a payment and a charge. It
// appends the events Stripe would send and returns the subscription or
// payment intent ID.
func (f *Provider) CompleteCheckout(sessionID string, o CompleteOptions) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs, ok := f.sessions[sessionID]
	if !ok {
		return "", notFound("checkout", sessionID)
	}
	if cs.Status != "open" {
		return "", invalid("checkout", "session is not open")
	}
	if o.Code != "" {
		if cs.Discount != nil {
			return "", invalid("checkout", "session already has a discount")
		}
		var found *payment.PromotionCode
		for _, pc := range f.promos {
			if pc.Active && strings.EqualFold(pc.Code, o.Code) {
				found = pc
			}
		}
		if found == nil {
			return "", invalid("checkout", "invalid code")
		}
		cs.Discount = f.discountFor(found.ID)
	}
	if d := cs.Discount; d != nil {
		f.promos[d.PromotionCodeID].TimesRedeemed++
		if c, ok := f.coupons[d.CouponID]; ok {
			c.TimesRedeemed++
		}
		cs.AmountTotal = 800
	}
	if cs.CustomerID == "" {
		id := f.id("cus")
		f.customers[id] = fakeCustomer{ID: id, PlayerID: cs.ClientReferenceID}
		cs.CustomerID = id
	}
	now := f.now().UTC().Truncate(time.Second)
	cs.Status = "complete"
	var out string
	switch cs.Mode {
	case payment.ModeSubscription:
		sub := &payment.Subscription{
			ID: f.id("sub"), CustomerID: cs.CustomerID, PriceID: cs.PriceID, Status: payment.StatusActive,
			CurrentPeriodStart: now, CurrentPeriodEnd: now.Add(Period), Metadata: maps.Clone(cs.Metadata),
			PlayerID: cs.Metadata[payment.MetaPlayerID], Discount: cs.Discount,
		}
		f.subs[sub.ID] = sub
		cs.SubscriptionID = sub.ID
		cs.PaymentStatus = "paid"
		out = sub.ID
		f.emit(payment.EventSubscriptionCreated, "subscription", sub.ID, subSnapshot(sub))
		inv := f.newInvoice(sub, true, "subscription_create")
		f.emit(payment.EventCheckoutCompleted, "checkout.session", cs.ID, map[string]any{"status": cs.Status})
		f.emit(payment.EventInvoicePaid, "invoice", inv.ID, map[string]any{"paid": true})
	default:
		pi := f.id("pi")
		cs.PaymentIntentID = pi
		out = pi
		if o.Unpaid {
			cs.PaymentStatus = "unpaid"
		} else {
			cs.PaymentStatus = "paid"
			ch := &payment.Charge{ID: f.id("ch"), PaymentIntentID: pi, CustomerID: cs.CustomerID, Amount: cs.AmountTotal, Currency: cs.Currency}
			f.charges[ch.ID] = ch
		}
		f.emit(payment.EventCheckoutCompleted, "checkout.session", cs.ID, map[string]any{"status": cs.Status})
	}
	return out, nil
}

// PayAsync settles an unpaid payment-mode session (async payment succeeded).
func (f *Provider) PayAsync(sessionID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs, ok := f.sessions[sessionID]
	if !ok || cs.Mode != payment.ModePayment || cs.PaymentStatus != "unpaid" || cs.Status != "complete" {
		return invalid("checkout", "no unpaid completed payment session "+sessionID)
	}
	cs.PaymentStatus = "paid"
	ch := &payment.Charge{ID: f.id("ch"), PaymentIntentID: cs.PaymentIntentID, CustomerID: cs.CustomerID, Amount: cs.AmountTotal, Currency: cs.Currency}
	f.charges[ch.ID] = ch
	f.emit(payment.EventCheckoutAsyncPaymentOK, "checkout.session", cs.ID, map[string]any{"payment_status": "paid"})
	return nil
}

// Subscribe creates an active subscription for a player directly (as the
// API or the dashboard would), bypassing Checkout.
func (f *Provider) Subscribe(playerID, priceID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cus string
	for _, id := range slices.Sorted(maps.Keys(f.customers)) {
		if f.customers[id].PlayerID == playerID {
			cus = id
			break
		}
	}
	if cus == "" {
		cus = f.id("cus")
		f.customers[cus] = fakeCustomer{ID: cus, PlayerID: playerID}
	}
	now := f.now().UTC().Truncate(time.Second)
	sub := &payment.Subscription{
		ID: f.id("sub"), CustomerID: cus, PriceID: priceID, Status: payment.StatusActive,
		CurrentPeriodStart: now, CurrentPeriodEnd: now.Add(Period),
		Metadata: map[string]string{payment.MetaPlayerID: playerID}, PlayerID: playerID,
	}
	f.subs[sub.ID] = sub
	f.emit(payment.EventSubscriptionCreated, "subscription", sub.ID, subSnapshot(sub))
	inv := f.newInvoice(sub, true, "subscription_create")
	f.emit(payment.EventInvoicePaid, "invoice", inv.ID, map[string]any{"paid": true})
	return sub.ID
}

// Renew starts the subscription's next period. paid=false fails the
// invoice and makes the subscription past_due, as Stripe's smart retries
// would.
func (f *Provider) Renew(subID string, paid bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sub, ok := f.subs[subID]
	if !ok {
		return notFound("subscription", subID)
	}
	sub.CurrentPeriodStart = sub.CurrentPeriodEnd
	sub.CurrentPeriodEnd = sub.CurrentPeriodStart.Add(Period)
	inv := f.newInvoice(sub, paid, "subscription_cycle")
	if paid {
		sub.Status = payment.StatusActive
		f.emit(payment.EventSubscriptionUpdated, "subscription", sub.ID, subSnapshot(sub))
		f.emit(payment.EventInvoicePaid, "invoice", inv.ID, map[string]any{"paid": true})
	} else {
		sub.Status = payment.StatusPastDue
		f.emit(payment.EventSubscriptionUpdated, "subscription", sub.ID, subSnapshot(sub))
		f.emit(payment.EventInvoicePaymentFailed, "invoice", inv.ID, map[string]any{"paid": false})
	}
	return nil
}

// SetStatus sets a subscription's status (customer.subscription.updated,
// or .deleted for canceled).
func (f *Provider) SetStatus(subID string, st payment.Status) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sub, ok := f.subs[subID]
	if !ok {
		return notFound("subscription", subID)
	}
	sub.Status = st
	typ := payment.EventSubscriptionUpdated
	if st == payment.StatusCanceled {
		typ = payment.EventSubscriptionDeleted
	}
	f.emit(typ, "subscription", sub.ID, subSnapshot(sub))
	return nil
}

// CancelAtPeriodEnd schedules a cancellation (status stays active).
func (f *Provider) CancelAtPeriodEnd(subID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sub, ok := f.subs[subID]
	if !ok {
		return notFound("subscription", subID)
	}
	sub.CancelAtPeriodEnd = true
	f.emit(payment.EventSubscriptionUpdated, "subscription", sub.ID, subSnapshot(sub))
	return nil
}

// ChangePrice moves a subscription to another price (an upgrade).
func (f *Provider) ChangePrice(subID, priceID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sub, ok := f.subs[subID]
	if !ok {
		return notFound("subscription", subID)
	}
	sub.PriceID = priceID
	f.emit(payment.EventSubscriptionUpdated, "subscription", sub.ID, subSnapshot(sub))
	return nil
}

// Refund fully refunds the payment of a payment-mode session. Refunding
// it again only sends charge.refunded again.
func (f *Provider) Refund(paymentIntentID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(f.charges)) {
		ch := f.charges[id]
		if ch.PaymentIntentID == paymentIntentID {
			if ch.Refunded {
				f.emit(payment.EventChargeRefunded, "charge", ch.ID, map[string]any{"refunded": true, "amount_refunded": ch.AmountRefunded})
				return nil
			}
			return f.refund(ch, 0)
		}
	}
	return notFound("charge", paymentIntentID)
}

// RefundInvoice refunds amount (minor units; 0: all that is left) of the
// charge that paid an invoice, as a new refund object, and sends
// charge.refunded, as Stripe does for partial and full refunds alike.
func (f *Provider) RefundInvoice(invoiceID string, amount int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(f.charges)) {
		if ch := f.charges[id]; ch.InvoiceID == invoiceID {
			return f.refund(ch, amount)
		}
	}
	return notFound("charge", invoiceID)
}

// refund adds a refund of amount (0: the rest) to ch; f.mu must be held.
func (f *Provider) refund(ch *payment.Charge, amount int64) error {
	left := ch.Amount - ch.AmountRefunded
	if amount == 0 {
		amount = left
	}
	if amount <= 0 || amount > left {
		return invalid("refund.create", fmt.Sprintf("refund of %d exceeds the %d left on charge %s", amount, left, ch.ID))
	}
	ch.Refunds = append(slices.Clone(ch.Refunds), payment.Refund{ID: f.id("re"), Amount: amount, Status: "succeeded"})
	ch.AmountRefunded += amount
	ch.Refunded = ch.AmountRefunded == ch.Amount
	f.emit(payment.EventChargeRefunded, "charge", ch.ID, map[string]any{"refunded": ch.Refunded, "amount_refunded": ch.AmountRefunded})
	return nil
}

func (f *Provider) newInvoice(sub *payment.Subscription, paid bool, reason string) *payment.Invoice {
	inv := &payment.Invoice{
		ID: f.id("in"), CustomerID: sub.CustomerID, SubscriptionID: sub.ID, PlayerID: sub.Metadata[payment.MetaPlayerID],
		Status: "open", Paid: paid, Currency: "usd", BillingReason: reason, Discount: sub.Discount,
	}
	if paid {
		inv.Status = "paid"
		inv.AmountPaid = 1000
		if sub.Discount != nil {
			inv.AmountPaid = 800
		}
		ch := &payment.Charge{ID: f.id("ch"), InvoiceID: inv.ID, CustomerID: sub.CustomerID, Amount: inv.AmountPaid, Currency: "usd"}
		f.charges[ch.ID] = ch
	}
	f.invoices[inv.ID] = inv
	return inv
}
