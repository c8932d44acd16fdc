package dialogue

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
)

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
	region   string // GameContext.region as the client sent it
}

// prepare runs the steps before generation, in order: authenticate,
// validate, authorize the speaker, rate-limit, find the persona, load the
// session, moderate the utterance, assemble the prompt and build the
// router request.
func (s *Service) prepare(ctx context.Context, u *dialoguev1.Utterance, start time.Time) (*turn, error) {
	id, ok := identity.FromContext(ctx)
	if !ok {
		return nil, ErrUnauthenticated
	}
	if err := s.opts.Limits.Validate(u); err != nil {
		return nil, err
	}
	t := &turn{id: id, start: start}
	if err := t.speaker(u); err != nil {
		return nil, err
	}
	if err := s.limit(t); err != nil {
		return nil, err
	}
	p, ok := s.opts.Personas.lookup(u.GetNpcId())
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNPC, u.GetNpcId())
	}
	t.persona = p
	if err := s.loadSession(ctx, t, u.GetSessionId()); err != nil {
		return nil, err
	}
	if err := s.moderateInput(ctx, t, u); err != nil {
		return nil, err
	}
	msgs, err := s.assemblePrompt(ctx, t, u)
	if err != nil {
		return nil, err
	}
	s.buildRequest(t, u, msgs)
	return t, nil
}

// speaker decides whom the turn speaks for: a player speaks only for
// themselves; a trusted service names the player (or, continuing a
// session, may leave it to the session).
func (t *turn) speaker(u *dialoguev1.Utterance) error {
	switch {
	case t.id.Trusted():
		t.player = u.GetPlayerId()
	case u.GetPlayerId() != "" && u.GetPlayerId() != t.id.ID:
		return fmt.Errorf("%w: a player may speak only for themselves", ErrPermissionDenied)
	default:
		t.player = t.id.ID
	}
	return nil
}

// limit applies the rate limit to the turn's player, or to the service
// when it names none.
func (s *Service) limit(t *turn) error {
	key := t.player
	if key == "" {
		key = "service:" + t.id.ID
	}
	if !s.limiter.allow(key) {
		s.rateLimited.Add(1)
		return ErrRateLimited
	}
	return nil
}

// loadSession starts a session or loads the one named. Sessions are issued
// here, never chosen by the client: an empty ID starts one, and an ID the
// store does not hold is NotFound.
func (s *Service) loadSession(ctx context.Context, t *turn, sessionID string) error {
	p := t.persona
	t.conv = history.Conversation{ID: sessionID, NPC: p.ID, Player: t.player}
	t.save = true
	if t.conv.ID == "" {
		if t.player == "" {
			return &FieldError{Field: "player_id", Reason: "required for a service starting a session"}
		}
		t.conv.ID = newSessionID()
		t.started = true
		return nil
	}
	c, err := s.opts.Store.Load(ctx, t.conv.ID)
	switch {
	case err == nil:
		if t.player == "" {
			t.player = c.Player // a trusted service continuing any session
		}
		if c.Player != t.player {
			return fmt.Errorf("%w: session belongs to another player", ErrPermissionDenied)
		}
		if c.NPC != p.ID {
			return &FieldError{Field: "session_id", Reason: "the session is with another NPC"}
		}
		t.conv = c
	case errors.Is(err, history.ErrNotFound):
		return fmt.Errorf("%w: %q (never issued, or expired); leave session_id empty to start one", ErrSessionNotFound, t.conv.ID)
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		// Memory is an optimisation: answer without history rather than
		// fail the player, but never without an owner, and never save
		// the turn: the session may not exist, and an outage must not
		// let a client create one under an ID of its choosing.
		s.log.WarnContext(ctx, "dialogue: loading conversation failed; answering without history", "session", t.conv.ID, "err", err)
		if t.player == "" {
			return fmt.Errorf("%w: loading the conversation: %w", ErrUnavailable, err)
		}
		t.conv.Player = t.player
		t.save = false
	}
	return nil
}

// moderateInput passes the player's line through the moderator and sets
// t.said, the line as stored in memory; an empty line becomes a stage
// direction.
func (s *Service) moderateInput(ctx context.Context, t *turn, u *dialoguev1.Utterance) error {
	text := u.GetText()
	if s.opts.Moderator != nil && text != "" {
		m, err := s.opts.Moderator.Input(ctx, Moderation{Player: t.player, NPC: t.persona.ID, Session: t.conv.ID, Text: text})
		if err != nil {
			if errors.Is(err, ErrRejected) {
				return err
			}
			return fmt.Errorf("%w: moderating the utterance: %w", ErrUnavailable, err)
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
	return nil
}

// assemblePrompt lays out the prompt within the token budget and records
// its size in t.prompt. A summary too long for the budget is dropped
// rather than failing the player.
func (s *Service) assemblePrompt(ctx context.Context, t *turn, u *dialoguev1.Utterance) ([]router.Message, error) {
	p := t.persona
	lang := canonicalLanguage(u.GetLanguage())
	if lang == "" {
		lang = p.Language
	}
	t.region = u.GetContext().GetRegion()
	region := ""
	if r := t.region; r != "" {
		region = s.opts.Regions[r]
	}
	pr := Prompt{
		WorldLore:  s.opts.WorldLore,
		RegionLore: region,
		Persona:    p.block,
		Summary:    t.conv.Summary,
		Language:   lang,
		History:    t.conv.Turns,
		Scene:      s.scene(ctx, u.GetContext()),
		Utterance:  t.said,
	}
	msgs, n, err := pr.Assemble(s.opts.PromptBudget, s.opts.CountTokens)
	if err != nil && pr.Summary != "" {
		pr.Summary = ""
		msgs, n, err = pr.Assemble(s.opts.PromptBudget, s.opts.CountTokens)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	t.prompt = n
	return msgs, nil
}

// buildRequest sets t.req: routing, reply length, sampling, and the tier
// and adapter overrides only a trusted caller may make.
func (s *Service) buildRequest(t *turn, u *dialoguev1.Utterance, msgs []router.Message) {
	p, trusted := t.persona, t.id.Trusted()
	imp, resp := s.routing(trusted, p, router.Importance(u.GetImportance()), router.Responsibility(u.GetResponsibility()))
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
		// The router serves players in fair rounds, and a token-window
		// limiter counts the prompt as assembled.
		FairnessKey:  t.player,
		PromptTokens: t.prompt,
	}
	if u.Temperature != nil {
		temp := u.GetTemperature()
		t.req.Temperature = &temp
	}
	if trusted {
		t.req.Tier = u.GetTier()
		if u.GetAdapter() != "" {
			t.req.Adapter = u.GetAdapter()
		}
	}
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// outcome is how a reply ended, as the generation steps learn it.
type outcome struct {
	finish dialoguev1.FinishReason
	usage  *router.Usage // as the backend reported it, if it did
}

// generate runs the steps of a reply: route the request (open the
// stream), stream the reply through e, classify a failure, fall back when
// no tier could answer, and finish: flush, remember, measure, send the
// final chunk and report.
func (s *Service) generate(ctx context.Context, t *turn, e *emitter) (*dialoguev1.Completion, error) {
	c := &dialoguev1.Completion{SessionId: t.conv.ID}
	out := outcome{finish: dialoguev1.FinishReason_FINISH_REASON_STOP}
	st, err := s.opts.Completer.Stream(ctx, t.req)
	if err == nil {
		defer st.Close()
		e.route = st
		err = s.stream(ctx, t, st, e, &out)
	}
	backend, err := s.classify(ctx, err, &out)
	if err != nil {
		return nil, err
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
		if err := s.fallback(ctx, t, e, c, backend, &out); err != nil {
			return nil, err
		}
	}
	return s.finish(ctx, t, e, c, out)
}

// stream reads the completion into e until it ends, fails, or outgrows
// Limits.MaxReplyBytes: a runaway reply keeps what fits, stops reading
// and releases the backend at once.
func (s *Service) stream(ctx context.Context, t *turn, st CompletionStream, e *emitter, out *outcome) error {
	room := s.opts.Limits.MaxReplyBytes
	for {
		d, err := st.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if len(d.Text) > room {
			if err := e.write(ctx, truncateUTF8(d.Text, room)); err != nil {
				return err
			}
			_ = st.Close()
			out.finish = dialoguev1.FinishReason_FINISH_REASON_LENGTH
			s.clipped.Add(1)
			s.log.WarnContext(ctx, "dialogue: reply reached Limits.MaxReplyBytes; cut off", "npc", t.persona.ID, "limit", s.opts.Limits.MaxReplyBytes)
			return nil
		}
		room -= len(d.Text)
		if d.Text != "" {
			if err := e.write(ctx, d.Text); err != nil {
				return err
			}
		}
		if d.Usage != nil {
			out.usage = d.Usage
		}
		if d.FinishReason != "" {
			out.finish = finishReason(d.FinishReason)
		}
	}
}

// classify sorts the error that ended generation, if any. The player
// interrupting is a finish reason; a backend failure is returned as
// backend, to be answered with what was sent or a fallback line; the
// caller's cancellation, a failed send and a bad tier end the turn with
// err.
func (s *Service) classify(ctx context.Context, genErr error, out *outcome) (backend, err error) {
	switch {
	case genErr == nil:
		return nil, nil
	case context.Cause(ctx) == errInterrupted:
		out.finish = dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED
		s.interrupted.Add(1)
		return nil, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(genErr, errSend):
		return nil, genErr
	case errors.Is(genErr, router.ErrUnknownTier):
		return nil, &FieldError{Field: "tier", Reason: genErr.Error()}
	default:
		return genErr, nil
	}
}

// fallback answers a backend failure: a reply already under way ends
// truncated; one that sent nothing is replaced by one of the persona's
// fallback lines.
func (s *Service) fallback(ctx context.Context, t *turn, e *emitter, c *dialoguev1.Completion, backend error, out *outcome) error {
	if errors.Is(backend, errModeration) {
		e.reset() // never release text the moderator did not pass
	}
	if e.sent() {
		out.finish = dialoguev1.FinishReason_FINISH_REASON_TRUNCATED
		s.truncated.Add(1)
		s.log.WarnContext(ctx, "dialogue: backend failed mid-reply", "npc", t.persona.ID, "err", backend)
		return nil
	}
	out.finish = dialoguev1.FinishReason_FINISH_REASON_FALLBACK
	c.Fallback = true
	s.fallbacks.Add(1)
	s.log.WarnContext(ctx, "dialogue: no tier could answer; using a fallback line", "npc", t.persona.ID, "err", backend)
	e.reset()
	e.route = nil // a fallback line: no tier serves it
	line := t.persona.FallbackLines[fallbackIndex(t.conv.ID, len(t.conv.Turns), len(t.persona.FallbackLines))]
	e.moderated = false // the studio wrote these lines
	return e.write(ctx, line)
}

// finish delivers the rest of the reply, remembers the turn, records its
// latency, sends the final chunk and reports the completion.
func (s *Service) finish(ctx context.Context, t *turn, e *emitter, c *dialoguev1.Completion, out outcome) (*dialoguev1.Completion, error) {
	fctx := ctx
	if out.finish == dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED {
		var cancel context.CancelFunc
		fctx, cancel = detached(ctx) // still deliver what was generated, within a bound
		defer cancel()
	}
	if err := e.flush(fctx); err != nil {
		return nil, err
	}
	c.FinishReason = out.finish
	text := e.text.String()
	if out.usage != nil {
		c.Usage = &dialoguev1.Usage{PromptTokens: int32(out.usage.PromptTokens), CompletionTokens: int32(out.usage.CompletionTokens)}
	} else {
		c.Usage = &dialoguev1.Usage{PromptTokens: int32(t.prompt), CompletionTokens: int32(s.opts.CountTokens(text))}
	}
	s.remember(ctx, t, text)
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
		pctx, cancel := detached(ctx)
		s.publish(pctx, completedEvent(t, c, ttft, end))
		cancel()
	}
	return c, nil
}

// afterwardTimeout bounds work a turn finishes after its caller may have
// gone (delivering an interrupted reply's last sentence, saving the turn,
// announcing events): a blocked store, moderator or bus holds the reply
// goroutine, and the Converse turn behind it, no longer than this.
const afterwardTimeout = 2 * time.Second

// detached is ctx without its cancellation, bounded by afterwardTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), afterwardTimeout)
}

// remember saves the turn. A new session is saved even when the reply
// has no text, so that the ID it hands out can be continued. Saving
// outlives the caller's cancellation, bounded by its own timeout.
func (s *Service) remember(ctx context.Context, t *turn, text string) {
	if !t.save || (!t.started && strings.TrimSpace(text) == "") {
		return
	}
	sctx, cancel := detached(ctx)
	defer cancel()
	if err := s.opts.Store.Append(sctx, t.conv, history.Turn{Player: t.said, NPC: text}); err != nil {
		s.log.WarnContext(ctx, "dialogue: saving the turn failed", "session", t.conv.ID, "err", err)
	}
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
