package dialogue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/latency"
	"github.com/bodybroker/sdk/router"
)

// Service is the transport-independent NPC conversation service. The gRPC
// and HTTP transports ([Service.Register], [Service.HTTPHandler]) call it;
// so may a studio's own code. It is safe for concurrent use and starts no
// goroutines.
//
// Every call needs an [identity.Identity] in its context
// ([identity.NewContext]).
type Service struct {
	opts    Options
	limiter *limiter
	log     *slog.Logger
	// slowClients is counted by the transports (ErrSlowClient).
	slowClients atomic.Uint64

	requests, fallbacks, interrupted, truncated, clipped, failed, publishErrors, rateLimited atomic.Uint64
	active                                                                                   atomic.Int64
	ttft, total                                                                              latency.Histogram
}

// New validates opts and returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Completer == nil {
		return nil, errors.New("dialogue: Options.Completer is required")
	}
	if opts.Personas == nil {
		return nil, errNoPersonas
	}
	if opts.PromptBudget < 0 || opts.MaxTokens < 0 {
		return nil, errors.New("dialogue: PromptBudget and MaxTokens must not be negative")
	}
	if opts.RateLimit.Rate < 0 || opts.RateLimit.Burst < 0 {
		return nil, errors.New("dialogue: RateLimit must not be negative")
	}
	if opts.PromptBudget == 0 {
		opts.PromptBudget = 3072
	}
	if opts.MaxTokens == 0 {
		opts.MaxTokens = 256
	}
	if opts.CountTokens == nil {
		opts.CountTokens = EstimateTokens
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Store == nil {
		store, err := history.NewMemoryStore(history.MemoryStoreOptions{Now: opts.Now})
		if err != nil {
			return nil, err
		}
		opts.Store = store
	}
	opts.Limits.defaults()
	if opts.MaxTokens > opts.Limits.MaxTokens {
		return nil, fmt.Errorf("dialogue: MaxTokens %d exceeds Limits.MaxTokens %d", opts.MaxTokens, opts.Limits.MaxTokens)
	}
	opts.Regions = maps.Clone(opts.Regions)
	if opts.Responsibilities == nil {
		opts.Responsibilities = DefaultResponsibilities()
	} else {
		opts.Responsibilities = maps.Clone(opts.Responsibilities)
	}
	for r, imp := range opts.Responsibilities {
		if imp < router.Generic || imp > router.Major {
			return nil, fmt.Errorf("dialogue: Options.Responsibilities ranks %q as importance %d, want generic, elite or major", r, imp)
		}
	}
	if err := checkBudget(&opts); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Service{opts: opts, limiter: newLimiter(opts.RateLimit, opts.Now), log: log}, nil
}

// Limits returns the effective request limits.
func (s *Service) Limits() Limits { return s.opts.Limits }

// Say produces a whole reply. ctx must carry an [identity.Identity].
//
// The reply's tier and engine priority (vLLM's queue order) follow from
// the importance and responsibility it is routed by. For a player these
// come from the persona: Utterance.importance and .responsibility may
// lower them (a minor line for an elite NPC) but never raise them above
// the persona's importance, as ranked by Options.Responsibilities; a
// higher ask is ignored. A trusted caller (a service, [Identity.Trusted])
// may set both freely, and name a tier.
func (s *Service) Say(ctx context.Context, u *dialoguev1.Utterance) (*dialoguev1.SayResponse, error) {
	var b strings.Builder
	c, err := s.reply(ctx, u, func(ch *dialoguev1.Chunk) error {
		b.WriteString(ch.GetText())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &dialoguev1.SayResponse{Text: b.String(), Completion: c}, nil
}

// StreamSay produces a reply chunk by chunk, calling send for each in order;
// the last has Final set. An error from send ends the reply and is returned.
// ctx must carry an [identity.Identity]; cancelling it cancels the backend request.
// Tier and priority are chosen as for [Service.Say].
func (s *Service) StreamSay(ctx context.Context, u *dialoguev1.Utterance, send func(*dialoguev1.Chunk) error) error {
	_, err := s.reply(ctx, u, send)
	return err
}

// errInterrupted is the cancellation cause of a reply cut off by barge-in.
// reply runs one turn: prepare, generate (or fall back), remember, report.
func (s *Service) reply(ctx context.Context, u *dialoguev1.Utterance, send func(*dialoguev1.Chunk) error) (*dialoguev1.Completion, error) {
	start := s.opts.Now()
	t, err := s.prepare(ctx, u, start)
	if err != nil {
		s.failed.Add(1)
		return nil, err
	}
	s.requests.Add(1)
	s.active.Add(1)
	defer s.active.Add(-1)

	e := &emitter{send: send, s: s, t: t}
	c, err := s.generate(ctx, t, e)
	if err != nil {
		s.failed.Add(1)
		return nil, err
	}
	return c, nil
}
