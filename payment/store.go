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
	// ClaimEvent records that an event is being processed. It returns true
	// if the ID was not claimed before (or its claim expired after ttl), and
	// false for a duplicate. The claim is made before the event is
	// processed (insert first); see ReleaseEvent.
	ClaimEvent(ctx context.Context, eventID string, ttl time.Duration) (bool, error)
	// ReleaseEvent removes a claim, so that a redelivery of an event whose
	// processing failed is processed again.
	ReleaseEvent(ctx context.Context, eventID string) error

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

	// AddAttribution records a sale attributed to an ambassador, once per
	// a.ID; it reports whether it was new. Stats are updated in the same
	// step, so a duplicate never counts twice.
	AddAttribution(ctx context.Context, a Attribution) (bool, error)
	// AmbassadorStats returns the totals of an ambassador's attributions
	// (zero totals if there are none).
	AmbassadorStats(ctx context.Context, ambassadorID string) (AmbassadorStats, error)
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
)

// Attribution is one sale credited to an ambassador.
type Attribution struct {
	// ID is the checkout session or invoice ID; attributions are unique by ID.
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
	// Revenue sums the paid invoice amounts by currency (minor units).
	Revenue map[string]int64 `json:"revenue,omitempty"`
}
