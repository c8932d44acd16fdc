// Command quickstart runs the Body Broker SDK's main job on embedded
// defaults: NPCs answering players over gRPC, their words streamed token by
// token from a three-tier model router. No servers, keys or configuration
// are needed; everything runs in this process on loopback.
//
//	go run ./examples/quickstart
//
// The model servers are stand-ins: loopback servers from
// router/openai/openaitest that speak the OpenAI-compatible API the way
// vLLM does (they stream canned tokens with a realistic delay), a tier
// whose server is down, and scripted lines as the last resort. Point openai.Options.BaseURL at a real vLLM, llama.cpp or
// Ollama server to use a real model.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
	"github.com/bodybroker/sdk/router/scripted"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// pieces splits a line into the token-like pieces a model server streams.
func pieces(line string) []string { return strings.SplitAfter(line, " ") }

func run() error {
	ctx := context.Background()

	// 1. Model servers. Tier 1 is a small, fast model; tier 2 a mid-size
	// model with LoRA adapters; tier 3 (personalized adapters) is down, so
	// its requests fall back to tier 2 before the player sees anything.
	small := openaitest.NewServer(openaitest.Behavior{
		TTFT: 15 * time.Millisecond, TokenDelay: 5 * time.Millisecond,
		Tokens: pieces("Hail, traveller."),
	})
	defer small.Close()
	mid := openaitest.NewServer(openaitest.Behavior{})
	defer mid.Close()
	// The stand-in answers in character: it reads the persona from the
	// system message the dialogue service assembled.
	mid.SetHandler(func(req openaitest.Request) openaitest.Behavior {
		line := "The tide turns at dusk. Be at the pier, and come alone."
		if len(req.Messages) > 0 && strings.Contains(req.Messages[0].Content, "queen") {
			line = "Not here. The walls have ears; meet me in the chapel."
		}
		return openaitest.Behavior{TTFT: 40 * time.Millisecond, TokenDelay: 12 * time.Millisecond, Tokens: pieces(line)}
	})

	tier1, err := openai.New(openai.Options{BaseURL: small.URL + "/v1", Model: "microsoft/Phi-3-mini-4k-instruct"})
	if err != nil {
		return err
	}
	defer tier1.Close()
	tier2, err := openai.New(openai.Options{BaseURL: mid.URL + "/v1", Model: "meta-llama/Llama-3.1-8B-Instruct"})
	if err != nil {
		return err
	}
	defer tier2.Close()
	// Nothing listens on port 9 (discard) of loopback here: connection refused.
	tier3, err := openai.New(openai.Options{BaseURL: "http://127.0.0.1:9/v1", DisableRetries: true})
	if err != nil {
		return err
	}
	defer tier3.Close()
	lines, err := scripted.New(scripted.Options{})
	if err != nil {
		return err
	}

	r, err := router.New(router.Options{
		Tiers: []router.Tier{
			{
				Name: router.Tier1, ModelName: "microsoft/Phi-3-mini-4k-instruct",
				Replicas:   []router.Replica{{Name: "phi-0", Model: tier1}},
				TTFTTarget: 150 * time.Millisecond, MaxConcurrent: 20, MaxQueued: 40, MaxTokens: 256,
			},
			{
				Name: router.Tier2, ModelName: "meta-llama/Llama-3.1-8B-Instruct", Adapter: "npc-elite",
				Replicas:   []router.Replica{{Name: "llama-0", Model: tier2}},
				TTFTTarget: 300 * time.Millisecond, MaxConcurrent: 10, MaxQueued: 20, MaxTokens: 512,
			},
			{
				Name: router.Tier3, ModelName: "meta-llama/Llama-3.1-8B-Instruct",
				Replicas:   []router.Replica{{Name: "llama-1", Model: tier3}},
				TTFTTarget: 500 * time.Millisecond, MaxConcurrent: 5, MaxQueued: 10, MaxTokens: 512,
			},
			{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}},
		},
		Fallbacks: [][]string{{router.Tier3, router.Tier2, router.Tier1, "scripted"}},
	})
	if err != nil {
		return err
	}
	defer r.Close()

	// 2. The dialogue service: personas, memory, prompt layout, auth.
	personas, err := dialogue.NewPersonas(
		dialogue.Persona{ID: "guard", Name: "Gate guard", SystemPrompt: "A bored city guard.",
			Importance: router.Generic, FallbackLines: []string{"Move along."}},
		dialogue.Persona{ID: "mara", Name: "Mara", SystemPrompt: "A dockside fence who trusts no one.",
			Importance: router.Elite, Style: "terse", FallbackLines: []string{"Not now. Come back later."}},
		dialogue.Persona{ID: "elara", Name: "Elara", SystemPrompt: "The exiled queen, hiding in plain sight.",
			Importance: router.Major, Adapter: "npc-major-elara", FallbackLines: []string{"We will speak another time."}},
	)
	if err != nil {
		return err
	}
	// Every reply is announced on the event bus (in memory here; Redis
	// Streams with eventbus/redisbus across servers).
	bus, err := eventbus.New(eventbus.Options{})
	if err != nil {
		return err
	}
	defer bus.Close()
	svc, err := dialogue.New(dialogue.Options{Completer: dialogue.RouterCompleter(r), Personas: personas, Events: bus})
	if err != nil {
		return err
	}
	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
		"player-7-example-token": {Kind: identity.KindPlayer, ID: "player-7"},
	})
	if err != nil {
		return err
	}
	// Insecure for loopback only; production passes Credentials (TLS).
	srv, err := dialogue.NewServer(svc, dialogue.ServerOptions{Authenticator: auth, Insecure: true})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()
	fmt.Printf("Body Broker SDK quickstart: dialogue gRPC server on %s\n\n", lis.Addr())

	// 3. A game client, written only from the .proto.
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := dialoguev1.NewDialogueServiceClient(conn)
	cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer player-7-example-token")

	for _, turn := range []struct {
		npc, responsibility, text string
	}{
		{"guard", "greeting", "Good morning."},
		{"mara", "quest_dialogue", "When does the boat leave?"},
		{"elara", "story_critical", "Your Majesty?"},
	} {
		if err := converse(cctx, client, turn.npc, turn.responsibility, turn.text); err != nil {
			return err
		}
	}

	// 4. What the other services heard.
	evs, err := bus.History(ctx, dialogue.TopicCompleted, eventbus.FromStart(), 0)
	if err != nil {
		return err
	}
	fmt.Printf("%d events on %s:\n", len(evs), dialogue.TopicCompleted)
	for _, ev := range evs {
		c, err := eventbus.Decode[dialogue.Completed](ev)
		if err != nil {
			return err
		}
		fmt.Printf("  %s  %s → %-5s %-14s tier %-5s %3d tokens, TTFT %v\n", ev.ID, c.PlayerID, c.NPCID,
			c.Responsibility, c.Tier, c.CompletionTokens, c.TTFT.Round(time.Millisecond))
	}
	fmt.Println()

	// 5. What the router saw, per tier.
	fmt.Println("router stats:")
	for _, t := range r.Stats().Tiers {
		fmt.Printf("  %-8s requests %d, successes %d, fallbacks %d, TTFT p50 %v\n",
			t.Name, t.Requests, t.Successes, t.Fallbacks, t.TTFT.P50.Round(time.Millisecond))
	}
	return nil
}

// converse sends one player line with StreamSay and prints the NPC's reply
// as it streams in.
func converse(ctx context.Context, client dialoguev1.DialogueServiceClient, npc, responsibility, text string) error {
	fmt.Printf("player → %s (%s): %s\n%s: ", npc, responsibility, text, npc)
	start := time.Now()
	st, err := client.StreamSay(ctx, &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{
		NpcId: npc, Text: text, Responsibility: responsibility,
	}})
	if err != nil {
		return err
	}
	var first time.Duration
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		c := m.GetChunk()
		if !c.GetFinal() {
			if first == 0 {
				first = time.Since(start)
			}
			fmt.Print(c.GetText())
			continue
		}
		comp := c.GetCompletion()
		rc := comp.GetReceipt()
		fmt.Printf("\n  └ %s via %s/%s, first words after %v, reasons %v, fallback line %v\n\n",
			comp.GetFinishReason(), rc.GetTier(), rc.GetModel(), first.Round(time.Millisecond),
			rc.GetReasons(), comp.GetFallback())
	}
}
