package payment

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// Defaults for promotion-code lookups by players.
const (
	// DefaultCodeBurst is how many promotion codes a player may try in a
	// row (CodeLimit.Burst).
	DefaultCodeBurst = 5
	// DefaultCodeEvery is how often a player earns one more try
	// (CodeLimit.Every): after a burst, one code a minute.
	DefaultCodeEvery = time.Minute
	// DefaultCodeCacheTTL is how long a lookup, found or not, is reused.
	DefaultCodeCacheTTL = 30 * time.Second
	// DefaultCodeCacheEntries bounds the lookups cached at once.
	DefaultCodeCacheEntries = 10_000
)

// CodeLimit throttles the promotion codes one player may try at
// checkout: Burst tries at once, then one more each Every (a token
// bucket). A try that finds a valid code is given back, so only failed
// guesses (unknown, expired, used-up or malformed codes) use up the
// budget; a player with none left is refused before any lookup with a
// [*CodeRateLimitError]. One player's tries never limit another's. Zero
// fields mean DefaultCodeBurst and DefaultCodeEvery.
//
// The limit is kept in memory, per [Service]: with several servers, a
// player who reaches a different server each time gets up to that many
// times the budget.
type CodeLimit struct {
	Burst int
	Every time.Duration
}

// codeCache remembers promotion-code lookups for a TTL: misses, and
// codes without a redemption limit, so that a repeated code (a popular
// ambassador code, or a guess) costs no provider call. It holds at most max entries (each key at most
// MaxCodeBytes); when full, expired entries are dropped, and if none
// expired, the new lookup is not cached.
type codeCache struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]codeEntry
}

type codeEntry struct {
	pc    PromotionCode
	found bool
	exp   time.Time
}

func codeKey(code string) string { return strings.ToUpper(code) }

func (c *codeCache) get(code string, now time.Time) (codeEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[codeKey(code)]
	if !ok || !now.Before(e.exp) {
		return codeEntry{}, false
	}
	return e, true
}

func (c *codeCache) put(code string, e codeEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, old := range c.m {
			if !now.Before(old.exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			return
		}
	}
	e.exp = now.Add(c.ttl)
	c.m[codeKey(code)] = e
}

// forget drops a code, after an operator created or deactivated it.
func (c *codeCache) forget(code string) {
	c.mu.Lock()
	delete(c.m, codeKey(code))
	c.mu.Unlock()
}

// codeProblem says why pc cannot be redeemed at now ("" if it can).
func codeProblem(pc PromotionCode, now time.Time) CodeProblem {
	switch {
	case !pc.ExpiresAt.IsZero() && !now.Before(pc.ExpiresAt):
		return CodeExpired
	case pc.MaxRedemptions > 0 && pc.TimesRedeemed >= pc.MaxRedemptions:
		return CodeUsedUp
	}
	return ""
}

// redeemableCode turns a player-typed code into an active promotion
// code: throttled per player, served from the cache when it can be, and
// refused with the bare ErrInvalidCode whatever the reason (logged at
// debug level).
func (c *Checkout) redeemableCode(ctx context.Context, player, code string) (PromotionCode, error) {
	s := c.s
	now := s.now()
	if ok, wait := s.codeLimit.Take(player, now); !ok {
		s.log.DebugContext(ctx, "promotion code refused: player rate limited", "player", player, "retry_after", wait)
		return PromotionCode{}, &CodeRateLimitError{RetryAfter: wait}
	}
	pc, problem, err := s.lookupCode(ctx, code, now)
	if err != nil {
		s.codeLimit.Give(player, now)
		return PromotionCode{}, err
	}
	if problem != "" {
		s.log.DebugContext(ctx, "promotion code refused", "player", player, "code", code, "problem", string(problem))
		return PromotionCode{}, ErrInvalidCode
	}
	s.codeLimit.Give(player, now)
	return pc, nil
}

// lookupCode finds code through the cache, or the provider on a miss.
func (s *Service) lookupCode(ctx context.Context, code string, now time.Time) (PromotionCode, CodeProblem, error) {
	if !validCode(code) {
		return PromotionCode{}, CodeMalformed, nil
	}
	e, ok := s.codeCache.get(code, now)
	if !ok {
		pc, err := s.admin.FindPromotionCode(ctx, code)
		switch {
		case errors.Is(err, ErrNotFound):
			e = codeEntry{}
		case err != nil:
			return PromotionCode{}, "", err
		default:
			e = codeEntry{pc: pc, found: true}
		}
		// A code with a redemption limit is read afresh each time: a
		// cached count could offer a code that was used up meanwhile.
		if !e.found || e.pc.MaxRedemptions == 0 {
			s.codeCache.put(code, e, now)
		}
	}
	if !e.found {
		return PromotionCode{}, CodeUnknown, nil
	}
	if p := codeProblem(e.pc, now); p != "" {
		return PromotionCode{}, p, nil
	}
	return e.pc, "", nil
}
