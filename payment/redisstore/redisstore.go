// Package redisstore implements payment.Store on Redis with go-redis v9.
//
// It accepts any redis.UniversalClient (a single node, a cluster, or a
// failover client) and never closes it: the caller owns the client.
// Several processes may share one store; every check-and-set is a single
// atomic command or Lua script.
//
// # Layout
//
// All keys start with Options.Prefix (default "bb:payment:"). Keys that a
// script touches together share a Redis Cluster hash tag:
//
//	evt:<event>                       event claim (SET NX PX)
//	grants:{<player>}                 hash: g:<source> → grant JSON, v:<source> → version
//	owner:<source>                    player holding the source's grant
//	cust:<player>                     provider customer ID
//	amb:{<ambassador>}:attr:<id>      attribution record (SET NX)
//	amb:{<ambassador>}:stats          hash: checkouts, invoices, rev:<currency>
//
// An entitlement lookup is one HGETALL (one round trip).
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix used when Options.Prefix is empty.
const DefaultPrefix = "bb:payment:"

// Options configures a Store. The zero value is valid.
type Options struct {
	// Prefix starts every key. Default DefaultPrefix.
	Prefix string
}

// Store is a payment.Store on Redis. It is safe for concurrent use by
// many goroutines and processes; it holds no goroutines and needs no
// closing (close the client you passed in when you are done with it).
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ payment.Store = (*Store)(nil)

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, o Options) (*Store, error) {
	if rdb == nil {
		return nil, &payment.ValidationError{Field: "rdb", Reason: "required"}
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: o.Prefix}, nil
}

func (s *Store) grantsKey(player string) string { return s.prefix + "grants:{" + player + "}" }

// ClaimEvent implements payment.Store with SET NX PX.
func (s *Store) ClaimEvent(ctx context.Context, eventID string, ttl time.Duration) (bool, error) {
	if eventID == "" {
		return false, errors.New("redisstore: empty event ID")
	}
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	ok, err := s.rdb.SetNX(ctx, s.prefix+"evt:"+eventID, "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: claim %s: %w", eventID, err)
	}
	return ok, nil
}

// ReleaseEvent implements payment.Store.
func (s *Store) ReleaseEvent(ctx context.Context, eventID string) error {
	if err := s.rdb.Del(ctx, s.prefix+"evt:"+eventID).Err(); err != nil {
		return fmt.Errorf("redisstore: release %s: %w", eventID, err)
	}
	return nil
}

// putGrant writes the grant unless a higher version is stored. Versions
// are compared as zero-padded 20-digit strings, exact for all int64 >= 0
// (Lua numbers are doubles and would round above 2^53).
var putGrant = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and cur > ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
`)

// PutGrant implements payment.Store. Versions must not be negative.
func (s *Store) PutGrant(ctx context.Context, g payment.Grant) (bool, error) {
	if g.PlayerID == "" || g.SourceID == "" {
		return false, errors.New("redisstore: grant needs a player and a source ID")
	}
	if g.Version < 0 {
		return false, errors.New("redisstore: negative grant version")
	}
	b, err := json.Marshal(g)
	if err != nil {
		return false, fmt.Errorf("redisstore: encode grant: %w", err)
	}
	// One round trip: the versioned write and the owner link travel in one
	// pipeline. The owner is set even when the write loses to a newer
	// version (the newer write names the same source, hence the same
	// owner, unless the source moved, which the HDEL below handles).
	pipe := s.rdb.Pipeline()
	// EVAL (not EVALSHA) in the pipeline: the script is short, and there
	// is no NOSCRIPT round trip to recover from.
	put := putGrant.Eval(ctx, pipe, []string{s.grantsKey(g.PlayerID)},
		"v:"+g.SourceID, fmt.Sprintf("%020d", g.Version), "g:"+g.SourceID, b)
	owner := pipe.SetArgs(ctx, s.prefix+"owner:"+g.SourceID, g.PlayerID, redis.SetArgs{Get: true})
	_, _ = pipe.Exec(ctx) // errors are read per command below
	n, err := put.Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: put grant %s: %w", g.SourceID, err)
	}
	prev, err := owner.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return n == 1, fmt.Errorf("redisstore: set owner of %s: %w", g.SourceID, err)
	}
	if prev != "" && prev != g.PlayerID {
		// The source moved to another player: the old player loses it.
		if err := s.rdb.HDel(ctx, s.grantsKey(prev), "g:"+g.SourceID, "v:"+g.SourceID).Err(); err != nil {
			return n == 1, fmt.Errorf("redisstore: move grant %s: %w", g.SourceID, err)
		}
	}
	return n == 1, nil
}

// Grants implements payment.Store with one HGETALL.
func (s *Store) Grants(ctx context.Context, playerID string) ([]payment.Grant, error) {
	m, err := s.rdb.HGetAll(ctx, s.grantsKey(playerID)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: grants of %s: %w", playerID, err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]payment.Grant, 0, len(m)/2)
	for k, v := range m {
		if !strings.HasPrefix(k, "g:") {
			continue
		}
		var g payment.Grant
		if err := json.Unmarshal([]byte(v), &g); err != nil {
			return nil, fmt.Errorf("redisstore: decode grant %s: %w", k, err)
		}
		out = append(out, g)
	}
	return out, nil
}

// GrantOwner implements payment.Store.
func (s *Store) GrantOwner(ctx context.Context, sourceID string) (string, error) {
	p, err := s.rdb.Get(ctx, s.prefix+"owner:"+sourceID).Result()
	if errors.Is(err, redis.Nil) {
		return "", payment.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: owner of %s: %w", sourceID, err)
	}
	return p, nil
}

// PutCustomer implements payment.Store.
func (s *Store) PutCustomer(ctx context.Context, playerID, customerID string) error {
	if err := s.rdb.Set(ctx, s.prefix+"cust:"+playerID, customerID, 0).Err(); err != nil {
		return fmt.Errorf("redisstore: put customer of %s: %w", playerID, err)
	}
	return nil
}

// Customer implements payment.Store.
func (s *Store) Customer(ctx context.Context, playerID string) (string, error) {
	c, err := s.rdb.Get(ctx, s.prefix+"cust:"+playerID).Result()
	if errors.Is(err, redis.Nil) {
		return "", payment.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: customer of %s: %w", playerID, err)
	}
	return c, nil
}

var addAttribution = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
if ARGV[2] == 'checkout' then
  redis.call('HINCRBY', KEYS[2], 'checkouts', 1)
elseif ARGV[2] == 'invoice' then
  redis.call('HINCRBY', KEYS[2], 'invoices', 1)
  if ARGV[3] ~= '0' then redis.call('HINCRBY', KEYS[2], 'rev:' .. ARGV[4], ARGV[3]) end
end
return 1
`)

func (s *Store) ambKey(amb string) string { return s.prefix + "amb:{" + amb + "}:" }

// AddAttribution implements payment.Store: the record and the stats are
// updated by one script.
func (s *Store) AddAttribution(ctx context.Context, a payment.Attribution) (bool, error) {
	if a.ID == "" || a.AmbassadorID == "" {
		return false, errors.New("redisstore: attribution needs an ID and an ambassador")
	}
	b, err := json.Marshal(a)
	if err != nil {
		return false, fmt.Errorf("redisstore: encode attribution: %w", err)
	}
	k := s.ambKey(a.AmbassadorID)
	n, err := addAttribution.Run(ctx, s.rdb, []string{k + "attr:" + a.ID, k + "stats"},
		b, string(a.Kind), strconv.FormatInt(a.Amount, 10), a.Currency).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: add attribution %s: %w", a.ID, err)
	}
	return n == 1, nil
}

// AmbassadorStats implements payment.Store.
func (s *Store) AmbassadorStats(ctx context.Context, ambassadorID string) (payment.AmbassadorStats, error) {
	out := payment.AmbassadorStats{AmbassadorID: ambassadorID}
	m, err := s.rdb.HGetAll(ctx, s.ambKey(ambassadorID)+"stats").Result()
	if err != nil {
		return out, fmt.Errorf("redisstore: stats of %s: %w", ambassadorID, err)
	}
	for k, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return out, fmt.Errorf("redisstore: stats of %s: field %s: %w", ambassadorID, k, err)
		}
		switch {
		case k == "checkouts":
			out.Checkouts = n
		case k == "invoices":
			out.Invoices = n
		case strings.HasPrefix(k, "rev:"):
			if out.Revenue == nil {
				out.Revenue = map[string]int64{}
			}
			out.Revenue[strings.TrimPrefix(k, "rev:")] = n
		}
	}
	return out, nil
}
