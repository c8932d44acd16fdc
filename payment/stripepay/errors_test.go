package stripepay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/stripepay"
)

// TestErrorsMapToSentinels answers each call with one of Stripe's error
// shapes and checks the sentinel a caller matches with errors.Is.
func TestErrorsMapToSentinels(t *testing.T) {
	tests := []struct {
		status   int
		typ      string
		code     string
		want     error
		wantCode string
	}{
		{http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", payment.ErrInvalidRequest, "parameter_invalid_integer"},
		{http.StatusBadRequest, "idempotency_error", "", payment.ErrIdempotency, ""},
		{http.StatusPaymentRequired, "card_error", "card_declined", payment.ErrCardDeclined, "card_declined"},
		{http.StatusUnauthorized, "invalid_request_error", "", payment.ErrAuthentication, ""},
		{http.StatusForbidden, "invalid_request_error", "", payment.ErrAuthentication, ""},
		{http.StatusNotFound, "invalid_request_error", "resource_missing", payment.ErrNotFound, "resource_missing"},
		// A concurrent request with the same idempotency key is in flight:
		// retry later, the parameters are fine.
		{http.StatusConflict, "invalid_request_error", "", payment.ErrProviderUnavailable, ""},
		{http.StatusTooManyRequests, "invalid_request_error", "rate_limit", payment.ErrRateLimited, "rate_limit"},
		{http.StatusInternalServerError, "api_error", "", payment.ErrProviderUnavailable, ""},
		{http.StatusServiceUnavailable, "api_error", "", payment.ErrProviderUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, "/", tt.typ), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Request-Id", "req_1")
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, `{"error":{"type":%q,"code":%q,"message":"nope"}}`, tt.typ, tt.code)
			}))
			defer srv.Close()
			p, err := stripepay.New(stripepay.Options{APIKey: "sk_test_x", URL: srv.URL, DisableRetries: true,
				HTTPClient: srv.Client(), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.GetSubscription(context.Background(), "sub_1")
			var pe *payment.ProviderError
			if !errors.Is(err, tt.want) || !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a ProviderError wrapping %v", err, tt.want)
			}
			if pe.HTTPStatus != tt.status || pe.Code != tt.wantCode || pe.RequestID != "req_1" || pe.Op != "subscription.get" {
				t.Fatalf("ProviderError = %+v", pe)
			}
		})
	}
}
