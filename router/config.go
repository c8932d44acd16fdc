package router

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// Defaults applied by [New] to zero-valued [Tier] fields.
const (
	DefaultQueueTimeout = time.Second
	DefaultStallTimeout = 5 * time.Second
	DefaultStallGrace   = time.Second
)

// Reply limits. The router enforces a reply's token limit itself, whatever
// the backend does with max_tokens; see [Request.MaxTokens].
const (
	// DefaultMaxTokens is the token limit of a request when neither it
	// nor its tier sets one. It is also sent to the backend.
	DefaultMaxTokens = 1024
	// ReplyBytesPerToken bounds a reply's text in bytes: at most
	// MaxTokens × ReplyBytesPerToken, so that a backend sending few but
	// huge deltas is bounded too. Real tokens average about 4 bytes.
	ReplyBytesPerToken = 32
)

// OverflowAction is what a tier does with a request it cannot admit within
// its queue bound and the request's deadline.
type OverflowAction int

const (
	// OverflowDowngrade (the default) passes the request to the next tier
	// of the fallback chain, or fails with ErrSaturated at the chain's end.
	OverflowDowngrade OverflowAction = iota
	// OverflowFail fails the request with ErrSaturated at once.
	OverflowFail
)

// Replica is one backend of a tier.
type Replica struct {
	// Name identifies the replica in receipts, stats and affinity hashing;
	// it must be unique within its tier. Keep it stable across
	// reconfigurations so that affinity, breakers and stats carry over.
	Name  string
	Model Model
	// MaxConcurrent bounds the requests in flight on this replica. Zero
	// means the tier's MaxConcurrent divided by the number of replicas,
	// rounded up, or no bound when the tier has none. An affinity key
	// stays on its replica until this bound is reached, then spills.
	MaxConcurrent int
	// Limiter, when non-nil, must also admit each request before it
	// starts here, within MaxConcurrent; see [Limiter]. Nil means only
	// MaxConcurrent applies.
	Limiter Limiter
}

// Breaker configures a replica's circuit breaker. The zero value means the
// defaults; the breaker applies to single-replica tiers too.
type Breaker struct {
	// ConsecutiveFailures opens the breaker after that many failures in a
	// row. Default 5.
	ConsecutiveFailures int
	// FailureRate opens the breaker when at least MinRequests finished in
	// the current Window and this fraction of them failed. Default 0.5.
	FailureRate float64
	MinRequests int           // default 20
	Window      time.Duration // default 10s
	// Cooldown is how long the breaker stays open before it lets one
	// probe request through (half-open). The probe's success closes it; a
	// failure opens it for another Cooldown. Default 5s.
	Cooldown time.Duration
	// Disabled turns the breaker off.
	Disabled bool
}

func (b Breaker) withDefaults() Breaker {
	if b.ConsecutiveFailures <= 0 {
		b.ConsecutiveFailures = 5
	}
	if b.FailureRate <= 0 {
		b.FailureRate = 0.5
	}
	if b.MinRequests <= 0 {
		b.MinRequests = 20
	}
	if b.Window <= 0 {
		b.Window = 10 * time.Second
	}
	if b.Cooldown <= 0 {
		b.Cooldown = 5 * time.Second
	}
	return b
}

// Tier is the configuration of one model tier. Zero values mean the
// documented defaults.
type Tier struct {
	// Name identifies the tier in policies, fallback chains, receipts and
	// stats. Required and unique.
	Name string
	// Replicas serve the tier; at least one is required.
	Replicas []Replica

	// ModelName and Adapter are sent to the backend when the request does
	// not name its own (vLLM addresses a LoRA adapter as a model name; when
	// Adapter is set it is sent as the model).
	ModelName string
	Adapter   string
	// MaxTokens is the default and the ceiling of Request.MaxTokens; zero
	// means no ceiling, and [DefaultMaxTokens] for requests that set none.
	MaxTokens int
	// Temperature is the default when the request sets none; nil leaves it
	// to the backend.
	Temperature *float64

	// TTFTTarget is the tier's time-to-first-token objective. Until the
	// tier has measured TTFTs it is the prior for deadline prediction.
	TTFTTarget time.Duration
	// MaxConcurrent bounds the tier's requests in flight; zero means no
	// tier-wide bound (replica bounds still apply).
	MaxConcurrent int
	// MaxQueued bounds the requests waiting for admission. Zero means no
	// queue: a full tier overflows at once. The queue is ordered by NPC
	// importance, then earliest deadline, then arrival. When it is full,
	// the new request overflows (it does not displace a waiter).
	MaxQueued int
	// QueueTimeout bounds a queued request's wait (the request's deadline
	// bounds it too). Default 1s.
	QueueTimeout time.Duration
	// Overflow is what happens when the request is not admitted in time.
	Overflow OverflowAction

	// HedgeAfter, when positive, starts the same request on the next tier
	// of the fallback chain if this tier has not produced a first token
	// after that long. The first token wins; the loser is cancelled.
	HedgeAfter time.Duration

	// StallTimeout ends a stream whose next token does not arrive within
	// it: before the first token the tier counts as failed and the request
	// falls back; after it the stream ends with a *TruncatedError wrapping
	// ErrStalled. After the first token only the time RoutedStream.Recv
	// spends waiting counts, so a caller that reads slowly never trips it.
	// Default 5s.
	StallTimeout time.Duration
	// MinTokensPerSecond, when positive, ends a stream whose rate after
	// its first token drops below it (a *TruncatedError wrapping
	// ErrTooSlow). The rate is tokens over the time Recv spent waiting for
	// them, checked once that time exceeds StallGrace.
	MinTokensPerSecond float64
	// StallGrace is how much waiting the rate check allows before it
	// applies. Default 1s.
	StallGrace time.Duration

	Breaker Breaker
}

// Options configures a [Router] in [New] and [Router.Reconfigure]. The zero
// value of each field means its documented default; Tiers is the only
// required field. New and Reconfigure copy Options (slices, maps and
// Tier.Temperature), so changing them afterwards changes nothing.
type Options struct {
	// Tiers are the router's tiers; at least one is required, with unique
	// names. They are tried in the order the policy and the fallback chains
	// give, not in the order listed; Stats lists them in this order.
	Tiers []Tier

	// Fallbacks are fallback chains of tier names, for example
	// {router.Tier3, router.Tier2, router.Tier1, "scripted"}: a request
	// that cannot get a first token from one tier moves to the next. Each
	// chain names at least two tiers. Chains may share tiers, but a tier
	// has at most one successor, and no chain may loop. A tier with no
	// successor fails the request when it cannot serve it. Nil means no
	// fallback.
	Fallbacks [][]string

	// Policy chooses a request's tier. The zero Policy means
	// [DefaultPolicy], keeping only the entries whose tiers exist, with
	// tier2 as the default if it exists and otherwise Tiers[0]. A Policy
	// with any field set must set Default.
	Policy Policy

	// Logger receives the router's logs; nil means slog.Default().
	Logger *slog.Logger

	// Hooks are optional callbacks; the zero Hooks calls nothing.
	Hooks Hooks

	// Now is the router's clock for breaker cooldowns and windows, queue
	// waits, receipts and latency stats; nil means time.Now. Waiting uses
	// the standard library's timers (so testing/synctest fakes them). The
	// clock is the router's for its whole life: Reconfigure ignores Now.
	Now func() time.Time
}

// Hooks are optional callbacks, any of which may be nil. They run on the
// request's goroutine and must be fast.
type Hooks struct {
	// OnRouted is called when a request got its first token.
	OnRouted func(Receipt)
	// OnFallback is called when a request leaves a tier for the next one.
	OnFallback func(from, to string, cause error)
}

// OptionsError reports an invalid field of [Options], named by its path
// (for example "Tiers[1].Replicas[0].Model"). errors.Is(err,
// ErrInvalidOptions) holds.
type OptionsError struct {
	Field  string
	Reason string
}

func (e *OptionsError) Error() string {
	if e.Field == "" {
		return "router: invalid Options: " + e.Reason
	}
	return "router: invalid Options." + e.Field + ": " + e.Reason
}

// Is reports whether target is ErrInvalidOptions.
func (e *OptionsError) Is(target error) bool { return target == ErrInvalidOptions }

func optErr(field, format string, args ...any) error {
	return &OptionsError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// clone returns a deep copy of o's slices, maps and pointers.
func (o Options) clone() Options {
	o.Tiers = slices.Clone(o.Tiers)
	for i := range o.Tiers {
		t := &o.Tiers[i]
		t.Replicas = slices.Clone(t.Replicas)
		if t.Temperature != nil {
			v := *t.Temperature
			t.Temperature = &v
		}
	}
	o.Fallbacks = slices.Clone(o.Fallbacks)
	for i := range o.Fallbacks {
		o.Fallbacks[i] = slices.Clone(o.Fallbacks[i])
	}
	o.Policy.Responsibilities = maps.Clone(o.Policy.Responsibilities)
	o.Policy.Importance = maps.Clone(o.Policy.Importance)
	return o
}

// config is one immutable configuration of a Router. Requests keep the
// config they started with; Reconfigure swaps in a new one.
type config struct {
	tiers  []*tierRT
	byName map[string]*tierRT
	policy resolvedPolicy
	hooks  Hooks
	logger *slog.Logger
}

// build validates o (a copy the caller no longer holds) and returns the
// configuration it describes.
func (r *Router) build(o Options) (*config, error) {
	if len(o.Tiers) == 0 {
		return nil, optErr("Tiers", "no tiers")
	}
	c := &config{byName: make(map[string]*tierRT, len(o.Tiers)), hooks: o.Hooks, logger: o.Logger}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	for i, t := range o.Tiers {
		field := fmt.Sprintf("Tiers[%d]", i)
		if t.Name == "" {
			return nil, optErr(field+".Name", "empty")
		}
		if _, dup := c.byName[t.Name]; dup {
			return nil, optErr(field+".Name", "duplicate tier %q", t.Name)
		}
		if err := validateTier(field, &t); err != nil {
			return nil, err
		}
		rt := r.newTierRT(t)
		rt.logger = c.logger
		c.tiers = append(c.tiers, rt)
		c.byName[t.Name] = rt
	}
	for i, chain := range o.Fallbacks {
		field := fmt.Sprintf("Fallbacks[%d]", i)
		if len(chain) < 2 {
			return nil, optErr(field, "a fallback chain needs at least two tiers, has %d", len(chain))
		}
		for j := 0; j+1 < len(chain); j++ {
			from, ok := c.byName[chain[j]]
			if !ok {
				return nil, optErr(fmt.Sprintf("%s[%d]", field, j), "unknown tier %q", chain[j])
			}
			to, ok := c.byName[chain[j+1]]
			if !ok {
				return nil, optErr(fmt.Sprintf("%s[%d]", field, j+1), "unknown tier %q", chain[j+1])
			}
			if from == to {
				return nil, optErr(fmt.Sprintf("%s[%d]", field, j+1), "tier %q falls back to itself", from.cfg.Name)
			}
			if from.next != nil && from.next != to {
				return nil, optErr(fmt.Sprintf("%s[%d]", field, j+1), "tier %q has two fallbacks (%q and %q)", from.cfg.Name, from.next.cfg.Name, to.cfg.Name)
			}
			from.next = to
		}
	}
	// Reject cycles: every chain must end.
	for _, t := range c.tiers {
		seen := 0
		for n := t.next; n != nil; n = n.next {
			if seen++; seen > len(c.tiers) {
				return nil, optErr("Fallbacks", "the chain from %q has a cycle", t.cfg.Name)
			}
		}
	}
	p := o.Policy
	if len(p.Responsibilities) == 0 && len(p.Importance) == 0 && p.Default == "" {
		p = DefaultPolicy()
		for k, name := range p.Responsibilities {
			if _, ok := c.byName[name]; !ok {
				delete(p.Responsibilities, k)
			}
		}
		for k, name := range p.Importance {
			if _, ok := c.byName[name]; !ok {
				delete(p.Importance, k)
			}
		}
		if _, ok := c.byName[p.Default]; !ok {
			p.Default = o.Tiers[0].Name
		}
	}
	rp, err := resolvePolicy(p, c.byName)
	if err != nil {
		return nil, err
	}
	c.policy = rp
	return c, nil
}

func validateTier(field string, t *Tier) error {
	if len(t.Replicas) == 0 {
		return optErr(field+".Replicas", "tier %q has no replicas", t.Name)
	}
	names := make(map[string]bool, len(t.Replicas))
	for i, rep := range t.Replicas {
		rf := fmt.Sprintf("%s.Replicas[%d]", field, i)
		if rep.Name == "" {
			return optErr(rf+".Name", "empty")
		}
		if names[rep.Name] {
			return optErr(rf+".Name", "duplicate replica %q in tier %q", rep.Name, t.Name)
		}
		names[rep.Name] = true
		if rep.Model == nil {
			return optErr(rf+".Model", "nil")
		}
		if rep.MaxConcurrent < 0 {
			return optErr(rf+".MaxConcurrent", "negative")
		}
	}
	for _, f := range []struct {
		name string
		neg  bool
	}{
		{"MaxTokens", t.MaxTokens < 0},
		{"MaxConcurrent", t.MaxConcurrent < 0},
		{"MaxQueued", t.MaxQueued < 0},
		{"TTFTTarget", t.TTFTTarget < 0},
		{"QueueTimeout", t.QueueTimeout < 0},
		{"HedgeAfter", t.HedgeAfter < 0},
		{"StallTimeout", t.StallTimeout < 0},
		{"StallGrace", t.StallGrace < 0},
		{"MinTokensPerSecond", t.MinTokensPerSecond < 0},
	} {
		if f.neg {
			return optErr(field+"."+f.name, "negative")
		}
	}
	if t.Overflow != OverflowDowngrade && t.Overflow != OverflowFail {
		return optErr(field+".Overflow", "invalid value %d", t.Overflow)
	}
	if t.QueueTimeout == 0 {
		t.QueueTimeout = DefaultQueueTimeout
	}
	if t.StallTimeout == 0 {
		t.StallTimeout = DefaultStallTimeout
	}
	if t.StallGrace == 0 {
		t.StallGrace = DefaultStallGrace
	}
	t.Breaker = t.Breaker.withDefaults()
	return nil
}
