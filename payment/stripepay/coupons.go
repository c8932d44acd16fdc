package stripepay

import (
	"context"

	"github.com/bodybroker/sdk/payment"
	"github.com/stripe/stripe-go/v76"
)

// CreateCoupon implements payment.Provider.
func (p *Provider) CreateCoupon(ctx context.Context, cp payment.CouponParams) (payment.Coupon, error) {
	params := &stripe.CouponParams{Metadata: cp.Metadata}
	params.Context = ctx
	if cp.ID != "" {
		params.ID = stripe.String(cp.ID)
	}
	if cp.Name != "" {
		params.Name = stripe.String(cp.Name)
	}
	if cp.PercentOff != 0 {
		params.PercentOff = stripe.Float64(cp.PercentOff)
	}
	if cp.AmountOff != 0 {
		params.AmountOff = stripe.Int64(cp.AmountOff)
		params.Currency = stripe.String(cp.Currency)
	}
	if cp.Duration != "" {
		params.Duration = stripe.String(string(cp.Duration))
	}
	if cp.DurationInMonths != 0 {
		params.DurationInMonths = stripe.Int64(cp.DurationInMonths)
	}
	if cp.MaxRedemptions != 0 {
		params.MaxRedemptions = stripe.Int64(cp.MaxRedemptions)
	}
	if !cp.RedeemBy.IsZero() {
		params.RedeemBy = stripe.Int64(cp.RedeemBy.Unix())
	}
	if len(cp.AppliesToProducts) > 0 {
		params.AppliesTo = &stripe.CouponAppliesToParams{Products: stripe.StringSlice(cp.AppliesToProducts)}
	}
	setKey(&params.Params, cp.IdempotencyKey)
	c, err := p.sc.Coupons.New(params)
	if err != nil {
		return payment.Coupon{}, mapErr("coupon.create", err)
	}
	return toCoupon(c), nil
}

// GetCoupon implements payment.Provider.
func (p *Provider) GetCoupon(ctx context.Context, id string) (payment.Coupon, error) {
	params := &stripe.CouponParams{}
	params.Context = ctx
	c, err := p.sc.Coupons.Get(id, params)
	if err != nil {
		return payment.Coupon{}, mapErr("coupon.get", err)
	}
	return toCoupon(c), nil
}

// ListCoupons implements payment.Provider, following Stripe's pagination.
func (p *Provider) ListCoupons(ctx context.Context, fn func(payment.Coupon) error) error {
	params := &stripe.CouponListParams{}
	params.Context = ctx
	params.Limit = stripe.Int64(100)
	it := p.sc.Coupons.List(params)
	for it.Next() {
		if err := fn(toCoupon(it.Coupon())); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return mapErr("coupon.list", err)
	}
	return nil
}

// UpdateCoupon implements payment.Provider (name and metadata only).
func (p *Provider) UpdateCoupon(ctx context.Context, id string, u payment.CouponUpdate) (payment.Coupon, error) {
	params := &stripe.CouponParams{Name: u.Name, Metadata: u.Metadata}
	params.Context = ctx
	c, err := p.sc.Coupons.Update(id, params)
	if err != nil {
		return payment.Coupon{}, mapErr("coupon.update", err)
	}
	return toCoupon(c), nil
}

// DeleteCoupon implements payment.Provider.
func (p *Provider) DeleteCoupon(ctx context.Context, id string) error {
	params := &stripe.CouponParams{}
	params.Context = ctx
	if _, err := p.sc.Coupons.Del(id, params); err != nil {
		return mapErr("coupon.delete", err)
	}
	return nil
}

func toCoupon(c *stripe.Coupon) payment.Coupon {
	return payment.Coupon{
		ID: c.ID, Name: c.Name, PercentOff: c.PercentOff, AmountOff: c.AmountOff, Currency: string(c.Currency),
		Duration: payment.Duration(c.Duration), DurationInMonths: c.DurationInMonths, MaxRedemptions: c.MaxRedemptions,
		RedeemBy: unix(c.RedeemBy), TimesRedeemed: c.TimesRedeemed, Valid: c.Valid, Metadata: c.Metadata, Created: unix(c.Created),
	}
}

// CreatePromotionCode implements payment.Provider.
func (p *Provider) CreatePromotionCode(ctx context.Context, pp payment.PromotionCodeParams) (payment.PromotionCode, error) {
	pc, err := p.sc.PromotionCodes.New(promotionCodeParams(ctx, pp))
	if err != nil {
		return payment.PromotionCode{}, mapErr("promotion_code.create", err)
	}
	return toPromotionCode(pc), nil
}

// promotionCodeParams is the one place that shapes a promotion-code
// create. API version 2023-10-16 takes `coupon`; newer versions replace it
// with `promotion[type]=coupon&promotion[coupon]=…`, so a version bump
// changes only this function.
func promotionCodeParams(ctx context.Context, pp payment.PromotionCodeParams) *stripe.PromotionCodeParams {
	params := &stripe.PromotionCodeParams{Coupon: stripe.String(pp.CouponID), Metadata: pp.Metadata}
	params.Context = ctx
	if pp.Code != "" {
		params.Code = stripe.String(pp.Code)
	}
	if pp.MaxRedemptions != 0 {
		params.MaxRedemptions = stripe.Int64(pp.MaxRedemptions)
	}
	if !pp.ExpiresAt.IsZero() {
		params.ExpiresAt = stripe.Int64(pp.ExpiresAt.Unix())
	}
	if pp.FirstTimeTransaction {
		params.Restrictions = &stripe.PromotionCodeRestrictionsParams{FirstTimeTransaction: stripe.Bool(true)}
	}
	setKey(&params.Params, pp.IdempotencyKey)
	return params
}

// GetPromotionCode implements payment.Provider.
func (p *Provider) GetPromotionCode(ctx context.Context, id string) (payment.PromotionCode, error) {
	params := &stripe.PromotionCodeParams{}
	params.Context = ctx
	pc, err := p.sc.PromotionCodes.Get(id, params)
	if err != nil {
		return payment.PromotionCode{}, mapErr("promotion_code.get", err)
	}
	return toPromotionCode(pc), nil
}

// ListPromotionCodes implements payment.Provider, following pagination.
func (p *Provider) ListPromotionCodes(ctx context.Context, q payment.PromotionCodeQuery, fn func(payment.PromotionCode) error) error {
	params := &stripe.PromotionCodeListParams{}
	params.Context = ctx
	params.Limit = stripe.Int64(100)
	if q.Code != "" {
		params.Code = stripe.String(q.Code)
	}
	if q.CouponID != "" {
		params.Coupon = stripe.String(q.CouponID)
	}
	if q.ActiveOnly {
		params.Active = stripe.Bool(true)
	}
	it := p.sc.PromotionCodes.List(params)
	for it.Next() {
		if err := fn(toPromotionCode(it.PromotionCode())); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return mapErr("promotion_code.list", err)
	}
	return nil
}

// SetPromotionCodeActive implements payment.Provider.
func (p *Provider) SetPromotionCodeActive(ctx context.Context, id string, active bool) (payment.PromotionCode, error) {
	params := &stripe.PromotionCodeParams{Active: stripe.Bool(active)}
	params.Context = ctx
	pc, err := p.sc.PromotionCodes.Update(id, params)
	if err != nil {
		return payment.PromotionCode{}, mapErr("promotion_code.update", err)
	}
	return toPromotionCode(pc), nil
}

func toPromotionCode(pc *stripe.PromotionCode) payment.PromotionCode {
	out := payment.PromotionCode{
		ID: pc.ID, Code: pc.Code, Active: pc.Active, MaxRedemptions: pc.MaxRedemptions, TimesRedeemed: pc.TimesRedeemed,
		ExpiresAt: unix(pc.ExpiresAt), Metadata: pc.Metadata, Created: unix(pc.Created),
	}
	if pc.Coupon != nil {
		out.CouponID = pc.Coupon.ID
	}
	return out
}
