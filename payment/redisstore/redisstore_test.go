package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
	"github.com/bodybroker/sdk/payment/paymenttest"
	"github.com/bodybroker/sdk/payment/redisstore"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// client returns a Redis client on BB_REDIS_ADDR, or skips the test.
func client(tb testing.TB) redis.UniversalClient { return servicetest.Redis(tb) }

// prefix returns a unique key prefix whose keys are deleted at cleanup.
func prefix(tb testing.TB, rdb redis.UniversalClient) string {
	return servicetest.KeyPrefix(tb, rdb, "payment")
}

func newStore(tb testing.TB) (*redisstore.Store, redis.UniversalClient, string) {
	tb.Helper()
	rdb := client(tb)
	p := prefix(tb, rdb)
	s, err := redisstore.New(rdb, redisstore.Options{Prefix: p})
	if err != nil {
		tb.Fatal(err)
	}
	return s, rdb, p
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

func TestConformance(t *testing.T) {
	paymenttest.TestStore(t, func(t *testing.T) payment.Store {
		s, _, _ := newStore(t)
		return s
	})
}

func TestNewRequiresClient(t *testing.T) {
	if _, err := redisstore.New(nil, redisstore.Options{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func TestGrantMovesBetweenPlayers(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	g := payment.Grant{PlayerID: "a", SourceID: "sub_1", Status: payment.StatusActive, Version: 1}
	if _, err := s.PutGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	g.PlayerID, g.Version = "b", 2
	if _, err := s.PutGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if gs, _ := s.Grants(ctx, "a"); len(gs) != 0 {
		t.Fatalf("old owner still holds %+v", gs)
	}
	if gs, _ := s.Grants(ctx, "b"); len(gs) != 1 {
		t.Fatalf("new owner holds %+v", gs)
	}
	if p, err := s.GrantOwner(ctx, "sub_1"); err != nil || p != "b" {
		t.Fatalf("GrantOwner = %q, %v", p, err)
	}
}

// TestServiceOnRedis runs a checkout-to-entitlement flow with the Redis
// store, and checks the store is shared: a second Service on the same
// keys (another server) sees the entitlement and skips the duplicate.
func TestServiceOnRedis(t *testing.T) {
	s, rdb, p := newStore(t)
	ctx := context.Background()
	fake := newFake(t, nil)
	mk := func(store payment.Store) *payment.Service {
		svc, err := payment.New(payment.Options{
			Provider: fake, Store: store, WebhookSecrets: []payment.Secret{"whsec_r"},
			Plans: []payment.Plan{{ID: "vip", Prices: []payment.Price{{ID: "price_vip"}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	a := mk(s)
	sub := fake.Subscribe("p1", "price_vip")
	ev := fake.Events()[0]
	body := fake.Payload(ev)
	if r, err := a.Webhooks().Process(ctx, body, fakepay.Sign(body, time.Now(), "whsec_r")); err != nil || r != payment.ResultProcessed {
		t.Fatalf("Process = %v, %v", r, err)
	}
	s2, err := redisstore.New(rdb, redisstore.Options{Prefix: p})
	if err != nil {
		t.Fatal(err)
	}
	b := mk(s2)
	if r, err := b.Webhooks().Process(ctx, body, fakepay.Sign(body, time.Now(), "whsec_r")); err != nil || r != payment.ResultDuplicate {
		t.Fatalf("second server Process = %v, %v; want duplicate", r, err)
	}
	ent, err := b.Entitlements().Get(ctx, "p1")
	if err != nil || !ent.Active || ent.SourceID != sub {
		t.Fatalf("entitlement via the second server = %+v, %v", ent, err)
	}
}
