package stripepay_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/stripepay"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes by a handler.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// customerFields are keys and values of Stripe objects that carry
// customer data; none may reach the log.
var customerFields = []string{"email", "address", "phone", "shipping", "customer_details", "client_secret", `\"name\"`, "p1@game.example", "Jenny"}

// customerValues is the customer data the error test's server echoes.
var customerValues = []string{"p1@game.example", "Jenny", `\"name\"`}

func debugProvider(t *testing.T, base string, hc *http.Client) (*stripepay.Provider, *syncBuffer) {
	t.Helper()
	var buf syncBuffer
	p, err := stripepay.New(stripepay.Options{
		APIKey: "sk_test_123", URL: base, DisableRetries: true, HTTPClient: hc,
		Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, &buf
}

func noCustomerData(t *testing.T, log string, fields []string) {
	t.Helper()
	for _, f := range fields {
		if strings.Contains(log, f) {
			t.Errorf("debug log contains %q:\n%s", f, log)
		}
	}
}

// TestDebugLogHasIDsOnly: at debug level, stripe-go's request and
// response lines name objects by ID; the objects themselves (customer
// emails, names, addresses) never reach the log.
func TestDebugLogHasIDsOnly(t *testing.T) {
	base := servicetest.StripeMock(t)
	p, buf := debugProvider(t, base, &http.Client{Timeout: 10 * time.Second})
	ctx := context.Background()
	cus, err := p.CreateCustomer(ctx, payment.CustomerParams{PlayerID: "p1", Email: "p1@game.example"})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := p.CreateCheckoutSession(ctx, payment.CheckoutParams{
		Mode: payment.ModeSubscription, PriceID: "price_premium", CustomerID: cus, ClientReferenceID: "p1",
		SuccessURL: "https://game.example/ok", CancelURL: "https://game.example/cancel",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetCheckoutSession(ctx, cs.ID); err != nil {
		t.Fatal(err)
	}
	sub, err := p.GetSubscription(ctx, "sub_1") // expands the customer
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetInvoice(ctx, "in_1"); err != nil {
		t.Fatal(err)
	}
	if err := p.ListEvents(ctx, payment.EventQuery{}, func(payment.Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	log := buf.String()
	noCustomerData(t, log, customerFields)
	for _, id := range []string{cus, cs.ID, sub.ID, `"object":"customer"`, `"object":"list"`} {
		if !strings.Contains(log, id) {
			t.Errorf("debug log does not name %s:\n%s", id, log)
		}
	}
}

// TestErrorLogHasNoCustomerData: error responses and undecodable bodies
// are logged without the message or body, which can echo customer data.
func TestErrorLogHasNoCustomerData(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Request-Id", "req_123")
		if strings.HasPrefix(r.URL.Path, "/v1/subscriptions/") {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`{"id":"cus_9","object":"customer","email":"p1@game.example","name":"Jenny"`)) // truncated JSON
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"email_invalid","param":"email","message":"Invalid email address: p1@game.example"}}`))
	}))
	defer srv.Close()
	p, buf := debugProvider(t, srv.URL, srv.Client())
	ctx := context.Background()
	if _, err := p.CreateCustomer(ctx, payment.CustomerParams{PlayerID: "p1", Email: "p1@game.example"}); err == nil {
		t.Fatal("CreateCustomer succeeded against an error response")
	}
	if _, err := p.GetCoupon(ctx, "cpn_9"); err == nil {
		t.Fatal("GetCoupon succeeded against an error response")
	}
	if _, err := p.GetSubscription(ctx, "sub_9"); err == nil {
		t.Fatal("GetSubscription succeeded against an error response")
	}
	srv.CloseClientConnections()
	log := buf.String()
	noCustomerData(t, log, customerValues)
	for _, s := range []string{"req_123", "email_invalid"} {
		if !strings.Contains(log, s) {
			t.Errorf("error log does not name %s:\n%s", s, log)
		}
	}
}
