package payment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
	"github.com/bodybroker/sdk/payment/paymenttest"
	"github.com/google/go-cmp/cmp"
)

const secret = "whsec_test_secret"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func plans() []payment.Plan {
	return []payment.Plan{
		{ID: "basic", Rank: 1, Prices: []payment.Price{{ID: "price_basic"}}},
		{ID: "premium", Rank: 2, Prices: []payment.Price{{ID: "price_premium"}, {ID: "price_premium_year"}}},
		{ID: "vip", Rank: 3, Prices: []payment.Price{{ID: "price_vip"}}},
		{ID: "season_pass", Rank: 0, Prices: []payment.Price{{ID: "price_pass", Mode: payment.ModePayment, Access: 90 * 24 * time.Hour}}},
	}
}

type env struct {
	svc     *payment.Service
	fake    *fakepay.Provider
	store   *payment.MemoryStore
	clk     *clock
	changes []payment.EntitlementChange
	mu      sync.Mutex
}

// newFake returns an empty fake provider on the clock now.
func newFake(tb testing.TB, now func() time.Time) *fakepay.Provider {
	tb.Helper()
	f, err := fakepay.New(fakepay.Options{Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// newMemoryStore returns an empty memory store on the clock now.
func newMemoryStore(tb testing.TB, now func() time.Time) *payment.MemoryStore {
	tb.Helper()
	s, err := payment.NewMemoryStore(payment.MemoryStoreOptions{Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newEnv(t testing.TB, mod func(*payment.Options)) *env {
	t.Helper()
	e := &env{clk: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	e.fake = newFake(t, e.clk.Now)
	e.store = newMemoryStore(t, e.clk.Now)
	opts := payment.Options{
		Provider: e.fake, Store: e.store, Plans: plans(),
		WebhookSecrets:    []payment.Secret{secret},
		DefaultSuccessURL: "https://game.example/paid", DefaultCancelURL: "https://game.example/cancel",
		OnEntitlementChange: func(_ context.Context, c payment.EntitlementChange) {
			e.mu.Lock()
			e.changes = append(e.changes, c)
			e.mu.Unlock()
		},
		Logger: slog.New(slog.DiscardHandler),
		Now:    e.clk.Now,
	}
	if mod != nil {
		mod(&opts)
	}
	svc, err := payment.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

// deliver posts one event to the webhook handler, signed now.
func (e *env) deliver(t testing.TB, ev payment.Event) *httptest.ResponseRecorder {
	t.Helper()
	body := e.fake.Payload(ev)
	req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", fakepay.Sign(body, e.clk.Now(), secret))
	rec := httptest.NewRecorder()
	e.svc.Webhooks().ServeHTTP(rec, req)
	return rec
}

func (e *env) deliverAll(t testing.TB) {
	t.Helper()
	for _, ev := range e.fake.Events() {
		if rec := e.deliver(t, ev); rec.Code != http.StatusOK {
			t.Fatalf("delivering %s %s: HTTP %d %s", ev.Type, ev.ID, rec.Code, rec.Body)
		}
	}
}

func (e *env) ent(t testing.TB, player string) payment.Entitlement {
	t.Helper()
	got, err := e.svc.Entitlements().Get(context.Background(), player)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMemoryStoreConformance(t *testing.T) {
	paymenttest.TestStore(t, func(t *testing.T) payment.Store { return newMemoryStore(t, nil) })
}

func TestNewValidates(t *testing.T) {
	fake := newFake(t, nil)
	good := func() payment.Options {
		return payment.Options{Provider: fake, Plans: plans(), WebhookSecrets: []payment.Secret{"s"}}
	}
	tests := []struct {
		name string
		mod  func(*payment.Options)
	}{
		{"no provider", func(o *payment.Options) { o.Provider = nil }},
		{"no plans", func(o *payment.Options) { o.Plans = nil }},
		{"no secrets", func(o *payment.Options) { o.WebhookSecrets = nil }},
		{"empty secret", func(o *payment.Options) { o.WebhookSecrets = []payment.Secret{""} }},
		{"plan without ID", func(o *payment.Options) { o.Plans[0].ID = "" }},
		{"duplicate plan", func(o *payment.Options) { o.Plans[1].ID = "basic" }},
		{"plan without prices", func(o *payment.Options) { o.Plans[0].Prices = nil }},
		{"price twice", func(o *payment.Options) { o.Plans[1].Prices[0].ID = "price_basic" }},
		{"bad mode", func(o *payment.Options) { o.Plans[0].Prices[0].Mode = "weekly" }},
		{"negative tolerance", func(o *payment.Options) { o.WebhookTolerance = -1 }},
		{"negative max bytes", func(o *payment.Options) { o.MaxWebhookBytes = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good()
			tt.mod(&o)
			_, err := payment.New(o)
			var ve *payment.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, payment.ErrInvalidRequest) {
				t.Fatalf("New error = %v, want a *ValidationError", err)
			}
		})
	}
	if _, err := payment.New(good()); err != nil {
		t.Fatalf("New(valid options) = %v", err)
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	s := payment.Secret("whsec_supersecret")
	opts := payment.Options{WebhookSecrets: []payment.Secret{s}}
	log.Info("cfg", "secret", s, "opts", opts, "list", opts.WebhookSecrets)
	log.Info("fmt", "v", strings.Join([]string{s.String()}, ""))
	if strings.Contains(buf.String(), "supersecret") {
		t.Fatalf("log output leaks the secret: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "[REDACTED]") {
		t.Fatalf("log output lacks the redaction marker: %s", buf.String())
	}
	if got := s.Reveal(); got != "whsec_supersecret" {
		t.Fatalf("Reveal() = %q", got)
	}
}

func TestCheckoutFindsOrCreatesCustomerOnce(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for i := range 3 {
		res, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "premium", RequestID: string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		cs, ok := e.fake.Session(res.SessionID)
		if !ok {
			t.Fatalf("session %s not at the provider", res.SessionID)
		}
		if cs.ClientReferenceID != "p1" || cs.Metadata[payment.MetaPlayerID] != "p1" || cs.Metadata[payment.MetaPlan] != "premium" || cs.PriceID != "price_premium" {
			t.Fatalf("session = %+v", cs)
		}
	}
	if got := e.fake.Customers(); got != 1 {
		t.Fatalf("customers = %d, want 1", got)
	}
	if got := e.fake.Calls("CreateCustomer"); got != 1 {
		t.Fatalf("CreateCustomer calls = %d, want 1", got)
	}
}

func TestCheckoutIdempotentRetry(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	req := payment.CheckoutRequest{PlayerID: "p1", Plan: "vip", RequestID: "attempt-1"}
	a, err := e.svc.Checkout().Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.Checkout().Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.SessionID != b.SessionID {
		t.Fatalf("retry created a second session: %s vs %s", a.SessionID, b.SessionID)
	}
	req.RequestID = "attempt-2"
	c, err := e.svc.Checkout().Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionID == a.SessionID {
		t.Fatal("a new attempt reused the old session")
	}
}

func setupAmbassador(t *testing.T, e *env) payment.PromotionCode {
	t.Helper()
	ctx := context.Background()
	cpn, err := e.svc.Admin().CreateCoupon(ctx, payment.CouponParams{ID: "amb-20", Name: "Ambassador 20%", PercentOff: 20, Duration: payment.DurationForever,
		Metadata: map[string]string{payment.MetaProgram: payment.ProgramAmbassador}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := e.svc.Admin().CreateAmbassadorCode(ctx, payment.AmbassadorCodeParams{AmbassadorID: "amb_alice", CouponID: cpn.ID, Code: "ALICE"})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func TestCheckoutPromotionCodeXorBox(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	pc := setupAmbassador(t, e)

	withCode, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "premium", Code: " alice "})
	if err != nil {
		t.Fatalf("checkout with a code: %v", err)
	}
	if withCode.PromotionCodeID != pc.ID || withCode.AmbassadorID != "amb_alice" {
		t.Fatalf("result = %+v, want code %s and ambassador amb_alice", withCode, pc.ID)
	}
	cs, _ := e.fake.Session(withCode.SessionID)
	if cs.Discount == nil || cs.Discount.PromotionCodeID != pc.ID || cs.Metadata[payment.MetaAmbassadorID] != "amb_alice" {
		t.Fatalf("session with code = %+v", cs)
	}

	if _, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "newcomer", Plan: "premium", Code: "NOPE"}); !errors.Is(err, payment.ErrInvalidCode) {
		t.Fatalf("unknown code error = %v, want ErrInvalidCode", err)
	}
	if got := e.fake.Customers(); got != 1 {
		t.Fatalf("customers = %d, want 1 (a bad code must not create one)", got)
	}
	if _, err := e.svc.Admin().DeactivatePromotionCode(ctx, pc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "premium", Code: "ALICE"}); !errors.Is(err, payment.ErrInvalidCode) {
		t.Fatalf("deactivated code error = %v, want ErrInvalidCode", err)
	}
	// The fake rejects discounts + allow_promotion_codes exactly like
	// Stripe; all the calls above succeeding shows the SDK never sends both.
	if got := e.fake.Calls("CreateCheckoutSession"); got != 1 {
		t.Fatalf("CreateCheckoutSession calls = %d, want 1 (invalid codes must not reach the provider)", got)
	}
}

func TestCheckoutValidation(t *testing.T) {
	e := newEnv(t, func(o *payment.Options) { o.DefaultSuccessURL = "" })
	ctx := context.Background()
	tests := []struct {
		name string
		req  payment.CheckoutRequest
		want error
	}{
		{"no player", payment.CheckoutRequest{Plan: "basic", SuccessURL: "https://x/y", CancelURL: "https://x/c"}, payment.ErrInvalidRequest},
		{"no plan", payment.CheckoutRequest{PlayerID: "p", SuccessURL: "https://x/y", CancelURL: "https://x/c"}, payment.ErrInvalidRequest},
		{"unknown plan", payment.CheckoutRequest{PlayerID: "p", Plan: "gold", SuccessURL: "https://x/y", CancelURL: "https://x/c"}, payment.ErrUnknownPrice},
		{"unknown price", payment.CheckoutRequest{PlayerID: "p", PriceID: "price_x", SuccessURL: "https://x/y", CancelURL: "https://x/c"}, payment.ErrUnknownPrice},
		{"plan and price disagree", payment.CheckoutRequest{PlayerID: "p", Plan: "vip", PriceID: "price_basic", SuccessURL: "https://x/y", CancelURL: "https://x/c"}, payment.ErrInvalidRequest},
		{"no success URL", payment.CheckoutRequest{PlayerID: "p", Plan: "vip"}, payment.ErrInvalidRequest},
		{"relative success URL", payment.CheckoutRequest{PlayerID: "p", Plan: "vip", SuccessURL: "/paid", CancelURL: "https://x/c"}, payment.ErrInvalidRequest},
		{"trial on a purchase", payment.CheckoutRequest{PlayerID: "p", Plan: "season_pass", TrialDays: 7, SuccessURL: "https://x/y", CancelURL: "https://x/c"}, payment.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.svc.Checkout().Start(ctx, tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("Start error = %v, want %v", err, tt.want)
			}
		})
	}
	if got := e.fake.Calls("CreateCheckoutSession"); got != 0 {
		t.Fatalf("invalid requests reached the provider %d times", got)
	}
	res, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p", Plan: "vip", SuccessURL: "https://x/y?from=shop", CancelURL: "https://x/c"})
	if err != nil {
		t.Fatal(err)
	}
	if cs, _ := e.fake.Session(res.SessionID); cs.ID == "" {
		t.Fatal("session missing")
	}
}

func TestPortal(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.svc.Checkout().Portal(ctx, "p1", "https://game.example/account"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("portal before any checkout: %v, want ErrNotFound", err)
	}
	if _, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "basic"}); err != nil {
		t.Fatal(err)
	}
	ps, err := e.svc.Checkout().Portal(ctx, "p1", "https://game.example/account")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ps.URL, "https://") {
		t.Fatalf("portal URL = %q", ps.URL)
	}
	// A double click is one session; a minute later (or another return
	// URL) is a new one.
	again, err := e.svc.Checkout().Portal(ctx, "p1", "https://game.example/account")
	if err != nil || again.ID != ps.ID {
		t.Fatalf("repeated portal = %+v, %v; want session %s", again, err, ps.ID)
	}
	e.clk.Add(time.Minute)
	later, err := e.svc.Checkout().Portal(ctx, "p1", "https://game.example/account")
	if err != nil || later.ID == ps.ID {
		t.Fatalf("portal a minute later = %+v, %v; want a new session", later, err)
	}
	other, err := e.svc.Checkout().Portal(ctx, "p1", "https://game.example/other")
	if err != nil || other.ID == later.ID {
		t.Fatalf("portal with another return URL = %+v, %v; want a new session", other, err)
	}
}

func TestSubscriptionLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	pc := setupAmbassador(t, e)
	res, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "premium", Code: pc.Code})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.ent(t, "p1"); got.Active {
		t.Fatalf("entitled before paying: %v", got)
	}
	sub, err := e.fake.CompleteCheckout(res.SessionID, fakepay.CompleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	start := e.clk.Now().UTC()
	want := payment.Entitlement{PlayerID: "p1", Plan: "premium", Active: true, Status: payment.StatusActive,
		PeriodEnd: start.Add(fakepay.Period), Source: payment.SourceSubscription, SourceID: sub}
	if diff := cmp.Diff(want, e.ent(t, "p1")); diff != "" {
		t.Fatalf("after checkout (-want +got):\n%s", diff)
	}
	if ok, _ := e.svc.Entitlements().Has(ctx, "p1", "basic"); !ok {
		t.Error("premium player lacks basic")
	}
	if ok, _ := e.svc.Entitlements().Has(ctx, "p1", "vip"); ok {
		t.Error("premium player has vip")
	}
	if _, err := e.svc.Entitlements().Has(ctx, "p1", "gold"); !errors.Is(err, payment.ErrNotFound) {
		t.Errorf("Has(unknown plan) error = %v", err)
	}
	stats, err := e.svc.Admin().AmbassadorStats(ctx, "amb_alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(payment.AmbassadorStats{AmbassadorID: "amb_alice", Checkouts: 1, Invoices: 1, Revenue: map[string]int64{"usd": 800}}, stats); diff != "" {
		t.Errorf("ambassador stats (-want +got):\n%s", diff)
	}

	// A failed renewal: past_due keeps access for the grace period only.
	e.clk.Add(fakepay.Period)
	if err := e.fake.Renew(sub, false); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	got := e.ent(t, "p1")
	if !got.Active || got.Status != payment.StatusPastDue || !got.GraceUntil.Equal(e.clk.Now().Add(payment.DefaultPastDueGrace)) {
		t.Fatalf("in grace: %+v", got)
	}
	e.clk.Add(payment.DefaultPastDueGrace + time.Second)
	if got := e.ent(t, "p1"); got.Active || got.Status != payment.StatusPastDue || got.Plan != "premium" {
		t.Fatalf("after grace: %+v, want inactive premium past_due", got)
	}
	// The retry succeeds, the player upgrades, then cancels.
	if err := e.fake.Renew(sub, true); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	if err := e.fake.ChangePrice(sub, "price_vip"); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	if got := e.ent(t, "p1"); !got.Active || got.Plan != "vip" {
		t.Fatalf("after upgrade: %+v", got)
	}
	stats, _ = e.svc.Admin().AmbassadorStats(ctx, "amb_alice")
	if stats.Invoices != 2 || stats.Revenue["usd"] != 1600 {
		t.Errorf("revenue after a renewal = %+v, want 2 invoices, usd 1600", stats)
	}
	if err := e.fake.SetStatus(sub, payment.StatusCanceled); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	if got := e.ent(t, "p1"); got.Active || got.Status != payment.StatusCanceled {
		t.Fatalf("after cancel: %+v", got)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	var trail []string
	for _, c := range e.changes {
		if c.Version != payment.EntitlementChangeVersion || c.PlayerID != "p1" || c.EventID == "" {
			t.Errorf("change = %+v", c)
		}
		trail = append(trail, c.Current.Plan+"/"+string(c.Current.Status))
	}
	wantTrail := []string{"premium/active", "premium/past_due", "premium/active", "vip/active", "vip/canceled"}
	if diff := cmp.Diff(wantTrail, trail); diff != "" {
		t.Errorf("entitlement changes (-want +got):\n%s", diff)
	}
}

func TestPurchaseAndRefund(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	res, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p2", Plan: "season_pass"})
	if err != nil {
		t.Fatal(err)
	}
	pi, err := e.fake.CompleteCheckout(res.SessionID, fakepay.CompleteOptions{Unpaid: true})
	if err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	if got := e.ent(t, "p2"); got.Active || got.Status != payment.StatusPending {
		t.Fatalf("unpaid purchase: %+v", got)
	}
	if err := e.fake.PayAsync(res.SessionID); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	got := e.ent(t, "p2")
	if !got.Active || got.Source != payment.SourcePurchase || got.SourceID != pi || !got.PeriodEnd.Equal(e.clk.Now().Add(90*24*time.Hour)) {
		t.Fatalf("paid purchase: %+v", got)
	}
	// Success-page sync is idempotent and agrees with the webhook.
	if ent, err := e.svc.Checkout().Complete(ctx, "p2", res.SessionID); err != nil || !ent.Active {
		t.Fatalf("Complete = %+v, %v", ent, err)
	}
	if _, err := e.svc.Checkout().Complete(ctx, "someone-else", res.SessionID); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("Complete for another player: %v, want ErrNotFound", err)
	}
	if err := e.fake.Refund(pi); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	if got := e.ent(t, "p2"); got.Active || got.Status != payment.StatusRefunded {
		t.Fatalf("refunded: %+v", got)
	}
	// A late redelivery of the checkout event (after its ID was forgotten)
	// re-fetches the session, which reports the refund: the old event
	// cannot re-grant.
	e.clk.Add(payment.DefaultEventRetention + time.Hour)
	for _, ev := range e.fake.Events() {
		if ev.Type == payment.EventCheckoutCompleted {
			if rec := e.deliver(t, ev); !strings.Contains(rec.Body.String(), "processed") {
				t.Fatalf("late redelivery: HTTP %d %s, want processed", rec.Code, rec.Body)
			}
		}
	}
	if got := e.ent(t, "p2"); got.Active {
		t.Fatalf("old checkout event re-granted a refunded purchase: %+v", got)
	}
	e.clk.Add(60 * 24 * time.Hour)
	if got := e.ent(t, "p2"); got.Active {
		t.Fatalf("expired pass still active: %+v", got)
	}
}

func TestCouponsAndCodes(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	a := e.svc.Admin()
	bad := []payment.CouponParams{
		{Name: "none"},
		{PercentOff: 10, AmountOff: 100, Currency: "usd"},
		{PercentOff: 120},
		{AmountOff: 500},
		{PercentOff: 10, Duration: payment.DurationRepeating},
		{PercentOff: 10, Duration: payment.DurationOnce, DurationInMonths: 3},
		{PercentOff: 10, Duration: "weekly"},
		{PercentOff: 10, MaxRedemptions: -1},
	}
	for _, p := range bad {
		if _, err := a.CreateCoupon(ctx, p); !errors.Is(err, payment.ErrInvalidRequest) {
			t.Errorf("CreateCoupon(%+v) error = %v, want ErrInvalidRequest", p, err)
		}
	}
	redeemBy := e.clk.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	spring := payment.CouponParams{Name: "Spring", PercentOff: 25, Duration: payment.DurationRepeating, DurationInMonths: 3, MaxRedemptions: 100, RedeemBy: redeemBy}
	c1, err := a.CreateCoupon(ctx, spring)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := a.CreateCoupon(ctx, spring) // a retry: same deterministic key
	if err != nil {
		t.Fatal(err)
	}
	if c1.ID != c2.ID {
		t.Fatalf("retried create made two coupons: %s, %s", c1.ID, c2.ID)
	}
	if _, err := a.CreateCoupon(ctx, payment.CouponParams{ID: "five-off", AmountOff: 500, Currency: "usd", Duration: payment.DurationOnce}); err != nil {
		t.Fatal(err)
	}
	all, err := a.Coupons(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Coupons = %d, %v; want 2", len(all), err)
	}
	name := "Spring sale"
	up, err := a.UpdateCoupon(ctx, c1.ID, payment.CouponUpdate{Name: &name, Metadata: map[string]string{"campaign": "spring"}})
	if err != nil || up.Name != name || up.Metadata["campaign"] != "spring" {
		t.Fatalf("UpdateCoupon = %+v, %v", up, err)
	}
	got, err := a.Coupon(ctx, c1.ID)
	if err != nil || got.DurationInMonths != 3 || !got.RedeemBy.Equal(redeemBy) {
		t.Fatalf("Coupon = %+v, %v", got, err)
	}
	pc, err := a.CreatePromotionCode(ctx, payment.PromotionCodeParams{CouponID: c1.ID, Code: "SPRING25", MaxRedemptions: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreatePromotionCode(ctx, payment.PromotionCodeParams{CouponID: c1.ID, Code: "spring25", MaxRedemptions: 5}); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Fatalf("duplicate active code error = %v", err)
	}
	found, err := a.FindPromotionCode(ctx, "spring25")
	if err != nil || found.ID != pc.ID {
		t.Fatalf("FindPromotionCode = %+v, %v", found, err)
	}
	if byID, err := a.PromotionCode(ctx, pc.ID); err != nil || byID.Code != "SPRING25" {
		t.Fatalf("PromotionCode = %+v, %v", byID, err)
	}
	// A single-use code is refused once used.
	res, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p9", Plan: "basic", Code: "SPRING25"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.CompleteCheckout(res.SessionID, fakepay.CompleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p10", Plan: "basic", Code: "SPRING25"}); !errors.Is(err, payment.ErrInvalidCode) {
		t.Fatalf("used-up code error = %v, want ErrInvalidCode", err)
	}
	codes, err := a.PromotionCodes(ctx, payment.PromotionCodeQuery{CouponID: c1.ID})
	if err != nil || len(codes) != 1 || codes[0].TimesRedeemed != 1 {
		t.Fatalf("PromotionCodes = %+v, %v", codes, err)
	}
	if err := a.DeleteCoupon(ctx, "five-off"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Coupon(ctx, "five-off"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("deleted coupon: %v, want ErrNotFound", err)
	}
	if _, err := a.CreateAmbassadorCode(ctx, payment.AmbassadorCodeParams{CouponID: c1.ID, Code: "X"}); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Fatalf("ambassador code without ambassador: %v", err)
	}
}

// A player who was offered the box and typed an ambassador's code there
// is attributed from the completed session's discount.
func TestAttributionFromPromotionCodeBox(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	setupAmbassador(t, e)
	res, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p3", Plan: "vip"})
	if err != nil {
		t.Fatal(err)
	}
	if res.AmbassadorID != "" || res.PromotionCodeID != "" {
		t.Fatalf("no code was given, result = %+v", res)
	}
	if _, err := e.fake.CompleteCheckout(res.SessionID, fakepay.CompleteOptions{Code: "alice"}); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	e.deliverAll(t) // every event twice: counted once
	got, err := e.svc.Admin().AmbassadorStats(ctx, "amb_alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(payment.AmbassadorStats{AmbassadorID: "amb_alice", Checkouts: 1, Invoices: 1, Revenue: map[string]int64{"usd": 800}}, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if ent := e.ent(t, "p3"); !ent.Active || ent.Plan != "vip" {
		t.Errorf("entitlement = %+v", ent)
	}
}

func TestReconcileReplaysMissedEvents(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	subA := e.fake.Subscribe("pa", "price_basic")
	subB := e.fake.Subscribe("pb", "price_vip")
	evs := e.fake.Events()
	// Only the first event got through; the rest were lost in an outage.
	e.deliver(t, evs[0])
	e.fake.MarkDelivered(evs[0].ID)
	if err := e.fake.SetStatus(subB, payment.StatusPastDue); err != nil {
		t.Fatal(err)
	}
	e.fake.Emit("customer.created", "customer", "cus_x")
	res, err := e.svc.Admin().Reconcile(ctx, payment.ReconcileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The fake filters by the handled types, so customer.created is not seen.
	want := payment.ReconcileResult{Seen: len(evs) + 1, Processed: len(evs), Duplicates: 1}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Reconcile (-want +got):\n%s", diff)
	}
	if got := e.ent(t, "pa"); !got.Active || got.SourceID != subA {
		t.Errorf("pa = %+v", got)
	}
	if got := e.ent(t, "pb"); got.Status != payment.StatusPastDue {
		t.Errorf("pb = %+v", got)
	}
	res, err = e.svc.Admin().Reconcile(ctx, payment.ReconcileOptions{UndeliveredOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Processed != 0 || res.Duplicates != res.Seen {
		t.Errorf("second reconcile = %+v, want only duplicates", res)
	}
}

func TestSyncFailureIsRetried(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.fake.Subscribe("p1", "price_basic")
	evs := e.fake.Events()
	e.fake.FailNext("GetSubscription", &payment.ProviderError{Op: "subscription.get", Kind: payment.ErrProviderUnavailable, HTTPStatus: 503})
	if rec := e.deliver(t, evs[0]); rec.Code != http.StatusInternalServerError {
		t.Fatalf("first delivery: HTTP %d, want 500", rec.Code)
	}
	if got := e.ent(t, "p1"); got.Active {
		t.Fatalf("entitled after a failed sync: %+v", got)
	}
	if rec := e.deliver(t, evs[0]); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "processed") {
		t.Fatalf("retry: HTTP %d %s, want processed", rec.Code, rec.Body)
	}
	if got := e.ent(t, "p1"); !got.Active || got.SourceID != sub {
		t.Fatalf("after retry: %+v", got)
	}
	if st := e.svc.Stats(); st.Failed != 1 || st.Processed != 1 || st.Latency.Count != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestUnknownObjectIsAcknowledged(t *testing.T) {
	e := newEnv(t, nil)
	ev := e.fake.Emit(payment.EventSubscriptionUpdated, "subscription", "sub_gone")
	if rec := e.deliver(t, ev); rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d, want 200 (retrying a missing object cannot help)", rec.Code)
	}
}

func TestEntitlementResolution(t *testing.T) {
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	e := newEnv(t, func(o *payment.Options) { o.Now = func() time.Time { return now } })
	ctx := context.Background()
	put := func(g payment.Grant) {
		t.Helper()
		if _, err := e.store.PutGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.ent(t, "nobody"); got != (payment.Entitlement{PlayerID: "nobody"}) {
		t.Fatalf("no grants: %+v", got)
	}
	put(payment.Grant{PlayerID: "p", SourceID: "sub_b", Source: payment.SourceSubscription, Plan: "basic", Status: payment.StatusActive, Version: 1, SyncedAt: now})
	put(payment.Grant{PlayerID: "p", SourceID: "sub_v", Source: payment.SourceSubscription, Plan: "vip", Status: payment.StatusPastDue, GraceUntil: now.Add(-time.Hour), Version: 1, SyncedAt: now.Add(time.Second)})
	if got := e.ent(t, "p"); !got.Active || got.Plan != "basic" {
		t.Fatalf("basic active + vip out of grace: %+v, want basic", got)
	}
	put(payment.Grant{PlayerID: "p", SourceID: "sub_v", Source: payment.SourceSubscription, Plan: "vip", Status: payment.StatusPastDue, GraceUntil: now.Add(time.Hour), Version: 2, SyncedAt: now})
	if got := e.ent(t, "p"); !got.Active || got.Plan != "vip" || got.GraceUntil.IsZero() {
		t.Fatalf("vip in grace outranks basic: %+v", got)
	}
	put(payment.Grant{PlayerID: "q", SourceID: "sub_1", Plan: "basic", Status: payment.StatusCanceled, Version: 1, PeriodStart: now, SyncedAt: now.Add(time.Hour)})
	put(payment.Grant{PlayerID: "q", SourceID: "sub_2", Plan: "vip", Status: payment.StatusIncomplete, Version: 1, PeriodStart: now.Add(time.Minute), SyncedAt: now})
	if got := e.ent(t, "q"); got.Active || got.Plan != "vip" || got.Status != payment.StatusIncomplete {
		t.Fatalf("nothing active: %+v, want the latest grant (vip incomplete)", got)
	}
}

func TestEntitlementChangeJSON(t *testing.T) {
	at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	c := payment.EntitlementChange{
		Version: payment.EntitlementChangeVersion, PlayerID: "p1",
		Previous: payment.Entitlement{PlayerID: "p1"},
		Current: payment.Entitlement{PlayerID: "p1", Plan: "vip", Active: true, Status: payment.StatusActive,
			PeriodEnd: at, Source: payment.SourceSubscription, SourceID: "sub_1"},
		EventID: "evt_1", EventType: payment.EventSubscriptionUpdated, At: at,
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"player_id":"p1","previous":{"player_id":"p1","active":false},` +
		`"current":{"player_id":"p1","plan":"vip","active":true,"status":"active","period_end":"2026-02-03T04:05:06Z","source":"subscription","source_id":"sub_1"},` +
		`"event_id":"evt_1","event_type":"customer.subscription.updated","at":"2026-02-03T04:05:06Z"}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("EntitlementChange JSON (-want +got):\n%s", diff)
	}
	var back payment.EntitlementChange
	if err := json.Unmarshal(b, &back); err != nil || !back.Current.Equal(c.Current) || back.Version != 1 {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	if payment.TopicEntitlementChanged != "payment.entitlement.changed" {
		t.Fatalf("topic = %q", payment.TopicEntitlementChanged)
	}
}

func TestSyncTimeoutAndCallerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slow bool
		e := newEnv(t, func(o *payment.Options) {
			o.SyncTimeout = 2 * time.Second
			o.Provider = providerSwitch{Provider: o.Provider.(*fakepay.Provider), slow: &slow}
		})
		e.fake.Subscribe("p1", "price_basic")
		ev := e.fake.Events()[0]
		body := e.fake.Payload(ev)
		sig := fakepay.Sign(body, e.clk.Now(), secret)

		slow = true
		start := time.Now()
		_, err := e.svc.Webhooks().Process(context.Background(), body, sig)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 2*time.Second {
			t.Fatalf("slow provider: err = %v after %v, want DeadlineExceeded after 2s", err, time.Since(start))
		}
		// The claim was released: a redelivery is processed, even when the
		// caller (the HTTP request) has already gone away.
		slow = false
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if r, err := e.svc.Webhooks().Process(ctx, body, sig); err != nil || r != payment.ResultProcessed {
			t.Fatalf("redelivery with a canceled caller = %v, %v; want processed", r, err)
		}
		if got := e.ent(t, "p1"); !got.Active {
			t.Fatalf("entitlement = %+v", got)
		}
	})
}

// providerSwitch blocks subscription reads until the context ends while
// *slow is set.
type providerSwitch struct {
	*fakepay.Provider
	slow *bool
}

func (p providerSwitch) GetSubscription(ctx context.Context, id string) (payment.Subscription, error) {
	if *p.slow {
		<-ctx.Done()
		return payment.Subscription{}, ctx.Err()
	}
	return p.Provider.GetSubscription(ctx, id)
}
