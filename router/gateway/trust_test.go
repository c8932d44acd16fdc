package gateway_test

import (
	"testing"

	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

// Nothing a player sends raises their tier: X-BB-Importance is honoured
// for trusted (service) callers only; a player's is ignored, and the alias
// routes as it would without it.
func TestPlayersCannotRaiseImportance(t *testing.T) {
	t1 := newBackend(t, openaitest.Behavior{})
	t2 := newBackend(t, openaitest.Behavior{})
	r := newRouter(t, tierSpec{name: "tier2", model: "mid", b: t2}, tierSpec{name: "tier1", model: "small", b: t1})
	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
		"sk-player-0123456789": {Kind: identity.KindPlayer, ID: "p1"},
		"sk-tools-01234567890": svc("tools"),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, srv := serve(t, gateway.Options{Router: r, Authenticator: auth,
		Aliases: map[string]gateway.Route{"npc": {Importance: router.Generic}}})
	for _, tt := range []struct {
		key, importance, tier string
	}{
		{"sk-player-0123456789", "major", "tier1"},
		{"sk-player-0123456789", "elite", "tier1"},
		{"sk-tools-01234567890", "elite", "tier2"},
	} {
		resp := post(t, srv.URL, "/v1/chat/completions", chatBody("npc", false),
			"Authorization", "Bearer "+tt.key, gateway.HeaderImportance, tt.importance)
		readAll(t, resp.Body)
		if got := resp.Header.Get(gateway.HeaderTier); resp.StatusCode != 200 || got != tt.tier {
			t.Errorf("%s asking %s: status %d tier %q, want %s", tt.key[:9], tt.importance, resp.StatusCode, got, tt.tier)
		}
	}
}

// DefaultKeyPolicy's rate is per caller: one player's burst does not get
// every other unlisted caller a 429. Players without an entry in Keys are
// counted together in Stats, so stats stay bounded however many players
// an Authenticator issues.
func TestDefaultPolicyIsPerCaller(t *testing.T) {
	be := newBackend(t, openaitest.Behavior{})
	r := newRouter(t, tierSpec{name: "tier1", b: be})
	players := map[identity.Token]identity.Identity{}
	for i, tok := range []identity.Token{"sk-player-a-0123456789", "sk-player-b-0123456789", "sk-player-c-0123456789"} {
		players[tok] = identity.Identity{Kind: identity.KindPlayer, ID: string(rune('a' + i))}
	}
	players["sk-tools-0123456789012"] = svc("tools")
	auth, err := identity.NewTokenAuthenticator(players)
	if err != nil {
		t.Fatal(err)
	}
	g, srv := serve(t, gateway.Options{Router: r, Authenticator: auth,
		Keys:             map[identity.Identity]gateway.KeyPolicy{svc("tools"): {}},
		DefaultKeyPolicy: gateway.KeyPolicy{RequestsPerSecond: 0.001, Burst: 1}})
	status := func(key string) int {
		resp := post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", false), "Authorization", "Bearer "+key)
		readAll(t, resp.Body)
		return resp.StatusCode
	}
	if got := status("sk-player-a-0123456789"); got != 200 {
		t.Fatalf("player a's first request: %d, want 200", got)
	}
	if got := status("sk-player-a-0123456789"); got != 429 {
		t.Errorf("player a's second request: %d, want 429 (burst 1)", got)
	}
	for _, k := range []string{"sk-player-b-0123456789", "sk-player-c-0123456789"} {
		if got := status(k); got != 200 {
			t.Errorf("%s after player a used its burst: %d, want 200", k[:11], got)
		}
	}
	status("sk-tools-0123456789012")
	keys := g.Stats().Keys
	if len(keys) != 2 {
		t.Errorf("Stats().Keys has %d entries (%v), want 2: the service key and one for every unlisted player", len(keys), keys)
	}
	if c := keys[identity.Identity{}]; c.Requests != 4 {
		t.Errorf("unlisted players' entry counts %d requests, want 4", c.Requests)
	}
}
