package fakepay

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bodybroker/sdk/payment"
)

// APIVersion implements payment.Provider.
func (f *Provider) APIVersion() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apiVersion
}

// FindCustomer implements payment.Provider.
func (f *Provider) FindCustomer(ctx context.Context, playerID string) (string, error) {
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
func (f *Provider) CreateCustomer(ctx context.Context, p payment.CustomerParams) (string, error) {
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
func (f *Provider) Customers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.customers)
}

// CreateCheckoutSession implements payment.Provider. Like Stripe it rejects
// a discount together with allow_promotion_codes, unknown customers and
// inactive codes.
func (f *Provider) CreateCheckoutSession(ctx context.Context, p payment.CheckoutParams) (payment.CheckoutSession, error) {
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

func (f *Provider) discountFor(promoID string) *payment.AppliedDiscount {
	pc := f.promos[promoID]
	return &payment.AppliedDiscount{CouponID: pc.CouponID, PromotionCodeID: pc.ID, Code: pc.Code, Metadata: maps.Clone(pc.Metadata)}
}

// Session returns a checkout session's current state.
func (f *Provider) Session(id string) (payment.CheckoutSession, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs, ok := f.sessions[id]
	if !ok {
		return payment.CheckoutSession{}, false
	}
	return *cs, true
}

// GetCheckoutSession implements payment.Provider.
func (f *Provider) GetCheckoutSession(ctx context.Context, id string) (payment.CheckoutSession, error) {
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
func (f *Provider) CreatePortalSession(ctx context.Context, p payment.PortalParams) (payment.PortalSession, error) {
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
func (f *Provider) GetSubscription(ctx context.Context, id string) (payment.Subscription, error) {
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
func (f *Provider) GetInvoice(ctx context.Context, id string) (payment.Invoice, error) {
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
func (f *Provider) GetCharge(ctx context.Context, id string) (payment.Charge, error) {
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
func (f *Provider) ListEvents(ctx context.Context, q payment.EventQuery, fn func(payment.Event) error) error {
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
func (f *Provider) CreateCoupon(ctx context.Context, p payment.CouponParams) (payment.Coupon, error) {
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
func (f *Provider) GetCoupon(ctx context.Context, id string) (payment.Coupon, error) {
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
func (f *Provider) ListCoupons(ctx context.Context, fn func(payment.Coupon) error) error {
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
func (f *Provider) UpdateCoupon(ctx context.Context, id string, u payment.CouponUpdate) (payment.Coupon, error) {
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
func (f *Provider) DeleteCoupon(ctx context.Context, id string) error {
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
func (f *Provider) CreatePromotionCode(ctx context.Context, p payment.PromotionCodeParams) (payment.PromotionCode, error) {
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
func (f *Provider) GetPromotionCode(ctx context.Context, id string) (payment.PromotionCode, error) {
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
func (f *Provider) ListPromotionCodes(ctx context.Context, q payment.PromotionCodeQuery, fn func(payment.PromotionCode) error) error {
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
func (f *Provider) SetPromotionCodeActive(ctx context.Context, id string, active bool) (payment.PromotionCode, error) {
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
