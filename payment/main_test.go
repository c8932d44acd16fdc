package payment_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The package starts no goroutines; its tests start some (concurrent
// deliveries) and must end them all.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
