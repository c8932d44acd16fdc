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
//	version                    counter behind NextVersion and acquired claims (INCR)
//	evt:<event>                "c:<token>" while claimed (SET NX PX lease), "done" once finished (PX retention)
//	grants:{<player>}          hash: g:<source> → grant JSON, v:<source> → version
//	owner:<source>             player holding the source's grant
//	cust:<player>              provider customer ID
//	amb:{a}:attr:<id>          attribution record (SET NX), unique per checkout or invoice
//	amb:{a}:stats:<ambassador> hash: checkouts, invoices, refunds, rev:<currency> (net of refunds)
//
// All attribution keys share one hash tag, so that an attribution is
// recorded once by its ID whatever ambassador it names; sales are rare
// enough for one cluster slot.
//
// An entitlement lookup is one HGETALL (one round trip). A webhook costs
// four: claim, version (INCR, only once the claim is acquired, so that
// duplicate deliveries take no version), grant write, finish. A duplicate
// costs one.
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

// ClaimEvent implements payment.Store: a script sets the claim unless the
// event's key exists and returns what it found; only when the claim is
// acquired does an INCR take its version (a second round trip), so
// duplicate and concurrent deliveries leave the version counter alone.
// The two keys cannot share one script: the counter is one key for all
// events, and a Redis Cluster script must stay within one slot.
func (s *Store) ClaimEvent(ctx context.Context, eventID, token string, lease time.Duration) (payment.EventClaim, error) {
	if eventID == "" || token == "" {
		return payment.EventClaim{}, errors.New("redisstore: claim needs an event ID and a token")
	}
	prev, err := claimEvent.Run(ctx, s.rdb, []string{s.prefix + "evt:" + eventID}, "c:"+token, max(lease, time.Millisecond).Milliseconds()).Text()
	switch {
	case errors.Is(err, redis.Nil):
		v, err := s.rdb.Incr(ctx, s.prefix+"version").Result()
		if err != nil {
			// The claim is ours but has no version: give it back (or
			// let its lease run out).
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = s.ReleaseEvent(rctx, eventID, token)
			cancel()
			return payment.EventClaim{}, fmt.Errorf("redisstore: version for %s: %w", eventID, err)
		}
		return payment.EventClaim{State: payment.ClaimAcquired, Version: v}, nil
	case err != nil:
		return payment.EventClaim{}, fmt.Errorf("redisstore: claim %s: %w", eventID, err)
	case prev == eventDone:
		return payment.EventClaim{State: payment.ClaimDone}, nil
	default:
		return payment.EventClaim{State: payment.ClaimBusy}, nil
	}
}

const eventDone = "done"

// claimEvent is SET NX PX that also returns the value it found (SET NX
// GET needs Redis 7).
var claimEvent = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`)

// FinishEvent implements payment.Store.
func (s *Store) FinishEvent(ctx context.Context, eventID string, retention time.Duration) error {
	if err := s.rdb.Set(ctx, s.prefix+"evt:"+eventID, eventDone, max(retention, time.Millisecond)).Err(); err != nil {
		return fmt.Errorf("redisstore: finish %s: %w", eventID, err)
	}
	return nil
}

var releaseClaim = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// ReleaseEvent implements payment.Store: it deletes the claim only if it
// still holds token.
func (s *Store) ReleaseEvent(ctx context.Context, eventID, token string) error {
	if err := releaseClaim.Run(ctx, s.rdb, []string{s.prefix + "evt:" + eventID}, "c:"+token).Err(); err != nil {
		return fmt.Errorf("redisstore: release %s: %w", eventID, err)
	}
	return nil
}

// NextVersion implements payment.Store with INCR on one counter, shared
// by every process using the same prefix.
func (s *Store) NextVersion(ctx context.Context) (int64, error) {
	v, err := s.rdb.Incr(ctx, s.prefix+"version").Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: next version: %w", err)
	}
	return v, nil
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
elseif ARGV[2] == 'refund' then
  redis.call('HINCRBY', KEYS[2], 'refunds', 1)
  if ARGV[3] ~= '0' then redis.call('HINCRBY', KEYS[2], 'rev:' .. ARGV[4], '-' .. ARGV[3]) end
end
return 1
`)

func (s *Store) attrKey(id string) string   { return s.prefix + "amb:{a}:attr:" + id }
func (s *Store) statsKey(amb string) string { return s.prefix + "amb:{a}:stats:" + amb }

// AddAttribution implements payment.Store: the record and the stats are
// updated by one script.
func (s *Store) AddAttribution(ctx context.Context, a payment.Attribution) (bool, error) {
	if a.ID == "" || a.AmbassadorID == "" {
		return false, errors.New("redisstore: attribution needs an ID and an ambassador")
	}
	if a.Amount < 0 {
		return false, errors.New("redisstore: negative attribution amount")
	}
	b, err := json.Marshal(a)
	if err != nil {
		return false, fmt.Errorf("redisstore: encode attribution: %w", err)
	}
	n, err := addAttribution.Run(ctx, s.rdb, []string{s.attrKey(a.ID), s.statsKey(a.AmbassadorID)},
		b, string(a.Kind), strconv.FormatInt(a.Amount, 10), a.Currency).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: add attribution %s: %w", a.ID, err)
	}
	return n == 1, nil
}

// AmbassadorStats implements payment.Store.
func (s *Store) AmbassadorStats(ctx context.Context, ambassadorID string) (payment.AmbassadorStats, error) {
	out := payment.AmbassadorStats{AmbassadorID: ambassadorID}
	m, err := s.rdb.HGetAll(ctx, s.statsKey(ambassadorID)).Result()
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
		case k == "refunds":
			out.Refunds = n
		case strings.HasPrefix(k, "rev:"):
			if out.Revenue == nil {
				out.Revenue = map[string]int64{}
			}
			out.Revenue[strings.TrimPrefix(k, "rev:")] = n
		}
	}
	return out, nil
}
