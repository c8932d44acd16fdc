package benchmarks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	oaiopt "github.com/openai/openai-go/v3/option"

	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
	bbopenai "github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

// The official OpenAI Go SDK as the gateway's client. These tests live in
// the benchmarks module so that openai-go never enters the SDK's go.mod.

// standin is a stand-in model server with an openai.Model in front.
func standin(tb testing.TB, b openaitest.Behavior) (*openaitest.Server, *bbopenai.Model) {
	tb.Helper()
	srv := openaitest.NewServer(b)
	m, err := bbopenai.New(bbopenai.Options{BaseURL: srv.URL + "/v1", DisableRetries: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		m.Close()
		srv.Close()
	})
	return srv, m
}

// gatewayOver serves a gateway over a router with tier2 → tier1 (each one
// replica) and returns its base URL.
func gatewayOver(tb testing.TB, tier2, tier1 router.Model, o gateway.Options) (*gateway.Gateway, string) {
	tb.Helper()
	r, err := router.New(router.Options{
		Tiers: []router.Tier{
			{Name: router.Tier2, ModelName: "npc-mid", Replicas: []router.Replica{{Name: "mid-0", Model: tier2}}},
			{Name: router.Tier1, ModelName: "npc-small", Replicas: []router.Replica{{Name: "small-0", Model: tier1}}},
		},
		Fallbacks: [][]string{{router.Tier2, router.Tier1}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	o.Router = r
	g, err := gateway.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(g)
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		g.Close()
		srv.Close()
		r.Close()
	})
	return g, srv.URL + "/v1"
}

func chatParams(model string) oai.ChatCompletionNewParams {
	return oai.ChatCompletionNewParams{
		Model:    model,
		Messages: []oai.ChatCompletionMessageParamUnion{oai.SystemMessage("You are Mira, a smith."), oai.UserMessage("Any work?")},
		StreamOptions: oai.ChatCompletionStreamOptionsParam{
			IncludeUsage: oai.Bool(true),
		},
	}
}

func TestOpenAIGoStreamsThroughGateway(t *testing.T) {
	_, mid := standin(t, openaitest.Behavior{Status: 503, ErrorMessage: "overloaded"})
	_, small := standin(t, openaitest.Behavior{Tokens: openaitest.Words(12), PromptTokens: 9})
	_, url := gatewayOver(t, mid, small, gateway.Options{})
	c := oai.NewClient(oaiopt.WithBaseURL(url), oaiopt.WithAPIKey("unused"), oaiopt.WithMaxRetries(0))

	// Streaming: tier2 is saturated before its first token; tier1 serves.
	var hdr *http.Response
	s := c.Chat.Completions.NewStreaming(context.Background(), chatParams("npc/quest_dialogue"), oaiopt.WithResponseInto(&hdr))
	var acc oai.ChatCompletionAccumulator
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got, want := acc.Choices[0].Message.Content, strings.Join(openaitest.Words(12), ""); got != want {
		t.Errorf("content %q, want %q", got, want)
	}
	if acc.Model != "npc-small" || acc.Choices[0].FinishReason != "stop" || acc.Usage.PromptTokens != 9 || acc.Usage.CompletionTokens != 12 {
		t.Errorf("model %q finish %q usage %+v", acc.Model, acc.Choices[0].FinishReason, acc.Usage)
	}
	if hdr.Header.Get(gateway.HeaderTier) != "tier1" || hdr.Header.Get(gateway.HeaderFallback) != "true" {
		t.Errorf("receipt headers %v", hdr.Header)
	}

	// Not streaming.
	res, err := c.Chat.Completions.New(context.Background(), chatParams("tier1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].Message.Content != strings.Join(openaitest.Words(12), "") || res.Usage.TotalTokens != 21 || res.Model != "npc-small" {
		t.Errorf("unary %+v", res)
	}

	// Legacy completions.
	cres, err := c.Completions.New(context.Background(), oai.CompletionNewParams{
		Model: "tier1", Prompt: oai.CompletionNewParamsPromptUnion{OfString: oai.String("Once upon")}})
	if err != nil {
		t.Fatal(err)
	}
	if cres.Choices[0].Text != strings.Join(openaitest.Words(12), "") {
		t.Errorf("completion %+v", cres)
	}

	// Models.
	page, err := c.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if !strings.Contains(strings.Join(ids, ","), "npc/quest_dialogue") || !strings.Contains(strings.Join(ids, ","), "tier2") {
		t.Errorf("models %v", ids)
	}
}

func TestOpenAIGoErrors(t *testing.T) {
	_, busy := standin(t, openaitest.Behavior{Status: 429, RetryAfter: 2e9})
	_, url := gatewayOver(t, busy, busy, gateway.Options{
		Authenticator: serviceKeys(t, map[string]string{"sk-studio-0123456789": "studio", "sk-bot-0123456789ab": "bot"}),
		Keys:          map[identity.Identity]gateway.KeyPolicy{{Kind: identity.KindService, ID: "bot"}: {Models: []string{"tier1"}}},
	})
	client := func(key string) oai.Client {
		return oai.NewClient(oaiopt.WithBaseURL(url), oaiopt.WithAPIKey(key), oaiopt.WithMaxRetries(0))
	}
	for _, tt := range []struct {
		name, key, model string
		status           int
		code             string
	}{
		{"bad key", "sk-nope-0123456789ab", "tier1", 401, "invalid_api_key"},
		{"unknown model", "sk-studio-0123456789", "gpt-5", 404, "model_not_found"},
		{"model not allowed", "sk-bot-0123456789ab", "tier2", 404, "model_not_found"},
		{"saturated", "sk-studio-0123456789", "tier2", 429, "saturated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := client(tt.key)
			_, err := c.Chat.Completions.New(context.Background(), chatParams(tt.model))
			var e *oai.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *openai.Error", err)
			}
			if e.StatusCode != tt.status || e.Code != tt.code || e.Message == "" {
				t.Errorf("status %d code %q message %q, want %d %q", e.StatusCode, e.Code, e.Message, tt.status, tt.code)
			}
			// The streaming call reports the same error.
			s := c.Chat.Completions.NewStreaming(context.Background(), chatParams(tt.model))
			for s.Next() {
			}
			if !errors.As(s.Err(), &e) || e.StatusCode != tt.status {
				t.Errorf("streaming: %v, want HTTP %d", s.Err(), tt.status)
			}
			s.Close()
		})
	}
}

func TestOpenAIGoSeesErrorAfterFirstToken(t *testing.T) {
	_, cut := standin(t, openaitest.Behavior{Tokens: openaitest.Words(10), Fault: openaitest.Drop, FaultAfter: 4})
	_, url := gatewayOver(t, cut, cut, gateway.Options{})
	c := oai.NewClient(oaiopt.WithBaseURL(url), oaiopt.WithAPIKey("unused"), oaiopt.WithMaxRetries(0))
	s := c.Chat.Completions.NewStreaming(context.Background(), chatParams("tier1"))
	defer s.Close()
	n := 0
	for s.Next() {
		n++
	}
	if n != 4 || s.Err() == nil || !strings.Contains(s.Err().Error(), "stream_truncated") {
		t.Errorf("%d chunks then %v, want 4 and a stream_truncated error", n, s.Err())
	}
}

// serviceKeys is a token table of service identities.
func serviceKeys(tb testing.TB, keys map[string]string) *identity.TokenAuthenticator {
	m := make(map[identity.Token]identity.Identity, len(keys))
	for k, id := range keys {
		m[identity.Token(k)] = identity.Identity{Kind: identity.KindService, ID: id}
	}
	a, err := identity.NewTokenAuthenticator(m)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}
