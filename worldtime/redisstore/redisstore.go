// Package redisstore implements worldtime.Store on Redis with go-redis v9,
// so that game servers in a fleet share each world's clock.
//
// It accepts any redis.UniversalClient (a single node, a cluster, or a
// failover client) and never closes it: the caller owns the client. It
// holds no goroutines and needs no closing.
//
// # Layout
//
// All keys start with Options.Prefix (default "bb:worldtime:"). One hash
// per world, its ID in a Redis Cluster hash tag:
//
//	tl:{<world>}   hash: v → version (issued by the store), tl → timeline JSON
//
// Load is one HMGET (one round trip: a late-joining server needs one
// message); Swap is one Lua script that compares the version, writes the
// next one and announces it atomically. Watch subscribes to the
// announcements (pub/sub channel chg:{<world>} under the prefix), so
// clocks on other servers reload at once instead of at their next poll. Timelines have no TTL: they are the world's
// saved time.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/bodybroker/sdk/worldtime"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix used when Options.Prefix is empty.
const DefaultPrefix = "bb:worldtime:"

// MaxTimelineBytes bounds a stored timeline's encoding; a larger one is
// rejected on Swap and on Load.
const MaxTimelineBytes = 64 << 10

// Options configures a Store. The zero value is valid.
type Options struct {
	// Prefix starts every key. Default DefaultPrefix.
	Prefix string
}

// Store is a worldtime.Store on Redis. It is safe for concurrent use by
// many goroutines and processes.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var (
	_ worldtime.Store   = (*Store)(nil)
	_ worldtime.Watcher = (*Store)(nil)
)

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, o Options) (*Store, error) {
	if rdb == nil {
		return nil, &worldtime.ValueError{Field: "rdb", Reason: "required"}
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: o.Prefix}, nil
}

func (s *Store) key(world string) string { return s.prefix + "tl:{" + world + "}" }

func (s *Store) channel(world string) string { return s.prefix + "chg:{" + world + "}" }

// Watch implements worldtime.Watcher with a Redis pub/sub subscription on
// the world's change channel (one connection per call, closed when ctx
// ends). It calls changed once as soon as it is subscribed, to cover
// changes made before, and after every Swap of the world by any process.
func (s *Store) Watch(ctx context.Context, world string, changed func()) error {
	sub := s.rdb.Subscribe(ctx, s.channel(world))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("redisstore: watch %s: %w", world, err)
	}
	changed()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-ch:
			if !ok {
				return fmt.Errorf("redisstore: watch %s: subscription closed", world)
			}
			changed()
		}
	}
}

// Load implements worldtime.Store with one HMGET.
func (s *Store) Load(ctx context.Context, world string) (worldtime.Timeline, error) {
	vals, err := s.rdb.HMGet(ctx, s.key(world), "v", "tl").Result()
	if err != nil {
		return worldtime.Timeline{}, fmt.Errorf("redisstore: load %s: %w", world, err)
	}
	vs, ok1 := vals[0].(string)
	data, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return worldtime.Timeline{}, worldtime.ErrNotFound
	}
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil || len(data) > MaxTimelineBytes {
		return worldtime.Timeline{}, fmt.Errorf("redisstore: load %s: corrupt version %q or %d-byte timeline", world, vs, len(data))
	}
	var tl worldtime.Timeline
	if err := json.Unmarshal([]byte(data), &tl); err != nil {
		return worldtime.Timeline{}, fmt.Errorf("redisstore: decode timeline of %s: %w", world, err)
	}
	tl.World, tl.Version = world, v
	return tl, nil
}

// swap writes the timeline if the stored version is ARGV[1] ("0" when
// none), announces the new version on channel ARGV[3], and returns it, or
// -1 on a conflict.
var swap = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v') or '0'
if cur ~= ARGV[1] then return -1 end
local nv = tonumber(cur) + 1
redis.call('HSET', KEYS[1], 'v', nv, 'tl', ARGV[2])
redis.call('PUBLISH', ARGV[3], nv)
return nv
`)

// Swap implements worldtime.Store with one Lua script.
func (s *Store) Swap(ctx context.Context, world string, prev int64, tl worldtime.Timeline) (worldtime.Timeline, error) {
	if err := tl.Validate(); err != nil {
		return worldtime.Timeline{}, err
	}
	if prev < 0 {
		return worldtime.Timeline{}, &worldtime.ValueError{Field: "version", Reason: "negative"}
	}
	tl.World, tl.Version = world, prev+1
	b, err := json.Marshal(tl)
	if err != nil {
		return worldtime.Timeline{}, fmt.Errorf("redisstore: encode timeline of %s: %w", world, err)
	}
	if len(b) > MaxTimelineBytes {
		return worldtime.Timeline{}, &worldtime.ValueError{Field: "timeline", Reason: fmt.Sprintf("%d bytes encoded, limit %d", len(b), MaxTimelineBytes)}
	}
	v, err := swap.Run(ctx, s.rdb, []string{s.key(world)}, strconv.FormatInt(prev, 10), b, s.channel(world)).Int64()
	if err != nil {
		return worldtime.Timeline{}, fmt.Errorf("redisstore: swap %s: %w", world, err)
	}
	if v < 0 {
		return worldtime.Timeline{}, fmt.Errorf("redisstore: %s is no longer at version %d: %w", world, prev, worldtime.ErrConflict)
	}
	if v != prev+1 {
		return worldtime.Timeline{}, errors.New("redisstore: store issued an unexpected version")
	}
	return tl, nil
}
