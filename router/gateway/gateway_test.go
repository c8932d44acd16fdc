package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
	"github.com/google/go-cmp/cmp"
)

type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
	} `json:"error"`
}

func decodeChunks(t *testing.T, evs []string) ([]chunk, bool) {
	t.Helper()
	var out []chunk
	done := false
	for _, e := range evs {
		if e == "[DONE]" {
			done = true
			continue
		}
		var c chunk
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("event %q: %v", e, err)
		}
		out = append(out, c)
	}
	return out, done
}

func TestChatStream(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{Tokens: []string{"Well", " met,", " traveller."}, PromptTokens: 7})
	r := newRouter(t, tierSpec{name: "tier2", model: "npc-8b", b: be})
	_, srv := serve(t, gateway.Options{Router: r})
	resp := post(t, srv.URL, "/v1/chat/completions", chatBody("tier2", true), gateway.HeaderNPC, "mira", gateway.HeaderPlayer, "p1")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp.Body))
	}
	if got := resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Errorf("Content-Type %q", got)
	}
	for h, want := range map[string]string{gateway.HeaderTier: "tier2", gateway.HeaderReplica: "tier2-0", gateway.HeaderFallback: "false", gateway.HeaderAttempts: "1"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	chunks, done := decodeChunks(t, events(t, resp.Body))
	if !done {
		t.Error("no [DONE]")
	}
	var text strings.Builder
	var finish string
	for i, c := range chunks {
		if c.Object != "chat.completion.chunk" || c.Model != "npc-8b" || c.ID != chunks[0].ID {
			t.Errorf("chunk %d: object %q model %q id %q", i, c.Object, c.Model, c.ID)
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				text.WriteString(*ch.Delta.Content)
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if chunks[0].Choices[0].Delta.Role != "assistant" {
		t.Errorf("first delta role %q", chunks[0].Choices[0].Delta.Role)
	}
	if got, want := text.String(), "Well met, traveller."; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	if finish != "stop" {
		t.Errorf("finish %q", finish)
	}
	last := chunks[len(chunks)-1]
	if last.Usage == nil || len(last.Choices) != 0 || last.Usage.PromptTokens != 7 || last.Usage.CompletionTokens != 3 || last.Usage.TotalTokens != 10 {
		t.Errorf("last chunk %+v, want usage 7+3 and no choices", last)
	}
	// The NPC and the default affinity reached the router's request.
	if reqs := be.srv.Requests(); len(reqs) != 1 || reqs[0].Model != "npc-8b" {
		t.Errorf("backend requests %+v", reqs)
	}
}

func TestChatUnaryAndCompletions(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{PromptTokens: 4})
	r := newRouter(t, tierSpec{name: "tier1", model: "small", b: be})
	_, srv := serve(t, gateway.Options{Router: r, Aliases: map[string]gateway.Route{"gpt-4o-mini": {Tier: "tier1"}}})

	resp := post(t, srv.URL, "/v1/chat/completions", chatBody("gpt-4o-mini", false))
	var body struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Message      struct{ Role, Content string } `json:"message"`
			Text         string                         `json:"text"`
			FinishReason string                         `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body.Object != "chat.completion" || body.Model != "small" ||
		body.Choices[0].Message.Content != "Well met, traveller." || body.Choices[0].Message.Role != "assistant" ||
		body.Choices[0].FinishReason != "stop" || body.Usage.PromptTokens != 4 || body.Usage.CompletionTokens != 3 {
		t.Errorf("status %d body %+v", resp.StatusCode, body)
	}
	if got := resp.Header.Get(gateway.HeaderTier); got != "tier1" {
		t.Errorf("tier %q", got)
	}

	resp = post(t, srv.URL, "/v1/completions", `{"model":"tier1","prompt":"Once upon","max_tokens":16}`)
	body.Choices = nil
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body.Object != "text_completion" || body.Choices[0].Text != "Well met, traveller." {
		t.Errorf("completions: status %d body %+v", resp.StatusCode, body)
	}
	reqs := be.srv.Requests()
	if got := reqs[len(reqs)-1]; got.MaxTokens != 16 || len(got.Messages) != 1 || got.Messages[0].Content != "Once upon" {
		t.Errorf("backend saw %+v", got)
	}

	resp = post(t, srv.URL, "/v1/completions", `{"model":"tier1","prompt":["Once upon"],"stream":true}`)
	chunks, done := decodeChunks(t, events(t, resp.Body))
	var text strings.Builder
	for _, c := range chunks {
		if c.Object != "text_completion" {
			t.Errorf("object %q", c.Object)
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Text)
		}
	}
	if !done || text.String() != "Well met, traveller." {
		t.Errorf("completions stream: done %v text %q", done, text.String())
	}
}

// A gateway in front of a gateway: router/openai, the SDK's own client,
// routes through the gateway as if it were a model server.
func TestGatewayBehindRouterOpenAI(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{Tokens: openaitest.Words(20)})
	inner := newRouter(t, tierSpec{name: "tier2", model: "npc-8b", b: be})
	_, srv := serve(t, gateway.Options{Router: inner})
	m, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1", Model: "npc/quest_dialogue"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	outer, err := router.New(router.Options{Tiers: []router.Tier{{Name: "remote", Replicas: []router.Replica{{Name: "gw", Model: m}}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	s, err := outer.Stream(context.Background(), router.Request{Messages: []router.Message{{Role: router.RoleUser, Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var text strings.Builder
	var usage *router.Usage
	for {
		d, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		text.WriteString(d.Text)
		if d.Usage != nil {
			usage = d.Usage
		}
	}
	if got, want := text.String(), strings.Join(openaitest.Words(20), ""); got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	if usage == nil || usage.CompletionTokens != 20 {
		t.Errorf("usage %+v, want 20 completion tokens", usage)
	}
	res, err := outer.Generate(context.Background(), router.Request{Messages: []router.Message{{Role: router.RoleUser, Content: "hi"}}})
	if err != nil || res.Usage.CompletionTokens != 20 {
		t.Errorf("Generate: %+v, %v", res, err)
	}
}

func TestFallbackBeforeFirstToken(t *testing.T) {
	bad := newBackend(t, openaitest.Behavior{Status: 500, ErrorMessage: "engine died"})
	good := newBackend(t, openaitest.Behavior{})
	r := newRouter(t, tierSpec{name: "tier2", model: "mid", b: bad}, tierSpec{name: "tier1", model: "small", b: good})
	_, srv := serve(t, gateway.Options{Router: r})
	for _, stream := range []bool{true, false} {
		resp := post(t, srv.URL, "/v1/chat/completions", chatBody("tier2", stream))
		text := readAll(t, resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(text, `"model":"small"`) || !strings.Contains(text, "traveller.") {
			t.Errorf("stream=%v: status %d body %s", stream, resp.StatusCode, text)
		}
		got := map[string]string{}
		for _, h := range []string{gateway.HeaderTier, gateway.HeaderFallback, gateway.HeaderAttempts, gateway.HeaderReasons} {
			got[h] = resp.Header.Get(h)
		}
		want := map[string]string{gateway.HeaderTier: "tier1", gateway.HeaderFallback: "true", gateway.HeaderAttempts: "2",
			gateway.HeaderReasons: "explicit_tier,backend_error,fallback,least_loaded"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stream=%v: receipt headers (-want +got):\n%s", stream, diff)
		}
	}
}

func TestErrorAfterFirstTokenEndsStreamWithErrorEvent(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{Tokens: openaitest.Words(10), Fault: openaitest.Drop, FaultAfter: 3})
	r := newRouter(t, tierSpec{name: "tier1", b: be})
	var reported error
	_, srv := serve(t, gateway.Options{Router: r, OnError: func(_ identity.Identity, _ string, err error) { reported = err }})
	resp := post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", true))
	chunks, done := decodeChunks(t, events(t, resp.Body))
	if done {
		t.Error("a cut stream ended with [DONE]")
	}
	last := chunks[len(chunks)-1]
	if last.Error == nil || last.Error.Code != "stream_truncated" || last.Error.Type != "server_error" {
		t.Errorf("last event %+v, want a stream_truncated error", last)
	}
	if len(chunks) != 4 {
		t.Errorf("%d events, want 3 tokens and the error", len(chunks))
	}
	if !errors.Is(reported, router.ErrTruncated) {
		t.Errorf("OnError got %v, want router.ErrTruncated", reported)
	}
}

type apiErr struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func TestErrors(t *testing.T) {
	ok := newBackend(t, openaitest.Behavior{})
	busy := newBackend(t, openaitest.Behavior{Status: 429, RetryAfter: 3 * time.Second})
	down := newBackend(t, openaitest.Behavior{Status: 500, ErrorMessage: "backend-internal-detail"})
	r := newRouter(t, tierSpec{name: "tier1", b: ok})
	rBusy := newRouter(t, tierSpec{name: "tier1", b: busy})
	rDown := newRouter(t, tierSpec{name: "tier2", b: down}, tierSpec{name: "tier1", b: down})
	auth := keyTable{"sk-good-0123456789": "studio", "sk-tier1-0123456789": "bot"}
	_, srv := serve(t, gateway.Options{Router: r, Authenticator: tokenAuth(t, auth), MaxRequestBytes: 4096,
		Keys: map[identity.Identity]gateway.KeyPolicy{svc("bot"): {Models: []string{"tier1"}}}})
	_, srvBusy := serve(t, gateway.Options{Router: rBusy})
	_, srvDown := serve(t, gateway.Options{Router: rDown})
	good := []string{"Authorization", "Bearer sk-good-0123456789"}
	tests := []struct {
		name, url, path, body string
		hdr                   []string
		status                int
		code, typ, param      string
		retryAfter            string
	}{
		{"no key", srv.URL, "/v1/chat/completions", chatBody("tier1", false), nil, 401, "invalid_api_key", "authentication_error", "", ""},
		{"bad key", srv.URL, "/v1/chat/completions", chatBody("tier1", false), []string{"Authorization", "Bearer sk-nope-0123456789"}, 401, "invalid_api_key", "authentication_error", "", ""},
		{"not json", srv.URL, "/v1/chat/completions", `{"model":`, good, 400, "", "invalid_request_error", "", ""},
		{"no model", srv.URL, "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, good, 400, "", "invalid_request_error", "model", ""},
		{"bad role", srv.URL, "/v1/chat/completions", `{"model":"tier1","messages":[{"role":"tool","content":"x"}]}`, good, 400, "", "invalid_request_error", "messages[0].role", ""},
		{"n=2", srv.URL, "/v1/chat/completions", `{"model":"tier1","n":2,"messages":[{"role":"user","content":"x"}]}`, good, 400, "", "invalid_request_error", "n", ""},
		{"bad importance", srv.URL, "/v1/chat/completions", chatBody("tier1", false), append([]string{gateway.HeaderImportance, "legendary"}, good...), 400, "", "invalid_request_error", gateway.HeaderImportance, ""},
		{"too large", srv.URL, "/v1/chat/completions", `{"model":"tier1","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`, good, 413, "request_too_large", "invalid_request_error", "", ""},
		{"unknown tier", srv.URL, "/v1/chat/completions", chatBody("tier9", false), good, 404, "model_not_found", "invalid_request_error", "model", ""},
		{"unknown responsibility", srv.URL, "/v1/chat/completions", chatBody("npc/juggling", false), good, 404, "model_not_found", "invalid_request_error", "model", ""},
		{"model not allowed for key", srv.URL, "/v1/chat/completions", chatBody("npc/greeting", false), []string{"Authorization", "Bearer sk-tier1-0123456789"}, 404, "model_not_found", "invalid_request_error", "model", ""},
		{"unknown path", srv.URL, "/v1/embeddings", `{}`, good, 404, "unknown_url", "invalid_request_error", "", ""},
		{"wrong method", srv.URL, "/v1/models", `{}`, good, 405, "method_not_allowed", "invalid_request_error", "", ""},
		{"routing header too long", srv.URL, "/v1/chat/completions", chatBody("tier1", false), append([]string{gateway.HeaderNPC, strings.Repeat("n", gateway.MaxHeaderValueBytes+1)}, good...), 400, "", "invalid_request_error", gateway.HeaderNPC, ""},
		{"saturated", srvBusy.URL, "/v1/chat/completions", chatBody("tier1", true), nil, 429, "saturated", "rate_limit_error", "", "3"},
		{"every tier down", srvDown.URL, "/v1/chat/completions", chatBody("tier2", true), nil, 503, "unavailable", "server_error", "", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, tt.url, tt.path, tt.body, tt.hdr...)
			var e apiErr
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d (%+v)", resp.StatusCode, tt.status, e)
			}
			code, param := "", ""
			if e.Error.Code != nil {
				code = *e.Error.Code
			}
			if e.Error.Param != nil {
				param = *e.Error.Param
			}
			if code != tt.code || e.Error.Type != tt.typ || param != tt.param || e.Error.Message == "" {
				t.Errorf("error %+v (code %q param %q), want code %q type %q param %q", e.Error, code, param, tt.code, tt.typ, tt.param)
			}
			if strings.Contains(e.Error.Message, "backend-internal-detail") {
				t.Errorf("message %q passes on what the backend said", e.Error.Message)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

// keyTable maps API keys to service names.
type keyTable map[string]string

// tokenAuth is an identity.TokenAuthenticator of service identities.
func tokenAuth(t testing.TB, k keyTable) identity.Authenticator {
	t.Helper()
	m := make(map[identity.Token]identity.Identity, len(k))
	for key, id := range k {
		m[identity.Token(key)] = svc(id)
	}
	a, err := identity.NewTokenAuthenticator(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func svc(id string) identity.Identity { return identity.Identity{Kind: identity.KindService, ID: id} }

// A body sent without a Content-Length is cut at the limit as it is read.
func TestChunkedBodyOverLimit(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{})
	r := newRouter(t, tierSpec{name: "tier1", b: be})
	_, srv := serve(t, gateway.Options{Router: r, MaxRequestBytes: 1024})
	body := io.MultiReader(strings.NewReader(`{"model":"tier1","messages":[{"role":"user","content":"`),
		strings.NewReader(strings.Repeat("x", 1<<20)), strings.NewReader(`"}]}`))
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
	if len(be.srv.Requests()) != 0 {
		t.Error("the request reached the model")
	}
}

func TestKeyRateLimit(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{})
	r := newRouter(t, tierSpec{name: "tier1", b: be})
	now := time.Unix(1_700_000_000, 0)
	_, srv := serve(t, gateway.Options{Router: r, Now: func() time.Time { return now },
		Authenticator: tokenAuth(t, keyTable{"sk-bot-0123456789ab": "bot"}),
		Keys:          map[identity.Identity]gateway.KeyPolicy{svc("bot"): {RequestsPerSecond: 0.5, Burst: 2}}})
	key := []string{"Authorization", "Bearer sk-bot-0123456789ab"}
	var got []int
	for range 3 {
		resp := post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", false), key...)
		got = append(got, resp.StatusCode)
		if resp.StatusCode == 429 {
			if ra := resp.Header.Get("Retry-After"); ra != "2" {
				t.Errorf("Retry-After %q, want 2", ra)
			}
		}
	}
	now = now.Add(2 * time.Second)
	got = append(got, post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", false), key...).StatusCode)
	if diff := cmp.Diff([]int{200, 200, 429, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestModels(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{})
	r := newRouter(t, tierSpec{name: "tier1", b: be}, tierSpec{name: "scripted", b: be})
	_, srv := serve(t, gateway.Options{Router: r, Responsibilities: []router.Responsibility{router.Greeting},
		Aliases:       map[string]gateway.Route{"bark": {Tier: "tier1"}},
		Authenticator: tokenAuth(t, keyTable{"sk-a-0123456789abcd": "a", "sk-b-0123456789abcd": "b"}),
		Keys:          map[identity.Identity]gateway.KeyPolicy{svc("b"): {Models: []string{"bark", "tier1"}}}})
	list := func(key string) []string {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Object string
			Data   []struct{ ID, Object string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range body.Data {
			ids = append(ids, d.ID)
		}
		return ids
	}
	if diff := cmp.Diff([]string{"bark", "npc/greeting", "scripted", "tier1"}, list("sk-a-0123456789abcd")); diff != "" {
		t.Errorf("key a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bark", "tier1"}, list("sk-b-0123456789abcd")); diff != "" {
		t.Errorf("key b (-want +got):\n%s", diff)
	}
}

func TestRoutingHeadersAndResponsibility(t *testing.T) {
	t1 := newBackend(t, openaitest.Behavior{})
	t2 := newBackend(t, openaitest.Behavior{})
	r := newRouter(t, tierSpec{name: "tier2", model: "mid", b: t2}, tierSpec{name: "tier1", model: "small", b: t1})
	_, srv := serve(t, gateway.Options{Router: r, Aliases: map[string]gateway.Route{"npc": {}}})
	for _, tt := range []struct {
		model string
		hdr   []string
		tier  string
	}{
		{"npc/greeting", nil, "tier1"},
		{"npc/quest_dialogue", nil, "tier2"},
		{"npc", []string{gateway.HeaderImportance, "generic"}, "tier1"},
		{"npc", []string{gateway.HeaderImportance, "elite"}, "tier2"},
	} {
		resp := post(t, srv.URL, "/v1/chat/completions", chatBody(tt.model, false), tt.hdr...)
		readAll(t, resp.Body)
		if got := resp.Header.Get(gateway.HeaderTier); resp.StatusCode != 200 || got != tt.tier {
			t.Errorf("%s %v: status %d tier %q, want %s", tt.model, tt.hdr, resp.StatusCode, got, tt.tier)
		}
	}
}

// The player (HeaderPlayer, else the body's "user") and the NPC make the
// affinity key; without either the replica is the least loaded.
func TestAffinityFromPlayer(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{})
	r := newRouter(t, tierSpec{name: "tier1", b: be})
	_, srv := serve(t, gateway.Options{Router: r})
	withUser := `{"model":"tier1","user":"player-7","messages":[{"role":"user","content":"hi"}]}`
	for _, tt := range []struct {
		body   string
		hdr    []string
		reason string
	}{
		{chatBody("tier1", false), nil, "explicit_tier,least_loaded"},
		{chatBody("tier1", false), []string{gateway.HeaderPlayer, "p1", gateway.HeaderNPC, "mira"}, "explicit_tier,affinity"},
		{withUser, nil, "explicit_tier,affinity"},
		{chatBody("tier1", false), []string{gateway.HeaderAffinityKey, "conv-9"}, "explicit_tier,affinity"},
	} {
		resp := post(t, srv.URL, "/v1/chat/completions", tt.body, tt.hdr...)
		readAll(t, resp.Body)
		if got := resp.Header.Get(gateway.HeaderReasons); got != tt.reason {
			t.Errorf("%v %s: reasons %q, want %q", tt.hdr, tt.body, got, tt.reason)
		}
	}
}

func TestClientGoneReleasesSlot(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{Tokens: openaitest.Words(1000), TokenDelay: 10 * time.Millisecond})
	r := newRouter(t, tierSpec{name: "tier1", b: be, max: 1})
	g, srv := serve(t, gateway.Options{Router: r})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("tier1", true)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	waitFor(t, "the router slot to be released", func() bool {
		ts, _ := r.Stats().Tier("tier1")
		return ts.InFlight == 0
	})
	waitFor(t, "the backend to see the cancellation", func() bool { return be.srv.Stats().Cancelled == 1 })
	waitFor(t, "the gateway to count it", func() bool { return g.Stats().Total.Cancelled == 1 && g.Stats().Total.InFlight == 0 })
	// The slot is free: the tier (MaxConcurrent 1) serves the next request.
	be.srv.SetBehavior(openaitest.Behavior{})
	if resp := post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", false)); resp.StatusCode != 200 {
		t.Errorf("next request: status %d", resp.StatusCode)
	}
}

func TestStats(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{PromptTokens: 5})
	r := newRouter(t, tierSpec{name: "tier1", b: be})
	g, srv := serve(t, gateway.Options{Router: r, Authenticator: tokenAuth(t, keyTable{"sk-a-0123456789abcd": "a"})})
	key := []string{"Authorization", "Bearer sk-a-0123456789abcd"}
	readAll(t, post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", true), key...).Body)
	readAll(t, post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", false), key...).Body)
	readAll(t, post(t, srv.URL, "/v1/chat/completions", chatBody("tier7", false), key...).Body)
	readAll(t, post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", false)).Body)
	waitFor(t, "handlers to finish", func() bool { return g.Stats().Total.InFlight == 0 })
	s := g.Stats()
	if got := s.Total; got.Requests != 4 || got.Completed != 2 || got.ClientErrors != 2 {
		t.Errorf("total %+v", got)
	}
	if got := s.Keys[svc("a")]; got.Requests != 3 || got.Completed != 2 || got.ClientErrors != 1 || got.TokensIn != 10 || got.TokensOut != 6 || got.TTFT.Count != 2 {
		t.Errorf("key a %+v", got)
	}
	if _, ok := s.Models["tier7"]; ok {
		t.Error("an unknown model got stats of its own")
	}
	if got := s.Models["tier1"]; got.Requests != 2 || got.Completed != 2 || got.TokensOut != 6 {
		t.Errorf("model tier1 %+v", got)
	}
}

func TestClose(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{Tokens: openaitest.Words(1000), TokenDelay: 10 * time.Millisecond})
	r := newRouter(t, tierSpec{name: "tier1", b: be})
	g, err := gateway.New(gateway.Options{Router: r})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(g)
	defer srv.Close()
	resp := post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", true))
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	chunks, done := decodeChunks(t, events(t, resp.Body))
	if last := chunks[len(chunks)-1]; done || last.Error == nil || last.Error.Code != "unavailable" {
		t.Errorf("stream in progress at Close ended with %+v (done %v), want an unavailable error event", last, done)
	}
	if err := g.Close(); !errors.Is(err, gateway.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if resp := post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", false)); resp.StatusCode != 503 {
		t.Errorf("after Close: status %d", resp.StatusCode)
	}
	ts, _ := r.Stats().Tier("tier1")
	if ts.InFlight != 0 {
		t.Errorf("router in flight %d after Close", ts.InFlight)
	}
}

func TestNewValidates(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{})
	r := newRouter(t, tierSpec{name: "tier1", b: be})
	for name, o := range map[string]gateway.Options{
		"no router":      {},
		"negative bytes": {Router: r, MaxRequestBytes: -1},
		"negative rate":  {Router: r, Keys: map[identity.Identity]gateway.KeyPolicy{svc("k"): {RequestsPerSecond: -1}}},
		"empty alias":    {Router: r, Aliases: map[string]gateway.Route{"": {}}},
		"bad importance": {Router: r, Aliases: map[string]gateway.Route{"x": {Importance: 9}}},
	} {
		if _, err := gateway.New(o); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
