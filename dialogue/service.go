package dialogue

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/latency"
	"github.com/bodybroker/sdk/router"
)

// Completer is what the service needs from the router: a streamed
// completion. [RouterCompleter] adapts a *router.Router; tests and studios
// may supply their own. Implementations must be safe for concurrent use.
//
// Stream returns an error only when nothing was generated; the service then
// answers with a fallback line. Cancelling ctx must cancel the backend
// request.
type Completer interface {
	Stream(ctx context.Context, req router.Request) (CompletionStream, error)
}

// CompletionStream is a completion in progress: Recv returns the next delta
// and io.EOF after the last; Close releases it (safe to call more than
// once); Receipt says how it was routed.
type CompletionStream interface {
	Recv() (router.Delta, error)
	Close() error
	Receipt() router.Receipt
}

// Moderation is what a [Moderator] inspects.
type Moderation struct {
	Player  string
	NPC     string
	Session string
	Text    string
}

// Moderator filters text on its way in and out. Either method may rewrite
// the text. Input returning an error matching [ErrRejected] refuses the
// request (InvalidArgument); any other error from Input fails the request
// with an error matching both [ErrUnavailable] (Unavailable) and the
// moderator's error. An error from Output is treated like a backend
// failure: the reply ends as a fallback line or truncated. Output sees one
// sentence at a time, so with a moderator set, chunks are released per
// sentence rather than per token.
// Implementations must be safe for concurrent use.
type Moderator interface {
	Input(ctx context.Context, m Moderation) (string, error)
	Output(ctx context.Context, m Moderation) (string, error)
}

// TopicCompleted is the event-bus topic of [Completed] events.
const TopicCompleted = "npc.dialogue.completed"

// Completed is the payload of an npc.dialogue.completed event: one NPC reply
// finished (normally, by fallback, truncated or interrupted). It carries no
// dialogue text. Responsibility is the one the reply was routed by: the one
// requested, unless a player asked for more than the NPC's importance
// allows (see [Service.Say]).
type Completed struct {
	// Version of this payload; currently 1.
	Version          int           `json:"version"`
	SessionID        string        `json:"session_id"`
	NPCID            string        `json:"npc_id"`
	PlayerID         string        `json:"player_id"`
	Responsibility   string        `json:"responsibility,omitempty"`
	Tier             string        `json:"tier,omitempty"`
	Model            string        `json:"model,omitempty"`
	FinishReason     string        `json:"finish_reason"`
	Fallback         bool          `json:"fallback"`
	PromptTokens     int           `json:"prompt_tokens"`
	CompletionTokens int           `json:"completion_tokens"`
	TTFT             time.Duration `json:"ttft_ns"`
	Total            time.Duration `json:"total_ns"`
	At               time.Time     `json:"at"`
}

// Options configures a [Service]. Completer and Personas are required;
// every other zero value means the documented default.
type Options struct {
	// Completer generates replies, normally [RouterCompleter] over a
	// *router.Router.
	Completer Completer
	// Personas holds the NPCs the service can voice.
	Personas *Personas
	// Store keeps conversation memory; nil means a [history.MemoryStore] with
	// default bounds.
	Store history.Store
	// WorldLore opens every system prompt.
	WorldLore string
	// Regions maps GameContext.region to that region's lore.
	Regions map[string]string
	// PromptBudget bounds the prompt in tokens; 0 means 3,072. New checks
	// that it leaves every persona registered by then room for the largest
	// utterance and game context that Limits allow.
	PromptBudget int
	// CountTokens counts tokens for the budget; nil means [EstimateTokens].
	CountTokens TokenCounter
	// MaxTokens is the reply length when the request leaves it 0; 0 means
	// 256.
	MaxTokens int
	// Responsibilities ranks each responsibility by the NPC importance it
	// calls for. It bounds what players may ask for: the tier and the
	// engine priority of a reply come from the persona's importance and
	// from trusted callers, and a player's importance and responsibility
	// may only lower them (see [Service.Say]). Rank a responsibility as
	// the router's policy tiers it: tier1 as router.Generic, tier2 as
	// router.Elite, tier3 as router.Major. A responsibility missing here
	// (a studio-defined one, say) is not honoured for players. nil means
	// [DefaultResponsibilities].
	Responsibilities map[router.Responsibility]router.Importance
	// Limits bounds request sizes and the bytes of one reply.
	Limits Limits
	// RateLimit is the per-player request rate.
	RateLimit RateLimit
	// Moderator, if set, filters player input and NPC output.
	Moderator Moderator
	// OnCompleted, if set, is called synchronously after each reply with
	// the npc.dialogue.completed payload; wire it to an event bus under
	// [TopicCompleted]. It must not block for long.
	OnCompleted func(context.Context, Completed)
	// Events, if set, receives the same payload as an event on
	// [TopicCompleted], keyed by player ID, after OnCompleted. A failed
	// publish is logged and counted in Stats; the player still gets the
	// reply.
	Events *eventbus.Bus
	// Logger receives warnings about backend and store failures; nil
	// means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is the transport-independent NPC conversation service. The gRPC
// and HTTP transports ([Service.Register], [Service.HTTPHandler]) call it;
// so may a studio's own code. It is safe for concurrent use and starts no
// goroutines.
//
// Every call needs an [identity.Identity] in its context ([identity.NewContext]).
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

// DefaultResponsibilities returns the default ranks of
// Options.Responsibilities, which follow [router.DefaultResponsibilityTiers]:
//
//	greeting, farewell, generic, simple                                  generic
//	elite_dialogue, quest_dialogue, complex_question, story_progression  elite
//	major_npc, personalized, character_development, story_critical       major
//
// It returns a new map on every call.
func DefaultResponsibilities() map[router.Responsibility]router.Importance {
	rank := map[string]router.Importance{router.Tier1: router.Generic, router.Tier2: router.Elite, router.Tier3: router.Major}
	m := make(map[router.Responsibility]router.Importance)
	for r, tier := range router.DefaultResponsibilityTiers() {
		if imp, ok := rank[tier]; ok {
			m[r] = imp
		}
	}
	return m
}

// routing returns the importance and responsibility a request is routed
// by. Trusted callers choose freely. For players the persona's importance
// is a ceiling: they may ask for less, never for more; an importance or
// responsibility above it (or a responsibility the service does not rank)
// is ignored, so the persona decides. A persona without an importance
// routes by the policy's default tier, so players may only ask it for
// generic.
func (s *Service) routing(trusted bool, p *Persona, asked router.Importance, resp router.Responsibility) (router.Importance, router.Responsibility) {
	if trusted {
		if asked == router.ImportanceUnset {
			asked = p.Importance
		}
		return asked, resp
	}
	limit := p.Importance
	if limit == router.ImportanceUnset {
		limit = router.Generic
	}
	imp := p.Importance
	if asked != router.ImportanceUnset && asked <= limit {
		imp = asked
	}
	if resp != router.ResponsibilityUnknown {
		if rank, ok := s.opts.Responsibilities[resp]; !ok || rank > limit {
			resp = router.ResponsibilityUnknown
		}
	}
	return imp, resp
}

// checkBudget makes sure that every persona registered now, in its largest
// region, leaves room in the prompt budget for the largest utterance and
// game context the limits allow: otherwise such requests would fail for a
// reason the player cannot fix.
func checkBudget(o *Options) error {
	region := ""
	for _, r := range o.Regions {
		if len(r) > len(region) {
			region = r
		}
	}
	worstTurn := strings.Repeat("x", o.Limits.MaxUtteranceBytes+o.Limits.MaxContextBytes+256)
	for _, id := range o.Personas.IDs() {
		p, ok := o.Personas.lookup(id)
		if !ok {
			continue
		}
		_, n, err := Prompt{WorldLore: o.WorldLore, RegionLore: region, Persona: p.block, Language: "zzz-Zzzz-419", Utterance: worstTurn}.
			Assemble(o.PromptBudget, o.CountTokens)
		if err != nil {
			return fmt.Errorf("dialogue: PromptBudget %d is too small for persona %s with the largest request the limits allow (%d tokens)", o.PromptBudget, id, n)
		}
	}
	return nil
}

// Stats is a snapshot of a [Service]'s counters.
type Stats struct {
	// Requests counts calls that passed validation, auth and rate limits.
	Requests uint64
	// Fallbacks counts replies that were fallback lines.
	Fallbacks uint64
	// Interrupted counts replies cut off by barge-in.
	Interrupted uint64
	// Truncated counts replies whose backend failed mid-stream.
	Truncated uint64
	// Failed counts calls that ended in an error (including client
	// cancellation).
	Failed uint64
	// PublishErrors counts completions Options.Events refused.
	PublishErrors uint64
	// Clipped counts replies cut off at Limits.MaxReplyBytes.
	Clipped uint64
	// RateLimited counts requests refused by the per-player rate limit
	// (also counted in Failed).
	RateLimited uint64
	// SlowClients counts calls ended because the client did not accept a
	// reply chunk within the transport's send timeout (ErrSlowClient).
	SlowClients uint64
	// Active is the number of replies in progress.
	Active int64
	// TTFT and Total are latency distributions of replies, measured from
	// the request to the first text and to the end.
	TTFT, Total latency.Summary
}

// Stats returns a snapshot of the service's counters.
func (s *Service) Stats() Stats {
	return Stats{
		Requests:      s.requests.Load(),
		Fallbacks:     s.fallbacks.Load(),
		Interrupted:   s.interrupted.Load(),
		Truncated:     s.truncated.Load(),
		Clipped:       s.clipped.Load(),
		Failed:        s.failed.Load(),
		PublishErrors: s.publishErrors.Load(),
		RateLimited:   s.rateLimited.Load(),
		SlowClients:   s.slowClients.Load(),
		Active:        s.active.Load(),
		TTFT:          s.ttft.Summary(),
		Total:         s.total.Summary(),
	}
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
var errInterrupted = errors.New("dialogue: interrupted by the player")

// turn is a prepared request.
type turn struct {
	id       identity.Identity
	player   string
	persona  *Persona
	conv     history.Conversation
	said     string // the player's line as stored in memory
	started  bool   // the session is new: its ID was issued for this turn
	save     bool   // the turn may be saved (the session's existence is known)
	prompt   int    // prompt tokens (estimated)
	req      router.Request
	start    time.Time
	respName string // the responsibility the request is routed by
}

// prepare authenticates, validates, rate-limits and assembles the prompt.
func (s *Service) prepare(ctx context.Context, u *dialoguev1.Utterance, start time.Time) (*turn, error) {
	id, ok := identity.FromContext(ctx)
	if !ok {
		return nil, ErrUnauthenticated
	}
	if err := s.opts.Limits.Validate(u); err != nil {
		return nil, err
	}
	t := &turn{id: id, start: start}
	switch {
	case id.Trusted():
		t.player = u.GetPlayerId()
	case u.GetPlayerId() != "" && u.GetPlayerId() != id.ID:
		return nil, fmt.Errorf("%w: a player may speak only for themselves", ErrPermissionDenied)
	default:
		t.player = id.ID
	}
	key := t.player
	if key == "" {
		key = "service:" + id.ID
	}
	if !s.limiter.allow(key) {
		s.rateLimited.Add(1)
		return nil, ErrRateLimited
	}
	p, ok := s.opts.Personas.lookup(u.GetNpcId())
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNPC, u.GetNpcId())
	}
	t.persona = p

	// Sessions are issued here, never chosen by the client: an empty ID
	// starts one, and an ID the store does not hold is NotFound.
	t.conv = history.Conversation{ID: u.GetSessionId(), NPC: p.ID, Player: t.player}
	t.save = true
	if t.conv.ID == "" {
		if t.player == "" {
			return nil, &FieldError{Field: "player_id", Reason: "required for a service starting a session"}
		}
		t.conv.ID = newSessionID()
		t.started = true
	} else {
		c, err := s.opts.Store.Load(ctx, t.conv.ID)
		switch {
		case err == nil:
			if t.player == "" {
				t.player = c.Player // a trusted service continuing any session
			}
			if c.Player != t.player {
				return nil, fmt.Errorf("%w: session belongs to another player", ErrPermissionDenied)
			}
			if c.NPC != p.ID {
				return nil, &FieldError{Field: "session_id", Reason: "the session is with another NPC"}
			}
			t.conv = c
		case errors.Is(err, history.ErrNotFound):
			return nil, fmt.Errorf("%w: %q (never issued, or expired); leave session_id empty to start one", ErrSessionNotFound, t.conv.ID)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			// Memory is an optimisation: answer without history rather
			// than fail the player, but never without an owner, and
			// never save the turn: the session may not exist, and an
			// outage must not let a client create one under an ID of
			// its choosing.
			s.log.WarnContext(ctx, "dialogue: loading conversation failed; answering without history", "session", t.conv.ID, "err", err)
			if t.player == "" {
				return nil, fmt.Errorf("%w: loading the conversation: %w", ErrUnavailable, err)
			}
			t.conv.Player = t.player
			t.save = false
		}
	}

	text := u.GetText()
	if s.opts.Moderator != nil && text != "" {
		m, err := s.opts.Moderator.Input(ctx, Moderation{Player: t.player, NPC: p.ID, Session: t.conv.ID, Text: text})
		if err != nil {
			if errors.Is(err, ErrRejected) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: moderating the utterance: %w", ErrUnavailable, err)
		}
		text = m
	}
	if text == "" {
		if u.GetResponsibility() == string(router.Farewell) {
			text = "(The player takes their leave.)"
		} else {
			text = "(The player approaches you.)"
		}
	}
	t.said = text

	lang := canonicalLanguage(u.GetLanguage())
	if lang == "" {
		lang = p.Language
	}
	region := ""
	if r := u.GetContext().GetRegion(); r != "" {
		region = s.opts.Regions[r]
	}
	pr := Prompt{
		WorldLore:  s.opts.WorldLore,
		RegionLore: region,
		Persona:    p.block,
		Summary:    t.conv.Summary,
		Language:   lang,
		History:    t.conv.Turns,
		Scene:      u.GetContext(),
		Utterance:  text,
	}
	msgs, n, err := pr.Assemble(s.opts.PromptBudget, s.opts.CountTokens)
	if err != nil && pr.Summary != "" {
		// A summary too long for the budget is dropped rather than
		// failing the player.
		pr.Summary = ""
		msgs, n, err = pr.Assemble(s.opts.PromptBudget, s.opts.CountTokens)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	t.prompt = n

	imp, resp := s.routing(id.Trusted(), p, router.Importance(u.GetImportance()), router.Responsibility(u.GetResponsibility()))
	t.respName = string(resp)
	maxTok := int(u.GetMaxTokens())
	if maxTok == 0 {
		maxTok = s.opts.MaxTokens
	}
	t.req = router.Request{
		Messages:       msgs,
		Responsibility: resp,
		Importance:     imp,
		AffinityKey:    t.conv.ID,
		NPC:            p.ID,
		MaxTokens:      maxTok,
		Adapter:        p.Adapter,
	}
	if u.Temperature != nil {
		temp := u.GetTemperature()
		t.req.Temperature = &temp
	}
	if id.Trusted() {
		t.req.Tier = u.GetTier()
		if u.GetAdapter() != "" {
			t.req.Adapter = u.GetAdapter()
		}
	}
	return t, nil
}

// RouterCompleter adapts a *router.Router to [Completer].
func RouterCompleter(r *router.Router) Completer { return routerCompleter{r} }

type routerCompleter struct{ r *router.Router }

func (c routerCompleter) Stream(ctx context.Context, req router.Request) (CompletionStream, error) {
	s, err := c.r.Stream(ctx, req)
	if err != nil {
		return nil, err // never a typed nil
	}
	return s, nil
}

var _ CompletionStream = (*router.RoutedStream)(nil)

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

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

// generate streams the completion through e and sends the final chunk.
func (s *Service) generate(ctx context.Context, t *turn, e *emitter) (*dialoguev1.Completion, error) {
	c := &dialoguev1.Completion{SessionId: t.conv.ID}
	var (
		finish  = dialoguev1.FinishReason_FINISH_REASON_STOP
		usage   *router.Usage
		backend error
	)
	st, err := s.opts.Completer.Stream(ctx, t.req)
	if err == nil {
		defer st.Close()
		room := s.opts.Limits.MaxReplyBytes
		for {
			d, rerr := st.Recv()
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				err = rerr
				break
			}
			if len(d.Text) > room {
				// A runaway reply: keep what fits, stop reading and
				// release the backend now.
				if werr := e.write(ctx, truncateUTF8(d.Text, room)); werr != nil {
					err = werr
					break
				}
				_ = st.Close()
				finish = dialoguev1.FinishReason_FINISH_REASON_LENGTH
				s.clipped.Add(1)
				s.log.WarnContext(ctx, "dialogue: reply reached Limits.MaxReplyBytes; cut off", "npc", t.persona.ID, "limit", s.opts.Limits.MaxReplyBytes)
				break
			}
			room -= len(d.Text)
			if d.Text != "" {
				if werr := e.write(ctx, d.Text); werr != nil {
					err = werr
					break
				}
			}
			if d.Usage != nil {
				usage = d.Usage
			}
			if d.FinishReason != "" {
				finish = finishReason(d.FinishReason)
			}
		}
	}
	if err != nil {
		switch {
		case context.Cause(ctx) == errInterrupted:
			finish = dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED
			s.interrupted.Add(1)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, errSend):
			return nil, err
		case errors.Is(err, router.ErrUnknownTier):
			return nil, &FieldError{Field: "tier", Reason: err.Error()}
		default:
			backend = err
		}
	}
	var re *router.RouteError
	switch {
	case st != nil:
		c.Receipt = receiptProto(st.Receipt())
		c.Tier, c.Model = st.Receipt().Tier, st.Receipt().Model
	case errors.As(backend, &re):
		c.Receipt = receiptProto(re.Receipt) // where every tier failed
	}
	if backend != nil {
		if errors.Is(backend, errModeration) {
			e.reset() // never release text the moderator did not pass
		}
		if e.sent() {
			finish = dialoguev1.FinishReason_FINISH_REASON_TRUNCATED
			s.truncated.Add(1)
			s.log.WarnContext(ctx, "dialogue: backend failed mid-reply", "npc", t.persona.ID, "err", backend)
		} else {
			finish = dialoguev1.FinishReason_FINISH_REASON_FALLBACK
			c.Fallback = true
			s.fallbacks.Add(1)
			s.log.WarnContext(ctx, "dialogue: no tier could answer; using a fallback line", "npc", t.persona.ID, "err", backend)
			e.reset()
			line := t.persona.FallbackLines[fallbackIndex(t.conv.ID, len(t.conv.Turns), len(t.persona.FallbackLines))]
			e.moderated = false // the studio wrote these lines
			if err := e.write(ctx, line); err != nil {
				return nil, err
			}
		}
	}
	fctx := ctx
	if finish == dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED {
		fctx = context.WithoutCancel(ctx) // still deliver what was generated
	}
	if err := e.flush(fctx); err != nil {
		return nil, err
	}
	c.FinishReason = finish

	text := e.text.String()
	if usage != nil {
		c.Usage = &dialoguev1.Usage{PromptTokens: int32(usage.PromptTokens), CompletionTokens: int32(usage.CompletionTokens)}
	} else {
		c.Usage = &dialoguev1.Usage{PromptTokens: int32(t.prompt), CompletionTokens: int32(s.opts.CountTokens(text))}
	}
	// A new session is saved even when the reply has no text, so that the
	// ID it hands out can be continued.
	if t.save && (t.started || strings.TrimSpace(text) != "") {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := s.opts.Store.Append(sctx, t.conv, history.Turn{Player: t.said, NPC: text}); err != nil {
			s.log.WarnContext(ctx, "dialogue: saving the turn failed", "session", t.conv.ID, "err", err)
		}
		cancel()
	}
	end := s.opts.Now()
	ttft := end.Sub(t.start)
	if !e.first.IsZero() {
		ttft = e.first.Sub(t.start)
	}
	c.Ttft = durationpb.New(ttft)
	c.TotalLatency = durationpb.New(end.Sub(t.start))
	s.ttft.Record(ttft)
	s.total.Record(end.Sub(t.start))
	if err := e.final(c); err != nil {
		return nil, err
	}
	if s.opts.OnCompleted != nil || s.opts.Events != nil {
		ev := Completed{
			Version: 1, SessionID: t.conv.ID, NPCID: t.persona.ID, PlayerID: t.player,
			Responsibility: t.respName, Tier: c.GetTier(), Model: c.GetModel(),
			FinishReason: finishName(finish), Fallback: c.GetFallback(),
			PromptTokens: int(c.GetUsage().GetPromptTokens()), CompletionTokens: int(c.GetUsage().GetCompletionTokens()),
			TTFT: ttft, Total: end.Sub(t.start), At: end,
		}
		s.publish(context.WithoutCancel(ctx), ev)
	}
	return c, nil
}

// publish reports a completed reply to the hook and the bus.
func (s *Service) publish(ctx context.Context, ev Completed) {
	if h := s.opts.OnCompleted; h != nil {
		h(ctx, ev)
	}
	if b := s.opts.Events; b != nil {
		if err := eventbus.Publish(ctx, b, TopicCompleted, ev, eventbus.WithKey(ev.PlayerID)); err != nil {
			s.publishErrors.Add(1)
			s.log.WarnContext(ctx, "dialogue: publishing completion failed", "npc", ev.NPCID, "err", err)
		}
	}
}

// truncateUTF8 returns the longest prefix of s of at most n bytes that does
// not split a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func fallbackIndex(session string, turns, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(session))
	return int((h.Sum32() + uint32(turns)) % uint32(n))
}

func finishReason(r router.FinishReason) dialoguev1.FinishReason {
	switch r {
	case router.FinishLength:
		return dialoguev1.FinishReason_FINISH_REASON_LENGTH
	case router.FinishScripted:
		return dialoguev1.FinishReason_FINISH_REASON_SCRIPTED
	case router.FinishCancelled:
		return dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED
	default:
		return dialoguev1.FinishReason_FINISH_REASON_STOP
	}
}

func finishName(r dialoguev1.FinishReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "FINISH_REASON_"))
}

func receiptProto(r router.Receipt) *dialoguev1.RouteReceipt {
	p := &dialoguev1.RouteReceipt{
		Tier: r.Tier, Replica: r.Replica, Model: r.Model,
		Attempts: int32(r.Attempts),
		Queued:   durationpb.New(r.Timing.Queued),
	}
	for _, reason := range r.Reasons {
		p.Reasons = append(p.Reasons, string(reason))
	}
	return p
}

// errSend marks a failure to deliver a chunk to the client.
var errSend = errors.New("dialogue: sending to the client failed")

// errModeration marks a failure of the output moderation hook.
var errModeration = errors.New("dialogue: output moderation failed")

// emitter turns deltas into chunks: sentence segmentation, optional output
// moderation, indices, TTFT.
type emitter struct {
	send      func(*dialoguev1.Chunk) error
	s         *Service
	t         *turn
	seg       segmenter
	scratch   []piece
	modBuf    strings.Builder
	moderated bool
	init      bool
	index     uint32
	text      strings.Builder
	first     time.Time
}

func (e *emitter) sent() bool {
	return e.index > 0 || e.text.Len() > 0 || e.seg.held != "" || e.modBuf.Len() > 0
}

// reset drops text that was held back and never sent.
func (e *emitter) reset() {
	e.seg = segmenter{}
	e.modBuf.Reset()
}

func (e *emitter) write(ctx context.Context, delta string) error {
	if !e.init {
		e.init = true
		e.moderated = e.s.opts.Moderator != nil
	}
	e.scratch = e.seg.push(delta, e.scratch[:0])
	return e.deliver(ctx, e.scratch)
}

func (e *emitter) flush(ctx context.Context) error {
	e.scratch = e.seg.flush(e.scratch[:0])
	if err := e.deliver(ctx, e.scratch); err != nil {
		return err
	}
	if e.modBuf.Len() > 0 {
		s := e.modBuf.String()
		e.modBuf.Reset()
		return e.moderate(ctx, s, true)
	}
	return nil
}

func (e *emitter) deliver(ctx context.Context, ps []piece) error {
	for _, p := range ps {
		if !e.moderated {
			if err := e.chunk(p.text, p.sentenceEnd); err != nil {
				return err
			}
			continue
		}
		e.modBuf.WriteString(p.text)
		if p.sentenceEnd {
			s := e.modBuf.String()
			e.modBuf.Reset()
			if err := e.moderate(ctx, s, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *emitter) moderate(ctx context.Context, s string, end bool) error {
	out, err := e.s.opts.Moderator.Output(ctx, Moderation{Player: e.t.player, NPC: e.t.persona.ID, Session: e.t.conv.ID, Text: s})
	if err != nil {
		return fmt.Errorf("%w: %w", errModeration, err)
	}
	if out == "" {
		return nil
	}
	return e.chunk(out, end)
}

func (e *emitter) chunk(text string, end bool) error {
	if text == "" {
		return nil
	}
	if e.first.IsZero() {
		e.first = e.s.opts.Now()
	}
	e.text.WriteString(text)
	ch := &dialoguev1.Chunk{Text: text, Index: e.index, SentenceEnd: end}
	e.index++
	if err := e.send(ch); err != nil {
		return fmt.Errorf("%w: %w", errSend, err)
	}
	return nil
}

func (e *emitter) final(c *dialoguev1.Completion) error {
	ch := &dialoguev1.Chunk{Index: e.index, SentenceEnd: true, Final: true, Completion: c}
	e.index++
	if err := e.send(ch); err != nil {
		return fmt.Errorf("%w: %w", errSend, err)
	}
	return nil
}
