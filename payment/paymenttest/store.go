package paymenttest

import (
	"context"
	"errors"
	"fmt"
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
		{"PutGrantVersions", testPutGrantVersions},
		{"GrantsRoundTrip", testGrantsRoundTrip},
		{"PutGrantConcurrent", testPutGrantConcurrent},
		{"GrantOwner", testGrantOwner},
		{"Customer", testCustomer},
		{"Attribution", testAttribution},
		{"AttributionConcurrent", testAttributionConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

func testClaimEvent(t *testing.T, s payment.Store) {
	ctx := context.Background()
	for i, want := range []bool{true, false, false} {
		got, err := s.ClaimEvent(ctx, "evt_1", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("claim #%d = %v, want %v", i+1, got, want)
		}
	}
	if err := s.ReleaseEvent(ctx, "evt_1"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimEvent(ctx, "evt_1", time.Hour); err != nil || !got {
		t.Fatalf("claim after release = %v, %v; want true, nil", got, err)
	}
	if got, err := s.ClaimEvent(ctx, "evt_2", time.Hour); err != nil || !got {
		t.Fatalf("claim of another event = %v, %v; want true, nil", got, err)
	}
	if err := s.ReleaseEvent(ctx, "evt_never"); err != nil {
		t.Fatalf("release of an unclaimed event: %v", err)
	}
}

func testClaimExpires(t *testing.T, s payment.Store) {
	ctx := context.Background()
	if ok, err := s.ClaimEvent(ctx, "evt_ttl", 50*time.Millisecond); err != nil || !ok {
		t.Fatalf("first claim = %v, %v", ok, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		ok, err := s.ClaimEvent(ctx, "evt_ttl", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("claim did not expire after its ttl")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testClaimConcurrent(t *testing.T, s payment.Store) {
	ctx := context.Background()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			ok, err := s.ClaimEvent(ctx, "evt_race", time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if got := wins.Load(); got != 1 {
		t.Fatalf("%d concurrent claims won, want 1", got)
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

func testAttribution(t *testing.T, s payment.Store) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	adds := []struct {
		a   payment.Attribution
		new bool
	}{
		{payment.Attribution{ID: "cs_1", Kind: payment.AttributionCheckout, AmbassadorID: "amb_1", Amount: 800, Currency: "usd", At: at}, true},
		{payment.Attribution{ID: "cs_1", Kind: payment.AttributionCheckout, AmbassadorID: "amb_1", Amount: 800, Currency: "usd", At: at}, false},
		{payment.Attribution{ID: "in_1", Kind: payment.AttributionInvoice, AmbassadorID: "amb_1", Amount: 800, Currency: "usd", At: at}, true},
		{payment.Attribution{ID: "in_2", Kind: payment.AttributionInvoice, AmbassadorID: "amb_1", Amount: 700, Currency: "eur", At: at}, true},
		{payment.Attribution{ID: "in_2", Kind: payment.AttributionInvoice, AmbassadorID: "amb_1", Amount: 700, Currency: "eur", At: at}, false},
		{payment.Attribution{ID: "in_3", Kind: payment.AttributionInvoice, AmbassadorID: "amb_2", Amount: 100, Currency: "usd", At: at}, true},
	}
	for i, ad := range adds {
		got, err := s.AddAttribution(ctx, ad.a)
		if err != nil {
			t.Fatal(err)
		}
		if got != ad.new {
			t.Errorf("add #%d (%s) new = %v, want %v", i, ad.a.ID, got, ad.new)
		}
	}
	got, err := s.AmbassadorStats(ctx, "amb_1")
	if err != nil {
		t.Fatal(err)
	}
	want := payment.AmbassadorStats{AmbassadorID: "amb_1", Checkouts: 1, Invoices: 2, Revenue: map[string]int64{"usd": 800, "eur": 700}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AmbassadorStats(amb_1) mismatch (-want +got):\n%s", diff)
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
