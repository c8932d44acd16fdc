package dialogue

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/router"
)

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
	// TimeOfDay, if set, takes the scene's time of day from the server's
	// clock instead of trusting the client's GameContext.time_of_day: it
	// is called with the request's GameContext.region ("" when none) and,
	// when ok, its text (cut to 256 bytes) replaces the client's. nil
	// keeps the client's value. worldtime.DialogueTimeOfDay builds one
	// from world clocks.
	TimeOfDay func(ctx context.Context, region string) (timeOfDay string, ok bool)
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
	// OnStarted, if set, is called synchronously as each reply's first
	// chunk is about to be sent, with the npc.dialogue.started payload. It
	// must not block for long: the player's first words wait for it.
	OnStarted func(context.Context, Started)
	// Events, if set, receives the same payloads as events on
	// [TopicStarted] and [TopicCompleted], keyed by player ID, after
	// OnStarted and OnCompleted. A failed publish is logged and counted
	// in Stats; the player still gets the reply.
	Events *eventbus.Bus
	// Logger receives warnings about backend and store failures; nil
	// means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
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
