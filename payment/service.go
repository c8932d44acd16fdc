package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/internal/ratelimit"
	"github.com/bodybroker/sdk/latency"
)

// Secret is a credential (an API key or a webhook signing secret). It
// never prints: String, GoString and LogValue all redact it.
type Secret string

// String returns a redacted placeholder.
func (Secret) String() string { return "[REDACTED]" }

// GoString returns a redacted placeholder.
func (Secret) GoString() string { return `payment.Secret("[REDACTED]")` }

// LogValue implements slog.LogValuer and redacts the secret.
func (Secret) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// Reveal returns the secret's value, for handing it to the provider.
func (s Secret) Reveal() string { return string(s) }

// Defaults used when the matching Options field is zero.
const (
	DefaultWebhookTolerance = 5 * time.Minute
	DefaultMaxWebhookBytes  = 512 << 10
	DefaultPastDueGrace     = 72 * time.Hour
	DefaultEventRetention   = 31 * 24 * time.Hour
	DefaultSyncTimeout      = 5 * time.Second
	DefaultEventLease       = time.Minute
)

// Options configures a [Service]. Provider, Plans and WebhookSecrets are
// required; every other zero field means the documented default.
type Options struct {
	// Provider talks to the payment provider (stripepay.New, or the
	// in-memory fakepay.New). Required.
	Provider Provider
	// Store keeps events, grants, customers and attributions.
	// Default: a new [MemoryStore].
	Store Store
	// Plans is the catalog: which provider prices grant which plan.
	Plans []Plan

	// WebhookSecrets are the endpoint signing secrets ("whsec_…"). A
	// webhook verifies if it is signed with any of them, so a secret can be
	// rotated by adding the new one before removing the old one.
	WebhookSecrets []Secret
	// WebhookTolerance bounds |now − signed timestamp|, both into the past
	// (replays) and into the future (skewed or forged clocks).
	// Default DefaultWebhookTolerance (5 minutes, Stripe's own).
	WebhookTolerance time.Duration
	// MaxWebhookBytes caps a webhook body. Default DefaultMaxWebhookBytes.
	MaxWebhookBytes int64
	// RejectAPIVersionMismatch makes the handler reject (HTTP 400) events
	// rendered in an API version other than the provider's. By default
	// such events are counted and processed: they are only triggers, and
	// the objects they name are re-fetched in the pinned version.
	RejectAPIVersionMismatch bool
	// EventRetention is how long processed event IDs are remembered for
	// de-duplication. Default DefaultEventRetention (31 days, longer than
	// both Stripe's 3-day retries and its 30-day event list).
	EventRetention time.Duration
	// SyncTimeout bounds the provider round trips made for one event,
	// independently of the HTTP request's context, so the handler answers
	// within Stripe's delivery timeout; a sync cut short answers 500 and
	// is retried. Default DefaultSyncTimeout (5 seconds).
	SyncTimeout time.Duration
	// EventLease is how long a claim on an event being processed lasts. A
	// concurrent delivery of the same event meanwhile gets HTTP 409 (the
	// provider retries it later); if the process dies mid-sync, the claim
	// expires and the next redelivery is processed. It must exceed
	// SyncTimeout. Default DefaultEventLease (1 minute), or 2×SyncTimeout
	// if that is longer.
	EventLease time.Duration

	// PastDueGrace is how long a past_due subscription keeps entitling its
	// player, counted from the start of the unpaid period.
	// Default DefaultPastDueGrace (72 hours).
	PastDueGrace time.Duration
	// DefaultSuccessURL and DefaultCancelURL are used when a checkout
	// request has none. "{CHECKOUT_SESSION_ID}" is substituted by the
	// provider; a session_id parameter is added to success URLs lacking it.
	// Like the URLs in requests, they must be absolute http(s) URLs with
	// a host in RedirectHosts (when set).
	DefaultSuccessURL string
	DefaultCancelURL  string
	// RedirectHosts, if set, is the allow-list of hosts that success,
	// cancel and portal return URLs may send players to: exact host names
	// (case-insensitive, without port) or "*.example.com" for any
	// subdomain of example.com. Empty: any host.
	RedirectHosts []string
	// CodeLimit throttles the promotion codes each player may try at
	// checkout. Default: DefaultCodeBurst (5) at once, then one more per
	// DefaultCodeEvery (minute).
	CodeLimit CodeLimit
	// CodeCacheTTL is how long a promotion-code lookup is reused before
	// the provider is asked again: a repeated unknown code (a guess) or a
	// code without a redemption limit costs no provider call meanwhile.
	// Codes with a redemption limit are looked up every time, so that a
	// used-up code is refused at once. An operator's changes made
	// through this Service's Admin take effect at once; changes made
	// elsewhere (the provider's dashboard, another server) within the TTL.
	// Default DefaultCodeCacheTTL (30 seconds).
	CodeCacheTTL time.Duration
	// DisablePromotionCodeBox stops offering the promotion-code box when a
	// player did not bring a code.
	DisablePromotionCodeBox bool

	// OnEntitlementChange, if set, is called after a player's entitlement
	// changed (topic [TopicEntitlementChanged]). It is called synchronously
	// from the sync path and must not block for long (the sync holds the
	// event's claim). Delivery is at least once: two servers syncing the
	// same player at the same moment may both report one change, so treat
	// Current as the state to converge to, not as a delta.
	OnEntitlementChange func(context.Context, EntitlementChange)
	// Events, if set, receives every entitlement change as an event on
	// [TopicEntitlementChanged], keyed by player ID (so one player's
	// changes arrive in order), after OnEntitlementChange. A failed
	// publish is logged and counted in Stats; it never fails the sync.
	Events *eventbus.Bus
	// Logger receives debug chatter and warnings about events that cannot
	// be applied. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// LogValue implements slog.LogValuer; secrets are never shown.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("plans", len(o.Plans)),
		slog.Int("webhook_secrets", len(o.WebhookSecrets)),
		slog.Duration("webhook_tolerance", o.WebhookTolerance),
		slog.Int64("max_webhook_bytes", o.MaxWebhookBytes),
		slog.Duration("past_due_grace", o.PastDueGrace),
		slog.Duration("sync_timeout", o.SyncTimeout),
		slog.Duration("event_lease", o.EventLease),
		slog.Duration("event_retention", o.EventRetention),
	)
}

// Service is the payment package's entry point. It hands out four APIs
// meant for different callers: [Service.Checkout] for players,
// [Service.Admin] for operators, [Service.Webhooks] for the provider, and
// [Service.Entitlements] for game servers.
//
// A Service is safe for concurrent use. It starts no goroutines and holds
// nothing to close; the caller owns the Provider and Store.
type Service struct {
	opts     Options
	provider Provider
	store    Store
	log      *slog.Logger
	now      func() time.Time

	byPrice map[string]priceInfo
	byPlan  map[string]*Plan
	ranks   map[string]int

	counters counters
	latency  latency.Histogram

	codeLimit *ratelimit.Keyed // per player: failed promotion-code tries
	codeCache *codeCache

	checkout     *Checkout
	admin        *Admin
	webhooks     *Webhooks
	entitlements *Entitlements
}

type priceInfo struct {
	plan  string
	price Price
}

// New validates opts and returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Provider == nil {
		return nil, &ValidationError{Field: "Options.Provider", Reason: "required"}
	}
	if len(opts.Plans) == 0 {
		return nil, &ValidationError{Field: "Options.Plans", Reason: "at least one plan is required"}
	}
	if len(opts.WebhookSecrets) == 0 {
		return nil, &ValidationError{Field: "Options.WebhookSecrets", Reason: "at least one secret is required"}
	}
	for i, s := range opts.WebhookSecrets {
		if s == "" {
			return nil, &ValidationError{Field: fmt.Sprintf("Options.WebhookSecrets[%d]", i), Reason: "empty"}
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"WebhookTolerance", opts.WebhookTolerance}, {"EventRetention", opts.EventRetention},
		{"SyncTimeout", opts.SyncTimeout}, {"PastDueGrace", opts.PastDueGrace}, {"EventLease", opts.EventLease},
		{"CodeLimit.Every", opts.CodeLimit.Every}, {"CodeCacheTTL", opts.CodeCacheTTL},
	} {
		if d.v < 0 {
			return nil, &ValidationError{Field: "Options." + d.name, Reason: "negative"}
		}
	}
	if opts.MaxWebhookBytes < 0 {
		return nil, &ValidationError{Field: "Options.MaxWebhookBytes", Reason: "negative"}
	}
	if opts.CodeLimit.Burst < 0 {
		return nil, &ValidationError{Field: "Options.CodeLimit.Burst", Reason: "negative"}
	}
	if opts.CodeLimit.Burst == 0 {
		opts.CodeLimit.Burst = DefaultCodeBurst
	}
	if opts.CodeLimit.Every == 0 {
		opts.CodeLimit.Every = DefaultCodeEvery
	}
	if opts.CodeCacheTTL == 0 {
		opts.CodeCacheTTL = DefaultCodeCacheTTL
	}
	opts.RedirectHosts = append([]string(nil), opts.RedirectHosts...)
	for i, h := range opts.RedirectHosts {
		if h == "" || h == "*." || strings.ContainsAny(h, "/:@ ") {
			return nil, &ValidationError{Field: fmt.Sprintf("Options.RedirectHosts[%d]", i), Reason: fmt.Sprintf("%q is not a host name", h)}
		}
	}
	for _, u := range []struct{ name, v string }{{"DefaultSuccessURL", opts.DefaultSuccessURL}, {"DefaultCancelURL", opts.DefaultCancelURL}} {
		if u.v == "" {
			continue
		}
		if err := validRedirect("Options."+u.name, u.v, opts.RedirectHosts); err != nil {
			return nil, err
		}
	}
	// Own the catalog: defaults are filled in below, and the caller may
	// reuse its slices.
	plans := make([]Plan, len(opts.Plans))
	for i, p := range opts.Plans {
		p.Prices = append([]Price(nil), p.Prices...)
		plans[i] = p
	}
	opts.Plans = plans
	if opts.Store == nil {
		store, err := NewMemoryStore(MemoryStoreOptions{Now: opts.Now})
		if err != nil {
			return nil, err
		}
		opts.Store = store
	}
	if opts.WebhookTolerance == 0 {
		opts.WebhookTolerance = DefaultWebhookTolerance
	}
	if opts.MaxWebhookBytes == 0 {
		opts.MaxWebhookBytes = DefaultMaxWebhookBytes
	}
	if opts.EventRetention == 0 {
		opts.EventRetention = DefaultEventRetention
	}
	if opts.SyncTimeout == 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	if opts.EventLease == 0 {
		opts.EventLease = max(DefaultEventLease, 2*opts.SyncTimeout)
	}
	if opts.EventLease <= opts.SyncTimeout {
		return nil, &ValidationError{Field: "Options.EventLease", Reason: "must exceed SyncTimeout"}
	}
	if opts.PastDueGrace == 0 {
		opts.PastDueGrace = DefaultPastDueGrace
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{
		opts:     opts,
		provider: opts.Provider,
		store:    opts.Store,
		log:      opts.Logger.With("sdk.pkg", "payment"),
		now:      opts.Now,
		byPrice:  make(map[string]priceInfo),
		byPlan:   make(map[string]*Plan),
		ranks:    make(map[string]int),

		codeLimit: ratelimit.NewKeyed(opts.CodeLimit.Burst, opts.CodeLimit.Every),
		codeCache: &codeCache{ttl: opts.CodeCacheTTL, max: DefaultCodeCacheEntries, m: make(map[string]codeEntry)},
	}
	for i := range opts.Plans {
		p := &opts.Plans[i]
		if p.ID == "" {
			return nil, &ValidationError{Field: fmt.Sprintf("Options.Plans[%d].ID", i), Reason: "required"}
		}
		if _, dup := s.byPlan[p.ID]; dup {
			return nil, &ValidationError{Field: "Options.Plans", Reason: fmt.Sprintf("duplicate plan %q", p.ID)}
		}
		if len(p.Prices) == 0 {
			return nil, &ValidationError{Field: fmt.Sprintf("Options.Plans[%d].Prices", i), Reason: "at least one price is required"}
		}
		if p.MaxTrialDays < 0 || p.MaxTrialDays > MaxTrialDays {
			return nil, &ValidationError{Field: fmt.Sprintf("Options.Plans[%d].MaxTrialDays", i), Reason: fmt.Sprintf("must be in [0, %d]", MaxTrialDays)}
		}
		if p.MaxTrialDays == 0 {
			p.MaxTrialDays = DefaultMaxTrialDays
		}
		s.byPlan[p.ID] = p
		s.ranks[p.ID] = p.Rank
		for j := range p.Prices {
			pr := p.Prices[j]
			if pr.ID == "" {
				return nil, &ValidationError{Field: fmt.Sprintf("Options.Plans[%d].Prices[%d].ID", i, j), Reason: "required"}
			}
			if pr.Mode == "" {
				pr.Mode = ModeSubscription
			}
			if pr.Mode != ModeSubscription && pr.Mode != ModePayment {
				return nil, &ValidationError{Field: fmt.Sprintf("Options.Plans[%d].Prices[%d].Mode", i, j), Reason: fmt.Sprintf("unknown mode %q", pr.Mode)}
			}
			if pr.Access < 0 {
				return nil, &ValidationError{Field: fmt.Sprintf("Options.Plans[%d].Prices[%d].Access", i, j), Reason: "negative"}
			}
			if _, dup := s.byPrice[pr.ID]; dup {
				return nil, &ValidationError{Field: "Options.Plans", Reason: fmt.Sprintf("price %q used twice", pr.ID)}
			}
			p.Prices[j] = pr
			s.byPrice[pr.ID] = priceInfo{plan: p.ID, price: pr}
		}
	}
	s.checkout = &Checkout{s: s}
	s.admin = &Admin{s: s}
	s.webhooks = &Webhooks{s: s}
	s.entitlements = &Entitlements{s: s}
	if ms, ok := s.store.(*MemoryStore); ok {
		s.entitlements.mem = ms
	}
	return s, nil
}

// Checkout returns the player-facing API: checkout and portal sessions.
func (s *Service) Checkout() *Checkout { return s.checkout }

// Admin returns the operator API: coupons, promotion and ambassador codes,
// attribution stats and reconciliation. Never expose it to players.
func (s *Service) Admin() *Admin { return s.admin }

// Webhooks returns the provider-facing webhook endpoint.
func (s *Service) Webhooks() *Webhooks { return s.webhooks }

// Entitlements returns the query API for game servers.
func (s *Service) Entitlements() *Entitlements { return s.entitlements }

// Plans returns the configured plans, highest rank first.
func (s *Service) Plans() []Plan {
	out := make([]Plan, len(s.opts.Plans))
	copy(out, s.opts.Plans)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Rank > out[j].Rank })
	return out
}

func (s *Service) rank(plan string) int { return s.ranks[plan] }

// Stats is a snapshot of a Service's webhook counters.
type Stats struct {
	Received           uint64 // webhook requests read
	Processed          uint64 // events synced
	Duplicates         uint64 // events skipped as already processed
	InProgress         uint64 // deliveries refused (409) while another held the event's claim
	Ignored            uint64 // events of types the package does not handle
	BadSignature       uint64 // rejected: signature or timestamp
	Malformed          uint64 // rejected: body not an event, or too large
	APIVersionMismatch uint64 // events rendered in another API version
	Failed             uint64 // sync failures (the provider will retry)
	// FinishErrors counts events synced whose finished mark could not be
	// stored; their claim expires after EventLease and a redelivery
	// syncs them again (harmlessly).
	FinishErrors uint64
	// EntitlementChanges counts changes reported to
	// Options.OnEntitlementChange and Options.Events (only counted when
	// one of them is set); PublishErrors the changes Events refused.
	EntitlementChanges uint64
	PublishErrors      uint64
	// Latency is the time to verify, de-duplicate and sync one event.
	Latency latency.Summary
}

type counters struct {
	received, processed, duplicates, inProgress, ignored, badSig, malformed, mismatch, failed, finishErrors, changes, publishErrors atomic.Uint64
}

// Stats returns a snapshot of the webhook counters.
func (s *Service) Stats() Stats {
	c := &s.counters
	return Stats{
		Received: c.received.Load(), Processed: c.processed.Load(), Duplicates: c.duplicates.Load(), InProgress: c.inProgress.Load(),
		Ignored: c.ignored.Load(), BadSignature: c.badSig.Load(), Malformed: c.malformed.Load(),
		APIVersionMismatch: c.mismatch.Load(), Failed: c.failed.Load(), FinishErrors: c.finishErrors.Load(), EntitlementChanges: c.changes.Load(),
		PublishErrors: c.publishErrors.Load(), Latency: s.latency.Summary(),
	}
}

// Entitlements answers "what is this player entitled to right now?". It is
// safe for concurrent use; with a [MemoryStore] a lookup takes well under a
// microsecond and does not allocate, with a Redis store it is one round trip.
type Entitlements struct {
	s   *Service
	mem *MemoryStore
}

// Get returns the player's entitlement at the current time. A player with
// no grants gets an inactive Entitlement and a nil error.
func (e *Entitlements) Get(ctx context.Context, playerID string) (Entitlement, error) {
	if e.mem != nil {
		return e.mem.resolveInto(playerID, e.s.now(), e.s.rank), nil
	}
	gs, err := e.s.store.Grants(ctx, playerID)
	if err != nil {
		return Entitlement{PlayerID: playerID}, err
	}
	return resolve(playerID, gs, e.s.now(), e.s.rank), nil
}

// Has reports whether the player is entitled to plan or to a plan ranked
// higher. It returns an error wrapping ErrNotFound for an unknown plan.
func (e *Entitlements) Has(ctx context.Context, playerID, plan string) (bool, error) {
	p, ok := e.s.byPlan[plan]
	if !ok {
		return false, fmt.Errorf("%w: plan %q", ErrNotFound, plan)
	}
	ent, err := e.Get(ctx, playerID)
	if err != nil {
		return false, err
	}
	return ent.Active && e.s.rank(ent.Plan) >= p.Rank, nil
}

// Grants returns the player's stored grants, for support tools.
func (e *Entitlements) Grants(ctx context.Context, playerID string) ([]Grant, error) {
	return e.s.store.Grants(ctx, playerID)
}

var errSkip = errors.New("payment: event skipped")
