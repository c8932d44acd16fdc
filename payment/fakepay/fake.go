package fakepay

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/bodybroker/sdk/payment"
)

// APIVersion is the API version the fake renders events in by default
// (Stripe's version pinned by stripe-go v76).
const APIVersion = "2023-10-16"

// Period is the billing period of the fake's subscriptions.
const Period = 30 * 24 * time.Hour

// Provider is a stateful in-memory payment.Provider. Its zero value is not
// ready: use [New]. It is safe for concurrent use, starts no goroutines and
// needs no closing. Simulation methods (CompleteCheckout, Renew, …) change
// state the way Stripe would and append the events Stripe would send;
// [Provider.Payload] renders an event as a webhook body.
type Provider struct {
	mu  sync.Mutex
	now func() time.Time
	seq int

	apiVersion string
	customers  map[string]fakeCustomer
	sessions   map[string]*payment.CheckoutSession
	subs       map[string]*payment.Subscription
	invoices   map[string]*payment.Invoice
	charges    map[string]*payment.Charge
	coupons    map[string]*payment.Coupon
	promos     map[string]*payment.PromotionCode
	portals    int
	events     []fakeEvent
	idem       map[string]idemEntry
	calls      map[string]int
	fail       map[string]error
}

type fakeCustomer struct {
	ID, PlayerID, Email string
}

type fakeEvent struct {
	ev        payment.Event
	snapshot  map[string]any
	delivered bool
}

type idemEntry struct {
	params any
	result any
}

var _ payment.Provider = (*Provider)(nil)

// Options configure a [Provider]. The zero value is ready to use.
type Options struct {
	// Now is the provider's clock: it stamps objects and events and sets
	// subscription periods. nil means time.Now.
	Now func() time.Time
}

// New returns an empty fake provider. Every Options value is valid today;
// the error is there so that New has the shape of every constructor in the
// SDK and can refuse options added later.
func New(opts Options) (*Provider, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Provider{
		now: now, apiVersion: APIVersion,
		customers: map[string]fakeCustomer{}, sessions: map[string]*payment.CheckoutSession{},
		subs: map[string]*payment.Subscription{}, invoices: map[string]*payment.Invoice{},
		charges: map[string]*payment.Charge{}, coupons: map[string]*payment.Coupon{},
		promos: map[string]*payment.PromotionCode{}, idem: map[string]idemEntry{},
		calls: map[string]int{}, fail: map[string]error{},
	}, nil
}

func (f *Provider) id(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s_fake%06d", prefix, f.seq)
}

// Calls returns how many times op was called (ops are the Provider method
// names, e.g. "CreateCustomer").
func (f *Provider) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// FailNext makes the next call of op return err (once).
func (f *Provider) FailNext(op string, err error) {
	f.mu.Lock()
	f.fail[op] = err
	f.mu.Unlock()
}

// enter records a call and returns an injected failure; f.mu must be held.
func (f *Provider) enter(ctx context.Context, op string) error {
	f.calls[op]++
	if err := ctx.Err(); err != nil {
		return err
	}
	if err, ok := f.fail[op]; ok {
		delete(f.fail, op)
		return err
	}
	return nil
}

// idempotent emulates Stripe's idempotency keys: the first result for a
// key is replayed; the same key with other params is an error.
func (f *Provider) idempotent(key string, params any, create func() (any, error)) (any, error) {
	if key == "" {
		return create()
	}
	if e, ok := f.idem[key]; ok {
		if !reflect.DeepEqual(e.params, params) {
			return nil, &payment.ProviderError{Op: "idempotency", Kind: payment.ErrIdempotency, HTTPStatus: 400,
				Code: "idempotency_error", Message: "Keys for idempotent requests can only be used with the same parameters they were first used with."}
		}
		return e.result, nil
	}
	r, err := create()
	if err != nil {
		return nil, err
	}
	f.idem[key] = idemEntry{params: params, result: r}
	return r, nil
}

func notFound(op, id string) error {
	return &payment.ProviderError{Op: op, Kind: payment.ErrNotFound, HTTPStatus: 404, Code: "resource_missing", Message: "No such object: '" + id + "'"}
}

func invalid(op, msg string) error {
	return &payment.ProviderError{Op: op, Kind: payment.ErrInvalidRequest, HTTPStatus: 400, Code: "parameter_invalid", Message: msg}
}

// SetAPIVersion changes the version the fake reports and renders events in.
func (f *Provider) SetAPIVersion(v string) {
	f.mu.Lock()
	f.apiVersion = v
	f.mu.Unlock()
}
