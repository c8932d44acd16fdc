package fakepay_test

import (
	"testing"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
	"github.com/bodybroker/sdk/payment/paymenttest"
)

func TestConformance(t *testing.T) {
	paymenttest.TestProvider(t, paymenttest.ProviderHarness{
		Features: paymenttest.AllProviderFeatures(),
		New: func(t *testing.T) payment.Provider {
			p, err := fakepay.New(fakepay.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
	})
}
