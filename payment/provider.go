package payment

import (
	"context"
	"time"
)

// Provider is the seam to the payment provider. Package stripepay
// implements it on stripe-go; package fakepay is a stateful in-memory
// fake; paymenttest.TestProvider checks both against this contract.
// Implementations must be safe for concurrent use, must pass ctx to
// every network call, and must send IdempotencyKey (when set) with every
// create so that a retried call has no second effect.
//
// Get methods return an error wrapping [ErrNotFound] for missing objects.
type Provider interface {
	// APIVersion is the API version the provider reads objects in. The
	// webhook handler compares it with each event's version.
	APIVersion() string

	// FindCustomer returns the ID of the customer whose metadata holds
	// playerID, or an error wrapping ErrNotFound.
	FindCustomer(ctx context.Context, playerID string) (string, error)
	// CreateCustomer creates a customer with playerID in its metadata.
	CreateCustomer(ctx context.Context, p CustomerParams) (string, error)

	CreateCheckoutSession(ctx context.Context, p CheckoutParams) (CheckoutSession, error)
	// GetCheckoutSession returns the session with its applied discount
	// resolved (coupon, promotion code and the code's metadata).
	GetCheckoutSession(ctx context.Context, id string) (CheckoutSession, error)
	CreatePortalSession(ctx context.Context, p PortalParams) (PortalSession, error)

	GetSubscription(ctx context.Context, id string) (Subscription, error)
	GetInvoice(ctx context.Context, id string) (Invoice, error)
	GetCharge(ctx context.Context, id string) (Charge, error)
	// ListEvents calls fn for each event matching q, newest first, across
	// all pages, until fn returns an error (returned as is).
	ListEvents(ctx context.Context, q EventQuery, fn func(Event) error) error

	CreateCoupon(ctx context.Context, p CouponParams) (Coupon, error)
	GetCoupon(ctx context.Context, id string) (Coupon, error)
	// ListCoupons calls fn for each coupon across all pages.
	ListCoupons(ctx context.Context, fn func(Coupon) error) error
	UpdateCoupon(ctx context.Context, id string, p CouponUpdate) (Coupon, error)
	DeleteCoupon(ctx context.Context, id string) error

	CreatePromotionCode(ctx context.Context, p PromotionCodeParams) (PromotionCode, error)
	GetPromotionCode(ctx context.Context, id string) (PromotionCode, error)
	// ListPromotionCodes calls fn for each promotion code matching q,
	// across all pages.
	ListPromotionCodes(ctx context.Context, q PromotionCodeQuery, fn func(PromotionCode) error) error
	// SetPromotionCodeActive activates or deactivates a code (codes cannot
	// be deleted).
	SetPromotionCodeActive(ctx context.Context, id string, active bool) (PromotionCode, error)
}

// CustomerParams creates a customer.
type CustomerParams struct {
	PlayerID       string
	Email          string
	IdempotencyKey string
}

// CheckoutParams is a fully resolved checkout-session request. Exactly one
// of PromotionCodeID and AllowPromotionCodes may be set; the SDK never sets
// both (providers reject it).
type CheckoutParams struct {
	Mode                Mode
	PriceID             string
	Quantity            int64
	CustomerID          string
	ClientReferenceID   string // the player ID
	PromotionCodeID     string
	AllowPromotionCodes bool
	SuccessURL          string
	CancelURL           string
	// Metadata goes on the session, and on the subscription
	// (subscription mode) or the payment (payment mode) it creates.
	Metadata       map[string]string
	TrialDays      int64
	IdempotencyKey string
}

// CheckoutSession is a provider checkout session.
type CheckoutSession struct {
	ID                string
	URL               string
	Mode              Mode
	Status            string // open, complete, expired
	PaymentStatus     string // paid, unpaid, no_payment_required
	CustomerID        string
	ClientReferenceID string
	SubscriptionID    string
	PaymentIntentID   string
	// PaymentRefunded reports that the session's payment was fully
	// refunded (payment mode).
	PaymentRefunded bool
	PriceID         string
	AmountTotal     int64
	Currency        string
	Metadata        map[string]string
	Discount        *AppliedDiscount
	Created         time.Time
	ExpiresAt       time.Time
}

// AppliedDiscount is the discount a session or invoice carries.
type AppliedDiscount struct {
	CouponID        string
	PromotionCodeID string
	Code            string
	// Metadata is the promotion code's metadata (ambassador_id lives here).
	Metadata map[string]string
}

// PortalParams creates a customer-portal session.
type PortalParams struct {
	CustomerID     string
	ReturnURL      string
	IdempotencyKey string
}

// PortalSession is a customer-portal session; send the player to URL.
type PortalSession struct {
	ID  string
	URL string
}

// Subscription is the current state of a provider subscription.
type Subscription struct {
	ID                 string
	CustomerID         string
	PlayerID           string // from subscription metadata, else customer metadata
	PriceID            string
	Status             Status
	CurrentPeriodStart time.Time
	CurrentPeriodEnd   time.Time
	CancelAtPeriodEnd  bool
	TrialEnd           time.Time
	Metadata           map[string]string
	Discount           *AppliedDiscount
}

// Invoice is the current state of a provider invoice.
type Invoice struct {
	ID             string
	CustomerID     string
	SubscriptionID string
	PlayerID       string
	Status         string // draft, open, paid, uncollectible, void
	Paid           bool
	AmountPaid     int64
	Currency       string
	Discount       *AppliedDiscount
	// BillingReason: subscription_create, subscription_cycle, …
	BillingReason string
}

// Charge is the current state of a provider charge.
type Charge struct {
	ID              string
	PaymentIntentID string
	InvoiceID       string
	CustomerID      string
	Amount          int64
	AmountRefunded  int64
	Refunded        bool // fully refunded
	Currency        string
	// Refunds are the charge's refunds, partial or full, oldest first.
	Refunds []Refund
}

// Refund is one refund of a charge.
type Refund struct {
	ID     string
	Amount int64 // minor units, in the charge's currency
	// Status is the provider's: pending, requires_action, succeeded,
	// failed or canceled.
	Status string
}

// Event is a provider event, reduced to what the SDK needs: it is only a
// trigger, and the object it names is re-fetched before anything is synced.
type Event struct {
	ID         string
	Type       string
	APIVersion string
	Created    time.Time
	Livemode   bool
	// ObjectID and ObjectType name data.object.
	ObjectID   string
	ObjectType string
}

// EventQuery filters ListEvents.
type EventQuery struct {
	// Since lists events created at or after this time (zero: all the
	// provider keeps; Stripe keeps 30 days).
	Since time.Time
	// Types limits the event types (empty: all).
	Types []string
	// UndeliveredOnly lists only events whose webhook delivery failed.
	UndeliveredOnly bool
}

// Duration is how long a coupon's discount applies.
type Duration string

// Coupon durations.
const (
	DurationOnce      Duration = "once"
	DurationRepeating Duration = "repeating"
	DurationForever   Duration = "forever"
)

// CouponParams creates a coupon. Exactly one of PercentOff and AmountOff
// (with Currency) must be set.
type CouponParams struct {
	ID                string // optional; generated when empty
	Name              string
	PercentOff        float64
	AmountOff         int64
	Currency          string
	Duration          Duration
	DurationInMonths  int64 // required for DurationRepeating
	MaxRedemptions    int64
	RedeemBy          time.Time
	AppliesToProducts []string
	Metadata          map[string]string
	IdempotencyKey    string
}

// CouponUpdate changes a coupon. Providers allow only the name and
// metadata to change; nil fields are left alone.
type CouponUpdate struct {
	Name     *string
	Metadata map[string]string
}

// Coupon is a discount definition. Players cannot type a coupon; they type
// a [PromotionCode] that points at one.
type Coupon struct {
	ID               string
	Name             string
	PercentOff       float64
	AmountOff        int64
	Currency         string
	Duration         Duration
	DurationInMonths int64
	MaxRedemptions   int64
	RedeemBy         time.Time
	TimesRedeemed    int64
	Valid            bool
	Metadata         map[string]string
	Created          time.Time
}

// PromotionCodeParams creates a promotion code.
type PromotionCodeParams struct {
	CouponID             string
	Code                 string // optional; generated when empty
	MaxRedemptions       int64
	ExpiresAt            time.Time
	FirstTimeTransaction bool
	Metadata             map[string]string
	IdempotencyKey       string
}

// PromotionCode is a customer-facing code for a coupon.
type PromotionCode struct {
	ID             string
	Code           string
	CouponID       string
	Active         bool
	MaxRedemptions int64
	TimesRedeemed  int64
	ExpiresAt      time.Time
	Metadata       map[string]string
	Created        time.Time
}

// PromotionCodeQuery filters ListPromotionCodes; zero fields do not filter.
type PromotionCodeQuery struct {
	Code       string
	CouponID   string
	ActiveOnly bool
}
