package paymenttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/bodybroker/sdk/payment"
	"github.com/google/go-cmp/cmp"
)

// ProviderFeatures says which parts of the payment.Provider contract a
// provider under test can show. Checks that need a feature the provider
// lacks are skipped, by name, so a run says what it did not check. Use
// [AllProviderFeatures] for a provider that keeps state (the fakepay fake,
// real Stripe in test mode); stripe-mock, which answers every call with a
// fixture, has none of them.
type ProviderFeatures struct {
	// Stateful: the provider keeps what it is sent. Reads return what was
	// created, IDs are unique, a missing ID is an error wrapping
	// payment.ErrNotFound, updates, deletions and deactivations show in
	// later reads, FindCustomer finds a created customer, and rules that
	// span objects hold (a checkout for an unknown customer, a code for an
	// unknown coupon, two active codes with one text are refused with
	// payment.ErrInvalidRequest).
	Stateful bool
	// Idempotency: a create repeated with the same IdempotencyKey and
	// parameters returns the first result without a second effect; the
	// same key with other parameters is an error wrapping
	// payment.ErrIdempotency.
	Idempotency bool
}

// AllProviderFeatures returns ProviderFeatures with every feature set:
// what a provider that keeps state, such as the fakepay fake, must pass.
func AllProviderFeatures() ProviderFeatures {
	return ProviderFeatures{Stateful: true, Idempotency: true}
}

// ProviderHarness describes a payment.Provider under test.
type ProviderHarness struct {
	// Features are the parts of the contract the provider can show;
	// checks that need one it lacks are skipped.
	Features ProviderFeatures
	// New returns the provider for one check; it registers any cleanup
	// with t.Cleanup. With Features.Stateful the suite assumes nothing
	// about objects already there: IDs and codes it creates are random.
	New func(t *testing.T) payment.Provider
}

// TestProvider runs the payment.Provider conformance suite as subtests of
// t: a table of named checks, each run against a fresh provider from
// h.New. The checks for every provider cover each method's shape, the
// checkout rule that a promotion code and the code box exclude each other,
// cancellation, error propagation out of list callbacks and concurrent
// use; the rest are driven by h.Features.
func TestProvider(t *testing.T, h ProviderHarness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("paymenttest: ProviderHarness.New is nil")
	}
	type need int
	const (
		always need = iota
		stateful
		idempotency
	)
	checks := []struct {
		name string
		need need
		fn   func(*testing.T, payment.Provider)
	}{
		{"APIVersion", always, testAPIVersion},
		{"FindCustomerMissing", always, testFindCustomerMissing},
		{"CreateCustomer", always, testCreateCustomer},
		{"CheckoutSession", always, testCheckoutSession},
		{"CheckoutCodeAndBox", always, testCheckoutCodeAndBox},
		{"PortalSession", always, testPortalSession},
		{"Coupon", always, testCoupon},
		{"PromotionCode", always, testPromotionCode},
		{"ListEventsStops", always, testListEventsStops},
		{"CancelledContext", always, testProviderCancelled},
		{"Concurrent", always, func(t *testing.T, p payment.Provider) { testProviderConcurrent(t, p, h.Features) }},
		{"FindCustomer", stateful, testFindCustomer},
		{"CheckoutRoundTrip", stateful, testCheckoutRoundTrip},
		{"CheckoutRules", stateful, testCheckoutRules},
		{"NotFound", stateful, testProviderNotFound},
		{"CouponLifecycle", stateful, testCouponLifecycle},
		{"PromotionCodeLifecycle", stateful, testPromotionCodeLifecycle},
		{"Idempotency", idempotency, testIdempotency},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			switch {
			case c.need == stateful && !h.Features.Stateful:
				t.Skip("the provider keeps no state (ProviderFeatures.Stateful)")
			case c.need == idempotency && !h.Features.Idempotency:
				t.Skip("the provider does not replay idempotency keys (ProviderFeatures.Idempotency)")
			}
			c.fn(t, h.New(t))
		})
	}
}

var errStop = errors.New("paymenttest: stop listing")

// unique returns prefix followed by random hex, for IDs and codes that must
// not collide with what a stateful provider already holds.
func unique(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func customer(t *testing.T, p payment.Provider, player string) string {
	t.Helper()
	id, err := p.CreateCustomer(context.Background(), payment.CustomerParams{PlayerID: player, Email: player + "@game.example"})
	if err != nil || id == "" {
		t.Fatalf("CreateCustomer(%s) = %q, %v; want an ID", player, id, err)
	}
	return id
}

func checkout(cus, player string) payment.CheckoutParams {
	return payment.CheckoutParams{
		Mode: payment.ModeSubscription, PriceID: "price_premium", Quantity: 1, CustomerID: cus, ClientReferenceID: player,
		SuccessURL: "https://game.example/ok", CancelURL: "https://game.example/cancel",
		Metadata: map[string]string{payment.MetaPlayerID: player, payment.MetaPlan: "premium"},
	}
}

func coupon(t *testing.T, p payment.Provider) payment.Coupon {
	t.Helper()
	c, err := p.CreateCoupon(context.Background(), payment.CouponParams{ID: unique("bb-cpn-"), Name: "Ambassador", PercentOff: 20,
		Duration: payment.DurationOnce, Metadata: map[string]string{"program": "ambassador"}})
	if err != nil {
		t.Fatalf("CreateCoupon: %v", err)
	}
	return c
}

func promotionCode(t *testing.T, p payment.Provider, couponID, code string) payment.PromotionCode {
	t.Helper()
	pc, err := p.CreatePromotionCode(context.Background(), payment.PromotionCodeParams{CouponID: couponID, Code: code,
		Metadata: map[string]string{payment.MetaAmbassadorID: "amb_alice"}})
	if err != nil {
		t.Fatalf("CreatePromotionCode(%s): %v", code, err)
	}
	return pc
}

func testAPIVersion(t *testing.T, p payment.Provider) {
	if p.APIVersion() == "" {
		t.Error("APIVersion() is empty")
	}
}

func testFindCustomerMissing(t *testing.T, p payment.Provider) {
	if id, err := p.FindCustomer(context.Background(), unique("nobody-")); !errors.Is(err, payment.ErrNotFound) {
		t.Errorf("FindCustomer(unknown player) = %q, %v; want ErrNotFound", id, err)
	}
}

func testCreateCustomer(t *testing.T, p payment.Provider) {
	customer(t, p, unique("p-"))
}

func testCheckoutSession(t *testing.T, p payment.Provider) {
	ctx := context.Background()
	player := unique("p-")
	cs, err := p.CreateCheckoutSession(ctx, checkout(customer(t, p, player), player))
	if err != nil {
		t.Fatalf("CreateCheckoutSession: %v", err)
	}
	if cs.ID == "" || cs.URL == "" {
		t.Fatalf("CreateCheckoutSession = %+v, want an ID and a URL", cs)
	}
	got, err := p.GetCheckoutSession(ctx, cs.ID)
	if err != nil || got.ID == "" {
		t.Fatalf("GetCheckoutSession(%s) = %+v, %v; want a session", cs.ID, got, err)
	}
}

func testCheckoutCodeAndBox(t *testing.T, p payment.Provider) {
	params := checkout("", unique("p-"))
	params.PromotionCodeID, params.AllowPromotionCodes = "promo_x", true
	if _, err := p.CreateCheckoutSession(context.Background(), params); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Errorf("checkout with a promotion code and the code box = %v, want ErrInvalidRequest", err)
	}
}

func testPortalSession(t *testing.T, p payment.Provider) {
	cus := customer(t, p, unique("p-"))
	ps, err := p.CreatePortalSession(context.Background(), payment.PortalParams{CustomerID: cus, ReturnURL: "https://game.example/account"})
	if err != nil || ps.URL == "" {
		t.Fatalf("CreatePortalSession = %+v, %v; want a URL", ps, err)
	}
}

func testCoupon(t *testing.T, p payment.Provider) {
	ctx := context.Background()
	c := coupon(t, p)
	if c.ID == "" || c.PercentOff != 20 || c.Duration != payment.DurationOnce {
		t.Errorf("CreateCoupon = %+v, want an ID, 20 %% off, once", c)
	}
	if _, err := p.GetCoupon(ctx, c.ID); err != nil {
		t.Errorf("GetCoupon(%s): %v", c.ID, err)
	}
	calls := 0
	err := p.ListCoupons(ctx, func(payment.Coupon) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("ListCoupons with a callback that fails: %d calls, %v; want 1 call and its error", calls, err)
	}
	name := "Ambassador 20"
	if _, err := p.UpdateCoupon(ctx, c.ID, payment.CouponUpdate{Name: &name}); err != nil {
		t.Errorf("UpdateCoupon: %v", err)
	}
	if err := p.DeleteCoupon(ctx, c.ID); err != nil {
		t.Errorf("DeleteCoupon: %v", err)
	}
}

func testPromotionCode(t *testing.T, p payment.Provider) {
	ctx := context.Background()
	c := coupon(t, p)
	code := strings.ToUpper(unique("ALICE"))
	pc := promotionCode(t, p, c.ID, code)
	if pc.ID == "" || pc.Code != code {
		t.Errorf("CreatePromotionCode = %+v, want an ID and code %s", pc, code)
	}
	if _, err := p.GetPromotionCode(ctx, pc.ID); err != nil {
		t.Errorf("GetPromotionCode(%s): %v", pc.ID, err)
	}
	calls := 0
	err := p.ListPromotionCodes(ctx, payment.PromotionCodeQuery{Code: code}, func(payment.PromotionCode) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("ListPromotionCodes(code %s) with a callback that fails: %d calls, %v; want 1 call and its error", code, calls, err)
	}
	if _, err := p.SetPromotionCodeActive(ctx, pc.ID, false); err != nil {
		t.Errorf("SetPromotionCodeActive(false): %v", err)
	}
}

// testListEventsStops: the callback's error ends the listing and comes
// back as is. A provider with no events never calls it.
func testListEventsStops(t *testing.T, p payment.Provider) {
	calls := 0
	err := p.ListEvents(context.Background(), payment.EventQuery{}, func(payment.Event) error { calls++; return errStop })
	switch {
	case calls == 0 && err != nil:
		t.Errorf("ListEvents with no events = %v, want nil", err)
	case calls > 1 || (calls == 1 && !errors.Is(err, errStop)):
		t.Errorf("ListEvents with a callback that fails: %d calls, %v; want 1 call and its error", calls, err)
	}
}

func testProviderCancelled(t *testing.T, p payment.Provider) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.CreateCustomer(ctx, payment.CustomerParams{PlayerID: unique("p-")}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateCustomer with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := p.GetCoupon(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("GetCoupon with a cancelled context = %v, want context.Canceled", err)
	}
}

func testProviderConcurrent(t *testing.T, p payment.Provider, f ProviderFeatures) {
	const workers = 8
	ids := make([]string, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			ids[i], errs[i] = p.CreateCustomer(context.Background(), payment.CustomerParams{PlayerID: unique("p-")})
			if errs[i] == nil {
				_, errs[i] = p.FindCustomer(context.Background(), unique("nobody-"))
				if errors.Is(errs[i], payment.ErrNotFound) {
					errs[i] = nil
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range workers {
		if errs[i] != nil {
			t.Errorf("worker %d: %v", i, errs[i])
			continue
		}
		if f.Stateful && seen[ids[i]] {
			t.Errorf("customer ID %s created twice", ids[i])
		}
		seen[ids[i]] = true
	}
}

func testFindCustomer(t *testing.T, p payment.Provider) {
	player := unique("p-")
	id := customer(t, p, player)
	customer(t, p, unique("p-")) // someone else
	if got, err := p.FindCustomer(context.Background(), player); err != nil || got != id {
		t.Errorf("FindCustomer(%s) = %q, %v; want %q", player, got, err, id)
	}
}

func testCheckoutRoundTrip(t *testing.T, p payment.Provider) {
	ctx := context.Background()
	player := unique("p-")
	params := checkout(customer(t, p, player), player)
	cs, err := p.CreateCheckoutSession(ctx, params)
	if err != nil {
		t.Fatalf("CreateCheckoutSession: %v", err)
	}
	got, err := p.GetCheckoutSession(ctx, cs.ID)
	if err != nil {
		t.Fatalf("GetCheckoutSession: %v", err)
	}
	type shape struct {
		ID, CustomerID, ClientReferenceID, PriceID string
		Mode                                       payment.Mode
		Metadata                                   map[string]string
	}
	want := shape{cs.ID, params.CustomerID, params.ClientReferenceID, params.PriceID, params.Mode, params.Metadata}
	if diff := cmp.Diff(want, shape{got.ID, got.CustomerID, got.ClientReferenceID, got.PriceID, got.Mode, got.Metadata}); diff != "" {
		t.Errorf("GetCheckoutSession after create (-want +got):\n%s", diff)
	}
	other, err := p.CreateCheckoutSession(ctx, params)
	if err != nil || other.ID == cs.ID {
		t.Errorf("a second session = %q, %v; want a new ID", other.ID, err)
	}
}

func testCheckoutRules(t *testing.T, p payment.Provider) {
	ctx := context.Background()
	player := unique("p-")
	if _, err := p.CreateCheckoutSession(ctx, checkout(unique("cus_missing"), player)); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Errorf("checkout for an unknown customer = %v, want ErrInvalidRequest", err)
	}
	c := coupon(t, p)
	pc := promotionCode(t, p, c.ID, strings.ToUpper(unique("OFF")))
	if _, err := p.SetPromotionCodeActive(ctx, pc.ID, false); err != nil {
		t.Fatal(err)
	}
	params := checkout(customer(t, p, player), player)
	params.PromotionCodeID = pc.ID
	if _, err := p.CreateCheckoutSession(ctx, params); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Errorf("checkout with an inactive promotion code = %v, want ErrInvalidRequest", err)
	}
	if _, err := p.CreatePortalSession(ctx, payment.PortalParams{CustomerID: unique("cus_missing"), ReturnURL: "https://game.example/"}); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Errorf("portal for an unknown customer = %v, want ErrInvalidRequest", err)
	}
}

func testProviderNotFound(t *testing.T, p payment.Provider) {
	ctx := context.Background()
	missing := unique("missing_")
	name := "x"
	for _, c := range []struct {
		op  string
		err error
	}{
		{"GetCheckoutSession", second(p.GetCheckoutSession(ctx, missing))},
		{"GetSubscription", second(p.GetSubscription(ctx, missing))},
		{"GetInvoice", second(p.GetInvoice(ctx, missing))},
		{"GetCharge", second(p.GetCharge(ctx, missing))},
		{"GetCoupon", second(p.GetCoupon(ctx, missing))},
		{"UpdateCoupon", second(p.UpdateCoupon(ctx, missing, payment.CouponUpdate{Name: &name}))},
		{"DeleteCoupon", p.DeleteCoupon(ctx, missing)},
		{"GetPromotionCode", second(p.GetPromotionCode(ctx, missing))},
		{"SetPromotionCodeActive", second(p.SetPromotionCodeActive(ctx, missing, false))},
	} {
		if !errors.Is(c.err, payment.ErrNotFound) {
			t.Errorf("%s(missing) = %v, want ErrNotFound", c.op, c.err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func testCouponLifecycle(t *testing.T, p payment.Provider) {
	ctx := context.Background()
	c := coupon(t, p)
	if _, err := p.CreateCoupon(ctx, payment.CouponParams{ID: c.ID, PercentOff: 10, Duration: payment.DurationOnce}); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Errorf("CreateCoupon(existing ID) = %v, want ErrInvalidRequest", err)
	}
	name := "Ambassador 20"
	if _, err := p.UpdateCoupon(ctx, c.ID, payment.CouponUpdate{Name: &name, Metadata: map[string]string{"program": "", "tier": "gold"}}); err != nil {
		t.Fatalf("UpdateCoupon: %v", err)
	}
	got, err := p.GetCoupon(ctx, c.ID)
	if err != nil {
		t.Fatalf("GetCoupon: %v", err)
	}
	if got.Name != name || got.PercentOff != 20 || !cmp.Equal(got.Metadata, map[string]string{"tier": "gold"}) {
		t.Errorf("coupon after update = %+v, want name %q, 20 %% off, metadata tier=gold only", got, name)
	}
	found := false
	if err := p.ListCoupons(ctx, func(x payment.Coupon) error { found = found || x.ID == c.ID; return nil }); err != nil || !found {
		t.Errorf("ListCoupons: found %s = %v, %v; want it listed", c.ID, found, err)
	}
	if err := p.DeleteCoupon(ctx, c.ID); err != nil {
		t.Fatalf("DeleteCoupon: %v", err)
	}
	if _, err := p.GetCoupon(ctx, c.ID); !errors.Is(err, payment.ErrNotFound) {
		t.Errorf("GetCoupon after delete = %v, want ErrNotFound", err)
	}
}

func testPromotionCodeLifecycle(t *testing.T, p payment.Provider) {
	ctx := context.Background()
	if _, err := p.CreatePromotionCode(ctx, payment.PromotionCodeParams{CouponID: unique("missing-"), Code: unique("X")}); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Errorf("CreatePromotionCode(unknown coupon) = %v, want ErrInvalidRequest", err)
	}
	c := coupon(t, p)
	code := strings.ToUpper(unique("BOB"))
	pc := promotionCode(t, p, c.ID, code)
	if !pc.Active || pc.CouponID != c.ID {
		t.Errorf("new promotion code = %+v, want active, for coupon %s", pc, c.ID)
	}
	if _, err := p.CreatePromotionCode(ctx, payment.PromotionCodeParams{CouponID: c.ID, Code: strings.ToLower(code)}); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Errorf("a second active code %q = %v, want ErrInvalidRequest", strings.ToLower(code), err)
	}
	list := func(q payment.PromotionCodeQuery) []string {
		t.Helper()
		var ids []string
		if err := p.ListPromotionCodes(ctx, q, func(x payment.PromotionCode) error { ids = append(ids, x.ID); return nil }); err != nil {
			t.Fatalf("ListPromotionCodes(%+v): %v", q, err)
		}
		return ids
	}
	if got := list(payment.PromotionCodeQuery{Code: code, ActiveOnly: true}); !cmp.Equal(got, []string{pc.ID}) {
		t.Errorf("active codes %s = %v, want [%s]", code, got, pc.ID)
	}
	if _, err := p.SetPromotionCodeActive(ctx, pc.ID, false); err != nil {
		t.Fatalf("SetPromotionCodeActive(false): %v", err)
	}
	if got, err := p.GetPromotionCode(ctx, pc.ID); err != nil || got.Active {
		t.Errorf("GetPromotionCode after deactivation = %+v, %v; want inactive", got, err)
	}
	if got := list(payment.PromotionCodeQuery{Code: code, ActiveOnly: true}); len(got) != 0 {
		t.Errorf("active codes %s after deactivation = %v, want none", code, got)
	}
	if got := list(payment.PromotionCodeQuery{CouponID: c.ID}); !cmp.Equal(got, []string{pc.ID}) {
		t.Errorf("codes of coupon %s = %v, want [%s]", c.ID, got, pc.ID)
	}
	// An inactive code's text is free again.
	promotionCode(t, p, c.ID, code)
}

func testIdempotency(t *testing.T, p payment.Provider) {
	ctx := context.Background()
	key := unique("bb-idem-")
	params := payment.CustomerParams{PlayerID: unique("p-"), Email: "x@game.example", IdempotencyKey: key}
	first, err := p.CreateCustomer(ctx, params)
	if err != nil {
		t.Fatalf("CreateCustomer: %v", err)
	}
	again, err := p.CreateCustomer(ctx, params)
	if err != nil || again != first {
		t.Errorf("CreateCustomer with the same key = %q, %v; want %q again", again, err, first)
	}
	params.Email = "y@game.example"
	if _, err := p.CreateCustomer(ctx, params); !errors.Is(err, payment.ErrIdempotency) {
		t.Errorf("CreateCustomer with the same key and other params = %v, want ErrIdempotency", err)
	}

	cp := payment.CouponParams{PercentOff: 15, Duration: payment.DurationOnce, IdempotencyKey: unique("bb-idem-")}
	c1, err := p.CreateCoupon(ctx, cp)
	if err != nil {
		t.Fatalf("CreateCoupon: %v", err)
	}
	c2, err := p.CreateCoupon(ctx, cp)
	if err != nil || c2.ID != c1.ID {
		t.Errorf("CreateCoupon with the same key = %q, %v; want %q again", c2.ID, err, c1.ID)
	}
}
