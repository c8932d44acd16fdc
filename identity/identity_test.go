package identity_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bodybroker/sdk/identity"
)

// playerTable returns n player tokens ("player-token-%012d" for player
// "p%d") and an authenticator for them.
func playerTable(tb testing.TB, n int) (map[identity.Token]identity.Identity, *identity.TokenAuthenticator) {
	tb.Helper()
	tokens := make(map[identity.Token]identity.Identity, n)
	for i := range n {
		tokens[identity.Token(fmt.Sprintf("player-token-%012d", i))] = identity.Identity{Kind: identity.KindPlayer, ID: fmt.Sprintf("p%d", i)}
	}
	a, err := identity.NewTokenAuthenticator(tokens)
	if err != nil {
		tb.Fatal(err)
	}
	return tokens, a
}

// TestTokenAuthenticatorTable: in a large table every token finds its own
// identity, and near misses find none.
func TestTokenAuthenticatorTable(t *testing.T) {
	tokens, a := playerTable(t, 2000)
	ctx := context.Background()
	for tok, want := range tokens {
		if got, err := a.Authenticate(ctx, string(tok)); err != nil || got != want {
			t.Fatalf("Authenticate(%s) = %v, %v; want %v", tok, got, err, want)
		}
		if _, err := a.Authenticate(ctx, string(tok)+"x"); !errors.Is(err, identity.ErrUnauthenticated) {
			t.Fatalf("Authenticate(%s+x) = %v, want ErrUnauthenticated", tok, err)
		}
	}
}

// BenchmarkTokenAuthenticatorRejected measures rejecting an unknown bearer
// token against a table of 100,000 tokens: the cost an unauthenticated
// flood imposes on the server.
func BenchmarkTokenAuthenticatorRejected(b *testing.B) {
	_, a := playerTable(b, 100_000)
	ctx := context.Background()
	if id, err := a.Authenticate(ctx, "player-token-000000004242"); err != nil || id.ID != "p4242" {
		b.Fatalf("Authenticate(known) = %v, %v", id, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, "not-a-token-anyone-issued"); !errors.Is(err, identity.ErrUnauthenticated) {
			b.Fatalf("Authenticate(unknown) = %v, want ErrUnauthenticated", err)
		}
	}
}
