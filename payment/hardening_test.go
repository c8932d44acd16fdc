package payment_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
)

// pausingProvider reads subscriptions from the fake, then, while pause is
// set, tells read and waits for resume before returning: a slow response.
type pausingProvider struct {
	*fakepay.Provider
	read   chan struct{}
	resume chan struct{}
}

func (p *pausingProvider) GetSubscription(ctx context.Context, id string) (payment.Subscription, error) {
	sub, err := p.Provider.GetSubscription(ctx, id)
	if p.read != nil {
		p.read <- struct{}{}
		<-p.resume
	}
	return sub, err
}

// TestSkewedServersNeverOverwriteNewerState: two servers share a store;
// server A's clock runs two seconds ahead. A reads a subscription (active),
// its response is slow; meanwhile the subscription is canceled and server B
// syncs the cancellation. A's stale read must not overwrite B's newer one,
// whatever the clocks say.
func TestSkewedServersNeverOverwriteNewerState(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	fake := newFake(t, clk.Now)
	store := newMemoryStore(t, clk.Now)
	mk := func(p payment.Provider, skew time.Duration) *payment.Service {
		svc, err := payment.New(payment.Options{
			Provider: p, Store: store, Plans: plans(), WebhookSecrets: []payment.Secret{secret},
			Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return clk.Now().Add(skew) },
		})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	slow := &pausingProvider{Provider: fake, read: make(chan struct{}), resume: make(chan struct{})}
	a := mk(slow, 2*time.Second)
	b := mk(fake, 0)

	sub := fake.Subscribe("p1", "price_vip")
	created := fake.Events()[0]
	body := fake.Payload(created)
	sig := fakepay.Sign(body, clk.Now(), secret)
	done := make(chan error, 1)
	go func() {
		_, err := a.Webhooks().Process(context.Background(), body, sig)
		done <- err
	}()
	<-slow.read // A has read "active"; its response is still on the wire

	if err := fake.SetStatus(sub, payment.StatusCanceled); err != nil {
		t.Fatal(err)
	}
	evs := fake.Events()
	deleted := evs[len(evs)-1]
	body2 := fake.Payload(deleted)
	if r, err := b.Webhooks().Process(context.Background(), body2, fakepay.Sign(body2, clk.Now(), secret)); err != nil || r != payment.ResultProcessed {
		t.Fatalf("B: %v, %v", r, err)
	}
	close(slow.resume)
	if err := <-done; err != nil {
		t.Fatalf("A: %v", err)
	}
	got, err := b.Entitlements().Get(context.Background(), "p1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Active || got.Status != payment.StatusCanceled {
		t.Fatalf("after a canceled subscription was synced, a stale read from a skewed server won: %+v", got)
	}
}

// TestConcurrentDuplicateDelivery: two servers receive the same event at
// once. The one holding the claim syncs; the other must not acknowledge
// (the holder may still fail), so it answers 409 and the provider retries.
// If the holder fails, the retry applies the event; if it succeeds, the
// retry is a duplicate. Either way the effect happens once.
func TestConcurrentDuplicateDelivery(t *testing.T) {
	for _, holderFails := range []bool{false, true} {
		t.Run(map[bool]string{false: "HolderSucceeds", true: "HolderFails"}[holderFails], func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			fake := newFake(t, clk.Now)
			store := newMemoryStore(t, clk.Now)
			var changes int
			mk := func(p payment.Provider) *payment.Service {
				svc, err := payment.New(payment.Options{
					Provider: p, Store: store, Plans: plans(), WebhookSecrets: []payment.Secret{secret},
					Logger: slog.New(slog.DiscardHandler), Now: clk.Now,
					OnEntitlementChange: func(context.Context, payment.EntitlementChange) { changes++ },
				})
				if err != nil {
					t.Fatal(err)
				}
				return svc
			}
			slow := &pausingProvider{Provider: fake, read: make(chan struct{}), resume: make(chan struct{})}
			a, b := mk(slow), mk(fake)
			fake.Subscribe("p1", "price_vip")
			body := fake.Payload(fake.Events()[0])
			post := func(svc *payment.Service) int {
				req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
				req.Header.Set(payment.SignatureHeader, fakepay.Sign(body, clk.Now(), secret))
				rec := httptest.NewRecorder()
				svc.Webhooks().ServeHTTP(rec, req)
				return rec.Code
			}
			if holderFails {
				// A's provider read (the one it pauses in) fails.
				fake.FailNext("GetSubscription", &payment.ProviderError{Op: "subscription.get", Kind: payment.ErrProviderUnavailable, HTTPStatus: 503})
			}
			codeA := make(chan int, 1)
			go func() { codeA <- post(a) }()
			<-slow.read
			if got := post(b); got != http.StatusConflict {
				t.Fatalf("duplicate delivery while the first is in progress: HTTP %d, want 409", got)
			}
			close(slow.resume)
			wantA := http.StatusOK
			if holderFails {
				wantA = http.StatusInternalServerError
			}
			if got := <-codeA; got != wantA {
				t.Fatalf("first delivery: HTTP %d, want %d", got, wantA)
			}
			// The provider's retry of the refused delivery.
			if got := post(b); got != http.StatusOK {
				t.Fatalf("retry: HTTP %d, want 200", got)
			}
			ent, err := b.Entitlements().Get(context.Background(), "p1")
			if err != nil || !ent.Active {
				t.Fatalf("entitlement = %+v, %v", ent, err)
			}
			if changes != 1 {
				t.Fatalf("%d entitlement changes reported, want 1", changes)
			}
			sa, sb := a.Stats(), b.Stats()
			if sb.InProgress != 1 || sa.Processed+sb.Processed != 1 {
				t.Fatalf("stats A = %+v, B = %+v; want one in-progress refusal and one processed event", sa, sb)
			}
		})
	}
}

// TestClaimOfDeadServerExpires: a server that claimed an event and died
// mid-sync must not keep it claimed for the whole retention (31 days):
// after the lease, the provider's redelivery is processed.
func TestClaimOfDeadServerExpires(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.Subscribe("p1", "price_basic")
	ev := e.fake.Events()[0]
	if c, err := e.store.ClaimEvent(context.Background(), ev.ID, "dead-server", payment.DefaultEventLease); err != nil || c.State != payment.ClaimAcquired {
		t.Fatalf("claim = %+v, %v", c, err)
	}
	if rec := e.deliver(t, ev); rec.Code != http.StatusConflict {
		t.Fatalf("delivery during the dead server's lease: HTTP %d, want 409", rec.Code)
	}
	e.clk.Add(payment.DefaultEventLease)
	if rec := e.deliver(t, ev); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "processed") {
		t.Fatalf("redelivery after the lease: HTTP %d %s, want processed", rec.Code, rec.Body)
	}
	if got := e.ent(t, "p1"); !got.Active {
		t.Fatalf("entitlement = %+v", got)
	}
}

func TestEventLeaseMustExceedSyncTimeout(t *testing.T) {
	_, err := payment.New(payment.Options{
		Provider: newFake(t, nil), Plans: plans(), WebhookSecrets: []payment.Secret{secret},
		SyncTimeout: time.Minute, EventLease: time.Minute,
	})
	var ve *payment.ValidationError
	if !errors.As(err, &ve) || ve.Field != "Options.EventLease" {
		t.Fatalf("New = %v, want a ValidationError on Options.EventLease", err)
	}
}

// TestCustomerKeyScopedByEmail: a first checkout's customer is not linked
// yet on a second server (its store missed the link, and the provider's
// customer search lags by about a minute), and the player typed another
// email there. Reusing the first create's idempotency key with another
// email is an idempotency error at Stripe, which failed the checkout; a
// request with other parameters gets its own key.
func TestCustomerKeyScopedByEmail(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "premium", Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	other, err := payment.New(payment.Options{
		Provider: e.fake, Plans: plans(), WebhookSecrets: []payment.Secret{secret}, Now: e.clk.Now,
		DefaultSuccessURL: "https://game.example/paid", DefaultCancelURL: "https://game.example/cancel",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.FailNext("FindCustomer", &payment.ProviderError{Op: "customer.search", Kind: payment.ErrNotFound, HTTPStatus: 404}) // search lag
	if _, err := other.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "premium", Email: "b@example.com"}); err != nil {
		t.Fatalf("checkout with another email on a second server: %v", err)
	}
	// The same request retried reuses its key: still two customers.
	e.fake.FailNext("FindCustomer", &payment.ProviderError{Op: "customer.search", Kind: payment.ErrNotFound, HTTPStatus: 404})
	third, err := payment.New(payment.Options{
		Provider: e.fake, Plans: plans(), WebhookSecrets: []payment.Secret{secret}, Now: e.clk.Now,
		DefaultSuccessURL: "https://game.example/paid", DefaultCancelURL: "https://game.example/cancel",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := third.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "premium", Email: "b@example.com"}); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Customers(); got != 2 {
		t.Fatalf("customers = %d, want 2 (one per distinct create request)", got)
	}
}

// TestReconcileLeavesEventsInProgressToTheirHolder: an event a webhook
// delivery is processing right now is neither failed nor processed twice
// by a concurrent reconcile.
func TestReconcileLeavesEventsInProgressToTheirHolder(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.fake.Subscribe("pa", "price_basic")
	e.fake.Subscribe("pb", "price_vip")
	evs := e.fake.Events()
	busy := evs[len(evs)-1]
	if c, err := e.store.ClaimEvent(ctx, busy.ID, "webhook-worker", time.Minute); err != nil || c.State != payment.ClaimAcquired {
		t.Fatalf("claim = %+v, %v", c, err)
	}
	res, err := e.svc.Admin().Reconcile(ctx, payment.ReconcileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := payment.ReconcileResult{Seen: len(evs), Processed: len(evs) - 1, InProgress: 1}
	if res != want {
		t.Fatalf("Reconcile = %+v, want %+v", res, want)
	}
}

// TestSubscriptionMovedOutsideCatalogStopsEntitling: a subscription that
// granted a plan moves to a price outside the catalog (a legacy price, an
// operator's mistake) and is later canceled. Its events were skipped, so
// the player kept the old plan for ever (an active subscription grant has
// no end of its own). A price outside the catalog now grants nothing, and
// the grant keeps following the provider's status.
func TestSubscriptionMovedOutsideCatalogStopsEntitling(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.fake.Subscribe("p1", "price_premium")
	e.deliverAll(t)
	if got := e.ent(t, "p1"); !got.Active || got.Plan != "premium" {
		t.Fatalf("before: %+v", got)
	}
	if err := e.fake.ChangePrice(sub, "price_legacy"); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	if got := e.ent(t, "p1"); got.Active {
		t.Fatalf("subscription on a price outside the catalog still entitles: %+v", got)
	}
	if err := e.fake.SetStatus(sub, payment.StatusCanceled); err != nil {
		t.Fatal(err)
	}
	e.deliverAll(t)
	gs, err := e.svc.Entitlements().Grants(context.Background(), "p1")
	if err != nil || len(gs) != 1 || gs[0].Status != payment.StatusCanceled || gs[0].Plan != "" {
		t.Fatalf("grants = %+v, %v; want one canceled grant without a plan", gs, err)
	}
	// A subscription to something else entirely (never a grant) is still
	// not recorded.
	e.fake.Subscribe("p2", "price_other_product")
	e.deliverAll(t)
	if gs, _ := e.svc.Entitlements().Grants(context.Background(), "p2"); len(gs) != 0 {
		t.Fatalf("grants for a foreign subscription: %+v", gs)
	}
}

// failingFinish is a MemoryStore whose FinishEvent fails.
type failingFinish struct{ *payment.MemoryStore }

func (failingFinish) FinishEvent(context.Context, string, time.Duration) error {
	return errors.New("store unavailable")
}

// TestFinishFailureIsHarmless: the sync was applied but the finished mark
// could not be stored. The delivery is acknowledged (the effect is
// there), the failure is counted, and a redelivery after the lease syncs
// the same state again without a second entitlement change.
func TestFinishFailureIsHarmless(t *testing.T) {
	e := newEnv(t, nil)
	store := failingFinish{e.store}
	svc, err := payment.New(payment.Options{
		Provider: e.fake, Store: store, Plans: plans(), WebhookSecrets: []payment.Secret{secret},
		Logger: slog.New(slog.DiscardHandler), Now: e.clk.Now,
		OnEntitlementChange: func(_ context.Context, c payment.EntitlementChange) {
			e.mu.Lock()
			e.changes = append(e.changes, c)
			e.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.fake.Subscribe("p1", "price_basic")
	ev := e.fake.Events()[0]
	if rec := e.deliver(t, ev); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "processed") {
		t.Fatalf("HTTP %d %s, want processed", rec.Code, rec.Body)
	}
	e.clk.Add(payment.DefaultEventLease)
	if rec := e.deliver(t, ev); rec.Code != http.StatusOK {
		t.Fatalf("redelivery: HTTP %d %s", rec.Code, rec.Body)
	}
	if st := svc.Stats(); st.FinishErrors != 2 || st.Processed != 2 {
		t.Fatalf("stats = %+v, want 2 finish errors and 2 processed", st)
	}
	if got := e.ent(t, "p1"); !got.Active {
		t.Fatalf("entitlement = %+v", got)
	}
	if len(e.changes) != 1 {
		t.Fatalf("%d entitlement changes, want 1", len(e.changes))
	}
}
