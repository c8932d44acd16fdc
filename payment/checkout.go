package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Checkout is the player-facing API: it starts checkout sessions and
// customer-portal sessions. A server may expose it to authenticated
// players; it never grants anything by itself (entitlements come only from
// synced provider state). Safe for concurrent use.
type Checkout struct{ s *Service }

// CheckoutRequest asks for a checkout session for one player.
type CheckoutRequest struct {
	// PlayerID is the authenticated player. Required: at most MaxIDBytes of
	// printable UTF-8 (no control characters, NULs or line breaks), else
	// the error wraps ErrInvalidID. RequestID follows the same rules.
	PlayerID string
	// Plan picks the plan's first price; PriceID picks a price directly.
	// One of them is required; when both are set they must agree.
	Plan    string
	PriceID string
	// Code is a promotion code the player typed or brought in a link. It is
	// resolved server-side and applied; the promotion-code box is then not
	// offered (the provider refuses both at once). A code that cannot be
	// redeemed (unknown, expired, used up, malformed) fails with exactly
	// ErrInvalidCode, whatever the reason; a player who tried too many
	// gets a *CodeRateLimitError (see Options.CodeLimit). Lookups are
	// cached for Options.CodeCacheTTL.
	Code string
	// Email pre-fills the customer created for a first-time payer; at most
	// MaxEmailBytes, printable.
	Email string
	// SuccessURL and CancelURL default to Options.DefaultSuccessURL and
	// Options.DefaultCancelURL. Each must be an absolute http or https
	// URL (printable ASCII, no user info, at most MaxURLBytes) whose host
	// is in Options.RedirectHosts when that is set; otherwise the error
	// wraps ErrInvalidURL.
	SuccessURL string
	CancelURL  string
	// TrialDays starts a subscription with a free trial of at most the
	// plan's MaxTrialDays (DefaultMaxTrialDays unless configured); longer
	// asks fail with an error wrapping ErrTrialTooLong.
	TrialDays int64
	// RequestID makes retries of the same request return the same session
	// (it goes into the idempotency key). Use one per player attempt.
	// Without it, identical requests within the same minute share a session.
	RequestID string
}

// CheckoutResult is a created session: send the player to URL.
type CheckoutResult struct {
	SessionID string
	URL       string
	ExpiresAt time.Time
	// PromotionCodeID and AmbassadorID are set when Code was applied.
	PromotionCodeID string
	AmbassadorID    string
}

// Start creates a checkout session: it finds or creates the player's
// customer (player ID in its metadata), sets client_reference_id and the
// session and subscription metadata, and either applies the player's code
// or offers the promotion-code box, never both.
func (c *Checkout) Start(ctx context.Context, req CheckoutRequest) (CheckoutResult, error) {
	s := c.s
	if err := validID("PlayerID", req.PlayerID); err != nil {
		return CheckoutResult{}, err
	}
	if err := validOptionalID("RequestID", req.RequestID); err != nil {
		return CheckoutResult{}, err
	}
	if len(req.Email) > MaxEmailBytes || !printable(req.Email) {
		return CheckoutResult{}, &ValidationError{Field: "Email", Reason: fmt.Sprintf("longer than %d bytes or not printable", MaxEmailBytes)}
	}
	info, err := s.pickPrice(req.Plan, req.PriceID)
	if err != nil {
		return CheckoutResult{}, err
	}
	success, cancel := req.SuccessURL, req.CancelURL
	if success == "" {
		success = s.opts.DefaultSuccessURL
	}
	if cancel == "" {
		cancel = s.opts.DefaultCancelURL
	}
	if success == "" || cancel == "" {
		return CheckoutResult{}, &ValidationError{Field: "SuccessURL/CancelURL", Reason: "required (no defaults configured)", Err: ErrInvalidURL}
	}
	if err := validRedirect("SuccessURL", success, s.opts.RedirectHosts); err != nil {
		return CheckoutResult{}, err
	}
	if err := validRedirect("CancelURL", cancel, s.opts.RedirectHosts); err != nil {
		return CheckoutResult{}, err
	}
	success = withSessionID(success)
	if req.TrialDays < 0 || (req.TrialDays > 0 && info.price.Mode != ModeSubscription) {
		return CheckoutResult{}, &ValidationError{Field: "TrialDays", Reason: "only non-negative, and only for subscriptions"}
	}
	if limit := s.byPlan[info.plan].MaxTrialDays; req.TrialDays > limit {
		return CheckoutResult{}, &ValidationError{Field: "TrialDays", Reason: fmt.Sprintf("%d days; plan %q allows at most %d", req.TrialDays, info.plan, limit), Err: ErrTrialTooLong}
	}
	meta := map[string]string{MetaPlayerID: req.PlayerID, MetaPlan: info.plan}
	p := CheckoutParams{
		Mode: info.price.Mode, PriceID: info.price.ID, Quantity: 1,
		ClientReferenceID: req.PlayerID, SuccessURL: success, CancelURL: cancel,
		Metadata: meta, TrialDays: req.TrialDays,
	}
	var res CheckoutResult
	if code := strings.TrimSpace(req.Code); code != "" {
		pc, err := c.redeemableCode(ctx, req.PlayerID, code)
		if err != nil {
			return CheckoutResult{}, err
		}
		p.PromotionCodeID = pc.ID
		res.PromotionCodeID = pc.ID
		if amb := pc.Metadata[MetaAmbassadorID]; amb != "" {
			meta[MetaAmbassadorID] = amb
			res.AmbassadorID = amb
		}
	} else {
		p.AllowPromotionCodes = !s.opts.DisablePromotionCodeBox
	}
	// The code is resolved first so that a bad code costs no customer.
	p.CustomerID, err = c.customerFor(ctx, req.PlayerID, req.Email)
	if err != nil {
		return CheckoutResult{}, err
	}
	nonce := req.RequestID
	if nonce == "" {
		nonce = "t" + strconv.FormatInt(s.now().Unix()/60, 10)
	}
	p.IdempotencyKey = checkoutKey(p, nonce)
	cs, err := s.provider.CreateCheckoutSession(ctx, p)
	if err != nil {
		return CheckoutResult{}, err
	}
	res.SessionID, res.URL, res.ExpiresAt = cs.ID, cs.URL, cs.ExpiresAt
	return res, nil
}

// Portal creates a customer-portal session where the player manages their
// subscription; returnURL is where the portal sends them back. It returns
// an error wrapping ErrNotFound if the player has never checked out.
func (c *Checkout) Portal(ctx context.Context, playerID, returnURL string) (PortalSession, error) {
	if err := validID("playerID", playerID); err != nil {
		return PortalSession{}, err
	}
	if err := validRedirect("returnURL", returnURL, c.s.opts.RedirectHosts); err != nil {
		return PortalSession{}, err
	}
	customer, err := c.existingCustomer(ctx, playerID)
	if err != nil {
		return PortalSession{}, err
	}
	// Repeated clicks within a minute get the same (still valid) session.
	key := idemKey("portal", customer, returnURL, "t"+strconv.FormatInt(c.s.now().Unix()/60, 10))
	return c.s.provider.CreatePortalSession(ctx, PortalParams{CustomerID: customer, ReturnURL: returnURL, IdempotencyKey: key})
}

// Complete syncs a finished checkout session at once, for the success
// page (the redirect often beats the webhook), through the same path the
// webhook uses, and returns the player's entitlement. The session must
// belong to playerID, otherwise the error wraps ErrNotFound.
func (c *Checkout) Complete(ctx context.Context, playerID, sessionID string) (Entitlement, error) {
	s := c.s
	if err := validID("playerID", playerID); err != nil {
		return Entitlement{PlayerID: playerID}, err
	}
	if err := validID("sessionID", sessionID); err != nil {
		return Entitlement{PlayerID: playerID}, err
	}
	cs, err := s.provider.GetCheckoutSession(ctx, sessionID)
	if err != nil {
		return Entitlement{PlayerID: playerID}, err
	}
	if cs.ClientReferenceID != playerID {
		return Entitlement{PlayerID: playerID}, fmt.Errorf("%w: checkout session %s for player %s", ErrNotFound, sessionID, playerID)
	}
	v, err := s.store.NextVersion(ctx)
	if err != nil {
		return Entitlement{PlayerID: playerID}, err
	}
	if _, err := s.syncCheckout(ctx, sessionID, cause{version: v}); err != nil && !errors.Is(err, errSkip) {
		return Entitlement{PlayerID: playerID}, err
	}
	return s.entitlements.Get(ctx, playerID)
}

func (c *Checkout) existingCustomer(ctx context.Context, playerID string) (string, error) {
	s := c.s
	id, err := s.store.Customer(ctx, playerID)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	id, err = s.provider.FindCustomer(ctx, playerID)
	if err != nil {
		return "", err
	}
	if err := s.store.PutCustomer(ctx, playerID, id); err != nil {
		return "", err
	}
	return id, nil
}

// customerFor finds the player's customer (store, then provider search)
// or creates it with a deterministic idempotency key over the player and
// the email, so that concurrent or retried first checkouts create one
// customer. A create with another email (typed on another server while
// the provider's search still lags) gets its own key: reusing the first
// key with other parameters would fail the checkout with an idempotency
// error, and a second customer is harmless (the latest checkout links it).
func (c *Checkout) customerFor(ctx context.Context, playerID, email string) (string, error) {
	id, err := c.existingCustomer(ctx, playerID)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return id, err
	}
	id, err = c.s.provider.CreateCustomer(ctx, CustomerParams{
		PlayerID: playerID, Email: email, IdempotencyKey: idemKey("customer", playerID, email),
	})
	if err != nil {
		return "", err
	}
	if err := c.s.store.PutCustomer(ctx, playerID, id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Service) pickPrice(plan, priceID string) (priceInfo, error) {
	if priceID != "" {
		info, ok := s.byPrice[priceID]
		if !ok {
			return priceInfo{}, fmt.Errorf("%w: %q", ErrUnknownPrice, priceID)
		}
		if plan != "" && info.plan != plan {
			return priceInfo{}, &ValidationError{Field: "PriceID", Reason: fmt.Sprintf("price %q belongs to plan %q, not %q", priceID, info.plan, plan)}
		}
		return info, nil
	}
	if plan == "" {
		return priceInfo{}, &ValidationError{Field: "Plan/PriceID", Reason: "one is required"}
	}
	p, ok := s.byPlan[plan]
	if !ok {
		return priceInfo{}, fmt.Errorf("%w: plan %q", ErrUnknownPrice, plan)
	}
	return s.byPrice[p.Prices[0].ID], nil
}

// withSessionID adds session_id={CHECKOUT_SESSION_ID} to a success URL
// (already checked by validRedirect) that does not carry the placeholder.
func withSessionID(raw string) string {
	if strings.Contains(raw, "{CHECKOUT_SESSION_ID}") {
		return raw
	}
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		// The parameter goes before the fragment.
		return raw[:i] + sep + "session_id={CHECKOUT_SESSION_ID}" + raw[i:]
	}
	return raw + sep + "session_id={CHECKOUT_SESSION_ID}"
}

// checkoutKey derives the idempotency key of a checkout from every
// parameter sent and the request's nonce: a retry of the same request
// gets the same session, and a request that differs in anything (another
// customer, another ambassador in the metadata) never reuses a key, which
// the provider would refuse as an idempotency error.
func checkoutKey(p CheckoutParams, nonce string) string {
	return idemKey("checkout", string(p.Mode), p.PriceID, strconv.FormatInt(p.Quantity, 10), p.CustomerID,
		p.ClientReferenceID, p.PromotionCodeID, strconv.FormatBool(p.AllowPromotionCodes), p.SuccessURL, p.CancelURL,
		fmtMeta(p.Metadata), strconv.FormatInt(p.TrialDays, 10), nonce)
}

// idemKey builds a deterministic idempotency key (at most 255 bytes, as
// Stripe requires) from an operation and its distinguishing parts.
func idemKey(op string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s|", len(p), p)
	}
	return "bb-" + op + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}
