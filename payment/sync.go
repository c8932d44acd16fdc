package payment

import (
	"context"
	"errors"
	"fmt"

	"github.com/bodybroker/sdk/eventbus"
)

// Metadata keys the package writes on provider objects and reads back.
const (
	MetaPlayerID      = "player_id"
	MetaPlan          = "plan"
	MetaAmbassadorID  = "ambassador_id"
	MetaProgram       = "program"
	ProgramAmbassador = "ambassador"
)

// cause is what a sync runs for: the event (empty for a direct sync) and
// the version, taken from the store before anything was read.
type cause struct {
	eventID, eventType string
	version            int64
}

func (s *Service) syncEvent(ctx context.Context, ev Event, c cause) error {
	var err error
	switch ev.Type {
	case EventCheckoutCompleted, EventCheckoutAsyncPaymentOK, EventCheckoutAsyncPaymentFailed:
		_, err = s.syncCheckout(ctx, ev.ObjectID, c)
	case EventSubscriptionCreated, EventSubscriptionUpdated, EventSubscriptionDeleted,
		EventSubscriptionPaused, EventSubscriptionResumed:
		err = s.syncSubscription(ctx, ev.ObjectID, "", c)
	case EventInvoicePaid, EventInvoicePaymentFailed:
		_, _, err = s.syncInvoice(ctx, ev.ObjectID, c)
	case EventChargeRefunded:
		err = s.syncCharge(ctx, ev.ObjectID, c)
	}
	if errors.Is(err, errSkip) {
		return nil
	}
	return err
}

// fetchFailed turns a provider "not found" into a skip: re-fetching an
// object that the provider no longer knows (another account or mode, or a
// deleted test object) can never succeed, so retrying is pointless.
func (s *Service) fetchFailed(ctx context.Context, what, id string, err error) error {
	if errors.Is(err, ErrNotFound) {
		s.log.WarnContext(ctx, "event names an object the provider does not know; skipped", "object", what, "id", id)
		return errSkip
	}
	return fmt.Errorf("fetch %s %s: %w", what, id, err)
}

// syncSubscription re-fetches a subscription and upserts its grant.
// playerHint names the player when the caller knows it (a checkout).
func (s *Service) syncSubscription(ctx context.Context, id, playerHint string, c cause) error {
	sub, err := s.provider.GetSubscription(ctx, id)
	if err != nil {
		return s.fetchFailed(ctx, "subscription", id, err)
	}
	info, ok := s.byPrice[sub.PriceID]
	if !ok {
		// A subscription that never granted anything is some other
		// product's. One that did has moved to a price outside the
		// catalog: it keeps being synced, without a plan, so that it stops
		// entitling and a later cancellation is recorded.
		owner, err := s.store.GrantOwner(ctx, sub.ID)
		if errors.Is(err, ErrNotFound) {
			s.log.DebugContext(ctx, "subscription for a price outside the catalog; skipped", "subscription", id, "price", sub.PriceID)
			return errSkip
		}
		if err != nil {
			return err
		}
		s.log.WarnContext(ctx, "subscription moved to a price outside the catalog; it grants no plan", "subscription", id, "price", sub.PriceID, "player", owner)
		playerHint = owner
	}
	player := sub.PlayerID
	if player == "" {
		player = playerHint
	}
	if player == "" {
		if p, err := s.store.GrantOwner(ctx, sub.ID); err == nil {
			player = p
		}
	}
	if player == "" {
		s.log.WarnContext(ctx, "subscription has no player_id in its or its customer's metadata; skipped", "subscription", id)
		return errSkip
	}
	g := Grant{
		PlayerID: player, SourceID: sub.ID, Source: SourceSubscription, Plan: info.plan, PriceID: sub.PriceID,
		CustomerID: sub.CustomerID, Status: sub.Status, PeriodStart: sub.CurrentPeriodStart,
		PeriodEnd: sub.CurrentPeriodEnd, CancelAtPeriodEnd: sub.CancelAtPeriodEnd,
		Version: c.version, SyncedAt: s.now().UTC(),
	}
	if g.Status == StatusPastDue {
		g.GraceUntil = sub.CurrentPeriodStart.Add(s.opts.PastDueGrace)
	}
	// The player↔customer link is stored by checkout; a subscription made
	// elsewhere is found by Checkout.Portal through the provider's search.
	return s.applyGrant(ctx, g, c)
}

// syncCheckout re-fetches a checkout session, links its player and
// customer, syncs what it bought and records its ambassador attribution.
func (s *Service) syncCheckout(ctx context.Context, id string, c cause) (CheckoutSession, error) {
	cs, err := s.provider.GetCheckoutSession(ctx, id)
	if err != nil {
		return cs, s.fetchFailed(ctx, "checkout session", id, err)
	}
	if cs.Status != "complete" {
		return cs, nil
	}
	player := cs.ClientReferenceID
	if player == "" {
		player = cs.Metadata[MetaPlayerID]
	}
	if player == "" {
		s.log.WarnContext(ctx, "checkout session without a player; skipped", "session", id)
		return cs, errSkip
	}
	if cs.CustomerID != "" {
		if err := s.store.PutCustomer(ctx, player, cs.CustomerID); err != nil {
			return cs, err
		}
	}
	paid := cs.PaymentStatus == "paid" || cs.PaymentStatus == "no_payment_required"
	if amb := ambassadorOf(cs.Discount, cs.Metadata); amb != "" && paid {
		a := Attribution{
			ID: cs.ID, Kind: AttributionCheckout, AmbassadorID: amb, PlayerID: player,
			Amount: cs.AmountTotal, Currency: cs.Currency, At: cs.Created,
		}
		if d := cs.Discount; d != nil {
			a.PromotionCodeID, a.Code, a.CouponID = d.PromotionCodeID, d.Code, d.CouponID
		}
		if _, err := s.store.AddAttribution(ctx, a); err != nil {
			return cs, err
		}
	}
	switch cs.Mode {
	case ModeSubscription:
		if cs.SubscriptionID == "" {
			return cs, nil
		}
		return cs, s.syncSubscription(ctx, cs.SubscriptionID, player, c)
	case ModePayment:
		info, ok := s.byPrice[cs.PriceID]
		if !ok || info.price.Mode != ModePayment {
			s.log.DebugContext(ctx, "checkout for a price outside the catalog; skipped", "session", id, "price", cs.PriceID)
			return cs, nil
		}
		src := cs.PaymentIntentID
		if src == "" {
			src = cs.ID
		}
		g := Grant{
			PlayerID: player, SourceID: src, Source: SourcePurchase, Plan: info.plan, PriceID: cs.PriceID,
			CustomerID: cs.CustomerID, Status: StatusPending, PeriodStart: cs.Created,
			Version: c.version, SyncedAt: s.now().UTC(),
		}
		switch {
		case cs.PaymentRefunded:
			g.Status = StatusRefunded
		case paid:
			g.Status = StatusActive
		}
		if info.price.Access > 0 {
			g.PeriodEnd = cs.Created.Add(info.price.Access)
		}
		return cs, s.applyGrant(ctx, g, c)
	}
	return cs, nil
}

// syncInvoice re-syncs the invoice's subscription and records revenue
// attributed to an ambassador. It returns the invoice and its player.
func (s *Service) syncInvoice(ctx context.Context, id string, c cause) (Invoice, string, error) {
	inv, err := s.provider.GetInvoice(ctx, id)
	if err != nil {
		return inv, "", s.fetchFailed(ctx, "invoice", id, err)
	}
	player := inv.PlayerID
	if inv.SubscriptionID != "" {
		if err := s.syncSubscription(ctx, inv.SubscriptionID, player, c); err != nil && !errors.Is(err, errSkip) {
			return inv, player, err
		}
		if player == "" {
			player, _ = s.store.GrantOwner(ctx, inv.SubscriptionID)
		}
	}
	if amb := ambassadorOf(inv.Discount, nil); amb != "" && inv.Paid {
		d := inv.Discount
		a := Attribution{
			ID: inv.ID, Kind: AttributionInvoice, AmbassadorID: amb, PlayerID: player,
			PromotionCodeID: d.PromotionCodeID, Code: d.Code, CouponID: d.CouponID,
			Amount: inv.AmountPaid, Currency: inv.Currency, At: s.now().UTC(),
		}
		if _, err := s.store.AddAttribution(ctx, a); err != nil {
			return inv, player, err
		}
	}
	return inv, player, nil
}

// syncCharge handles a refund: a refunded subscription payment re-syncs
// the subscription (the provider decides whether it ends) and takes each
// refund off the revenue of the invoice's ambassador; a fully refunded
// one-time purchase revokes its grant.
func (s *Service) syncCharge(ctx context.Context, id string, c cause) error {
	ch, err := s.provider.GetCharge(ctx, id)
	if err != nil {
		return s.fetchFailed(ctx, "charge", id, err)
	}
	if ch.InvoiceID != "" {
		inv, player, err := s.syncInvoice(ctx, ch.InvoiceID, c)
		if err != nil {
			return err
		}
		return s.attributeRefunds(ctx, ch, inv, player)
	}
	if ch.PaymentIntentID == "" || !ch.Refunded {
		return nil
	}
	player, err := s.store.GrantOwner(ctx, ch.PaymentIntentID)
	if errors.Is(err, ErrNotFound) {
		// The purchase was never synced; when its checkout event arrives,
		// the re-fetched session reports the refund.
		return nil
	}
	if err != nil {
		return err
	}
	gs, err := s.store.Grants(ctx, player)
	if err != nil {
		return err
	}
	for _, g := range gs {
		if g.SourceID == ch.PaymentIntentID {
			g.Status = StatusRefunded
			g.Version = c.version
			g.SyncedAt = s.now().UTC()
			return s.applyGrant(ctx, g, c)
		}
	}
	return nil
}

// attributeRefunds records each refund of an invoice's charge against the
// ambassador the invoice is attributed to, once per refund ID, so that
// partial and full refunds alike come off the revenue exactly once, in
// whatever order and however often the events arrive. Failed and
// canceled refunds returned nothing and are not counted.
func (s *Service) attributeRefunds(ctx context.Context, ch Charge, inv Invoice, player string) error {
	amb := ambassadorOf(inv.Discount, nil)
	if amb == "" || !inv.Paid {
		return nil
	}
	d := inv.Discount
	currency := ch.Currency
	if currency == "" {
		currency = inv.Currency
	}
	for _, r := range ch.Refunds {
		if r.ID == "" || r.Amount <= 0 || r.Status == "failed" || r.Status == "canceled" {
			continue
		}
		a := Attribution{
			ID: r.ID, Kind: AttributionRefund, AmbassadorID: amb, PlayerID: player,
			PromotionCodeID: d.PromotionCodeID, Code: d.Code, CouponID: d.CouponID,
			Amount: r.Amount, Currency: currency, At: s.now().UTC(),
		}
		if _, err := s.store.AddAttribution(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// applyGrant writes g and reports an entitlement change through the hook.
func (s *Service) applyGrant(ctx context.Context, g Grant, c cause) error {
	notify := s.opts.OnEntitlementChange != nil || s.opts.Events != nil
	var before Entitlement
	if notify {
		gs, err := s.store.Grants(ctx, g.PlayerID)
		if err != nil {
			return err
		}
		before = resolve(g.PlayerID, gs, s.now(), s.rank)
	}
	written, err := s.store.PutGrant(ctx, g)
	if err != nil {
		return fmt.Errorf("store grant %s: %w", g.SourceID, err)
	}
	if !written || !notify {
		return nil
	}
	gs, err := s.store.Grants(ctx, g.PlayerID)
	if err != nil {
		return err
	}
	now := s.now()
	after := resolve(g.PlayerID, gs, now, s.rank)
	if after.Equal(before) {
		return nil
	}
	s.counters.changes.Add(1)
	change := EntitlementChange{
		Version: EntitlementChangeVersion, PlayerID: g.PlayerID, Previous: before, Current: after,
		EventID: c.eventID, EventType: c.eventType, At: now.UTC(),
	}
	if h := s.opts.OnEntitlementChange; h != nil {
		h(ctx, change)
	}
	if b := s.opts.Events; b != nil {
		if err := eventbus.Publish(ctx, b, TopicEntitlementChanged, change, eventbus.WithKey(g.PlayerID)); err != nil {
			s.counters.publishErrors.Add(1)
			s.log.WarnContext(ctx, "payment: publishing entitlement change failed", "player", g.PlayerID, "err", err)
		}
	}
	return nil
}

func ambassadorOf(d *AppliedDiscount, meta map[string]string) string {
	if d != nil && d.Metadata[MetaAmbassadorID] != "" {
		return d.Metadata[MetaAmbassadorID]
	}
	if d != nil {
		return meta[MetaAmbassadorID]
	}
	return ""
}
