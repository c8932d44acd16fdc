package dialogue

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/router"
)

// TokenCounter counts the tokens of a string for budgeting. It must be
// monotonic in the sense that appending text never lowers the count.
type TokenCounter func(string) int

// EstimateTokens is the default [TokenCounter]: one token per four bytes,
// rounded up, which over-counts English for common tokenizers and so keeps
// budgets safe.
func EstimateTokens(s string) int { return (len(s) + 3) / 4 }

// MessageOverhead is the number of tokens a chat template adds per message
// (role markers, separators); budgets count it for every message.
const MessageOverhead = 4

// Prompt is everything a reply's prompt is assembled from. [Prompt.Assemble]
// lays it out canonically, most shared first, so that requests for NPCs in
// the same world, region and persona share byte-identical prefixes and an
// engine's prefix cache hits:
//
//  1. system: world lore, region lore, persona (identical for every player
//     speaking to that NPC in that region);
//  2. system: memory summary and reply language (this conversation's);
//  3. the most recent turns that fit, as alternating user/assistant
//     messages;
//  4. user: the scene (game context) and the player's new line.
//
// The player's words appear only in user messages.
type Prompt struct {
	WorldLore  string
	RegionLore string
	// Persona is the rendered persona block.
	Persona string
	// Summary is the trusted memory summary of older turns, if any.
	Summary string
	// Language is a validated BCP 47 tag, or empty.
	Language string
	// History is the conversation so far, oldest first.
	History []history.Turn
	// Scene is the structured game context; nil for none.
	Scene *dialoguev1.GameContext
	// Utterance is the player's new line.
	Utterance string
}

// Assemble lays out the prompt within budget tokens (counting
// [MessageOverhead] per message). It always keeps the system part and the
// new line, and then as many of the newest turns as fit, dropping the oldest
// first. It returns the messages and their token count, or
// [ErrPromptTooLarge] when even the system part and the new line do not fit.
func (p Prompt) Assemble(budget int, count TokenCounter) ([]router.Message, int, error) {
	if count == nil {
		count = EstimateTokens
	}
	cost := func(s string) int { return count(s) + MessageOverhead }

	var sys []string
	if p.WorldLore != "" {
		sys = append(sys, "# World\n"+p.WorldLore)
	}
	if p.RegionLore != "" {
		sys = append(sys, "# Region\n"+p.RegionLore)
	}
	if p.Persona != "" {
		sys = append(sys, p.Persona)
	}
	var conv []string
	if p.Summary != "" {
		conv = append(conv, "# Earlier in this conversation\n"+p.Summary)
	}
	if p.Language != "" {
		conv = append(conv, "# Reply language\n"+p.Language)
	}
	final := renderTurn(p.Scene, p.Utterance)

	msgs := make([]router.Message, 0, 3+2*len(p.History))
	total := 0
	if len(sys) > 0 {
		s := strings.Join(sys, "\n\n")
		msgs = append(msgs, router.Message{Role: router.RoleSystem, Content: s})
		total += cost(s)
	}
	if len(conv) > 0 {
		s := strings.Join(conv, "\n\n")
		msgs = append(msgs, router.Message{Role: router.RoleSystem, Content: s})
		total += cost(s)
	}
	total += cost(final)
	if total > budget {
		return nil, total, fmt.Errorf("%w: %d tokens without history, budget %d", ErrPromptTooLarge, total, budget)
	}

	// Newest turns first, while they fit; each turn is both of its messages.
	keep := 0
	for i := len(p.History) - 1; i >= 0; i-- {
		c := cost(p.History[i].Player) + cost(p.History[i].NPC)
		if total+c > budget {
			break
		}
		total += c
		keep++
	}
	for _, t := range p.History[len(p.History)-keep:] {
		msgs = append(msgs,
			router.Message{Role: router.RoleUser, Content: t.Player},
			router.Message{Role: router.RoleAssistant, Content: t.NPC})
	}
	msgs = append(msgs, router.Message{Role: router.RoleUser, Content: final})
	return msgs, total, nil
}

// renderTurn renders the final user message: the scene, then the line.
func renderTurn(scene *dialoguev1.GameContext, utterance string) string {
	if scene == nil {
		return utterance
	}
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	line("Location", scene.GetLocation())
	line("Time of day", scene.GetTimeOfDay())
	line("Quest step", scene.GetQuestStep())
	line("Your mood", scene.GetMood())
	keys := make([]string, 0, len(scene.GetExtra()))
	for k := range scene.GetExtra() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		line(k, scene.GetExtra()[k])
	}
	if b.Len() == 0 {
		return utterance
	}
	return "[Scene]\n" + b.String() + "\n[The player says]\n" + utterance
}
