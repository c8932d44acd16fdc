package router

import "fmt"

// Names of the tiers that [DefaultPolicy] maps to. A router may use any
// names; these are only the defaults.
const (
	Tier1 = "tier1" // small, fast model: barks, greetings, generic NPCs
	Tier2 = "tier2" // mid-size model with a LoRA: elite NPCs, quests
	Tier3 = "tier3" // mid-size model with a personalized LoRA: major NPCs
)

// Policy chooses the tier of a request, in this order: an explicit
// Request.Tier, then Responsibilities[Request.Responsibility], then
// Importance[Request.Importance], then Default. Lookups are exact map
// lookups on typed keys; nothing matches substrings.
//
// In [Options], the zero Policy means [DefaultPolicy] (see Options.Policy);
// any other Policy must set Default. [New] and [Router.Reconfigure] copy
// the maps; later changes to them do not affect a router.
type Policy struct {
	Responsibilities map[Responsibility]string
	Importance       map[Importance]string
	Default          string
}

// DefaultResponsibilityTiers returns the documented default map from
// responsibility to tier:
//
//	greeting, farewell, generic, simple                              → tier1
//	elite_dialogue, quest_dialogue, complex_question, story_progression → tier2
//	major_npc, personalized, character_development, story_critical   → tier3
//
// It returns a new map on every call.
func DefaultResponsibilityTiers() map[Responsibility]string {
	return map[Responsibility]string{
		Greeting:             Tier1,
		Farewell:             Tier1,
		GenericDialogue:      Tier1,
		SimpleResponse:       Tier1,
		EliteDialogue:        Tier2,
		QuestDialogue:        Tier2,
		ComplexQuestion:      Tier2,
		StoryProgression:     Tier2,
		MajorNPC:             Tier3,
		Personalized:         Tier3,
		CharacterDevelopment: Tier3,
		StoryCritical:        Tier3,
	}
}

// DefaultImportanceTiers returns the default map from NPC importance to
// tier: generic → tier1, elite → tier2, major → tier3.
func DefaultImportanceTiers() map[Importance]string {
	return map[Importance]string{Generic: Tier1, Elite: Tier2, Major: Tier3}
}

// DefaultPolicy returns the default policy: [DefaultResponsibilityTiers],
// then [DefaultImportanceTiers], then tier2.
func DefaultPolicy() Policy {
	return Policy{
		Responsibilities: DefaultResponsibilityTiers(),
		Importance:       DefaultImportanceTiers(),
		Default:          Tier2,
	}
}

// resolvedPolicy is a Policy with tier names resolved to the tiers of one
// configuration.
type resolvedPolicy struct {
	resp map[Responsibility]*tierRT
	imp  [Major + 1]*tierRT
	def  *tierRT
}

func resolvePolicy(p Policy, byName map[string]*tierRT) (resolvedPolicy, error) {
	var rp resolvedPolicy
	lookup := func(field, name string) (*tierRT, error) {
		t, ok := byName[name]
		if !ok {
			return nil, optErr(field, "unknown tier %q", name)
		}
		return t, nil
	}
	rp.resp = make(map[Responsibility]*tierRT, len(p.Responsibilities))
	for r, name := range p.Responsibilities {
		t, err := lookup(fmt.Sprintf("Policy.Responsibilities[%q]", r), name)
		if err != nil {
			return rp, err
		}
		rp.resp[r] = t
	}
	for imp, name := range p.Importance {
		if imp <= ImportanceUnset || imp > Major {
			return rp, optErr(fmt.Sprintf("Policy.Importance[%d]", imp), "invalid importance")
		}
		t, err := lookup("Policy.Importance["+imp.String()+"]", name)
		if err != nil {
			return rp, err
		}
		rp.imp[imp] = t
	}
	if p.Default == "" {
		return rp, optErr("Policy.Default", "empty; a Policy that sets a map must set Default")
	}
	t, err := lookup("Policy.Default", p.Default)
	if err != nil {
		return rp, err
	}
	rp.def = t
	return rp, nil
}

// route applies the policy. It does not allocate.
func (c *config) route(req *Request) (*tierRT, Reason, error) {
	if req.Tier != "" {
		t, ok := c.byName[req.Tier]
		if !ok {
			return nil, ReasonExplicitTier, fmt.Errorf("%w %q", ErrUnknownTier, req.Tier)
		}
		return t, ReasonExplicitTier, nil
	}
	if req.Responsibility != ResponsibilityUnknown {
		if t, ok := c.policy.resp[req.Responsibility]; ok {
			return t, ReasonResponsibility, nil
		}
	}
	if req.Importance > ImportanceUnset && req.Importance <= Major {
		if t := c.policy.imp[req.Importance]; t != nil {
			return t, ReasonImportance, nil
		}
	}
	return c.policy.def, ReasonDefault, nil
}
