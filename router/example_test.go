package router_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/scripted"
)

// down is a Model whose server is unreachable: it fails before the first
// token, so the router falls back.
type down struct{}

func (down) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("connection refused")
}

func (down) Stream(context.Context, router.Request) (router.Stream, error) {
	return nil, errors.New("connection refused")
}

// Example shows the original system's three tiers with a scripted last
// resort. In production the replicas are openai.Model values pointing at
// vLLM servers; here scripted models stand in for them, and tier 3's
// server is down.
func Example() {
	small, _ := scripted.New(scripted.Options{Default: []string{"(small model) Hail."}, Lines: map[router.Responsibility][]string{}})
	mid, _ := scripted.New(scripted.Options{Default: []string{"(8B + LoRA) The mine lies north, past the ridge."}, Lines: map[router.Responsibility][]string{}})
	lines, _ := scripted.New(scripted.Options{}) // the built-in canned lines

	r, err := router.New(router.Options{
		Tiers: []router.Tier{
			{
				Name: router.Tier1, ModelName: "microsoft/Phi-3-mini-4k-instruct",
				Replicas:   []router.Replica{{Name: "phi-0", Model: small}},
				TTFTTarget: 150 * time.Millisecond, MaxConcurrent: 20, MaxQueued: 40, MaxTokens: 256,
			},
			{
				Name: router.Tier2, ModelName: "meta-llama/Llama-3.1-8B-Instruct", Adapter: "npc-elite",
				Replicas:   []router.Replica{{Name: "llama-0", Model: mid}},
				TTFTTarget: 300 * time.Millisecond, MaxConcurrent: 10, MaxQueued: 20, MaxTokens: 512,
			},
			{
				Name: router.Tier3, ModelName: "meta-llama/Llama-3.1-8B-Instruct", Adapter: "npc-major-elara",
				Replicas:   []router.Replica{{Name: "llama-1", Model: down{}}},
				TTFTTarget: 500 * time.Millisecond, MaxConcurrent: 5, MaxQueued: 10, MaxTokens: 512,
			},
			{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}},
		},
		Fallbacks: [][]string{{router.Tier3, router.Tier2, router.Tier1, "scripted"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	for _, req := range []router.Request{
		{Responsibility: router.Greeting},
		{Responsibility: router.QuestDialogue},
		{Responsibility: router.StoryCritical, NPC: "elara"},
	} {
		res, err := r.Generate(context.Background(), req)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s → %s (%s) %v: %s\n", req.Responsibility, res.Receipt.Tier, res.Receipt.Model, res.Receipt.Reasons, res.Text)
	}
	// Output:
	// greeting → tier1 (microsoft/Phi-3-mini-4k-instruct) [responsibility least_loaded]: (small model) Hail.
	// quest_dialogue → tier2 (npc-elite) [responsibility least_loaded]: (8B + LoRA) The mine lies north, past the ridge.
	// story_critical → tier2 (npc-elite) [responsibility backend_error fallback least_loaded]: (8B + LoRA) The mine lies north, past the ridge.
}

// Example_scriptedLastResort: when every model tier fails before its first
// token, the scripted tier still gives the player a line.
func Example_scriptedLastResort() {
	lines, _ := scripted.New(scripted.Options{})
	r, _ := router.New(router.Options{
		Tiers: []router.Tier{
			{Name: router.Tier1, Replicas: []router.Replica{{Name: "phi-0", Model: down{}}}},
			{Name: router.Tier2, Replicas: []router.Replica{{Name: "llama-0", Model: down{}}}},
			{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}},
		},
		Fallbacks: [][]string{{router.Tier2, router.Tier1, "scripted"}},
	})
	defer r.Close()
	res, _ := r.Generate(context.Background(), router.Request{Responsibility: router.QuestDialogue})
	fmt.Println(res.Receipt.Tier, res.Receipt.Attempts, res.FinishReason)
	fmt.Println(res.Text)
	// Output:
	// scripted 3 scripted
	// The old mine to the north. Start there, and be careful.
}

// ExampleRouter_Stream streams a line: Stream returns with the first token
// in hand, so the player hears the NPC start at once; a stream cut later is
// reported as a *TruncatedError, never as a clean end.
func ExampleRouter_Stream() {
	greet, _ := scripted.New(scripted.Options{})
	r, _ := router.New(router.Options{Tiers: []router.Tier{{Name: router.Tier1, Replicas: []router.Replica{{Name: "a", Model: greet}}}}})
	defer r.Close()

	s, err := r.Stream(context.Background(), router.Request{Responsibility: router.Farewell, NPC: "innkeeper"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	var words []string
	for {
		d, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("cut:", err)
			break
		}
		words = append(words, d.Text) // play each delta as it arrives
	}
	fmt.Printf("%q\n", words)
	fmt.Println(s.Receipt().Tier, s.Receipt().Reasons)
	// Output:
	// ["Until " "next " "time."]
	// tier1 [responsibility least_loaded]
}
