// Package fakepay is a stateful in-memory stand-in for Stripe: a
// payment.Provider for examples, demo servers and tests that keeps
// customers, checkout sessions, subscriptions, invoices, charges, coupons,
// promotion codes and an event log, and emulates idempotency keys and the
// cross-field rules stripe-mock does not check.
//
// It links neither stripe-go nor package testing, so a server may use it
// (a demo build, a local game server) as well as a test.
//
// # Usage
//
//	fake, err := fakepay.New(fakepay.Options{Now: clock.Now})
//	svc, err := payment.New(payment.Options{Provider: fake, ...})
//
// The provider API (provider.go) answers the calls payment.Service makes.
// Simulation methods (simulate.go: [Provider.CompleteCheckout],
// [Provider.Renew], [Provider.Refund], …) change state the way Stripe
// would between API calls and append the events Stripe would send. The
// event log (events.go) renders an event as a webhook body
// ([Provider.Payload], [EventPayload]) and [Sign] signs it as Stripe does,
// for delivery to payment.Service's webhook handler.
//
// Test controls: [Provider.Calls] counts calls per method and
// [Provider.FailNext] injects a failure into the next one.
//
// The conformance suite payment/paymenttest.TestProvider holds this fake
// and payment/stripepay to one contract.
package fakepay
