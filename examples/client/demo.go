package main

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
	"github.com/bodybroker/sdk/router/scripted"
)

// demo is the dialogue server -demo starts in this process: two tiers on
// a stand-in OpenAI-compatible model server (openaitest, which streams
// canned lines token by token the way vLLM does) and scripted lines as the
// last resort, served over gRPC on a loopback port.
type demo struct {
	Addr  string   // the gRPC address, 127.0.0.1:port
	Token string   // a player token the server accepts
	NPCs  []string // persona IDs

	close func()
}

// Close stops the server and everything under it.
func (d *demo) Close() { d.close() }

// demoLines are what the stand-in model says, by a word of the persona's
// system prompt.
var demoLines = []struct{ key, line string }{
	{"guard", "Move along, citizen. The gate closes at dusk, and I'm not opening it twice."},
	{"fence", "The tide turns at dusk. Be at the pier, and come alone."},
	{"queen", "Not here. The walls have ears; meet me in the chapel after vespers."},
}

func startDemo() (d *demo, err error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()

	model := openaitest.NewServer(openaitest.Behavior{})
	closers = append(closers, model.Close)
	model.DisableRecording() // the demo may run for hours
	// Answer in character: the dialogue service puts the persona in the
	// system message.
	model.SetHandler(func(req openaitest.Request) openaitest.Behavior {
		line := "Well met, traveller."
		if len(req.Messages) > 0 {
			for _, l := range demoLines {
				if strings.Contains(req.Messages[0].Content, l.key) {
					line = l.line
					break
				}
			}
		}
		return openaitest.Behavior{TTFT: 60 * time.Millisecond, TokenDelay: 40 * time.Millisecond,
			Tokens: strings.SplitAfter(line, " ")}
	})
	var tiers []router.Tier
	for _, t := range []struct{ name, model string }{
		{router.Tier1, "microsoft/Phi-3-mini-4k-instruct"},
		{router.Tier2, "meta-llama/Llama-3.1-8B-Instruct"},
	} {
		m, err := openai.New(openai.Options{BaseURL: model.URL + "/v1", Model: t.model})
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { _ = m.Close() })
		tiers = append(tiers, router.Tier{Name: t.name, ModelName: t.model,
			Replicas: []router.Replica{{Name: t.name + "-0", Model: m}}, MaxConcurrent: 8, MaxTokens: 256})
	}
	lines, err := scripted.New(scripted.Options{})
	if err != nil {
		return nil, err
	}
	tiers = append(tiers, router.Tier{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}})
	r, err := router.New(router.Options{
		Tiers: tiers,
		// There is no tier 3 here: the default policy sends its requests
		// to tier 2.
		Fallbacks: [][]string{{router.Tier2, router.Tier1, "scripted"}},
		Logger:    slog.New(slog.DiscardHandler), // the terminal is the player's
	})
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = r.Close() })

	personas, err := dialogue.NewPersonas(
		dialogue.Persona{ID: "guard", Name: "Gate guard", SystemPrompt: "A bored city guard.",
			Importance: router.Generic, FallbackLines: []string{"Move along."}},
		dialogue.Persona{ID: "mara", Name: "Mara", SystemPrompt: "A dockside fence who trusts no one.",
			Importance: router.Elite, Style: "terse", FallbackLines: []string{"Not now. Come back later."}},
		dialogue.Persona{ID: "elara", Name: "Elara", SystemPrompt: "The exiled queen, hiding in plain sight.",
			Importance: router.Major, FallbackLines: []string{"We will speak another time."}},
	)
	if err != nil {
		return nil, err
	}
	svc, err := dialogue.New(dialogue.Options{Completer: dialogue.RouterCompleter(r), Personas: personas})
	if err != nil {
		return nil, err
	}
	token := "demo-" + rand.Text()
	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
		identity.Token(token): {Kind: identity.KindPlayer, ID: "player-1"},
	})
	if err != nil {
		return nil, err
	}
	srv, err := dialogue.NewServer(svc, dialogue.ServerOptions{Authenticator: auth, Insecure: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	closers = append(closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, dialogue.ErrClosed) {
			_ = srv.Close()
		}
		<-served
	})
	return &demo{Addr: lis.Addr().String(), Token: token, NPCs: []string{"guard", "mara", "elara"}, close: closeAll}, nil
}
