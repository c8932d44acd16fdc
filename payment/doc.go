// Package payment sells subscriptions and one-time passes through a
// payment provider (Stripe, in package stripepay) and answers the one
// question a game server asks on every request: what is this player
// entitled to right now?
//
// The core package does not import stripe-go or go-redis. It talks to the
// provider through the [Provider] seam and keeps its state behind the
// [Store] seam.
//
// # Usage
//
// Configure the plans (which provider prices grant which tier), a
// provider, a store and the webhook signing secrets, then hand out the
// four APIs to the callers that should have them:
//
//	svc, err := payment.New(payment.Options{
//		Provider:       prov,  // stripepay.New(…)
//		Store:          store, // redisstore.New(…), or nil for memory
//		Plans:          plans,
//		WebhookSecrets: []payment.Secret{payment.Secret(os.Getenv("STRIPE_WHSEC"))},
//	})
//	mux.Handle("POST /stripe/webhook", svc.Webhooks())      // the provider
//	res, err := svc.Checkout().Start(ctx, req)              // players
//	ok, err := svc.Entitlements().Has(ctx, player, "vip")   // game servers
//	_, err = svc.Admin().CreateAmbassadorCode(ctx, params)  // operators only
//
// # Checkout
//
// [Checkout.Start] finds or creates the player's customer (player ID in
// its metadata, deterministic idempotency key), and creates a session with
// client_reference_id, the player and plan in the session metadata and in
// the subscription's (or payment's) metadata, and the success and cancel
// URLs. A code the player typed is resolved server-side and applied as a
// promotion code; without one the promotion-code box is offered. The two
// are never sent together (Stripe rejects that, which broke every coupon
// checkout of the original system). [Checkout.Portal] opens the customer
// portal; [Checkout.Complete] syncs a finished session for the success
// page through the webhook's own path.
//
// Everything a player controls is checked before any provider call: IDs
// must be printable UTF-8 of at most [MaxIDBytes] ([ErrInvalidID]);
// success, cancel and return URLs must be absolute http(s) URLs, on a
// host in Options.RedirectHosts when that is set ([ErrInvalidURL]); a
// trial may not exceed its plan's MaxTrialDays, [DefaultMaxTrialDays]
// unless configured ([ErrTrialTooLong]).
//
// Promotion codes typed by players are throttled per player
// (Options.CodeLimit: by default [DefaultCodeBurst] failed tries, then
// one per [DefaultCodeEvery]; over it, a [*CodeRateLimitError] before any
// lookup), cached for Options.CodeCacheTTL ([DefaultCodeCacheTTL]; a
// repeated unknown code costs no provider call), and refused with exactly
// [ErrInvalidCode] whether unknown, expired, used up or malformed, so
// that guessing learns nothing. Operators get the reason from
// [Admin.CheckPromotionCode].
//
// # Webhooks
//
// [Webhooks] is an http.Handler. It caps the body size, verifies the
// Stripe-Signature header against every configured secret (so secrets can
// be rotated), rejects timestamps outside the tolerance in either direction
// (stripe-go only rejects old ones), compares the event's API version with
// the provider's, claims the event ID in the store with a lease before
// doing anything (finished events are acknowledged as duplicates; an event
// another server is processing gets 409 so the provider retries it), and
// then treats the event only as a trigger: the subscription, session,
// invoice or charge it names is re-fetched from the provider and upserted.
// Because every sync reads the provider's current state, and grants carry a
// store-issued version so that a sync that started earlier never
// overwrites one that started later (on any server, whatever its clock),
// events may arrive late, twice or out of order without changing the
// outcome. The sync runs before the answer, bounded by Options.SyncTimeout,
// so that the provider's retries are the durable queue (see [Webhooks]): a
// failed sync releases the claim and answers 500, a process that dies
// mid-sync leaves a claim that expires after Options.EventLease, and the
// provider's retry runs the event again. Unknown
// event types are acknowledged and ignored; [HandledEventTypes] lists the
// ones to enable. [Admin.Reconcile] replays the provider's event list
// through the same path after an outage.
//
// # Entitlements
//
// A player's [Entitlement] is derived from their grants (one per
// subscription or purchase): the highest-ranked plan among grants that are
// active, trialing, or past_due within Options.PastDueGrace of the unpaid
// period's start. [Entitlements.Get] takes about 150 ns with the
// [MemoryStore] and one round trip with Redis. Every change caused by a
// sync is reported as an [EntitlementChange] to Options.OnEntitlementChange
// and, when Options.Events is set, published on that [eventbus.Bus] under
// [TopicEntitlementChanged], keyed by player ID;
// a grace period running out is a change of time, not of state, and is not
// reported.
//
// # Coupons and ambassador codes
//
// [Admin] creates, reads, lists, updates and deletes coupons, and creates,
// finds, lists and deactivates promotion codes. An ambassador gets one
// promotion code on a shared coupon with their ID in its metadata
// ([Admin.CreateAmbassadorCode]); each paid checkout and paid invoice that
// carries the code is attributed to them once, and [Admin.AmbassadorStats]
// totals checkouts, invoices and revenue by currency. Refunds follow: each
// refund (partial or full) of an attributed invoice's payment, reported
// by charge.refunded, comes off the revenue once, by refund ID.
//
// # Security
//
// Admin (coupons, codes, reconcile, stats) and Checkout (player
// operations) are separate types so a server can expose each only to the
// right caller. Credentials are of type [Secret], which redacts itself in
// fmt and slog output.
//
// # Concurrency
//
// A [Service] and the APIs it hands out are safe for concurrent use. The
// package starts no goroutines; the caller owns the Provider and Store.
//
// # Backends
//
// Package stripepay implements [Provider] on stripe-go v76. Package
// redisstore implements [Store] on go-redis v9. Package fakepay is a
// stateful in-memory fake Provider with a webhook signer, for examples,
// demo servers and tests; package paymenttest holds the Provider and Store
// conformance suites.
package payment
