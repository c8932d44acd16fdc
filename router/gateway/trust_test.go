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
