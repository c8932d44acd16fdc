package payment

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Admin is the operator API: coupons, promotion codes, ambassador codes,
// attribution stats and reconciliation. Expose it only to operators, never
// on a player-reachable route. Safe for concurrent use.
type Admin struct{ s *Service }

// CreateCoupon validates p and creates the coupon. With an empty
// p.IdempotencyKey a deterministic key is derived from p, so a retried
// call does not create a second coupon.
func (a *Admin) CreateCoupon(ctx context.Context, p CouponParams) (Coupon, error) {
	if err := validateCoupon(p); err != nil {
		return Coupon{}, err
	}
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = idemKey("coupon", p.ID, p.Name, strconv.FormatFloat(p.PercentOff, 'g', -1, 64),
			strconv.FormatInt(p.AmountOff, 10), p.Currency, string(p.Duration),
			strconv.FormatInt(p.DurationInMonths, 10), strconv.FormatInt(p.MaxRedemptions, 10),
			strconv.FormatInt(unixOrZero(p.RedeemBy), 10), strings.Join(p.AppliesToProducts, ","), fmtMeta(p.Metadata))
	}
	return a.s.provider.CreateCoupon(ctx, p)
}

func validateCoupon(p CouponParams) error {
	switch {
	case (p.PercentOff != 0) == (p.AmountOff != 0):
		return &ValidationError{Field: "PercentOff/AmountOff", Reason: "exactly one is required"}
	case p.PercentOff < 0 || p.PercentOff > 100:
		return &ValidationError{Field: "PercentOff", Reason: "must be in (0, 100]"}
	case p.AmountOff < 0:
		return &ValidationError{Field: "AmountOff", Reason: "negative"}
	case p.AmountOff > 0 && p.Currency == "":
		return &ValidationError{Field: "Currency", Reason: "required with AmountOff"}
	case p.MaxRedemptions < 0:
		return &ValidationError{Field: "MaxRedemptions", Reason: "negative"}
	}
	switch p.Duration {
	case DurationOnce, DurationForever, "":
		if p.DurationInMonths != 0 {
			return &ValidationError{Field: "DurationInMonths", Reason: "only with DurationRepeating"}
		}
	case DurationRepeating:
		if p.DurationInMonths <= 0 {
			return &ValidationError{Field: "DurationInMonths", Reason: "required with DurationRepeating"}
		}
	default:
		return &ValidationError{Field: "Duration", Reason: fmt.Sprintf("unknown %q", p.Duration)}
	}
	return nil
}

// Coupon returns a coupon.
func (a *Admin) Coupon(ctx context.Context, id string) (Coupon, error) {
	return a.s.provider.GetCoupon(ctx, id)
}

// Coupons returns every coupon, following pagination.
func (a *Admin) Coupons(ctx context.Context) ([]Coupon, error) {
	var out []Coupon
	err := a.s.provider.ListCoupons(ctx, func(c Coupon) error { out = append(out, c); return nil })
	return out, err
}

// UpdateCoupon changes a coupon's name or metadata (nothing else can change).
func (a *Admin) UpdateCoupon(ctx context.Context, id string, u CouponUpdate) (Coupon, error) {
	return a.s.provider.UpdateCoupon(ctx, id, u)
}

// DeleteCoupon stops new redemptions; discounts already applied go on.
func (a *Admin) DeleteCoupon(ctx context.Context, id string) error {
	return a.s.provider.DeleteCoupon(ctx, id)
}

// CreatePromotionCode creates a customer-facing code for a coupon.
func (a *Admin) CreatePromotionCode(ctx context.Context, p PromotionCodeParams) (PromotionCode, error) {
	if p.CouponID == "" {
		return PromotionCode{}, &ValidationError{Field: "CouponID", Reason: "required"}
	}
	if p.MaxRedemptions < 0 {
		return PromotionCode{}, &ValidationError{Field: "MaxRedemptions", Reason: "negative"}
	}
	if p.Code != "" && !validCode(p.Code) {
		return PromotionCode{}, &ValidationError{Field: "Code", Reason: "longer than MaxCodeBytes or not printable"}
	}
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = idemKey("promo", p.CouponID, strings.ToUpper(p.Code), strconv.FormatInt(p.MaxRedemptions, 10),
			strconv.FormatInt(unixOrZero(p.ExpiresAt), 10), strconv.FormatBool(p.FirstTimeTransaction), fmtMeta(p.Metadata))
	}
	pc, err := a.s.provider.CreatePromotionCode(ctx, p)
	if err == nil {
		a.s.codeCache.forget(pc.Code) // a cached miss would hide it
	}
	return pc, err
}

// PromotionCode returns a promotion code by ID.
func (a *Admin) PromotionCode(ctx context.Context, id string) (PromotionCode, error) {
	return a.s.provider.GetPromotionCode(ctx, id)
}

// FindPromotionCode returns the active promotion code a customer would
// type as code (codes are case-insensitive), or an error wrapping
// ErrNotFound.
func (a *Admin) FindPromotionCode(ctx context.Context, code string) (PromotionCode, error) {
	var found PromotionCode
	var n int
	err := a.s.provider.ListPromotionCodes(ctx, PromotionCodeQuery{Code: code, ActiveOnly: true}, func(pc PromotionCode) error {
		if strings.EqualFold(pc.Code, code) && pc.Active {
			found = pc
			n++
		}
		return nil
	})
	if err != nil {
		return PromotionCode{}, err
	}
	if n == 0 {
		return PromotionCode{}, fmt.Errorf("%w: promotion code %q", ErrNotFound, code)
	}
	return found, nil
}

// PromotionCodes returns the codes matching q, following pagination.
func (a *Admin) PromotionCodes(ctx context.Context, q PromotionCodeQuery) ([]PromotionCode, error) {
	var out []PromotionCode
	err := a.s.provider.ListPromotionCodes(ctx, q, func(pc PromotionCode) error { out = append(out, pc); return nil })
	return out, err
}

// DeactivatePromotionCode stops a code from being redeemed (codes cannot
// be deleted).
//
// Players of this Service are refused the code at once; other servers
// sharing the provider may accept it until their cached lookup expires
// (Options.CodeCacheTTL), and the provider refuses it at checkout anyway.
func (a *Admin) DeactivatePromotionCode(ctx context.Context, id string) (PromotionCode, error) {
	pc, err := a.s.provider.SetPromotionCodeActive(ctx, id, false)
	if err == nil {
		a.s.codeCache.forget(pc.Code)
	}
	return pc, err
}

// AmbassadorCodeParams creates an ambassador's code.
type AmbassadorCodeParams struct {
	AmbassadorID string // required; stored in the code's metadata
	// CouponID is the shared coupon of the ambassador program's discount
	// level (one coupon per level, one code per ambassador).
	CouponID string
	// Code is what players type, usually the creator's handle. Required.
	Code           string
	MaxRedemptions int64
	ExpiresAt      time.Time
	// FirstTimeOnly restricts the code to players who never paid before.
	FirstTimeOnly bool
}

// CreateAmbassadorCode creates one promotion code for an ambassador on a
// shared coupon, with the ambassador ID in its metadata; checkouts and
// invoices that use it are attributed to the ambassador.
func (a *Admin) CreateAmbassadorCode(ctx context.Context, p AmbassadorCodeParams) (PromotionCode, error) {
	if p.AmbassadorID == "" {
		return PromotionCode{}, &ValidationError{Field: "AmbassadorID", Reason: "required"}
	}
	if p.Code == "" {
		return PromotionCode{}, &ValidationError{Field: "Code", Reason: "required"}
	}
	return a.CreatePromotionCode(ctx, PromotionCodeParams{
		CouponID: p.CouponID, Code: p.Code, MaxRedemptions: p.MaxRedemptions, ExpiresAt: p.ExpiresAt,
		FirstTimeTransaction: p.FirstTimeOnly,
		Metadata:             map[string]string{MetaAmbassadorID: p.AmbassadorID, MetaProgram: ProgramAmbassador},
	})
}

// AmbassadorStats returns the ambassador's attributed checkouts, paid
// invoices and revenue by currency.
func (a *Admin) AmbassadorStats(ctx context.Context, ambassadorID string) (AmbassadorStats, error) {
	return a.s.store.AmbassadorStats(ctx, ambassadorID)
}

// CheckPromotionCode tells an operator whether players can redeem code
// now, and if not, why: the error is an [*InvalidCodeError] (wrapping
// ErrInvalidCode) naming the problem, which players never see. It asks
// the provider every time (no cache, no rate limit).
func (a *Admin) CheckPromotionCode(ctx context.Context, code string) (PromotionCode, error) {
	if !validCode(code) {
		return PromotionCode{}, &InvalidCodeError{Code: code, Problem: CodeMalformed}
	}
	pc, err := a.FindPromotionCode(ctx, code)
	if errors.Is(err, ErrNotFound) {
		return PromotionCode{}, &InvalidCodeError{Code: code, Problem: CodeUnknown}
	}
	if err != nil {
		return PromotionCode{}, err
	}
	if p := codeProblem(pc, a.s.now()); p != "" {
		return pc, &InvalidCodeError{Code: code, Problem: p}
	}
	return pc, nil
}

// ReconcileOptions selects the events to replay.
type ReconcileOptions struct {
	// Since replays events created at or after this time (zero: all the
	// provider keeps, 30 days for Stripe).
	Since time.Time
	// UndeliveredOnly replays only events whose webhook delivery failed.
	UndeliveredOnly bool
}

// ReconcileResult counts what a reconcile run did.
type ReconcileResult struct {
	Seen, Processed, Duplicates, Ignored, Failed int
	// InProgress counts events another worker was processing (a webhook
	// delivery racing the reconcile); that worker applies them.
	InProgress int
}

// Reconcile replays events from the provider's event list through the
// same claim-and-sync path the webhook uses, oldest first, so events the
// webhook missed (an outage, a deploy) are applied and events already
// applied are skipped. Events another worker is processing are counted
// in InProgress and left to it. Sync failures are counted, released for a later run,
// and the first is returned after all events were tried.
func (a *Admin) Reconcile(ctx context.Context, o ReconcileOptions) (ReconcileResult, error) {
	s := a.s
	var evs []Event
	err := s.provider.ListEvents(ctx, EventQuery{Since: o.Since, Types: HandledEventTypes(), UndeliveredOnly: o.UndeliveredOnly},
		func(e Event) error { evs = append(evs, e); return ctx.Err() })
	if err != nil {
		return ReconcileResult{}, err
	}
	var res ReconcileResult
	var first error
	for i := len(evs) - 1; i >= 0; i-- { // the list is newest first
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Seen++
		r, err := s.handleEvent(ctx, evs[i])
		switch {
		case errors.Is(err, ErrEventInProgress):
			res.InProgress++
		case err != nil:
			res.Failed++
			if first == nil {
				first = err
			}
		case r == ResultDuplicate:
			res.Duplicates++
		case r == ResultIgnored:
			res.Ignored++
		default:
			res.Processed++
		}
	}
	return res, first
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fmtMeta(m map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(&b, "%d:%s=%d:%s;", len(k), k, len(m[k]), m[k])
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
