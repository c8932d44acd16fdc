package stripepay_test

import (
	"testing"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
	"go.uber.org/goleak"
)

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

// Idle keep-alive connections of the HTTP clients (to stripe-mock and the
// test servers) are the only goroutines allowed to outlive a test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}
