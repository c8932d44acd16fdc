package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	} {
		got, ok := BearerToken(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTokenAuthenticator(t *testing.T) {
	a, err := NewTokenAuthenticator(map[Token]Identity{
		"player-token-0123456789": {Kind: KindPlayer, ID: "p1"},
		"server-token-0123456789": {Kind: KindService, ID: "gameserver"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if id, err := a.Authenticate(ctx, "player-token-0123456789"); err != nil || id != (Identity{KindPlayer, "p1"}) || id.Trusted() {
		t.Errorf("player token = %v, %v", id, err)
	}
	if id, err := a.Authenticate(ctx, "server-token-0123456789"); err != nil || !id.Trusted() {
		t.Errorf("service token = %v, %v", id, err)
	}
	for _, bad := range []string{"", "player-token-012345678", "player-token-01234567890"} {
		if _, err := a.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", bad, err)
		}
	}
	if _, err := FromHeader(ctx, a, "Bearer nope-nope-nope-nope"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("FromHeader(unknown) = %v", err)
	}
	if _, err := NewTokenAuthenticator(map[Token]Identity{"short": {KindPlayer, "p"}}); err == nil {
		t.Error("short token accepted")
	}
	if _, err := NewTokenAuthenticator(map[Token]Identity{"long-enough-token-123": {}}); err == nil {
		t.Error("invalid identity accepted")
	}
	if got := Token("secret").String(); strings.Contains(got, "secret") {
		t.Errorf("Token.String leaks: %q", got)
	}
}
