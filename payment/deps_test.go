package payment_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the core free of the backends: a user of payment
// (or of its test helpers) links neither stripe-go nor go-redis.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{"github.com/bodybroker/sdk/payment", []string{"github.com/stripe/stripe-go", "github.com/redis/go-redis", "testing"}},
		{"github.com/bodybroker/sdk/payment/paymenttest", []string{"github.com/stripe/stripe-go", "github.com/redis/go-redis"}},
		{"github.com/bodybroker/sdk/payment/stripepay", []string{"github.com/redis/go-redis", "testing"}},
		{"github.com/bodybroker/sdk/payment/redisstore", []string{"github.com/stripe/stripe-go", "testing"}},
	}
	for _, tt := range tests {
		out, err := exec.Command("go", "list", "-deps", tt.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tt.pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, bad := range tt.forbidden {
				if dep == bad || strings.HasPrefix(dep, bad+"/") {
					t.Errorf("%s depends on %s", tt.pkg, dep)
				}
			}
		}
	}
}
