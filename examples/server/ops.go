package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"sync"
	"time"

	"github.com/bodybroker/sdk/payment"
)

// The ops page: GET /ops serves one HTML page (html/template, an inline
// script, no build step) that opens GET /ops/events, a Server-Sent Events
// stream of opsSnapshot values, one per opsInterval. Both need the admin
// token, as a bearer token or as the password of HTTP Basic auth (so a
// browser can open the page and its stream).
const (
	pathOps       = "/ops"
	pathOpsEvents = "/ops/events"
	opsInterval   = time.Second
	opsRecent     = 20 // webhooks and entitlement changes kept for the page
)

//go:embed ops.html
var opsHTML string

var opsPage = template.Must(template.New("ops").Parse(opsHTML))

// opsSnapshot is one update of the ops page.
type opsSnapshot struct {
	Time     time.Time    `json:"time"`
	Tiers    []opsTier    `json:"tiers"`
	Dialogue opsDialogue  `json:"dialogue"`
	Bus      opsBus       `json:"bus"`
	Clock    opsClock     `json:"clock"`
	Webhooks []opsWebhook `json:"webhooks"`
	Changes  []opsChange  `json:"entitlement_changes"`
}

type opsTier struct {
	Name      string  `json:"name"`
	P50ms     float64 `json:"p50_ms"`
	P95ms     float64 `json:"p95_ms"`
	P99ms     float64 `json:"p99_ms"`
	Queued    int64   `json:"queued"`
	InFlight  int64   `json:"in_flight"`
	Requests  uint64  `json:"requests"`
	Fallbacks uint64  `json:"fallbacks"`
}

type opsDialogue struct {
	Requests  uint64 `json:"requests"`
	Fallbacks uint64 `json:"fallback_lines"`
	Active    int64  `json:"active"`
}

type opsBus struct {
	Published uint64  `json:"published"`
	Delivered uint64  `json:"delivered"`
	PerSecond float64 `json:"published_per_second"`
}

type opsClock struct {
	Time   string `json:"time"`
	Day    int    `json:"day"`
	Phase  string `json:"phase"`
	Paused bool   `json:"paused"`
}

type opsWebhook struct {
	Time      time.Time `json:"time"`
	Status    int       `json:"status"`
	RequestID string    `json:"request_id"`
}

type opsChange struct {
	Time   time.Time `json:"time"`
	Player string    `json:"player"`
	Plan   string    `json:"plan"`
	Active bool      `json:"active"`
}

// opsLog keeps the latest webhooks and entitlement changes, newest first,
// at most opsRecent of each. Safe for concurrent use.
type opsLog struct {
	mu       sync.Mutex
	webhooks []opsWebhook
	changes  []opsChange
}

func prepend[T any](s []T, v T) []T {
	s = append([]T{v}, s...)
	return s[:min(len(s), opsRecent)]
}

func (l *opsLog) webhook(w opsWebhook) {
	l.mu.Lock()
	l.webhooks = prepend(l.webhooks, w)
	l.mu.Unlock()
}

// entitlementChanged is the payment service's OnEntitlementChange hook.
func (l *opsLog) entitlementChanged(_ context.Context, c payment.EntitlementChange) {
	l.mu.Lock()
	l.changes = prepend(l.changes, opsChange{
		Time: time.Now(), Player: c.PlayerID, Plan: c.Current.Plan, Active: c.Current.Active,
	})
	l.mu.Unlock()
}

func (l *opsLog) recent() ([]opsWebhook, []opsChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]opsWebhook{}, l.webhooks...), append([]opsChange{}, l.changes...)
}

// recordWebhooks wraps the webhook handler to log each delivery's status.
func (a *app) recordWebhooks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		id, _ := r.Context().Value(requestIDKey{}).(string)
		a.ops.webhook(opsWebhook{Time: time.Now(), Status: sw.status, RequestID: id})
	})
}

func (a *app) snapshot(prevPublished uint64, elapsed time.Duration) opsSnapshot {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var s opsSnapshot
	s.Time = time.Now()
	for _, t := range a.router.Stats().Tiers {
		s.Tiers = append(s.Tiers, opsTier{
			Name: t.Name, P50ms: ms(t.TTFT.P50), P95ms: ms(t.TTFT.P95), P99ms: ms(t.TTFT.P99),
			Queued: t.Queued, InFlight: t.InFlight, Requests: t.Requests, Fallbacks: t.Fallbacks,
		})
	}
	ds := a.dialogue.Stats()
	s.Dialogue = opsDialogue{Requests: ds.Requests, Fallbacks: ds.Fallbacks, Active: ds.Active}
	bs := a.bus.Stats()
	s.Bus = opsBus{Published: bs.Published, Delivered: bs.Delivered}
	if elapsed > 0 && bs.Published >= prevPublished {
		s.Bus.PerSecond = float64(bs.Published-prevPublished) / elapsed.Seconds()
	}
	now := a.clock.Now()
	s.Clock = opsClock{Time: now.Clock(), Day: now.Day, Phase: now.Phase, Paused: now.Paused}
	s.Webhooks, s.Changes = a.ops.recent()
	return s
}

func (a *app) opsPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src data:; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	if err := opsPage.Execute(w, struct{ Events string }{pathOpsEvents}); err != nil {
		a.log.WarnContext(r.Context(), "ops page", "err", err)
	}
}

// opsEvents streams a snapshot at once and then every opsInterval, until
// the client leaves or the server shuts down (a.opsDone).
func (a *app) opsEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	t := time.NewTicker(opsInterval)
	defer t.Stop()
	var prev uint64
	last := time.Now()
	send := func() bool {
		now := time.Now()
		s := a.snapshot(prev, now.Sub(last))
		prev, last = s.Bus.Published, now
		b, err := json.Marshal(s)
		if err != nil {
			return false
		}
		// A client that does not take an update within 10s is dropped.
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	prev = a.bus.Stats().Published
	if !send() {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.opsDone:
			return
		case <-t.C:
			if !send() {
				return
			}
		}
	}
}
