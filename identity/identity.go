package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Kind says what sort of caller an [Identity] is.
type Kind int

const (
	// KindNone is the zero Kind: not authenticated.
	KindNone Kind = iota
	// KindPlayer is a game client acting for one player.
	KindPlayer
	// KindService is a trusted backend (a game server, a tool). In
	// dialogue, services may override the tier and adapter, raise a reply's importance and
	// responsibility above the persona's, and speak for any player.
	KindService
)

func (k Kind) String() string {
	switch k {
	case KindPlayer:
		return "player"
	case KindService:
		return "service"
	default:
		return "none"
	}
}

// Identity is an authenticated caller. The zero Identity is unauthenticated.
type Identity struct {
	Kind Kind
	// ID is the player ID for players and the service name for services.
	ID string
}

// Trusted reports whether the caller is a service.
func (id Identity) Trusted() bool { return id.Kind == KindService && id.ID != "" }

// Valid reports whether the identity names an authenticated caller.
func (id Identity) Valid() bool {
	return (id.Kind == KindPlayer || id.Kind == KindService) && id.ID != ""
}

// ErrUnauthenticated: no credentials, or credentials nobody issued.
// Authenticators return errors matching it; dialogue.ErrUnauthenticated is
// the same value.
var ErrUnauthenticated = errors.New("identity: unauthenticated")

type contextKey struct{}

// NewContext returns a context carrying id. Transports call it after
// authenticating; code that calls a service directly calls it too.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the identity that [NewContext] stored in ctx. It
// reports false when ctx carries none or the one it carries is not
// [Identity.Valid].
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(contextKey{}).(Identity)
	return id, ok && id.Valid()
}

// Authenticator turns a bearer token into an identity. It returns an error
// matching [ErrUnauthenticated] for tokens it does not accept. Implementations
// must be safe for concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// AuthenticatorFunc adapts a function to [Authenticator].
type AuthenticatorFunc func(ctx context.Context, token string) (Identity, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, token string) (Identity, error) {
	return f(ctx, token)
}

// Token is a secret bearer token. Its String and LogValue redact it.
type Token string

// String returns a redacted form.
func (Token) String() string { return "[redacted]" }

// LogValue redacts the token in slog output.
func (Token) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// TokenAuthenticator is the default [Authenticator]: a fixed table of bearer
// tokens, each mapped to a player or service identity. Tokens are indexed
// by their SHA-256 digest: a lookup hashes the presented token, finds the
// entries filed under the digest's first 8 bytes (a map lookup, whatever
// the table's size) and compares the whole digest with each in constant
// time. The table never holds the tokens themselves, and the time a lookup
// takes depends only on digests, which say nothing about the tokens. It is
// safe for concurrent use and immutable after construction.
type TokenAuthenticator struct {
	// index files entries under the first 8 bytes of their digest; a
	// bucket holds more than one entry only on a 64-bit prefix collision.
	index map[uint64][]tokenEntry
}

type tokenEntry struct {
	sum [sha256.Size]byte
	id  Identity
}

// NewTokenAuthenticator builds a TokenAuthenticator. Tokens must be at least
// 16 bytes; every identity must be valid.
func NewTokenAuthenticator(tokens map[Token]Identity) (*TokenAuthenticator, error) {
	if len(tokens) == 0 {
		return nil, errors.New("identity: no tokens")
	}
	a := &TokenAuthenticator{index: make(map[uint64][]tokenEntry, len(tokens))}
	for tok, id := range tokens {
		if len(tok) < 16 {
			return nil, errors.New("identity: bearer tokens must be at least 16 bytes")
		}
		if !id.Valid() {
			return nil, fmt.Errorf("identity: token maps to an invalid identity %v", id)
		}
		sum := sha256.Sum256([]byte(tok))
		k := binary.LittleEndian.Uint64(sum[:8])
		a.index[k] = append(a.index[k], tokenEntry{sum: sum, id: id})
	}
	return a, nil
}

// Authenticate implements [Authenticator].
func (a *TokenAuthenticator) Authenticate(_ context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, ErrUnauthenticated
	}
	sum := sha256.Sum256([]byte(token))
	for _, e := range a.index[binary.LittleEndian.Uint64(sum[:8])] {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
			return e.id, nil
		}
	}
	return Identity{}, ErrUnauthenticated
}

// BearerToken extracts the token from an Authorization header value
// ("Bearer <token>", the scheme case-insensitive, surrounding spaces
// trimmed). It reports false when the value holds no bearer token.
func BearerToken(header string) (string, bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(header[len(prefix):])
	return tok, tok != ""
}

// FromHeader authenticates an Authorization header value ("Bearer <token>")
// with a. Every failure matches [ErrUnauthenticated]: a missing or
// malformed header, a token a rejects (a's error is kept in the message),
// and an invalid identity a returns.
func FromHeader(ctx context.Context, a Authenticator, header string) (Identity, error) {
	tok, ok := BearerToken(header)
	if !ok {
		return Identity{}, fmt.Errorf("%w: missing bearer token", ErrUnauthenticated)
	}
	id, err := a.Authenticate(ctx, tok)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			return Identity{}, err
		}
		return Identity{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if !id.Valid() {
		return Identity{}, ErrUnauthenticated
	}
	return id, nil
}
