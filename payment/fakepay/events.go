package fakepay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bodybroker/sdk/payment"
)

// Emit appends an event of any type naming objectID (for unknown-type
// tests) and returns it.
func (f *Provider) Emit(typ, objectType, objectID string) payment.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.emit(typ, objectType, objectID, nil)
}

func subSnapshot(s *payment.Subscription) map[string]any {
	return map[string]any{"status": string(s.Status), "customer": s.CustomerID,
		"current_period_end": s.CurrentPeriodEnd.Unix(), "cancel_at_period_end": s.CancelAtPeriodEnd}
}

func (f *Provider) emit(typ, objType, objID string, snap map[string]any) payment.Event {
	ev := payment.Event{
		ID: f.id("evt"), Type: typ, APIVersion: f.apiVersion, Created: f.now().UTC().Truncate(time.Second),
		ObjectID: objID, ObjectType: objType,
	}
	f.events = append(f.events, fakeEvent{ev: ev, snapshot: snap})
	return ev
}

// Events returns every event so far, oldest first.
func (f *Provider) Events() []payment.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]payment.Event, len(f.events))
	for i, e := range f.events {
		out[i] = e.ev
	}
	return out
}

// MarkDelivered records that events were delivered (ListEvents with
// UndeliveredOnly skips them).
func (f *Provider) MarkDelivered(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.events {
		if slices.Contains(ids, f.events[i].ev.ID) {
			f.events[i].delivered = true
		}
	}
}

// Payload renders an event as the JSON body of a Stripe webhook.
func (f *Provider) Payload(ev payment.Event) []byte {
	f.mu.Lock()
	var snap map[string]any
	for _, e := range f.events {
		if e.ev.ID == ev.ID {
			snap = e.snapshot
		}
	}
	f.mu.Unlock()
	return EventPayload(ev, snap)
}

// EventPayload renders ev as a Stripe event JSON; fields are extra keys of
// data.object.
func EventPayload(ev payment.Event, fields map[string]any) []byte {
	obj := map[string]any{"id": ev.ObjectID, "object": ev.ObjectType}
	for k, v := range fields {
		obj[k] = v
	}
	b, err := json.Marshal(map[string]any{
		"id": ev.ID, "object": "event", "api_version": ev.APIVersion, "created": ev.Created.Unix(),
		"livemode": ev.Livemode, "type": ev.Type, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil},
		"data":    map[string]any{"object": obj},
	})
	if err != nil {
		panic(err) // only maps of JSON-safe values are marshalled
	}
	return b
}

// Sign returns a Stripe-Signature header for payload signed with each
// secret at t ("t=<unix>,v1=<hex>[,v1=…]").
func Sign(payload []byte, t time.Time, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write([]byte(ts + "."))
		mac.Write(payload)
		b.WriteString(",v1=" + hex.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}
