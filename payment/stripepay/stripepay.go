// Package stripepay implements payment.Provider on Stripe with
// github.com/stripe/stripe-go/v76.
//
// Each [Provider] has its own stripe-go client (client.API) and backend:
// the package never touches stripe-go's global key or backends, so several
// providers (live and test accounts, stripe-mock in tests) can coexist.
// Every call carries the caller's context, is made in the API version
// pinned by stripe-go v76 (2023-10-16), and sends the deterministic
// idempotency key chosen by package payment on creates. stripe-go retries a
// request only where Stripe says it is safe (network errors, 409, 429 lock
// timeouts, 503, Stripe-Should-Retry), always with the same key.
// *stripe.Error values are mapped to payment's sentinel errors inside a
// *payment.ProviderError.
//
// # Usage
//
//	prov, err := stripepay.New(stripepay.Options{APIKey: payment.Secret(os.Getenv("STRIPE_KEY"))})
//	svc, err := payment.New(payment.Options{Provider: prov, ...})
package stripepay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Options configures a [Provider]. APIKey is required.
type Options struct {
	// APIKey is the secret key ("sk_live_…", "sk_test_…" or a restricted
	// "rk_…" key). It is redacted in logs.
	APIKey payment.Secret
	// URL overrides the API base URL, e.g. "http://127.0.0.1:12111" for
	// stripe-mock. Default: Stripe's API.
	URL string
	// HTTPClient sends the requests. Default: a client with a 30 s timeout.
	HTTPClient *http.Client
	// MaxNetworkRetries is how often stripe-go retries a request that
	// Stripe marks safe to retry. Zero means stripe-go's default (2); use
	// DisableRetries for none.
	MaxNetworkRetries int64
	DisableRetries    bool
	// Logger receives stripe-go's own log lines at debug level (errors at
	// warn), reduced to what identifies a request: method and path,
	// object types and IDs, HTTP status, error type and code, request ID.
	// Response bodies and error messages, which can carry customer data
	// (emails, names, addresses), are never logged. Default:
	// slog.Default().
	Logger *slog.Logger
}

// LogValue implements slog.LogValuer without revealing the key.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", o.URL), slog.Any("api_key", o.APIKey), slog.Bool("retries_disabled", o.DisableRetries))
}

// Provider is a payment.Provider backed by Stripe. It is safe for
// concurrent use and holds no goroutines; the HTTP client's idle
// connections are the only resource (close them with the client you passed
// in, if any).
type Provider struct {
	sc *client.API
}

var _ payment.Provider = (*Provider)(nil)

// New returns a Provider with its own stripe-go client.
func New(o Options) (*Provider, error) {
	if o.APIKey == "" {
		return nil, &payment.ValidationError{Field: "Options.APIKey", Reason: "required"}
	}
	if o.MaxNetworkRetries < 0 {
		return nil, &payment.ValidationError{Field: "Options.MaxNetworkRetries", Reason: "negative"}
	}
	httpc := o.HTTPClient
	if httpc == nil {
		httpc = &http.Client{Timeout: 30 * time.Second}
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	retries := stripe.DefaultMaxNetworkRetries
	if o.MaxNetworkRetries > 0 {
		retries = o.MaxNetworkRetries
	}
	if o.DisableRetries {
		retries = 0
	}
	cfg := func(url string) *stripe.BackendConfig {
		c := &stripe.BackendConfig{
			HTTPClient:        httpc,
			MaxNetworkRetries: stripe.Int64(retries),
			LeveledLogger:     slogLogger{logger.With("sdk.pkg", "payment/stripepay")},
			EnableTelemetry:   stripe.Bool(false),
		}
		if url != "" {
			c.URL = stripe.String(url)
		}
		return c
	}
	api := stripe.GetBackendWithConfig(stripe.APIBackend, cfg(o.URL))
	uploads := stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg(o.URL))
	sc := &client.API{}
	sc.Init(o.APIKey.Reveal(), &stripe.Backends{API: api, Connect: api, Uploads: uploads})
	return &Provider{sc: sc}, nil
}

// APIVersion implements payment.Provider: the version stripe-go v76 pins.
func (p *Provider) APIVersion() string { return stripe.APIVersion }

// FindCustomer implements payment.Provider with Customer Search on
// metadata['player_id']. Search is eventually consistent (about a minute),
// which is why customer creation also uses a deterministic idempotency key.
func (p *Provider) FindCustomer(ctx context.Context, playerID string) (string, error) {
	params := &stripe.CustomerSearchParams{}
	params.Context = ctx
	params.Query = fmt.Sprintf("metadata['%s']:'%s'", payment.MetaPlayerID, quote(playerID))
	params.Limit = stripe.Int64(2)
	it := p.sc.Customers.Search(params)
	for it.Next() {
		c := it.Customer()
		if c.Metadata[payment.MetaPlayerID] == playerID && !c.Deleted {
			return c.ID, nil
		}
	}
	if err := it.Err(); err != nil {
		return "", mapErr("customer.search", err)
	}
	return "", fmt.Errorf("%w: no customer for player %q", payment.ErrNotFound, playerID)
}

// quote escapes a value for Stripe's search query language.
func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

// CreateCustomer implements payment.Provider.
func (p *Provider) CreateCustomer(ctx context.Context, cp payment.CustomerParams) (string, error) {
	params := &stripe.CustomerParams{Metadata: map[string]string{payment.MetaPlayerID: cp.PlayerID}}
	params.Context = ctx
	if cp.Email != "" {
		params.Email = stripe.String(cp.Email)
	}
	setKey(&params.Params, cp.IdempotencyKey)
	c, err := p.sc.Customers.New(params)
	if err != nil {
		return "", mapErr("customer.create", err)
	}
	return c.ID, nil
}

// CreateCheckoutSession implements payment.Provider.
func (p *Provider) CreateCheckoutSession(ctx context.Context, cp payment.CheckoutParams) (payment.CheckoutSession, error) {
	if cp.PromotionCodeID != "" && cp.AllowPromotionCodes {
		return payment.CheckoutSession{}, &payment.ValidationError{Field: "CheckoutParams", Reason: "a promotion code and the promotion-code box are mutually exclusive"}
	}
	qty := cp.Quantity
	if qty == 0 {
		qty = 1
	}
	params := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(cp.Mode)),
		LineItems:         []*stripe.CheckoutSessionLineItemParams{{Price: stripe.String(cp.PriceID), Quantity: stripe.Int64(qty)}},
		ClientReferenceID: stripe.String(cp.ClientReferenceID),
		SuccessURL:        stripe.String(cp.SuccessURL),
		CancelURL:         stripe.String(cp.CancelURL),
		Metadata:          cp.Metadata,
	}
	params.Context = ctx
	if cp.CustomerID != "" {
		params.Customer = stripe.String(cp.CustomerID)
	}
	switch {
	case cp.PromotionCodeID != "":
		params.Discounts = []*stripe.CheckoutSessionDiscountParams{{PromotionCode: stripe.String(cp.PromotionCodeID)}}
	case cp.AllowPromotionCodes:
		params.AllowPromotionCodes = stripe.Bool(true)
	}
	switch cp.Mode {
	case payment.ModeSubscription:
		params.SubscriptionData = &stripe.CheckoutSessionSubscriptionDataParams{Metadata: cp.Metadata}
		if cp.TrialDays > 0 {
			params.SubscriptionData.TrialPeriodDays = stripe.Int64(cp.TrialDays)
		}
	case payment.ModePayment:
		params.PaymentIntentData = &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: cp.Metadata}
	}
	setKey(&params.Params, cp.IdempotencyKey)
	s, err := p.sc.CheckoutSessions.New(params)
	if err != nil {
		return payment.CheckoutSession{}, mapErr("checkout.create", err)
	}
	return toSession(s), nil
}

// GetCheckoutSession implements payment.Provider. It expands the line
// items, the discount breakdown and the payment's latest charge, and reads
// the promotion code (for its metadata) when a code was used.
func (p *Provider) GetCheckoutSession(ctx context.Context, id string) (payment.CheckoutSession, error) {
	params := &stripe.CheckoutSessionParams{}
	params.Context = ctx
	params.AddExpand("line_items")
	params.AddExpand("total_details.breakdown")
	params.AddExpand("payment_intent.latest_charge")
	s, err := p.sc.CheckoutSessions.Get(id, params)
	if err != nil {
		return payment.CheckoutSession{}, mapErr("checkout.get", err)
	}
	out := toSession(s)
	if td := s.TotalDetails; td != nil && td.Breakdown != nil {
		for _, d := range td.Breakdown.Discounts {
			if d == nil || d.Discount == nil {
				continue
			}
			ad, err := p.applied(ctx, d.Discount)
			if err != nil {
				return payment.CheckoutSession{}, err
			}
			out.Discount = ad
			break
		}
	}
	return out, nil
}

// applied resolves a discount's coupon and promotion code.
func (p *Provider) applied(ctx context.Context, d *stripe.Discount) (*payment.AppliedDiscount, error) {
	ad := &payment.AppliedDiscount{}
	if d.Coupon != nil {
		ad.CouponID = d.Coupon.ID
	}
	if d.PromotionCode != nil && d.PromotionCode.ID != "" {
		pc := d.PromotionCode
		if pc.Code == "" { // not expanded
			got, err := p.GetPromotionCode(ctx, pc.ID)
			if err != nil {
				return nil, err
			}
			ad.PromotionCodeID, ad.Code, ad.Metadata = got.ID, got.Code, got.Metadata
			return ad, nil
		}
		ad.PromotionCodeID, ad.Code, ad.Metadata = pc.ID, pc.Code, pc.Metadata
	}
	return ad, nil
}

func toSession(s *stripe.CheckoutSession) payment.CheckoutSession {
	out := payment.CheckoutSession{
		ID: s.ID, URL: s.URL, Mode: payment.Mode(s.Mode), Status: string(s.Status), PaymentStatus: string(s.PaymentStatus),
		ClientReferenceID: s.ClientReferenceID, AmountTotal: s.AmountTotal, Currency: string(s.Currency),
		Metadata: s.Metadata, Created: unix(s.Created), ExpiresAt: unix(s.ExpiresAt),
	}
	if s.Customer != nil {
		out.CustomerID = s.Customer.ID
	}
	if s.Subscription != nil {
		out.SubscriptionID = s.Subscription.ID
	}
	if pi := s.PaymentIntent; pi != nil {
		out.PaymentIntentID = pi.ID
		if ch := pi.LatestCharge; ch != nil && ch.Refunded {
			out.PaymentRefunded = true
		}
	}
	if s.LineItems != nil {
		for _, li := range s.LineItems.Data {
			if li != nil && li.Price != nil {
				out.PriceID = li.Price.ID
				break
			}
		}
	}
	return out
}

// CreatePortalSession implements payment.Provider.
func (p *Provider) CreatePortalSession(ctx context.Context, pp payment.PortalParams) (payment.PortalSession, error) {
	params := &stripe.BillingPortalSessionParams{Customer: stripe.String(pp.CustomerID), ReturnURL: stripe.String(pp.ReturnURL)}
	params.Context = ctx
	setKey(&params.Params, pp.IdempotencyKey)
	s, err := p.sc.BillingPortalSessions.New(params)
	if err != nil {
		return payment.PortalSession{}, mapErr("portal.create", err)
	}
	return payment.PortalSession{ID: s.ID, URL: s.URL}, nil
}

// GetSubscription implements payment.Provider. The player ID comes from
// the subscription's metadata, else from its customer's.
func (p *Provider) GetSubscription(ctx context.Context, id string) (payment.Subscription, error) {
	params := &stripe.SubscriptionParams{}
	params.Context = ctx
	params.AddExpand("customer")
	s, err := p.sc.Subscriptions.Get(id, params)
	if err != nil {
		return payment.Subscription{}, mapErr("subscription.get", err)
	}
	out := payment.Subscription{
		ID: s.ID, Status: payment.Status(s.Status), CurrentPeriodStart: unix(s.CurrentPeriodStart),
		CurrentPeriodEnd: unix(s.CurrentPeriodEnd), CancelAtPeriodEnd: s.CancelAtPeriodEnd, TrialEnd: unix(s.TrialEnd),
		Metadata: s.Metadata, PlayerID: s.Metadata[payment.MetaPlayerID],
	}
	if c := s.Customer; c != nil {
		out.CustomerID = c.ID
		if out.PlayerID == "" {
			out.PlayerID = c.Metadata[payment.MetaPlayerID]
		}
	}
	if s.Items != nil {
		for _, it := range s.Items.Data {
			if it != nil && it.Price != nil {
				out.PriceID = it.Price.ID
				break
			}
		}
	}
	return out, nil
}

// GetInvoice implements payment.Provider.
func (p *Provider) GetInvoice(ctx context.Context, id string) (payment.Invoice, error) {
	params := &stripe.InvoiceParams{}
	params.Context = ctx
	params.AddExpand("customer")
	params.AddExpand("discounts")
	inv, err := p.sc.Invoices.Get(id, params)
	if err != nil {
		return payment.Invoice{}, mapErr("invoice.get", err)
	}
	out := payment.Invoice{
		ID: inv.ID, Status: string(inv.Status), Paid: inv.Paid, AmountPaid: inv.AmountPaid,
		Currency: string(inv.Currency), BillingReason: string(inv.BillingReason),
	}
	if inv.Subscription != nil {
		out.SubscriptionID = inv.Subscription.ID
	}
	var subMeta map[string]string
	if inv.SubscriptionDetails != nil {
		subMeta = inv.SubscriptionDetails.Metadata
		out.PlayerID = subMeta[payment.MetaPlayerID]
	}
	if c := inv.Customer; c != nil {
		out.CustomerID = c.ID
		if out.PlayerID == "" {
			out.PlayerID = c.Metadata[payment.MetaPlayerID]
		}
	}
	discounts := inv.Discounts
	if len(discounts) == 0 && inv.Discount != nil {
		discounts = []*stripe.Discount{inv.Discount}
	}
	for _, d := range discounts {
		if d == nil || (d.Coupon == nil && d.PromotionCode == nil) {
			continue
		}
		ad, err := p.applied(ctx, d)
		if err != nil {
			return payment.Invoice{}, err
		}
		if ad.Metadata[payment.MetaAmbassadorID] == "" && subMeta[payment.MetaAmbassadorID] != "" {
			if ad.Metadata == nil {
				ad.Metadata = map[string]string{}
			}
			ad.Metadata[payment.MetaAmbassadorID] = subMeta[payment.MetaAmbassadorID]
		}
		out.Discount = ad
		break
	}
	return out, nil
}

// GetCharge implements payment.Provider.
func (p *Provider) GetCharge(ctx context.Context, id string) (payment.Charge, error) {
	params := &stripe.ChargeParams{}
	params.Context = ctx
	params.AddExpand("refunds") // not included since API version 2022-11-15
	ch, err := p.sc.Charges.Get(id, params)
	if err != nil {
		return payment.Charge{}, mapErr("charge.get", err)
	}
	out := payment.Charge{
		ID: ch.ID, Amount: ch.Amount, AmountRefunded: ch.AmountRefunded, Refunded: ch.Refunded, Currency: string(ch.Currency),
	}
	if ch.PaymentIntent != nil {
		out.PaymentIntentID = ch.PaymentIntent.ID
	}
	if ch.Invoice != nil {
		out.InvoiceID = ch.Invoice.ID
	}
	if ch.Customer != nil {
		out.CustomerID = ch.Customer.ID
	}
	if ch.Refunds != nil {
		for _, r := range ch.Refunds.Data {
			if r != nil {
				out.Refunds = append(out.Refunds, payment.Refund{ID: r.ID, Amount: r.Amount, Status: string(r.Status)})
			}
		}
		// Stripe lists refunds newest first.
		slices.Reverse(out.Refunds)
	}
	return out, nil
}

// ListEvents implements payment.Provider (Stripe lists newest first and
// keeps 30 days).
func (p *Provider) ListEvents(ctx context.Context, q payment.EventQuery, fn func(payment.Event) error) error {
	params := &stripe.EventListParams{}
	params.Context = ctx
	params.Limit = stripe.Int64(100)
	if !q.Since.IsZero() {
		params.CreatedRange = &stripe.RangeQueryParams{GreaterThanOrEqual: q.Since.Unix()}
	}
	for _, t := range q.Types {
		params.Types = append(params.Types, stripe.String(t))
	}
	if q.UndeliveredOnly {
		params.DeliverySuccess = stripe.Bool(false)
	}
	it := p.sc.Events.List(params)
	for it.Next() {
		e := it.Event()
		ev := payment.Event{ID: e.ID, Type: string(e.Type), APIVersion: e.APIVersion, Created: unix(e.Created), Livemode: e.Livemode}
		if e.Data != nil {
			ev.ObjectID, _ = e.Data.Object["id"].(string)
			ev.ObjectType, _ = e.Data.Object["object"].(string)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return mapErr("event.list", err)
	}
	return nil
}

func setKey(p *stripe.Params, key string) {
	if key != "" {
		p.SetIdempotencyKey(key)
	}
}

func unix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// mapErr wraps a stripe-go error in a *payment.ProviderError whose Kind is
// the matching payment sentinel.
func mapErr(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stripepay: %s: %w", op, err)
	}
	var se *stripe.Error
	if !errors.As(err, &se) {
		return &payment.ProviderError{Op: op, Kind: payment.ErrProviderUnavailable, Message: err.Error()}
	}
	pe := &payment.ProviderError{Op: op, HTTPStatus: se.HTTPStatusCode, Code: string(se.Code), Message: se.Msg, RequestID: se.RequestID}
	switch {
	case se.Type == stripe.ErrorTypeIdempotency:
		pe.Kind = payment.ErrIdempotency
	case se.Code == stripe.ErrorCodeResourceMissing || se.HTTPStatusCode == http.StatusNotFound:
		pe.Kind = payment.ErrNotFound
	case se.Type == stripe.ErrorTypeCard:
		pe.Kind = payment.ErrCardDeclined
	case se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden:
		pe.Kind = payment.ErrAuthentication
	case se.HTTPStatusCode == http.StatusTooManyRequests:
		pe.Kind = payment.ErrRateLimited
	case se.HTTPStatusCode >= 500 || se.Type == stripe.ErrorTypeAPI ||
		// 409: a request with the same idempotency key is still in
		// flight; the parameters are fine and a later retry succeeds.
		se.HTTPStatusCode == http.StatusConflict:
		pe.Kind = payment.ErrProviderUnavailable
	default:
		pe.Kind = payment.ErrInvalidRequest
	}
	return pe
}
