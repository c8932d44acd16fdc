package router

import (
	"errors"
	"fmt"
	"log/slog"
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

// Option configures a [Router] in [New] or [Router.Reconfigure].
type Option func(*builder) error

type builder struct {
	tiers  []Tier
	chains [][]string
	policy *Policy
	logger *slog.Logger
	hooks  Hooks
}

// WithTier adds a tier. Tiers are tried in the order the policy and the
// fallback chain give, not in the order they are added.
func WithTier(t Tier) Option {
	return func(b *builder) error {
		t.Replicas = append([]Replica(nil), t.Replicas...)
		b.tiers = append(b.tiers, t)
		return nil
	}
}

// WithFallback declares a fallback chain of tier names, for example
// WithFallback("tier3", "tier2", "tier1", "scripted"): a request that
// cannot get a first token from one tier moves to the next. It may be given
// several times for several chains, but a tier can have only one successor.
// A tier with no successor fails the request when it cannot serve it.
func WithFallback(chain ...string) Option {
	return func(b *builder) error {
		if len(chain) < 2 {
			return errors.New("router: a fallback chain needs at least two tiers")
		}
		b.chains = append(b.chains, append([]string(nil), chain...))
		return nil
	}
}

// WithPolicy sets the tier policy. Without it the router uses
// [DefaultPolicy], keeping only the entries whose tiers exist, with tier2 as
// the default if it exists and otherwise the first tier added.
func WithPolicy(p Policy) Option {
	return func(b *builder) error {
		p.Responsibilities = cloneMap(p.Responsibilities)
		p.Importance = cloneMap(p.Importance)
		b.policy = &p
		return nil
	}
}

// WithLogger sets the router's logger; nil means slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(b *builder) error {
		b.logger = l
		return nil
	}
}

// Hooks are optional callbacks, any of which may be nil. They run on the
// request's goroutine and must be fast.
type Hooks struct {
	// OnRouted is called when a request got its first token.
	OnRouted func(Receipt)
	// OnFallback is called when a request leaves a tier for the next one.
	OnFallback func(from, to string, cause error)
}

// WithHooks sets the router's hooks.
func WithHooks(h Hooks) Option {
	return func(b *builder) error {
		b.hooks = h
		return nil
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
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

func (r *Router) build(opts []Option) (*config, error) {
	var b builder
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&b); err != nil {
			return nil, err
		}
	}
	if len(b.tiers) == 0 {
		return nil, errors.New("router: no tiers configured")
	}
	c := &config{byName: make(map[string]*tierRT, len(b.tiers)), hooks: b.hooks, logger: b.logger}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	for i, t := range b.tiers {
		if t.Name == "" {
			return nil, fmt.Errorf("router: tier %d has no name", i)
		}
		if _, dup := c.byName[t.Name]; dup {
			return nil, fmt.Errorf("router: duplicate tier %q", t.Name)
		}
		if err := validateTier(&t); err != nil {
			return nil, err
		}
		rt := r.newTierRT(t)
		rt.logger = c.logger
		c.tiers = append(c.tiers, rt)
		c.byName[t.Name] = rt
	}
	for _, chain := range b.chains {
		for i := 0; i+1 < len(chain); i++ {
			from, ok := c.byName[chain[i]]
			if !ok {
				return nil, fmt.Errorf("router: fallback chain names unknown tier %q", chain[i])
			}
			to, ok := c.byName[chain[i+1]]
			if !ok {
				return nil, fmt.Errorf("router: fallback chain names unknown tier %q", chain[i+1])
			}
			if from == to {
				return nil, fmt.Errorf("router: tier %q falls back to itself", from.cfg.Name)
			}
			if from.next != nil && from.next != to {
				return nil, fmt.Errorf("router: tier %q has two fallbacks (%q and %q)", from.cfg.Name, from.next.cfg.Name, to.cfg.Name)
			}
			from.next = to
		}
	}
	// Reject cycles: every chain must end.
	for _, t := range c.tiers {
		seen := 0
		for n := t.next; n != nil; n = n.next {
			if seen++; seen > len(c.tiers) {
				return nil, fmt.Errorf("router: fallback chain from %q has a cycle", t.cfg.Name)
			}
		}
	}
	var p Policy
	if b.policy != nil {
		p = *b.policy
	} else {
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
			p.Default = b.tiers[0].Name
		}
	}
	rp, err := resolvePolicy(p, c.byName)
	if err != nil {
		return nil, err
	}
	c.policy = rp
	return c, nil
}

func validateTier(t *Tier) error {
	if len(t.Replicas) == 0 {
		return fmt.Errorf("router: tier %q has no replicas", t.Name)
	}
	names := make(map[string]bool, len(t.Replicas))
	for i, rep := range t.Replicas {
		if rep.Name == "" {
			return fmt.Errorf("router: tier %q replica %d has no name", t.Name, i)
		}
		if names[rep.Name] {
			return fmt.Errorf("router: tier %q has duplicate replica %q", t.Name, rep.Name)
		}
		names[rep.Name] = true
		if rep.Model == nil {
			return fmt.Errorf("router: tier %q replica %q has no model", t.Name, rep.Name)
		}
		if rep.MaxConcurrent < 0 {
			return fmt.Errorf("router: tier %q replica %q: negative MaxConcurrent", t.Name, rep.Name)
		}
	}
	switch {
	case t.MaxTokens < 0, t.MaxConcurrent < 0, t.MaxQueued < 0:
		return fmt.Errorf("router: tier %q: negative MaxTokens, MaxConcurrent or MaxQueued", t.Name)
	case t.TTFTTarget < 0, t.QueueTimeout < 0, t.HedgeAfter < 0, t.StallTimeout < 0, t.StallGrace < 0:
		return fmt.Errorf("router: tier %q: negative duration", t.Name)
	case t.MinTokensPerSecond < 0:
		return fmt.Errorf("router: tier %q: negative MinTokensPerSecond", t.Name)
	case t.Overflow != OverflowDowngrade && t.Overflow != OverflowFail:
		return fmt.Errorf("router: tier %q: invalid Overflow %d", t.Name, t.Overflow)
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
