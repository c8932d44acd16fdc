// Command quickstart runs the Body Broker SDK's main jobs on embedded
// defaults, in a few seconds: NPCs answering players over gRPC, their words
// streamed token by token from a three-tier model router, which also
// serves an OpenAI-compatible HTTP API; an NPC's reply as voice clips
// (with espeak-ng, if installed); a world clock at high speed crossing dusk
// into night, the ambient sound crossfading with it; a subscription bought
// with an ambassador's code, its signed webhook delivered and the
// entitlement shown; a volume setting previewed and reverted, the audio
// mix following it; and the router's figures. No servers, keys or
// configuration are needed; everything runs in this process on loopback,
// and every event lands on one in-memory event bus.
//
//	go run ./examples/quickstart
//
// The model servers are stand-ins: loopback servers from
// router/openai/openaitest that speak the OpenAI-compatible API the way
// vLLM does (they stream canned tokens with a realistic delay), a tier
// whose server is down, and scripted lines as the last resort. Stripe is
// payment/fakepay, a stateful in-memory fake that signs its webhooks as
// Stripe does.
//
// To use a real model, point BB_OPENAI_URL at an OpenAI-compatible server
// (vLLM, llama.cpp server, Ollama; the URL ends in /v1): tiers 1 and 2 then
// use it, with the model BB_OPENAI_MODEL (default: the server's choice) and
// the key BB_OPENAI_API_KEY if it needs one.
//
//	BB_OPENAI_URL=http://127.0.0.1:8000/v1 BB_OPENAI_MODEL=meta-llama/Llama-3.1-8B-Instruct go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/bodybroker/sdk/audio"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Bound the whole tour: a stuck piece ends it with an error, not a hang.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// pieces splits a line into the token-like pieces a model server streams.
func pieces(line string) []string { return strings.SplitAfter(line, " ") }

// run is the tour; it writes what it shows to w.
func run(ctx context.Context, w io.Writer) error {
	quiet := slog.New(slog.DiscardHandler)

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

	// BB_OPENAI_URL replaces both stand-ins with a real model server.
	url1, url2 := small.URL+"/v1", mid.URL+"/v1"
	model1, model2 := "microsoft/Phi-3-mini-4k-instruct", "meta-llama/Llama-3.1-8B-Instruct"
	adapter := "npc-elite" // a LoRA adapter the stand-in pretends to hold
	real := os.Getenv("BB_OPENAI_URL")
	if real != "" {
		url1, url2 = real, real
		model1, model2 = os.Getenv("BB_OPENAI_MODEL"), os.Getenv("BB_OPENAI_MODEL")
		adapter = "" // a real server holds only the adapters it was given
	}
	key := os.Getenv("BB_OPENAI_API_KEY")
	tier1, err := openai.New(openai.Options{BaseURL: url1, Model: model1, APIKey: key})
	if err != nil {
		return err
	}
	defer tier1.Close()
	tier2, err := openai.New(openai.Options{BaseURL: url2, Model: model2, APIKey: key})
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
				Name: router.Tier1, ModelName: model1,
				Replicas:   []router.Replica{{Name: "phi-0", Model: tier1}},
				TTFTTarget: 150 * time.Millisecond, MaxConcurrent: 20, MaxQueued: 40, MaxTokens: 256,
			},
			{
				Name: router.Tier2, ModelName: model2, Adapter: adapter,
				Replicas:   []router.Replica{{Name: "llama-0", Model: tier2}},
				TTFTTarget: 300 * time.Millisecond, MaxConcurrent: 10, MaxQueued: 20, MaxTokens: 512,
			},
			{
				Name: router.Tier3, ModelName: model2,
				Replicas:   []router.Replica{{Name: "llama-1", Model: tier3}},
				TTFTTarget: 500 * time.Millisecond, MaxConcurrent: 5, MaxQueued: 10, MaxTokens: 512,
			},
			{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}},
		},
		Fallbacks: [][]string{{router.Tier3, router.Tier2, router.Tier1, "scripted"}},
		Logger:    quiet,
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
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()
	fmt.Fprintf(w, "Body Broker SDK quickstart: dialogue gRPC server on %s\n", lis.Addr())
	if real != "" {
		fmt.Fprintf(w, "tiers 1 and 2 on the model server at %s\n", real)
	}
	fmt.Fprintln(w)

	// 3. A game client, written only from the .proto.
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := dialoguev1.NewDialogueServiceClient(conn)
	cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer player-7-example-token")

	replies := map[string]string{} // by NPC
	for _, turn := range []struct {
		npc, responsibility, text string
	}{
		{"guard", "greeting", "Good morning."},
		{"mara", "quest_dialogue", "When does the boat leave?"},
		{"elara", "story_critical", "Your Majesty?"},
	} {
		reply, err := converse(cctx, w, client, turn.npc, turn.responsibility, turn.text)
		if err != nil {
			return err
		}
		replies[turn.npc] = reply
	}

	// 4. What the other services heard.
	evs, err := bus.History(ctx, dialogue.TopicCompleted, eventbus.FromStart(), 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d events on %s:\n", len(evs), dialogue.TopicCompleted)
	for _, ev := range evs {
		c, err := eventbus.Decode[dialogue.Completed](ev)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %s  %s → %-5s %-14s tier %-5s %3d tokens, TTFT %v\n", ev.ID, c.PlayerID, c.NPCID,
			c.Responsibility, c.Tier, c.CompletionTokens, c.TTFT.Round(time.Millisecond))
	}
	fmt.Fprintln(w)

	// 5. The same router as an OpenAI-compatible HTTP API.
	if err := openAIGateway(ctx, w, r, quiet); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}

	// 6. The audio director: what the world sounds like, as cues clients
	// render. It follows the world clock's phases and the players' volume
	// settings below; first, Mara's reply as voice clips (with espeak-ng,
	// if installed).
	director, err := audio.New(audio.Options{World: "harbour", Events: bus, Logger: quiet})
	if err != nil {
		return err
	}
	defer director.Close()
	if err := speak(ctx, w, "mara", replies["mara"]); err != nil {
		// An optional program failing does not end the tour.
		fmt.Fprintf(w, "voice: espeak-ng failed: %v\n\n", err)
	}

	// 7. The world's clock, at high speed, crossing dusk into night.
	if err := worldClock(ctx, w, bus, director, quiet); err != nil {
		return fmt.Errorf("world clock: %w", err)
	}
	// 8. A subscription bought with an ambassador's code.
	if err := shop(ctx, w, bus, quiet); err != nil {
		return fmt.Errorf("shop: %w", err)
	}
	// 9. A volume setting previewed, then reverted.
	if err := volume(ctx, w, bus, director, quiet); err != nil {
		return fmt.Errorf("settings: %w", err)
	}

	// 10. What the router saw, per tier.
	routerTable(w, r.Stats())
	return nil
}

// routerTable prints the router's per-tier figures as a table.
func routerTable(w io.Writer, st router.Stats) {
	fmt.Fprintln(w, "router stats:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  tier\trequests\tsuccesses\tfallbacks\ttokens out\tTTFT p50\tp95\tp99\t")
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	for _, t := range st.Tiers {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%v\t%v\t%v\t\n", t.Name, t.Requests, t.Successes, t.Fallbacks,
			t.TokensOut, ms(t.TTFT.P50), ms(t.TTFT.P95), ms(t.TTFT.P99))
	}
	_ = tw.Flush()
}

// converse sends one player line with StreamSay and prints the NPC's reply
// as it streams in.
// It returns the reply's text.
func converse(ctx context.Context, w io.Writer, client dialoguev1.DialogueServiceClient, npc, responsibility, text string) (string, error) {
	fmt.Fprintf(w, "player → %s (%s): %s\n%s: ", npc, responsibility, text, npc)
	start := time.Now()
	st, err := client.StreamSay(ctx, &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{
		NpcId: npc, Text: text, Responsibility: responsibility,
	}})
	if err != nil {
		return "", err
	}
	var first time.Duration
	var reply strings.Builder
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return reply.String(), nil
		}
		if err != nil {
			return "", err
		}
		c := m.GetChunk()
		if !c.GetFinal() {
			if first == 0 {
				first = time.Since(start)
			}
			fmt.Fprint(w, c.GetText())
			reply.WriteString(c.GetText())
			continue
		}
		comp := c.GetCompletion()
		rc := comp.GetReceipt()
		fmt.Fprintf(w, "\n  └ %s via %s/%s, first words after %v, reasons %v, fallback line %v\n\n",
			comp.GetFinishReason(), rc.GetTier(), rc.GetModel(), first.Round(time.Millisecond),
			rc.GetReasons(), comp.GetFallback())
	}
}
