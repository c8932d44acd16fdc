package payment

import (
	"fmt"
	"time"
)

// Mode is what a price sells: a recurring subscription or a one-time purchase.
type Mode string

// Price modes, named as Stripe Checkout names them.
const (
	ModeSubscription Mode = "subscription"
	ModePayment      Mode = "payment"
)

// Plan is one tier a player can be entitled to (the original game sold
// "basic", "premium" and "vip"). Plans are configuration: the provider's
// price IDs map onto them.
type Plan struct {
	// ID is the SDK-side name of the plan, for example "premium". Required.
	ID string
	// Name is shown to players; optional.
	Name string
	// Rank orders plans when a player holds several active grants: the
	// highest rank wins. Ties are broken by plan ID.
	Rank int
	// Prices are the provider prices that grant this plan. At least one.
	Prices []Price
	// MaxTrialDays is the longest free trial a checkout may ask for on
	// this plan's subscription prices (CheckoutRequest.TrialDays). Zero
	// means DefaultMaxTrialDays (30); at most MaxTrialDays (730, Stripe's
	// limit).
	MaxTrialDays int64
}

// Price is one provider price that grants a [Plan].
type Price struct {
	// ID is the provider's price ID, for example "price_1Nx…". Required and
	// unique across all plans.
	ID string
	// Mode is ModeSubscription (the default) or ModePayment.
	Mode Mode
	// Access is how long a one-time purchase (ModePayment) grants the plan,
	// counted from the payment. Zero means for ever. Ignored for
	// subscriptions, whose period comes from the provider.
	Access time.Duration
}

// Status is the state of a grant or an entitlement. The subscription values
// are Stripe's subscription statuses.
type Status string

// Statuses. Only StatusActive, StatusTrialing, and StatusPastDue inside its
// grace period entitle a player.
const (
	StatusNone              Status = ""
	StatusActive            Status = "active"
	StatusTrialing          Status = "trialing"
	StatusPastDue           Status = "past_due"
	StatusUnpaid            Status = "unpaid"
	StatusCanceled          Status = "canceled"
	StatusIncomplete        Status = "incomplete"
	StatusIncompleteExpired Status = "incomplete_expired"
	StatusPaused            Status = "paused"
	// StatusRefunded marks a one-time purchase whose payment was refunded.
	StatusRefunded Status = "refunded"
	// StatusPending marks a one-time purchase whose payment has not
	// settled yet (an asynchronous payment method).
	StatusPending Status = "pending"
)

// Source says where a grant comes from.
type Source string

// Grant sources.
const (
	SourceSubscription Source = "subscription"
	SourcePurchase     Source = "purchase"
)

// Grant is the synced state of one provider object that can entitle a
// player: a subscription, or a one-time purchase (keyed by its payment).
// Stores keep grants per player; an [Entitlement] is derived from them.
type Grant struct {
	PlayerID   string `json:"player_id"`
	SourceID   string `json:"source_id"` // subscription ID or payment ID
	Source     Source `json:"source"`
	Plan       string `json:"plan"` // empty: a price outside the catalog
	PriceID    string `json:"price_id"`
	CustomerID string `json:"customer_id,omitempty"`
	Status     Status `json:"status"`
	// PeriodStart and PeriodEnd bound the current billing period of a
	// subscription, or the access window of a purchase (zero PeriodEnd:
	// no end).
	PeriodStart time.Time `json:"period_start,omitzero"`
	PeriodEnd   time.Time `json:"period_end,omitzero"`
	// GraceUntil is when a past_due subscription stops entitling the player.
	GraceUntil        time.Time `json:"grace_until,omitzero"`
	CancelAtPeriodEnd bool      `json:"cancel_at_period_end,omitempty"`
	// Version orders writes of the same grant: a store keeps the grant with
	// the highest version and ignores older writes, so a slow sync that
	// read older provider state never overwrites a newer one. The Service
	// takes it from the Store (ClaimEvent or NextVersion) before it reads
	// the provider, so versions are ordered across every server sharing
	// the store, independently of their clocks: of two syncs, the one that
	// started later wins, and the sync of the last change to an object
	// starts after that change.
	Version int64 `json:"version"`
	// SyncedAt is when the grant was last read from the provider.
	SyncedAt time.Time `json:"synced_at,omitzero"`
}

// Entitles reports whether the grant entitles its player at now. A grant
// without a plan (a subscription moved to a price outside the catalog)
// entitles nothing.
func (g Grant) Entitles(now time.Time) bool {
	if g.Plan == "" {
		return false
	}
	switch g.Status {
	case StatusActive, StatusTrialing:
		return g.PeriodEnd.IsZero() || g.Source == SourceSubscription || now.Before(g.PeriodEnd)
	case StatusPastDue:
		return now.Before(g.GraceUntil)
	default:
		return false
	}
}

// Entitlement is what a player is entitled to right now: the answer a game
// server needs on every request. The zero value means "nothing".
type Entitlement struct {
	PlayerID string `json:"player_id"`
	// Plan is the entitled plan's ID, or, when Active is false, the plan of
	// the grant with the latest period start (empty if the player never
	// had one).
	Plan string `json:"plan,omitempty"`
	// Active reports whether the player is entitled to Plan now.
	Active bool   `json:"active"`
	Status Status `json:"status,omitempty"`
	// PeriodEnd is the end of the current period (zero: no end).
	PeriodEnd time.Time `json:"period_end,omitzero"`
	// GraceUntil is set while a past_due subscription is in its grace period.
	GraceUntil        time.Time `json:"grace_until,omitzero"`
	CancelAtPeriodEnd bool      `json:"cancel_at_period_end,omitempty"`
	Source            Source    `json:"source,omitempty"`
	SourceID          string    `json:"source_id,omitempty"`
}

// String describes the entitlement in one line.
func (e Entitlement) String() string {
	if !e.Active {
		return fmt.Sprintf("player=%s plan=%s inactive status=%s", e.PlayerID, e.Plan, e.Status)
	}
	return fmt.Sprintf("player=%s plan=%s active status=%s", e.PlayerID, e.Plan, e.Status)
}

// Equal reports whether two entitlements are the same (times compared
// with time.Time.Equal).
func (e Entitlement) Equal(o Entitlement) bool {
	return e.PlayerID == o.PlayerID && e.Plan == o.Plan && e.Active == o.Active && e.Status == o.Status &&
		e.PeriodEnd.Equal(o.PeriodEnd) && e.GraceUntil.Equal(o.GraceUntil) &&
		e.CancelAtPeriodEnd == o.CancelAtPeriodEnd && e.Source == o.Source && e.SourceID == o.SourceID
}

// resolve derives a player's entitlement from their grants at now. rank
// maps plan IDs to ranks.
func resolve(playerID string, grants []Grant, now time.Time, rank func(string) int) Entitlement {
	var best, latest *Grant
	for i := range grants {
		g := &grants[i]
		if g.Entitles(now) {
			if best == nil || better(g, best, rank) {
				best = g
			}
		}
		// "Latest" is judged by provider data only (never by sync time), so
		// the answer does not depend on the order events arrived in.
		if latest == nil || g.PeriodStart.After(latest.PeriodStart) ||
			(g.PeriodStart.Equal(latest.PeriodStart) && g.SourceID > latest.SourceID) {
			latest = g
		}
	}
	e := Entitlement{PlayerID: playerID}
	g := best
	if g == nil {
		g = latest
	}
	if g == nil {
		return e
	}
	e.Plan = g.Plan
	e.Active = best != nil
	e.Status = g.Status
	e.PeriodEnd = g.PeriodEnd
	if g.Status == StatusPastDue {
		e.GraceUntil = g.GraceUntil
	}
	e.CancelAtPeriodEnd = g.CancelAtPeriodEnd
	e.Source = g.Source
	e.SourceID = g.SourceID
	return e
}

func better(a, b *Grant, rank func(string) int) bool {
	ra, rb := rank(a.Plan), rank(b.Plan)
	if ra != rb {
		return ra > rb
	}
	// Same rank: prefer a fully active grant over a grace-period one, then
	// the later period end (zero = for ever), then the source ID.
	pa, pb := a.Status == StatusPastDue, b.Status == StatusPastDue
	if pa != pb {
		return !pa
	}
	if !a.PeriodEnd.Equal(b.PeriodEnd) {
		if a.PeriodEnd.IsZero() {
			return true
		}
		if b.PeriodEnd.IsZero() {
			return false
		}
		return a.PeriodEnd.After(b.PeriodEnd)
	}
	return a.SourceID < b.SourceID
}

// TopicEntitlementChanged is the event-bus topic on which a player's
// entitlement changes are published (payload [EntitlementChange]).
const TopicEntitlementChanged = "payment.entitlement.changed"

// EntitlementChangeVersion is the current version of [EntitlementChange].
const EntitlementChangeVersion = 1

// EntitlementChange is the payload of [TopicEntitlementChanged]. It is
// versioned and JSON-encoded; new fields are only ever added.
type EntitlementChange struct {
	Version  int         `json:"v"`
	PlayerID string      `json:"player_id"`
	Previous Entitlement `json:"previous"`
	Current  Entitlement `json:"current"`
	// EventID and EventType name the provider event that caused the change;
	// empty when the change came from a direct sync (checkout return).
	EventID   string    `json:"event_id,omitempty"`
	EventType string    `json:"event_type,omitempty"`
	At        time.Time `json:"at"`
}
