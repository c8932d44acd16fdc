package dialogue

import (
	"context"
	"time"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/eventbus"
)

// TopicCompleted is the event-bus topic of [Completed] events.
const TopicCompleted = "npc.dialogue.completed"

// TopicStarted is the event-bus topic of [Started] events.
const TopicStarted = "npc.dialogue.started"

// Started is the payload of an npc.dialogue.started event: an NPC's reply
// is about to reach the player (its first chunk is next), so a voice line
// begins. An audio director ducks the music on it; [Completed] follows
// when the reply ends. It carries no dialogue text. Tier is the tier
// serving the reply, or "" for a fallback line.
type Started struct {
	// Version of this payload; currently 1.
	Version   int    `json:"version"`
	SessionID string `json:"session_id"`
	NPCID     string `json:"npc_id"`
	PlayerID  string `json:"player_id"`
	// Region is the request's GameContext.region ("" when none).
	Region   string    `json:"region,omitempty"`
	Tier     string    `json:"tier,omitempty"`
	Fallback bool      `json:"fallback"`
	At       time.Time `json:"at"`
}

// announce reports a reply's start to the hook and the bus.
func (s *Service) announce(ctx context.Context, ev Started) {
	if h := s.opts.OnStarted; h != nil {
		h(ctx, ev)
	}
	if b := s.opts.Events; b != nil {
		if err := eventbus.Publish(ctx, b, TopicStarted, ev, eventbus.WithKey(ev.PlayerID)); err != nil {
			s.publishErrors.Add(1)
			s.log.WarnContext(ctx, "dialogue: publishing a reply's start failed", "npc", ev.NPCID, "err", err)
		}
	}
}

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

// completedEvent describes the finished turn t, answered with c.
func completedEvent(t *turn, c *dialoguev1.Completion, ttft time.Duration, end time.Time) Completed {
	return Completed{
		Version: 1, SessionID: t.conv.ID, NPCID: t.persona.ID, PlayerID: t.player,
		Responsibility: t.respName, Tier: c.GetTier(), Model: c.GetModel(),
		FinishReason: finishName(c.GetFinishReason()), Fallback: c.GetFallback(),
		PromptTokens: int(c.GetUsage().GetPromptTokens()), CompletionTokens: int(c.GetUsage().GetCompletionTokens()),
		TTFT: ttft, Total: end.Sub(t.start), At: end,
	}
}
