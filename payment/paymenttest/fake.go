// Package paymenttest provides test helpers for package payment: a
// stateful in-memory [Fake] provider that plays the part of Stripe (it
// keeps customers, sessions, subscriptions, invoices, charges, coupons,
// promotion codes and an event log, and emulates idempotency keys and the
// cross-field rules stripe-mock does not check), a webhook signer, and
// [TestStore], the conformance suite for payment.Store implementations.
package paymenttest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bodybroker/sdk/payment"
)

// APIVersion is the API version the fake renders events in by default
// (Stripe's version pinned by stripe-go v76).
const APIVersion = "2023-10-16"

// Period is the billing period of the fake's subscriptions.
const Period = 30 * 24 * time.Hour

// Fake is a stateful in-memory payment.Provider. Its zero value is not
// ready: use [NewFake]. It is safe for concurrent use. Simulation methods
// (CompleteCheckout, Renew, …) change state the way Stripe would and
// append the events Stripe would send; [Fake.Payload] renders an event as
// a webhook body.
type Fake struct {
	mu  sync.Mutex
	now func() time.Time
	seq int

	apiVersion string
	customers  map[string]fakeCustomer
	sessions   map[string]*payment.CheckoutSession
	subs       map[string]*payment.Subscription
	invoices   map[string]*payment.Invoice
	charges    map[string]*payment.Charge
	coupons    map[string]*payment.Coupon
	promos     map[string]*payment.PromotionCode
	portals    int
	events     []fakeEvent
	idem       map[string]idemEntry
	calls      map[string]int
	fail       map[string]error
}

type fakeCustomer struct {
	ID, PlayerID, Email string
}

type fakeEvent struct {
	ev        payment.Event
	snapshot  map[string]any
	delivered bool
}

type idemEntry struct {
	params any
	result any
}

var _ payment.Provider = (*Fake)(nil)

// NewFake returns an empty fake. now is its clock (nil: time.Now).
func NewFake(now func() time.Time) *Fake {
	if now == nil {
		now = time.Now
	}
	return &Fake{
		now: now, apiVersion: APIVersion,
		customers: map[string]fakeCustomer{}, sessions: map[string]*payment.CheckoutSession{},
		subs: map[string]*payment.Subscription{}, invoices: map[string]*payment.Invoice{},
		charges: map[string]*payment.Charge{}, coupons: map[string]*payment.Coupon{},
		promos: map[string]*payment.PromotionCode{}, idem: map[string]idemEntry{},
		calls: map[string]int{}, fail: map[string]error{},
	}
}

func (f *Fake) id(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s_fake%06d", prefix, f.seq)
}

// Calls returns how many times op was called (ops are the Provider method
// names, e.g. "CreateCustomer").
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// FailNext makes the next call of op return err (once).
func (f *Fake) FailNext(op string, err error) {
	f.mu.Lock()
	f.fail[op] = err
	f.mu.Unlock()
}

// enter records a call and returns an injected failure; f.mu must be held.
func (f *Fake) enter(ctx context.Context, op string) error {
	f.calls[op]++
	if err := ctx.Err(); err != nil {
		return err
	}
	if err, ok := f.fail[op]; ok {
		delete(f.fail, op)
		return err
	}
	return nil
}

// idempotent emulates Stripe's idempotency keys: the first result for a
// key is replayed; the same key with other params is an error.
func (f *Fake) idempotent(key string, params any, create func() (any, error)) (any, error) {
	if key == "" {
		return create()
	}
	if e, ok := f.idem[key]; ok {
		if !reflect.DeepEqual(e.params, params) {
			return nil, &payment.ProviderError{Op: "idempotency", Kind: payment.ErrIdempotency, HTTPStatus: 400,
				Code: "idempotency_error", Message: "Keys for idempotent requests can only be used with the same parameters they were first used with."}
		}
		return e.result, nil
	}
	r, err := create()
	if err != nil {
		return nil, err
	}
	f.idem[key] = idemEntry{params: params, result: r}
	return r, nil
}

func notFound(op, id string) error {
	return &payment.ProviderError{Op: op, Kind: payment.ErrNotFound, HTTPStatus: 404, Code: "resource_missing", Message: "No such object: '" + id + "'"}
}

func invalid(op, msg string) error {
	return &payment.ProviderError{Op: op, Kind: payment.ErrInvalidRequest, HTTPStatus: 400, Code: "parameter_invalid", Message: msg}
}

// SetAPIVersion changes the version the fake reports and renders events in.
func (f *Fake) SetAPIVersion(v string) {
	f.mu.Lock()
	f.apiVersion = v
	f.mu.Unlock()
}

// APIVersion implements payment.Provider.
func (f *Fake) APIVersion() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apiVersion
}

// FindCustomer implements payment.Provider.
func (f *Fake) FindCustomer(ctx context.Context, playerID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "FindCustomer"); err != nil {
		return "", err
	}
	for _, id := range slices.Sorted(maps.Keys(f.customers)) {
		if f.customers[id].PlayerID == playerID {
			return id, nil
		}
	}
	return "", notFound("customer.search", playerID)
}

// CreateCustomer implements payment.Provider.
func (f *Fake) CreateCustomer(ctx context.Context, p payment.CustomerParams) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "CreateCustomer"); err != nil {
		return "", err
	}
	key := p.IdempotencyKey
	p.IdempotencyKey = ""
	r, err := f.idempotent(key, p, func() (any, error) {
		id := f.id("cus")
		f.customers[id] = fakeCustomer{ID: id, PlayerID: p.PlayerID, Email: p.Email}
		return id, nil
	})
	if err != nil {
		return "", err
	}
	return r.(string), nil
}

// Customers returns how many customers exist.
func (f *Fake) Customers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.customers)
}

// CreateCheckoutSession implements payment.Provider. Like Stripe it rejects
// a discount together with allow_promotion_codes, unknown customers and
// inactive codes.
func (f *Fake) CreateCheckoutSession(ctx context.Context, p payment.CheckoutParams) (payment.CheckoutSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "CreateCheckoutSession"); err != nil {
		return payment.CheckoutSession{}, err
	}
	if p.PromotionCodeID != "" && p.AllowPromotionCodes {
		return payment.CheckoutSession{}, invalid("checkout.create", "You may only specify one of these parameters: allow_promotion_codes, discounts.")
	}
	if p.SuccessURL == "" || p.CancelURL == "" || p.PriceID == "" {
		return payment.CheckoutSession{}, invalid("checkout.create", "success_url, cancel_url and a line item are required")
	}
	if p.CustomerID != "" {
		if _, ok := f.customers[p.CustomerID]; !ok {
			return payment.CheckoutSession{}, invalid("checkout.create", "No such customer: '"+p.CustomerID+"'")
		}
	}
	if p.PromotionCodeID != "" {
		pc, ok := f.promos[p.PromotionCodeID]
		if !ok || !pc.Active {
			return payment.CheckoutSession{}, invalid("checkout.create", "This promotion code cannot be redeemed.")
		}
	}
	key := p.IdempotencyKey
	p.IdempotencyKey = ""
	r, err := f.idempotent(key, p, func() (any, error) {
		id := f.id("cs_test")
		now := f.now().UTC().Truncate(time.Second)
		cs := &payment.CheckoutSession{
			ID: id, URL: "https://checkout.stripe.com/c/pay/" + id, Mode: p.Mode, Status: "open",
			PaymentStatus: "unpaid", CustomerID: p.CustomerID, ClientReferenceID: p.ClientReferenceID,
			PriceID: p.PriceID, AmountTotal: 1000, Currency: "usd", Metadata: maps.Clone(p.Metadata),
			Created: now, ExpiresAt: now.Add(24 * time.Hour),
		}
		if p.PromotionCodeID != "" {
			cs.Discount = f.discountFor(p.PromotionCodeID)
		}
		f.sessions[id] = cs
		return *cs, nil
	})
	if err != nil {
		return payment.CheckoutSession{}, err
	}
	return r.(payment.CheckoutSession), nil
}

func (f *Fake) discountFor(promoID string) *payment.AppliedDiscount {
	pc := f.promos[promoID]
	return &payment.AppliedDiscount{CouponID: pc.CouponID, PromotionCodeID: pc.ID, Code: pc.Code, Metadata: maps.Clone(pc.Metadata)}
}

// Session returns a checkout session's current state.
func (f *Fake) Session(id string) (payment.CheckoutSession, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs, ok := f.sessions[id]
	if !ok {
		return payment.CheckoutSession{}, false
	}
	return *cs, true
}

// GetCheckoutSession implements payment.Provider.
func (f *Fake) GetCheckoutSession(ctx context.Context, id string) (payment.CheckoutSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "GetCheckoutSession"); err != nil {
		return payment.CheckoutSession{}, err
	}
	cs, ok := f.sessions[id]
	if !ok {
		return payment.CheckoutSession{}, notFound("checkout.get", id)
	}
	out := *cs
	out.Metadata = maps.Clone(cs.Metadata)
	if out.PaymentIntentID != "" {
		for _, ch := range f.charges {
			if ch.PaymentIntentID == out.PaymentIntentID && ch.Refunded {
				out.PaymentRefunded = true
			}
		}
	}
	return out, nil
}

// CreatePortalSession implements payment.Provider.
func (f *Fake) CreatePortalSession(ctx context.Context, p payment.PortalParams) (payment.PortalSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "CreatePortalSession"); err != nil {
		return payment.PortalSession{}, err
	}
	if _, ok := f.customers[p.CustomerID]; !ok {
		return payment.PortalSession{}, invalid("portal.create", "No such customer: '"+p.CustomerID+"'")
	}
	key := p.IdempotencyKey
	p.IdempotencyKey = ""
	r, err := f.idempotent(key, p, func() (any, error) {
		f.portals++
		id := f.id("bps")
		return payment.PortalSession{ID: id, URL: "https://billing.stripe.com/p/session/" + id}, nil
	})
	if err != nil {
		return payment.PortalSession{}, err
	}
	return r.(payment.PortalSession), nil
}

// GetSubscription implements payment.Provider.
func (f *Fake) GetSubscription(ctx context.Context, id string) (payment.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "GetSubscription"); err != nil {
		return payment.Subscription{}, err
	}
	s, ok := f.subs[id]
	if !ok {
		return payment.Subscription{}, notFound("subscription.get", id)
	}
	out := *s
	out.Metadata = maps.Clone(s.Metadata)
	if out.PlayerID == "" {
		out.PlayerID = f.customers[s.CustomerID].PlayerID
	}
	return out, nil
}

// GetInvoice implements payment.Provider.
func (f *Fake) GetInvoice(ctx context.Context, id string) (payment.Invoice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "GetInvoice"); err != nil {
		return payment.Invoice{}, err
	}
	inv, ok := f.invoices[id]
	if !ok {
		return payment.Invoice{}, notFound("invoice.get", id)
	}
	return *inv, nil
}

// GetCharge implements payment.Provider.
func (f *Fake) GetCharge(ctx context.Context, id string) (payment.Charge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "GetCharge"); err != nil {
		return payment.Charge{}, err
	}
	ch, ok := f.charges[id]
	if !ok {
		return payment.Charge{}, notFound("charge.get", id)
	}
	out := *ch
	out.Refunds = slices.Clone(ch.Refunds)
	return out, nil
}

// ListEvents implements payment.Provider (newest first).
func (f *Fake) ListEvents(ctx context.Context, q payment.EventQuery, fn func(payment.Event) error) error {
	f.mu.Lock()
	if err := f.enter(ctx, "ListEvents"); err != nil {
		f.mu.Unlock()
		return err
	}
	var out []payment.Event
	for i := len(f.events) - 1; i >= 0; i-- {
		e := f.events[i]
		if !q.Since.IsZero() && e.ev.Created.Before(q.Since) {
			continue
		}
		if len(q.Types) > 0 && !slices.Contains(q.Types, e.ev.Type) {
			continue
		}
		if q.UndeliveredOnly && e.delivered {
			continue
		}
		out = append(out, e.ev)
	}
	f.mu.Unlock()
	for _, e := range out {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// CreateCoupon implements payment.Provider.
func (f *Fake) CreateCoupon(ctx context.Context, p payment.CouponParams) (payment.Coupon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "CreateCoupon"); err != nil {
		return payment.Coupon{}, err
	}
	key := p.IdempotencyKey
	p.IdempotencyKey = ""
	r, err := f.idempotent(key, p, func() (any, error) {
		id := p.ID
		if id == "" {
			id = f.id("cpn")
		}
		if _, dup := f.coupons[id]; dup {
			return nil, &payment.ProviderError{Op: "coupon.create", Kind: payment.ErrInvalidRequest, HTTPStatus: 400, Code: "resource_already_exists", Message: "Coupon already exists."}
		}
		duration := p.Duration
		if duration == "" {
			duration = payment.DurationOnce
		}
		c := &payment.Coupon{
			ID: id, Name: p.Name, PercentOff: p.PercentOff, AmountOff: p.AmountOff, Currency: p.Currency,
			Duration: duration, DurationInMonths: p.DurationInMonths, MaxRedemptions: p.MaxRedemptions,
			RedeemBy: p.RedeemBy, Valid: true, Metadata: maps.Clone(p.Metadata), Created: f.now().UTC().Truncate(time.Second),
		}
		f.coupons[id] = c
		return *c, nil
	})
	if err != nil {
		return payment.Coupon{}, err
	}
	return r.(payment.Coupon), nil
}

// GetCoupon implements payment.Provider.
func (f *Fake) GetCoupon(ctx context.Context, id string) (payment.Coupon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "GetCoupon"); err != nil {
		return payment.Coupon{}, err
	}
	c, ok := f.coupons[id]
	if !ok {
		return payment.Coupon{}, notFound("coupon.get", id)
	}
	return *c, nil
}

// ListCoupons implements payment.Provider.
func (f *Fake) ListCoupons(ctx context.Context, fn func(payment.Coupon) error) error {
	f.mu.Lock()
	if err := f.enter(ctx, "ListCoupons"); err != nil {
		f.mu.Unlock()
		return err
	}
	var out []payment.Coupon
	for _, id := range slices.Sorted(maps.Keys(f.coupons)) {
		out = append(out, *f.coupons[id])
	}
	f.mu.Unlock()
	for _, c := range out {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// UpdateCoupon implements payment.Provider.
func (f *Fake) UpdateCoupon(ctx context.Context, id string, u payment.CouponUpdate) (payment.Coupon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "UpdateCoupon"); err != nil {
		return payment.Coupon{}, err
	}
	c, ok := f.coupons[id]
	if !ok {
		return payment.Coupon{}, notFound("coupon.update", id)
	}
	if u.Name != nil {
		c.Name = *u.Name
	}
	if u.Metadata != nil {
		if c.Metadata == nil {
			c.Metadata = map[string]string{}
		}
		for k, v := range u.Metadata {
			if v == "" {
				delete(c.Metadata, k)
			} else {
				c.Metadata[k] = v
			}
		}
	}
	return *c, nil
}

// DeleteCoupon implements payment.Provider.
func (f *Fake) DeleteCoupon(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "DeleteCoupon"); err != nil {
		return err
	}
	if _, ok := f.coupons[id]; !ok {
		return notFound("coupon.delete", id)
	}
	delete(f.coupons, id)
	return nil
}

// CreatePromotionCode implements payment.Provider. Like Stripe it requires
// an existing coupon and a code unique among active codes
// (case-insensitively).
func (f *Fake) CreatePromotionCode(ctx context.Context, p payment.PromotionCodeParams) (payment.PromotionCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "CreatePromotionCode"); err != nil {
		return payment.PromotionCode{}, err
	}
	key := p.IdempotencyKey
	p.IdempotencyKey = ""
	r, err := f.idempotent(key, p, func() (any, error) {
		if _, ok := f.coupons[p.CouponID]; !ok {
			return nil, invalid("promotion_code.create", "No such coupon: '"+p.CouponID+"'")
		}
		code := p.Code
		if code == "" {
			code = strings.ToUpper(f.id("CODE"))
		}
		for _, pc := range f.promos {
			if pc.Active && strings.EqualFold(pc.Code, code) {
				return nil, invalid("promotion_code.create", "An active promotion code with `code: "+code+"` already exists.")
			}
		}
		pc := &payment.PromotionCode{
			ID: f.id("promo"), Code: code, CouponID: p.CouponID, Active: true, MaxRedemptions: p.MaxRedemptions,
			ExpiresAt: p.ExpiresAt, Metadata: maps.Clone(p.Metadata), Created: f.now().UTC().Truncate(time.Second),
		}
		f.promos[pc.ID] = pc
		return *pc, nil
	})
	if err != nil {
		return payment.PromotionCode{}, err
	}
	return r.(payment.PromotionCode), nil
}

// GetPromotionCode implements payment.Provider.
func (f *Fake) GetPromotionCode(ctx context.Context, id string) (payment.PromotionCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "GetPromotionCode"); err != nil {
		return payment.PromotionCode{}, err
	}
	pc, ok := f.promos[id]
	if !ok {
		return payment.PromotionCode{}, notFound("promotion_code.get", id)
	}
	return *pc, nil
}

// ListPromotionCodes implements payment.Provider.
func (f *Fake) ListPromotionCodes(ctx context.Context, q payment.PromotionCodeQuery, fn func(payment.PromotionCode) error) error {
	f.mu.Lock()
	if err := f.enter(ctx, "ListPromotionCodes"); err != nil {
		f.mu.Unlock()
		return err
	}
	var out []payment.PromotionCode
	for _, id := range slices.Sorted(maps.Keys(f.promos)) {
		pc := f.promos[id]
		if (q.Code != "" && !strings.EqualFold(pc.Code, q.Code)) || (q.CouponID != "" && pc.CouponID != q.CouponID) || (q.ActiveOnly && !pc.Active) {
			continue
		}
		out = append(out, *pc)
	}
	f.mu.Unlock()
	for _, pc := range out {
		if err := fn(pc); err != nil {
			return err
		}
	}
	return nil
}

// SetPromotionCodeActive implements payment.Provider.
func (f *Fake) SetPromotionCodeActive(ctx context.Context, id string, active bool) (payment.PromotionCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, "SetPromotionCodeActive"); err != nil {
		return payment.PromotionCode{}, err
	}
	pc, ok := f.promos[id]
	if !ok {
		return payment.PromotionCode{}, notFound("promotion_code.update", id)
	}
	pc.Active = active
	return *pc, nil
}

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
func (f *Fake) CompleteCheckout(sessionID string, o CompleteOptions) (string, error) {
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
func (f *Fake) PayAsync(sessionID string) error {
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
func (f *Fake) Subscribe(playerID, priceID string) string {
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
func (f *Fake) Renew(subID string, paid bool) error {
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
func (f *Fake) SetStatus(subID string, st payment.Status) error {
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
func (f *Fake) CancelAtPeriodEnd(subID string) error {
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
func (f *Fake) ChangePrice(subID, priceID string) error {
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
func (f *Fake) Refund(paymentIntentID string) error {
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
func (f *Fake) RefundInvoice(invoiceID string, amount int64) error {
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
func (f *Fake) refund(ch *payment.Charge, amount int64) error {
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

// Emit appends an event of any type naming objectID (for unknown-type
// tests) and returns it.
func (f *Fake) Emit(typ, objectType, objectID string) payment.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.emit(typ, objectType, objectID, nil)
}

func (f *Fake) newInvoice(sub *payment.Subscription, paid bool, reason string) *payment.Invoice {
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

func subSnapshot(s *payment.Subscription) map[string]any {
	return map[string]any{"status": string(s.Status), "customer": s.CustomerID,
		"current_period_end": s.CurrentPeriodEnd.Unix(), "cancel_at_period_end": s.CancelAtPeriodEnd}
}

func (f *Fake) emit(typ, objType, objID string, snap map[string]any) payment.Event {
	ev := payment.Event{
		ID: f.id("evt"), Type: typ, APIVersion: f.apiVersion, Created: f.now().UTC().Truncate(time.Second),
		ObjectID: objID, ObjectType: objType,
	}
	f.events = append(f.events, fakeEvent{ev: ev, snapshot: snap})
	return ev
}

// Events returns every event so far, oldest first.
func (f *Fake) Events() []payment.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]payment.Event, len(f.events))
	for i, e := range f.events {
		out[i] = e.ev
	}
	return out
}

// MarkDelivered records that events were delivered (ListEvents with
// UndeliveredOnly skips them).
func (f *Fake) MarkDelivered(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.events {
		if slices.Contains(ids, f.events[i].ev.ID) {
			f.events[i].delivered = true
		}
	}
}

// Payload renders an event as the JSON body of a Stripe webhook.
func (f *Fake) Payload(ev payment.Event) []byte {
	f.mu.Lock()
	var snap map[string]any
	for _, e := range f.events {
		if e.ev.ID == ev.ID {
			snap = e.snapshot
		}
	}
	f.mu.Unlock()
	return EventPayload(ev, snap)
}

// EventPayload renders ev as a Stripe event JSON; fields are extra keys of
// data.object.
func EventPayload(ev payment.Event, fields map[string]any) []byte {
	obj := map[string]any{"id": ev.ObjectID, "object": ev.ObjectType}
	for k, v := range fields {
		obj[k] = v
	}
	b, err := json.Marshal(map[string]any{
		"id": ev.ID, "object": "event", "api_version": ev.APIVersion, "created": ev.Created.Unix(),
		"livemode": ev.Livemode, "type": ev.Type, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil},
		"data":    map[string]any{"object": obj},
	})
	if err != nil {
		panic(err) // only maps of JSON-safe values are marshalled
	}
	return b
}

// Sign returns a Stripe-Signature header for payload signed with each
// secret at t ("t=<unix>,v1=<hex>[,v1=…]").
func Sign(payload []byte, t time.Time, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write([]byte(ts + "."))
		mac.Write(payload)
		b.WriteString(",v1=" + hex.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}
