package stripepay_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Idle keep-alive connections of the HTTP clients (to stripe-mock and the
// test servers) are the only goroutines allowed to outlive a test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}
