package stripepay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/paymenttest"
	"github.com/bodybroker/sdk/payment/stripepay"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// recorded is one request as stripe-mock received it.
type recorded struct {
	Method, Path   string
	Form           url.Values
	IdempotencyKey string
	Version        string
	Status         int
}

type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	next http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	form, _ := url.ParseQuery(string(body))
	if req.Method == http.MethodGet {
		form = req.URL.Query()
	}
	resp, err := r.next.RoundTrip(req)
	rec := recorded{Method: req.Method, Path: req.URL.Path, Form: form,
		IdempotencyKey: req.Header.Get("Idempotency-Key"), Version: req.Header.Get("Stripe-Version")}
	if resp != nil {
		rec.Status = resp.StatusCode
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	return resp, err
}

func (r *recorder) last(t *testing.T, method, pathPrefix string) recorded {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reqs) - 1; i >= 0; i-- {
		if r.reqs[i].Method == method && strings.HasPrefix(r.reqs[i].Path, pathPrefix) {
			return r.reqs[i]
		}
	}
	t.Fatalf("no %s %s request recorded", method, pathPrefix)
	return recorded{}
}

// stripeMock returns a Provider pointed at stripe-mock and the recorder
// of its requests; it skips the test when stripe-mock is unreachable,
// unless BB_REQUIRE_SERVICES=1.
func stripeMock(t *testing.T) (*stripepay.Provider, *recorder) {
	t.Helper()
	base := servicetest.StripeMock(t)
	rec := &recorder{next: http.DefaultTransport}
	p, err := stripepay.New(stripepay.Options{
		APIKey: "sk_test_123", URL: base, DisableRetries: true,
		HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, rec
}

// expand returns the expand[N] values of a request, in order.
func expand(r recorded) []string {
	var out []string
	for i := 0; ; i++ {
		v := r.Form.Get("expand[" + strconv.Itoa(i) + "]")
		if v == "" {
			return out
		}
		out = append(out, v)
	}
}

// stripeClient is a plain stripe-go client on stripe-mock, for reading fixtures.
func stripeClient(t *testing.T) *client.API {
	t.Helper()
	base := servicetest.StripeMockURL()
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(base), MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})
	return client.New("sk_test_123", &stripe.Backends{API: b, Connect: b, Uploads: b})
}

func wantForm(t *testing.T, r recorded, want map[string]string, absent ...string) {
	t.Helper()
	for k, v := range want {
		if got := r.Form.Get(k); got != v {
			t.Errorf("%s %s: param %s = %q, want %q", r.Method, r.Path, k, got, v)
		}
	}
	for _, k := range absent {
		if r.Form.Has(k) {
			t.Errorf("%s %s: param %s = %q, want it absent", r.Method, r.Path, k, r.Form.Get(k))
		}
	}
	if r.Status != http.StatusOK {
		t.Errorf("%s %s: stripe-mock answered %d", r.Method, r.Path, r.Status)
	}
	if r.Version != stripe.APIVersion {
		t.Errorf("%s %s: Stripe-Version = %q, want %q", r.Method, r.Path, r.Version, stripe.APIVersion)
	}
}

// TestConformance runs the provider suite against stripe-mock, which
// answers every call with a fixture: it keeps no state and replays no
// idempotency keys, so those checks are skipped by name.
func TestConformance(t *testing.T) {
	paymenttest.TestProvider(t, paymenttest.ProviderHarness{
		Features: paymenttest.ProviderFeatures{},
		New: func(t *testing.T) payment.Provider {
			p, _ := stripeMock(t)
			return p
		},
	})
}

func TestStripeMockCheckoutShapes(t *testing.T) {
	p, rec := stripeMock(t)
	ctx := context.Background()
	meta := map[string]string{payment.MetaPlayerID: "p1", payment.MetaPlan: "premium", payment.MetaAmbassadorID: "amb_alice"}

	cs, err := p.CreateCheckoutSession(ctx, payment.CheckoutParams{
		Mode: payment.ModeSubscription, PriceID: "price_premium", Quantity: 1, CustomerID: "cus_1", ClientReferenceID: "p1",
		PromotionCodeID: "promo_alice", SuccessURL: "https://game.example/ok?session_id={CHECKOUT_SESSION_ID}",
		CancelURL: "https://game.example/cancel", Metadata: meta, TrialDays: 7, IdempotencyKey: "bb-checkout-test-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cs.ID == "" {
		t.Fatal("no session ID")
	}
	r := rec.last(t, http.MethodPost, "/v1/checkout/sessions")
	wantForm(t, r, map[string]string{
		"mode": "subscription", "line_items[0][price]": "price_premium", "line_items[0][quantity]": "1",
		"customer": "cus_1", "client_reference_id": "p1", "discounts[0][promotion_code]": "promo_alice",
		"success_url": "https://game.example/ok?session_id={CHECKOUT_SESSION_ID}", "cancel_url": "https://game.example/cancel",
		"metadata[player_id]": "p1", "metadata[ambassador_id]": "amb_alice",
		"subscription_data[metadata][player_id]": "p1", "subscription_data[metadata][plan]": "premium",
		"subscription_data[trial_period_days]": "7",
	}, "allow_promotion_codes", "payment_intent_data[metadata][player_id]")
	if r.IdempotencyKey != "bb-checkout-test-1" {
		t.Errorf("Idempotency-Key = %q, want the deterministic key", r.IdempotencyKey)
	}

	if _, err := p.CreateCheckoutSession(ctx, payment.CheckoutParams{
		Mode: payment.ModePayment, PriceID: "price_pass", CustomerID: "cus_1", ClientReferenceID: "p1",
		AllowPromotionCodes: true, SuccessURL: "https://game.example/ok", CancelURL: "https://game.example/cancel", Metadata: meta,
	}); err != nil {
		t.Fatal(err)
	}
	wantForm(t, rec.last(t, http.MethodPost, "/v1/checkout/sessions"), map[string]string{
		"mode": "payment", "allow_promotion_codes": "true", "payment_intent_data[metadata][player_id]": "p1",
	}, "discounts[0][promotion_code]", "subscription_data[metadata][player_id]")

	if _, err := p.CreateCheckoutSession(ctx, payment.CheckoutParams{PromotionCodeID: "x", AllowPromotionCodes: true}); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Fatalf("code + box: %v, want ErrInvalidRequest before any request", err)
	}

	got, err := p.GetCheckoutSession(ctx, cs.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" {
		t.Fatal("GetCheckoutSession returned no ID")
	}
	r = rec.last(t, http.MethodGet, "/v1/checkout/sessions/")
	if exp := strings.Join(expand(r), ","); !strings.Contains(exp, "total_details.breakdown") || !strings.Contains(exp, "line_items") {
		t.Errorf("session get expand = %q", exp)
	}

	ps, err := p.CreatePortalSession(ctx, payment.PortalParams{CustomerID: "cus_1", ReturnURL: "https://game.example/account", IdempotencyKey: "bb-portal-x"})
	if err != nil || ps.URL == "" {
		t.Fatalf("portal = %+v, %v", ps, err)
	}
	r = rec.last(t, http.MethodPost, "/v1/billing_portal/sessions")
	wantForm(t, r, map[string]string{"customer": "cus_1", "return_url": "https://game.example/account"})
	if r.IdempotencyKey != "bb-portal-x" {
		t.Errorf("portal Idempotency-Key = %q, want the deterministic key", r.IdempotencyKey)
	}
}

func TestStripeMockCustomerAndObjects(t *testing.T) {
	p, rec := stripeMock(t)
	ctx := context.Background()
	// stripe-mock's search fixture has no player_id metadata, so the
	// search finds nothing for this player.
	if _, err := p.FindCustomer(ctx, "p'1"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("FindCustomer = %v, want ErrNotFound", err)
	}
	if got := rec.last(t, http.MethodGet, "/v1/customers/search").Form.Get("query"); got != `metadata['player_id']:'p\'1'` {
		t.Errorf("search query = %q", got)
	}
	id, err := p.CreateCustomer(ctx, payment.CustomerParams{PlayerID: "p1", Email: "p1@game.example", IdempotencyKey: "bb-customer-x"})
	if err != nil || id == "" {
		t.Fatalf("CreateCustomer = %q, %v", id, err)
	}
	r := rec.last(t, http.MethodPost, "/v1/customers")
	wantForm(t, r, map[string]string{"metadata[player_id]": "p1", "email": "p1@game.example"})
	if r.IdempotencyKey != "bb-customer-x" {
		t.Errorf("Idempotency-Key = %q", r.IdempotencyKey)
	}
	if sub, err := p.GetSubscription(ctx, "sub_1"); err != nil || sub.ID == "" {
		t.Fatalf("GetSubscription = %+v, %v", sub, err)
	}
	if got := expand(rec.last(t, http.MethodGet, "/v1/subscriptions/sub_1")); len(got) != 1 || got[0] != "customer" {
		t.Errorf("subscription expand = %v", got)
	}
	if inv, err := p.GetInvoice(ctx, "in_1"); err != nil || inv.ID == "" {
		t.Fatalf("GetInvoice = %+v, %v", inv, err)
	}
	if ch, err := p.GetCharge(ctx, "ch_1"); err != nil || ch.ID == "" {
		t.Fatalf("GetCharge = %+v, %v", ch, err)
	}
	if got := expand(rec.last(t, http.MethodGet, "/v1/charges/ch_1")); len(got) != 1 || got[0] != "refunds" {
		t.Errorf("charge expand = %v, want [refunds]", got)
	}
	var n int
	err = p.ListEvents(ctx, payment.EventQuery{Since: time.Unix(1_700_000_000, 0), Types: []string{payment.EventInvoicePaid, payment.EventChargeRefunded}, UndeliveredOnly: true},
		func(e payment.Event) error { n++; return nil })
	if err != nil || n == 0 {
		t.Fatalf("ListEvents: %d events, %v", n, err)
	}
	wantForm(t, rec.last(t, http.MethodGet, "/v1/events"), map[string]string{
		"created[gte]": "1700000000", "types[0]": payment.EventInvoicePaid, "types[1]": payment.EventChargeRefunded,
		"delivery_success": "false", "limit": "100",
	})
}

func TestStripeMockCouponsAndCodes(t *testing.T) {
	p, rec := stripeMock(t)
	ctx := context.Background()
	redeem := time.Unix(1_900_000_000, 0)
	c, err := p.CreateCoupon(ctx, payment.CouponParams{ID: "amb-20", Name: "Ambassador", PercentOff: 20, Duration: payment.DurationRepeating,
		DurationInMonths: 3, MaxRedemptions: 50, RedeemBy: redeem, AppliesToProducts: []string{"prod_game"},
		Metadata: map[string]string{"program": "ambassador"}, IdempotencyKey: "bb-coupon-1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.PercentOff != 20 || c.Duration != payment.DurationRepeating {
		t.Errorf("coupon = %+v", c)
	}
	wantForm(t, rec.last(t, http.MethodPost, "/v1/coupons"), map[string]string{
		"id": "amb-20", "percent_off": "20.0000", "duration": "repeating", "duration_in_months": "3", "max_redemptions": "50",
		"redeem_by": "1900000000", "applies_to[products][0]": "prod_game", "metadata[program]": "ambassador",
	}, "amount_off", "currency")
	if _, err := p.CreateCoupon(ctx, payment.CouponParams{AmountOff: 500, Currency: "usd", Duration: payment.DurationOnce}); err != nil {
		t.Fatal(err)
	}
	wantForm(t, rec.last(t, http.MethodPost, "/v1/coupons"), map[string]string{"amount_off": "500", "currency": "usd", "duration": "once"}, "percent_off")
	if _, err := p.GetCoupon(ctx, "amb-20"); err != nil {
		t.Fatal(err)
	}
	var coupons int
	if err := p.ListCoupons(ctx, func(payment.Coupon) error { coupons++; return nil }); err != nil || coupons == 0 {
		t.Fatalf("ListCoupons: %d, %v", coupons, err)
	}
	name := "Ambassador 20"
	if _, err := p.UpdateCoupon(ctx, "amb-20", payment.CouponUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	wantForm(t, rec.last(t, http.MethodPost, "/v1/coupons/amb-20"), map[string]string{"name": name})
	if err := p.DeleteCoupon(ctx, "amb-20"); err != nil {
		t.Fatal(err)
	}

	pc, err := p.CreatePromotionCode(ctx, payment.PromotionCodeParams{CouponID: "amb-20", Code: "ALICE", MaxRedemptions: 100,
		ExpiresAt: redeem, FirstTimeTransaction: true, Metadata: map[string]string{payment.MetaAmbassadorID: "amb_alice"}, IdempotencyKey: "bb-promo-1"})
	if err != nil {
		t.Fatal(err)
	}
	if pc.Code != "ALICE" {
		t.Errorf("code = %q, want ALICE (stripe-mock echoes it)", pc.Code)
	}
	wantForm(t, rec.last(t, http.MethodPost, "/v1/promotion_codes"), map[string]string{
		"coupon": "amb-20", "code": "ALICE", "max_redemptions": "100", "expires_at": "1900000000",
		"restrictions[first_time_transaction]": "true", "metadata[ambassador_id]": "amb_alice",
	})
	if _, err := p.GetPromotionCode(ctx, pc.ID); err != nil {
		t.Fatal(err)
	}
	var codes int
	if err := p.ListPromotionCodes(ctx, payment.PromotionCodeQuery{Code: "ALICE", ActiveOnly: true}, func(payment.PromotionCode) error { codes++; return nil }); err != nil || codes == 0 {
		t.Fatalf("ListPromotionCodes: %d, %v", codes, err)
	}
	wantForm(t, rec.last(t, http.MethodGet, "/v1/promotion_codes"), map[string]string{"code": "ALICE", "active": "true"})
	if _, err := p.SetPromotionCodeActive(ctx, pc.ID, false); err != nil {
		t.Fatal(err)
	}
	wantForm(t, rec.last(t, http.MethodPost, "/v1/promotion_codes/"), map[string]string{"active": "false"})
}

func TestStripeMockErrorsMapToSentinels(t *testing.T) {
	p, _ := stripeMock(t)
	ctx := context.Background()
	_, err := p.CreateCoupon(ctx, payment.CouponParams{PercentOff: 10, Duration: "weekly"})
	var pe *payment.ProviderError
	if !errors.Is(err, payment.ErrInvalidRequest) || !errors.As(err, &pe) || pe.HTTPStatus != http.StatusBadRequest {
		t.Fatalf("bad enum: %v, want a 400 ProviderError wrapping ErrInvalidRequest", err)
	}
	base := servicetest.StripeMockURL()
	bad, err := stripepay.New(stripepay.Options{APIKey: "not-a-key", URL: base, DisableRetries: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.GetCoupon(ctx, "x"); !errors.Is(err, payment.ErrAuthentication) {
		t.Fatalf("bad key: %v, want ErrAuthentication", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.GetCoupon(cctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: %v, want context.Canceled", err)
	}
}

// TestStripeMockServiceCheckout runs payment's checkout against stripe-mock
// end to end: customer search, create, session create.
func TestStripeMockServiceCheckout(t *testing.T) {
	p, rec := stripeMock(t)
	svc, err := payment.New(payment.Options{
		Provider: p, Plans: []payment.Plan{{ID: "premium", Prices: []payment.Price{{ID: "price_premium"}}}},
		WebhookSecrets: []payment.Secret{"whsec_x"}, Logger: slog.New(slog.DiscardHandler),
		DefaultSuccessURL: "https://game.example/ok", DefaultCancelURL: "https://game.example/cancel",
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Checkout().Start(context.Background(), payment.CheckoutRequest{PlayerID: "p7", Plan: "premium", RequestID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.SessionID == "" {
		t.Fatal("no session")
	}
	cus := rec.last(t, http.MethodPost, "/v1/customers")
	if !strings.HasPrefix(cus.IdempotencyKey, "bb-customer-") {
		t.Errorf("customer Idempotency-Key = %q, want a deterministic bb-customer- key", cus.IdempotencyKey)
	}
	r := rec.last(t, http.MethodPost, "/v1/checkout/sessions")
	wantForm(t, r, map[string]string{"allow_promotion_codes": "true", "client_reference_id": "p7",
		"success_url": "https://game.example/ok?session_id={CHECKOUT_SESSION_ID}"}, "discounts[0][promotion_code]")
	if !strings.HasPrefix(r.IdempotencyKey, "bb-checkout-") {
		t.Errorf("checkout Idempotency-Key = %q", r.IdempotencyKey)
	}
}

func TestStripeMockEnsureWebhookEndpoint(t *testing.T) {
	p, rec := stripeMock(t)
	we, err := p.EnsureWebhookEndpoint(context.Background(), "https://game.example/stripe/webhook", nil)
	r := rec.last(t, http.MethodPost, "/v1/webhook_endpoints")
	switch {
	case err == nil:
		if !we.Created || we.ID == "" {
			t.Fatalf("endpoint = %+v, want a created one", we)
		}
	case strings.Contains(err.Error(), "'api_version'") && strings.Contains(err.Error(), "enumeration"):
		// Known spec drift: stripe-mock v0.162.0 embeds the 2022-11-15
		// spec, whose api_version enum predates 2023-10-16 (which real
		// Stripe accepts). Everything else about the request is checked
		// below.
		t.Logf("stripe-mock spec drift: %v", err)
		r.Status = http.StatusOK
	default:
		t.Fatal(err)
	}
	want := map[string]string{"url": "https://game.example/stripe/webhook", "api_version": stripe.APIVersion}
	for i, typ := range payment.HandledEventTypes() {
		want["enabled_events["+strconv.Itoa(i)+"]"] = typ
	}
	wantForm(t, r, want)
	if !strings.HasPrefix(r.IdempotencyKey, "bb-webhook-endpoint-") {
		t.Errorf("Idempotency-Key = %q", r.IdempotencyKey)
	}
	// An endpoint that exists (stripe-mock's list fixture) is updated.
	var fixtureURL string
	sc := stripeClient(t)
	it := sc.WebhookEndpoints.List(&stripe.WebhookEndpointListParams{})
	for it.Next() {
		fixtureURL = it.WebhookEndpoint().URL
	}
	if fixtureURL == "" {
		t.Fatalf("no webhook endpoint fixture: %v", it.Err())
	}
	upd, err := p.EnsureWebhookEndpoint(context.Background(), fixtureURL, []string{payment.EventInvoicePaid})
	if err != nil || upd.Created {
		t.Fatalf("update existing = %+v, %v", upd, err)
	}
	wantForm(t, rec.last(t, http.MethodPost, "/v1/webhook_endpoints/"), map[string]string{"enabled_events[0]": payment.EventInvoicePaid, "disabled": "false"}, "url", "api_version")
	if _, err := p.EnsureWebhookEndpoint(context.Background(), "", nil); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Fatalf("empty URL: %v", err)
	}
	if s := fmt.Sprint(we.Secret); strings.Contains(s, "whsec") {
		t.Fatalf("secret printed: %s", s)
	}
}

func TestOptionsRedactKey(t *testing.T) {
	var buf bytes.Buffer
	o := stripepay.Options{APIKey: "sk_live_verysecret", URL: "http://x"}
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("provider", "opts", o)
	if strings.Contains(buf.String(), "verysecret") || strings.Contains(fmt.Sprintf("%v %+v %#v", o, o, o), "verysecret") {
		t.Fatalf("API key leaked: %s", buf.String())
	}
	if _, err := stripepay.New(stripepay.Options{}); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Fatalf("New without a key: %v", err)
	}
}
