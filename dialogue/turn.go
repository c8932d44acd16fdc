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

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
	"google.golang.org/protobuf/types/known/durationpb"
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

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
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
