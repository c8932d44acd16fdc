package payment

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Event types the webhook handler acts on. Every other type is
// acknowledged and ignored.
const (
	EventCheckoutCompleted          = "checkout.session.completed"
	EventCheckoutAsyncPaymentOK     = "checkout.session.async_payment_succeeded"
	EventCheckoutAsyncPaymentFailed = "checkout.session.async_payment_failed"
	EventSubscriptionCreated        = "customer.subscription.created"
	EventSubscriptionUpdated        = "customer.subscription.updated"
	EventSubscriptionDeleted        = "customer.subscription.deleted"
	EventSubscriptionPaused         = "customer.subscription.paused"
	EventSubscriptionResumed        = "customer.subscription.resumed"
	EventInvoicePaid                = "invoice.paid"
	EventInvoicePaymentFailed       = "invoice.payment_failed"
	EventChargeRefunded             = "charge.refunded"
)

// HandledEventTypes lists the event types the handler acts on: enable
// exactly these on the provider's webhook endpoint.
func HandledEventTypes() []string {
	return []string{
		EventCheckoutCompleted, EventCheckoutAsyncPaymentOK, EventCheckoutAsyncPaymentFailed,
		EventSubscriptionCreated, EventSubscriptionUpdated, EventSubscriptionDeleted,
		EventSubscriptionPaused, EventSubscriptionResumed,
		EventInvoicePaid, EventInvoicePaymentFailed, EventChargeRefunded,
	}
}

func handled(t string) bool {
	switch t {
	case EventCheckoutCompleted, EventCheckoutAsyncPaymentOK, EventCheckoutAsyncPaymentFailed,
		EventSubscriptionCreated, EventSubscriptionUpdated, EventSubscriptionDeleted,
		EventSubscriptionPaused, EventSubscriptionResumed,
		EventInvoicePaid, EventInvoicePaymentFailed, EventChargeRefunded:
		return true
	}
	return false
}

// Result says what happened to one webhook event.
type Result string

// Webhook results.
const (
	ResultProcessed Result = "processed"
	ResultDuplicate Result = "duplicate"
	ResultIgnored   Result = "ignored"
)

// SignatureHeader is the HTTP header carrying Stripe's webhook signature.
const SignatureHeader = "Stripe-Signature"

// Webhooks is the provider-facing endpoint. It implements http.Handler:
// mount it on the route registered with the provider (POST only, no
// CSRF middleware, no body-consuming middleware).
//
// Each request is verified (size cap, signature against every configured
// secret, timestamp within tolerance both ways), de-duplicated by event ID
// in the store, and then used only as a trigger: the object it names is
// re-fetched from the provider and upserted with a store-issued version,
// so an old or replayed event can never overwrite newer state.
//
// De-duplication is a claim with a lease (Options.EventLease), inserted
// before the sync: a finished event is remembered for
// Options.EventRetention and answered as a duplicate; a failed sync
// releases its claim; a claim whose process died expires after the lease.
// A delivery that finds the event claimed by another worker is not
// acknowledged (409), because that worker may still fail.
//
// # Why the sync runs before the answer
//
// Stripe asks for a quick 2xx and suggests queueing the work. The
// handler instead syncs inline, bounded by Options.SyncTimeout (5 s by
// default), and answers when the effect is stored. A sync is one to three
// provider reads and a few store writes, usually well under a second;
// Stripe does not publish its delivery timeout (reports range from about
// 10 to 30 seconds), and the default stays well below the low end. In
// exchange, Stripe itself is the durable retry queue: an event is
// acknowledged only once it is applied, a failed or cut-short sync answers
// 500 and Stripe redelivers it with backoff for up to three days, and
// nothing is lost in a local queue when a process dies. Every effect is
// idempotent (versioned upserts, attributions unique by ID, claims), so a
// redelivery of an event that was in fact applied (Stripe gave up waiting
// just before the answer) changes nothing. Duplicates, ignored types and
// rejected requests are answered without any provider call. Events missed
// for longer are replayed by [Admin.Reconcile].
//
// Responses: 200 for processed, duplicate and ignored events; 400 for bad
// signatures, stale or future timestamps, malformed bodies and (optionally)
// API-version mismatches; 409 while another worker processes the event;
// 413 for oversize bodies; 405 for non-POST; 500 when syncing failed (the
// provider retries).
type Webhooks struct{ s *Service }

var _ http.Handler = (*Webhooks)(nil)

// ServeHTTP implements http.Handler.
func (w *Webhooks) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	max := w.s.opts.MaxWebhookBytes
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		http.Error(rw, "read error", http.StatusBadRequest)
		return
	}
	res, err := w.Process(r.Context(), body, r.Header.Get(SignatureHeader))
	switch {
	case err == nil:
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusOK)
		fmt.Fprintf(rw, `{"received":true,"result":%q}`, res)
	case errors.Is(err, ErrPayloadTooLarge):
		http.Error(rw, "payload too large", http.StatusRequestEntityTooLarge)
	case errors.Is(err, ErrBadSignature), errors.Is(err, ErrTimestampOutOfTolerance):
		http.Error(rw, "invalid signature", http.StatusBadRequest)
	case errors.Is(err, ErrMalformedEvent), errors.Is(err, ErrAPIVersionMismatch):
		http.Error(rw, "invalid event", http.StatusBadRequest)
	case errors.Is(err, ErrEventInProgress):
		http.Error(rw, "event in progress", http.StatusConflict)
	default:
		http.Error(rw, "processing failed", http.StatusInternalServerError)
	}
}

// Process verifies and handles one webhook delivery: payload is the raw
// body and sigHeader the Stripe-Signature header. ServeHTTP calls it; use
// it directly to mount the handler in a non-net/http server.
func (w *Webhooks) Process(ctx context.Context, payload []byte, sigHeader string) (Result, error) {
	s := w.s
	start := time.Now()
	s.counters.received.Add(1)
	if int64(len(payload)) > s.opts.MaxWebhookBytes {
		s.counters.malformed.Add(1)
		return "", ErrPayloadTooLarge
	}
	if err := verifySignature(payload, sigHeader, s.opts.WebhookSecrets, s.opts.WebhookTolerance, s.now()); err != nil {
		s.counters.badSig.Add(1)
		s.log.DebugContext(ctx, "webhook rejected", "err", err)
		return "", err
	}
	ev, err := ParseEvent(payload)
	if err != nil {
		s.counters.malformed.Add(1)
		return "", err
	}
	if want := s.provider.APIVersion(); want != "" && ev.APIVersion != want {
		s.counters.mismatch.Add(1)
		s.log.DebugContext(ctx, "event API version differs from the provider's", "event", ev.ID, "event_version", ev.APIVersion, "want", want)
		if s.opts.RejectAPIVersionMismatch {
			return "", fmt.Errorf("%w: event %s has %q, want %q", ErrAPIVersionMismatch, ev.ID, ev.APIVersion, want)
		}
	}
	res, err := s.handleEvent(ctx, ev)
	s.latency.Record(time.Since(start))
	return res, err
}

// handleEvent is the one path every event takes, from a webhook or from
// Reconcile: claim (with a lease), sync, then finish, or release on
// failure so that the provider's retry is processed.
func (s *Service) handleEvent(ctx context.Context, ev Event) (Result, error) {
	if !handled(ev.Type) {
		s.counters.ignored.Add(1)
		return ResultIgnored, nil
	}
	// The sync must not be cut short by the caller hanging up: a claimed
	// event left half-done would only be repaired by a redelivery.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.SyncTimeout)
	defer cancel()
	token := rand.Text()
	claim, err := s.store.ClaimEvent(ctx, ev.ID, token, s.opts.EventLease)
	if err != nil {
		s.counters.failed.Add(1)
		return "", fmt.Errorf("payment: claim event %s: %w", ev.ID, err)
	}
	switch claim.State {
	case ClaimDone:
		s.counters.duplicates.Add(1)
		return ResultDuplicate, nil
	case ClaimBusy:
		// Not acknowledged: the holder may still fail, and then only a
		// later redelivery of this event applies it.
		s.counters.inProgress.Add(1)
		return "", fmt.Errorf("%w: %s", ErrEventInProgress, ev.ID)
	case ClaimAcquired:
	default:
		s.counters.failed.Add(1)
		return "", fmt.Errorf("payment: claim event %s: store answered state %d", ev.ID, claim.State)
	}
	// The store calls after the sync get their own deadline: a sync that
	// ran into SyncTimeout must still give its claim back.
	after := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	}
	if err := s.syncEvent(ctx, ev, cause{ev.ID, ev.Type, claim.Version}); err != nil {
		s.counters.failed.Add(1)
		rctx, rcancel := after()
		defer rcancel()
		if rerr := s.store.ReleaseEvent(rctx, ev.ID, token); rerr != nil {
			// The lease runs out instead, and a redelivery after it is
			// processed.
			err = errors.Join(err, fmt.Errorf("payment: release event %s: %w", ev.ID, rerr))
		}
		return "", fmt.Errorf("payment: sync event %s (%s): %w", ev.ID, ev.Type, err)
	}
	fctx, fcancel := after()
	defer fcancel()
	if err := s.store.FinishEvent(fctx, ev.ID, s.opts.EventRetention); err != nil {
		// The effects are applied; a redelivery after the lease syncs the
		// same state again, which changes nothing. Nobody else sees this
		// error, so it is logged rather than answered.
		s.counters.finishErrors.Add(1)
		s.log.WarnContext(ctx, "payment: marking an event processed failed", "event", ev.ID, "err", err)
	}
	s.counters.processed.Add(1)
	return ResultProcessed, nil
}

// storeTimeout bounds the store calls that end an event's processing.
const storeTimeout = 2 * time.Second

// verifySignature checks a Stripe-Signature header ("t=…,v1=…[,v1=…]")
// against each secret: HMAC-SHA256 over "<t>.<payload>". The timestamp
// must lie within tolerance of now on either side.
func verifySignature(payload []byte, header string, secrets []Secret, tolerance time.Duration, now time.Time) error {
	if header == "" {
		return fmt.Errorf("%w: no %s header", ErrBadSignature, SignatureHeader)
	}
	var ts string
	var sigs [][]byte
	for part := range bytes.SplitSeq([]byte(header), []byte(",")) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(part), []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sig := make([]byte, hex.DecodedLen(len(v)))
			if n, err := hex.Decode(sig, v); err == nil && n == sha256.Size {
				sigs = append(sigs, sig)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no valid timestamp", ErrBadSignature)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrBadSignature)
	}
	matched := false
	for _, sec := range secrets {
		mac := hmac.New(sha256.New, []byte(sec))
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(payload)
		want := mac.Sum(nil)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				matched = true
			}
		}
	}
	if !matched {
		return fmt.Errorf("%w: no signature matches", ErrBadSignature)
	}
	skew := now.Sub(time.Unix(unix, 0))
	if skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: signed %v away from now", ErrTimestampOutOfTolerance, skew.Round(time.Second))
	}
	return nil
}

type wireEvent struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Livemode   bool   `json:"livemode"`
	Data       struct {
		Object struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		} `json:"object"`
	} `json:"data"`
}

// ParseEvent decodes the envelope of a provider event (a Stripe event
// JSON). It does not verify anything; the webhook handler verifies the
// signature first.
func ParseEvent(payload []byte) (Event, error) {
	var w wireEvent
	if err := json.Unmarshal(payload, &w); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	if w.ID == "" || w.Type == "" || (w.Object != "" && w.Object != "event") {
		return Event{}, fmt.Errorf("%w: missing id or type", ErrMalformedEvent)
	}
	if handled(w.Type) && w.Data.Object.ID == "" {
		return Event{}, fmt.Errorf("%w: %s event without data.object.id", ErrMalformedEvent, w.Type)
	}
	return Event{
		ID: w.ID, Type: w.Type, APIVersion: w.APIVersion, Created: time.Unix(w.Created, 0).UTC(),
		Livemode: w.Livemode, ObjectID: w.Data.Object.ID, ObjectType: w.Data.Object.Object,
	}, nil
}
