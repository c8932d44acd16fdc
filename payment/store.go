package payment

import (
	"context"
	"time"
)

// Store keeps what the payment package must remember between webhooks:
// which events were seen, each player's grants, the player↔customer link,
// and ambassador attributions. [MemoryStore] is the in-memory default and
// package redisstore keeps it in Redis; paymenttest.TestStore is the
// conformance suite every implementation must pass.
//
// Implementations must be safe for concurrent use, including from several
// processes sharing one backend.
type Store interface {
	// ClaimEvent starts processing an event (insert first). If the event
	// is neither finished nor claimed by an unexpired lease, it is claimed
	// for lease under token and the result is ClaimAcquired with a fresh
	// Version; the caller then syncs and calls FinishEvent, or ReleaseEvent
	// if the sync failed. A claim whose holder died expires after lease, so
	// the provider's next redelivery is processed. ClaimBusy means another
	// worker holds the claim; ClaimDone that the event was finished. A
	// claim that is not acquired takes no version: duplicate deliveries
	// leave the counter behind NextVersion where it was.
	ClaimEvent(ctx context.Context, eventID, token string, lease time.Duration) (EventClaim, error)
	// FinishEvent marks an event processed and remembers it for retention,
	// whoever holds its claim.
	FinishEvent(ctx context.Context, eventID string, retention time.Duration) error
	// ReleaseEvent drops the claim taken with token, so that a redelivery
	// of an event whose processing failed is processed again. It leaves a
	// finished event, or a claim another worker took after this one's
	// lease expired, alone.
	ReleaseEvent(ctx context.Context, eventID, token string) error
	// NextVersion returns a version greater than every version this store
	// (across all processes sharing it) returned before, from NextVersion
	// or ClaimEvent. A sync takes one before it reads the provider and
	// writes grants with it, so that of two syncs the one that started
	// later wins, whatever the servers' clocks say.
	NextVersion(ctx context.Context) (int64, error)

	// PutGrant stores g under (g.PlayerID, g.SourceID) unless the stored
	// grant has a higher Version; it reports whether g was written. Equal
	// versions overwrite.
	PutGrant(ctx context.Context, g Grant) (bool, error)
	// Grants returns a player's grants in any order (none: empty, nil error).
	Grants(ctx context.Context, playerID string) ([]Grant, error)
	// GrantOwner returns the player holding the grant for sourceID, or
	// ErrNotFound.
	GrantOwner(ctx context.Context, sourceID string) (string, error)

	// PutCustomer links a player to a provider customer.
	PutCustomer(ctx context.Context, playerID, customerID string) error
	// Customer returns the customer linked to playerID, or ErrNotFound.
	Customer(ctx context.Context, playerID string) (string, error)

	// AddAttribution records a sale attributed to an ambassador, or a
	// refund of one, once per a.ID (whatever the ambassador: a second
	// attribution of the same checkout, invoice or refund never counts);
	// it reports whether it was new. Stats are updated in the same step,
	// so a duplicate never counts twice: a checkout adds to Checkouts, an
	// invoice to Invoices and Revenue, a refund to Refunds and subtracts
	// its Amount from Revenue.
	AddAttribution(ctx context.Context, a Attribution) (bool, error)
	// AmbassadorStats returns the totals of an ambassador's attributions
	// (zero totals if there are none).
	AmbassadorStats(ctx context.Context, ambassadorID string) (AmbassadorStats, error)
}

// ClaimState is what [Store.ClaimEvent] found.
type ClaimState int

// Claim states.
const (
	// ClaimAcquired: the caller holds the claim and must process the event.
	ClaimAcquired ClaimState = iota + 1
	// ClaimBusy: another worker holds an unexpired claim on the event.
	ClaimBusy
	// ClaimDone: the event was processed already.
	ClaimDone
)

// EventClaim is the result of [Store.ClaimEvent].
type EventClaim struct {
	State ClaimState
	// Version is set with ClaimAcquired: a fresh version, as from
	// NextVersion, taken before anything for the event was read.
	Version int64
}

// AttributionKind says what an attribution records.
type AttributionKind string

// Attribution kinds.
const (
	// AttributionCheckout: a completed, paid checkout that used the code.
	AttributionCheckout AttributionKind = "checkout"
	// AttributionInvoice: a paid invoice (first payment or renewal) that
	// carried the code's discount: the basis for revenue share.
	AttributionInvoice AttributionKind = "invoice"
	// AttributionRefund: a refund (partial or full) of such an invoice's
	// payment. Its ID is the refund's and its Amount, positive, comes off
	// the ambassador's revenue in Currency.
	AttributionRefund AttributionKind = "refund"
)

// Attribution is one sale credited to an ambassador.
type Attribution struct {
	// ID is the checkout session, invoice or refund ID; attributions are
	// unique by ID.
	ID              string          `json:"id"`
	Kind            AttributionKind `json:"kind"`
	AmbassadorID    string          `json:"ambassador_id"`
	PlayerID        string          `json:"player_id,omitempty"`
	PromotionCodeID string          `json:"promotion_code_id,omitempty"`
	Code            string          `json:"code,omitempty"`
	CouponID        string          `json:"coupon_id,omitempty"`
	Amount          int64           `json:"amount"`
	Currency        string          `json:"currency,omitempty"`
	At              time.Time       `json:"at"`
}

// AmbassadorStats totals an ambassador's attributions.
type AmbassadorStats struct {
	AmbassadorID string `json:"ambassador_id"`
	// Checkouts counts paid checkouts made with the ambassador's code.
	Checkouts int64 `json:"checkouts"`
	// Invoices counts paid invoices carrying the ambassador's discount.
	Invoices int64 `json:"invoices"`
	// Refunds counts refunds (partial or full) of those invoices.
	Refunds int64 `json:"refunds"`
	// Revenue sums the paid invoice amounts by currency (minor units),
	// net of their refunds.
	Revenue map[string]int64 `json:"revenue,omitempty"`
}
