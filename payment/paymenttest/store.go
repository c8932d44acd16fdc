// Package paymenttest holds the conformance suites for package payment's
// seams, like testing/fstest does for file systems: [TestProvider] for
// payment.Provider implementations and [TestStore] for payment.Store
// implementations. The in-memory fake provider lives in package fakepay,
// which does not link package testing.
package paymenttest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestStore runs the payment.Store conformance suite. newStore is called
// once per subtest and must return an empty store; register any cleanup
// with t.Cleanup. Stores must keep times to at least microsecond precision
// (the suite compares grants after a round trip with time.Time.Equal).
func TestStore(t *testing.T, newStore func(t *testing.T) payment.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s payment.Store)
	}{
		{"ClaimEvent", testClaimEvent},
		{"ClaimEventExpires", testClaimExpires},
		{"ClaimEventConcurrent", testClaimConcurrent},
		{"NextVersion", testNextVersion},
		{"DuplicateClaimKeepsVersion", testDuplicateClaimKeepsVersion},
		{"PutGrantVersions", testPutGrantVersions},
		{"GrantsRoundTrip", testGrantsRoundTrip},
		{"PutGrantConcurrent", testPutGrantConcurrent},
		{"GrantOwner", testGrantOwner},
		{"Customer", testCustomer},
		{"Attribution", testAttribution},
		{"AttributionConcurrent", testAttributionConcurrent},
		{"AttributionRefund", testAttributionRefund},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

func claim(t *testing.T, s payment.Store, id, token string, lease time.Duration) payment.EventClaim {
	t.Helper()
	c, err := s.ClaimEvent(context.Background(), id, token, lease)
	if err != nil {
		t.Fatalf("ClaimEvent(%s, %s): %v", id, token, err)
	}
	return c
}

func testClaimEvent(t *testing.T, s payment.Store) {
	ctx := context.Background()
	c := claim(t, s, "evt_1", "tok_a", time.Hour)
	if c.State != payment.ClaimAcquired || c.Version <= 0 {
		t.Fatalf("first claim = %+v, want acquired with a positive version", c)
	}
	// Held: any other claim is busy, and a release with another token
	// (a worker whose lease expired) leaves it alone.
	if got := claim(t, s, "evt_1", "tok_b", time.Hour); got.State != payment.ClaimBusy {
		t.Fatalf("claim while held = %+v, want busy", got)
	}
	if err := s.ReleaseEvent(ctx, "evt_1", "tok_b"); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, "evt_1", "tok_c", time.Hour); got.State != payment.ClaimBusy {
		t.Fatalf("claim after a release with a foreign token = %+v, want busy", got)
	}
	// Released by its holder: claimable again, with a newer version.
	if err := s.ReleaseEvent(ctx, "evt_1", "tok_a"); err != nil {
		t.Fatal(err)
	}
	c2 := claim(t, s, "evt_1", "tok_d", time.Hour)
	if c2.State != payment.ClaimAcquired || c2.Version <= c.Version {
		t.Fatalf("claim after release = %+v, want acquired with a version above %d", c2, c.Version)
	}
	// Finished: done for every later claim, and a late release by the
	// former holder does not reopen it.
	if err := s.FinishEvent(ctx, "evt_1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseEvent(ctx, "evt_1", "tok_d"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if got := claim(t, s, "evt_1", "tok_e", time.Hour); got.State != payment.ClaimDone {
			t.Fatalf("claim #%d after finish = %+v, want done", i, got)
		}
	}
	if got := claim(t, s, "evt_2", "tok_a", time.Hour); got.State != payment.ClaimAcquired {
		t.Fatalf("claim of another event = %+v, want acquired", got)
	}
	if err := s.ReleaseEvent(ctx, "evt_never", "tok_a"); err != nil {
		t.Fatalf("release of an unclaimed event: %v", err)
	}
}

// waitClaimable polls until a claim on id is acquired (its previous state
// expired). The 30 s deadline only bounds a hang: the leases it waits out
// are 50 ms.
func waitClaimable(t *testing.T, s payment.Store, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if claim(t, s, id, "tok_late", time.Hour).State == payment.ClaimAcquired {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: claim did not expire", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testClaimExpires: the claim of a worker that died mid-sync expires after
// its lease; a finished event is forgotten after its retention.
func testClaimExpires(t *testing.T, s payment.Store) {
	if c := claim(t, s, "evt_lease", "tok_dead", 50*time.Millisecond); c.State != payment.ClaimAcquired {
		t.Fatalf("first claim = %+v", c)
	}
	waitClaimable(t, s, "evt_lease")

	if c := claim(t, s, "evt_ret", "tok_a", time.Hour); c.State != payment.ClaimAcquired {
		t.Fatalf("claim = %+v", c)
	}
	if err := s.FinishEvent(context.Background(), "evt_ret", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitClaimable(t, s, "evt_ret")
}

func testClaimConcurrent(t *testing.T, s payment.Store) {
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			c, err := s.ClaimEvent(context.Background(), "evt_race", fmt.Sprint("tok_", i), time.Hour)
			if err != nil {
				t.Error(err)
			}
			switch c.State {
			case payment.ClaimAcquired:
				wins.Add(1)
			case payment.ClaimBusy:
			default:
				t.Errorf("concurrent claim = %+v, want acquired or busy", c)
			}
		})
	}
	wg.Wait()
	if got := wins.Load(); got != 1 {
		t.Fatalf("%d concurrent claims won, want 1", got)
	}
}

// testNextVersion: versions strictly increase, also when taken
// concurrently and mixed with claims.
func testNextVersion(t *testing.T, s payment.Store) {
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			var v int64
			if i%2 == 0 {
				c, err := s.ClaimEvent(ctx, fmt.Sprint("evt_v", i), "tok", time.Hour)
				if err != nil {
					t.Error(err)
				}
				v = c.Version
			} else {
				var err error
				if v, err = s.NextVersion(ctx); err != nil {
					t.Error(err)
				}
			}
			mu.Lock()
			if seen[v] || v <= 0 {
				t.Errorf("version %d repeated or not positive", v)
			}
			seen[v] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	var last int64
	for _, v := range slices.Sorted(maps.Keys(seen)) {
		last = v
	}
	next, err := s.NextVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next <= last {
		t.Fatalf("NextVersion = %d after %d", next, last)
	}
}

// testDuplicateClaimKeepsVersion: a claim that finds the event finished
// or claimed by another worker does not consume a version, so duplicate
// deliveries leave the version counter where it was.
func testDuplicateClaimKeepsVersion(t *testing.T, s payment.Store) {
	ctx := context.Background()
	if c := claim(t, s, "evt_dup_done", "tok_1", time.Hour); c.State != payment.ClaimAcquired {
		t.Fatalf("first claim state = %v, want ClaimAcquired", c.State)
	}
	if err := s.FinishEvent(ctx, "evt_dup_done", time.Hour); err != nil {
		t.Fatal(err)
	}
	if c := claim(t, s, "evt_dup_busy", "tok_2", time.Hour); c.State != payment.ClaimAcquired {
		t.Fatalf("first claim state = %v, want ClaimAcquired", c.State)
	}
	before, err := s.NextVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if c := claim(t, s, "evt_dup_done", fmt.Sprint("tok_d", i), time.Hour); c.State != payment.ClaimDone {
			t.Fatalf("duplicate claim state = %v, want ClaimDone", c.State)
		}
		if c := claim(t, s, "evt_dup_busy", fmt.Sprint("tok_b", i), time.Hour); c.State != payment.ClaimBusy {
			t.Fatalf("concurrent claim state = %v, want ClaimBusy", c.State)
		}
	}
	after, err := s.NextVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := after, before+1; got != want {
		t.Errorf("NextVersion after 10 refused claims = %d, want %d (refused claims must not consume versions)", got, want)
	}
}

func grant(player, src string, v int64, st payment.Status) payment.Grant {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	return payment.Grant{
		PlayerID: player, SourceID: src, Source: payment.SourceSubscription, Plan: "premium", PriceID: "price_premium",
		CustomerID: "cus_1", Status: st, PeriodStart: base, PeriodEnd: base.Add(30 * 24 * time.Hour),
		GraceUntil: base.Add(72 * time.Hour), CancelAtPeriodEnd: true, Version: v, SyncedAt: base.Add(time.Duration(v) * time.Microsecond),
	}
}

var cmpGrants = cmp.Options{
	cmpopts.SortSlices(func(a, b payment.Grant) bool { return a.SourceID < b.SourceID }),
	cmpopts.EquateEmpty(),
}

func testPutGrantVersions(t *testing.T, s payment.Store) {
	ctx := context.Background()
	steps := []struct {
		g     payment.Grant
		wrote bool
		want  payment.Status
	}{
		{grant("p1", "sub_1", 10, payment.StatusActive), true, payment.StatusActive},
		{grant("p1", "sub_1", 5, payment.StatusIncomplete), false, payment.StatusActive},
		{grant("p1", "sub_1", 20, payment.StatusPastDue), true, payment.StatusPastDue},
		{grant("p1", "sub_1", 20, payment.StatusCanceled), true, payment.StatusCanceled},
		{grant("p1", "sub_1", 19, payment.StatusActive), false, payment.StatusCanceled},
		// Versions above 2^53 must compare exactly (no float rounding).
		{grant("p1", "sub_1", 1_800_000_000_000_000_001, payment.StatusActive), true, payment.StatusActive},
		{grant("p1", "sub_1", 1_800_000_000_000_000_000, payment.StatusCanceled), false, payment.StatusActive},
	}
	for i, st := range steps {
		wrote, err := s.PutGrant(ctx, st.g)
		if err != nil {
			t.Fatal(err)
		}
		if wrote != st.wrote {
			t.Errorf("step %d: PutGrant(v=%d) wrote = %v, want %v", i, st.g.Version, wrote, st.wrote)
		}
		gs, err := s.Grants(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) != 1 || gs[0].Status != st.want {
			t.Fatalf("step %d: grants = %+v, want one with status %s", i, gs, st.want)
		}
	}
}

func testGrantsRoundTrip(t *testing.T, s payment.Store) {
	ctx := context.Background()
	if gs, err := s.Grants(ctx, "nobody"); err != nil || len(gs) != 0 {
		t.Fatalf("Grants(nobody) = %v, %v; want empty, nil", gs, err)
	}
	want := []payment.Grant{
		grant("p2", "sub_a", 1, payment.StatusActive),
		grant("p2", "pi_b", 2, payment.StatusRefunded),
	}
	want[1].Source = payment.SourcePurchase
	want[1].PeriodEnd = time.Time{}
	want[1].GraceUntil = time.Time{}
	want[1].CancelAtPeriodEnd = false
	for _, g := range want {
		if _, err := s.PutGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutGrant(ctx, grant("p3", "sub_c", 1, payment.StatusActive)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Grants(ctx, "p2")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpGrants); diff != "" {
		t.Errorf("Grants(p2) mismatch (-want +got):\n%s", diff)
	}
	if _, err := s.PutGrant(ctx, payment.Grant{SourceID: "x"}); err == nil {
		t.Error("PutGrant without a player succeeded")
	}
}

func testPutGrantConcurrent(t *testing.T, s payment.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for v := int64(1); v <= 32; v++ {
		wg.Go(func() {
			if _, err := s.PutGrant(ctx, grant("p4", "sub_x", v, payment.Status(fmt.Sprint("s", v)))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	gs, err := s.Grants(ctx, "p4")
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Version != 32 || gs[0].Status != "s32" {
		t.Fatalf("after concurrent writes: %+v, want version 32", gs)
	}
}

func testGrantOwner(t *testing.T, s payment.Store) {
	ctx := context.Background()
	if _, err := s.GrantOwner(ctx, "sub_none"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("GrantOwner(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.PutGrant(ctx, grant("p5", "sub_o", 1, payment.StatusActive)); err != nil {
		t.Fatal(err)
	}
	got, err := s.GrantOwner(ctx, "sub_o")
	if err != nil || got != "p5" {
		t.Fatalf("GrantOwner = %q, %v; want p5", got, err)
	}
}

func testCustomer(t *testing.T, s payment.Store) {
	ctx := context.Background()
	if _, err := s.Customer(ctx, "p6"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("Customer(unknown) error = %v, want ErrNotFound", err)
	}
	for _, c := range []string{"cus_1", "cus_2"} {
		if err := s.PutCustomer(ctx, "p6", c); err != nil {
			t.Fatal(err)
		}
		got, err := s.Customer(ctx, "p6")
		if err != nil || got != c {
			t.Fatalf("Customer = %q, %v; want %q", got, err, c)
		}
	}
}

// attributionAdd is one AddAttribution call and whether it should count
// as new.
type attributionAdd struct {
	a   payment.Attribution
	new bool
}

// addAttributions makes each call in order and checks its "new" answer.
func addAttributions(t *testing.T, s payment.Store, adds []attributionAdd) {
	t.Helper()
	for i, ad := range adds {
		got, err := s.AddAttribution(context.Background(), ad.a)
		if err != nil {
			t.Fatal(err)
		}
		if got != ad.new {
			t.Errorf("add #%d (%s) new = %v, want %v", i, ad.a.ID, got, ad.new)
		}
	}
}

func testAttribution(t *testing.T, s payment.Store) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	adds := []attributionAdd{
		{payment.Attribution{ID: "cs_1", Kind: payment.AttributionCheckout, AmbassadorID: "amb_1", Amount: 800, Currency: "usd", At: at}, true},
		{payment.Attribution{ID: "cs_1", Kind: payment.AttributionCheckout, AmbassadorID: "amb_1", Amount: 800, Currency: "usd", At: at}, false},
		{payment.Attribution{ID: "in_1", Kind: payment.AttributionInvoice, AmbassadorID: "amb_1", Amount: 800, Currency: "usd", At: at}, true},
		{payment.Attribution{ID: "in_2", Kind: payment.AttributionInvoice, AmbassadorID: "amb_1", Amount: 700, Currency: "eur", At: at}, true},
		{payment.Attribution{ID: "in_2", Kind: payment.AttributionInvoice, AmbassadorID: "amb_1", Amount: 700, Currency: "eur", At: at}, false},
		{payment.Attribution{ID: "in_3", Kind: payment.AttributionInvoice, AmbassadorID: "amb_2", Amount: 100, Currency: "usd", At: at}, true},
		// The same sale named with another ambassador (the code's metadata
		// was edited between two syncs) is still counted once.
		{payment.Attribution{ID: "in_1", Kind: payment.AttributionInvoice, AmbassadorID: "amb_2", Amount: 800, Currency: "usd", At: at}, false},
		{payment.Attribution{ID: "cs_1", Kind: payment.AttributionCheckout, AmbassadorID: "amb_2", Amount: 800, Currency: "usd", At: at}, false},
	}
	addAttributions(t, s, adds)
	got, err := s.AmbassadorStats(ctx, "amb_1")
	if err != nil {
		t.Fatal(err)
	}
	want := payment.AmbassadorStats{AmbassadorID: "amb_1", Checkouts: 1, Invoices: 2, Revenue: map[string]int64{"usd": 800, "eur": 700}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AmbassadorStats(amb_1) mismatch (-want +got):\n%s", diff)
	}
	got2, err := s.AmbassadorStats(ctx, "amb_2")
	if err != nil {
		t.Fatal(err)
	}
	want2 := payment.AmbassadorStats{AmbassadorID: "amb_2", Invoices: 1, Revenue: map[string]int64{"usd": 100}}
	if diff := cmp.Diff(want2, got2, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("AmbassadorStats(amb_2) mismatch (-want +got):\n%s", diff)
	}
	none, err := s.AmbassadorStats(ctx, "amb_none")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(payment.AmbassadorStats{AmbassadorID: "amb_none"}, none, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("AmbassadorStats(amb_none) mismatch (-want +got):\n%s", diff)
	}
}

func testAttributionConcurrent(t *testing.T, s payment.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			a := payment.Attribution{ID: fmt.Sprint("in_c", i%10), Kind: payment.AttributionInvoice, AmbassadorID: "amb_c", Amount: 100, Currency: "usd"}
			if _, err := s.AddAttribution(ctx, a); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.AmbassadorStats(ctx, "amb_c")
	if err != nil {
		t.Fatal(err)
	}
	if got.Invoices != 10 || got.Revenue["usd"] != 1000 {
		t.Fatalf("after 40 adds of 10 distinct invoices: %+v, want 10 invoices, usd 1000", got)
	}
}

// testAttributionRefund: refunds come off the revenue of the ambassador
// they name, once per refund ID, and are counted.
func testAttributionRefund(t *testing.T, s payment.Store) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	adds := []attributionAdd{
		{payment.Attribution{ID: "in_r1", Kind: payment.AttributionInvoice, AmbassadorID: "amb_r", Amount: 1000, Currency: "usd", At: at}, true},
		{payment.Attribution{ID: "re_1", Kind: payment.AttributionRefund, AmbassadorID: "amb_r", Amount: 300, Currency: "usd", At: at}, true},
		{payment.Attribution{ID: "re_1", Kind: payment.AttributionRefund, AmbassadorID: "amb_r", Amount: 300, Currency: "usd", At: at}, false},
		{payment.Attribution{ID: "re_2", Kind: payment.AttributionRefund, AmbassadorID: "amb_r", Amount: 700, Currency: "usd", At: at}, true},
		// A refund recorded before its sale (events out of order).
		{payment.Attribution{ID: "re_3", Kind: payment.AttributionRefund, AmbassadorID: "amb_r", Amount: 500, Currency: "eur", At: at}, true},
		{payment.Attribution{ID: "in_r2", Kind: payment.AttributionInvoice, AmbassadorID: "amb_r", Amount: 900, Currency: "eur", At: at}, true},
	}
	addAttributions(t, s, adds)
	got, err := s.AmbassadorStats(ctx, "amb_r")
	if err != nil {
		t.Fatal(err)
	}
	want := payment.AmbassadorStats{AmbassadorID: "amb_r", Invoices: 2, Refunds: 3, Revenue: map[string]int64{"usd": 0, "eur": 400}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AmbassadorStats(amb_r) mismatch (-want +got):\n%s", diff)
	}
	if _, err := s.AddAttribution(ctx, payment.Attribution{ID: "re_neg", Kind: payment.AttributionRefund, AmbassadorID: "amb_r", Amount: -5, Currency: "usd"}); err == nil {
		t.Error("AddAttribution with a negative amount succeeded")
	}
}
