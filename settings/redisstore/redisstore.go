// Package redisstore implements settings.Store on Redis with go-redis v9.
//
// It accepts any redis.UniversalClient (a single node, a cluster, or a
// failover client) and never closes it: the caller owns the client.
// Several processes may share one store: every write is one Lua script
// on one key, so it is atomic, and revisions are issued by the store.
//
// # Layout
//
// All keys start with Options.Prefix (default "bb:settings:"). A player's
// settings are one hash, so a write never spans cluster slots:
//
//	p:{<player>}   hash: _s → schema version, _r → highest revision,
//	               v:<key> → JSON value, r:<key> → the key's revision
//
// A load is one HGETALL; a write is one EVALSHA that checks every
// revision, writes, and returns the new snapshot (one round trip).
package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bodybroker/sdk/settings"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix used when Options.Prefix is empty.
const DefaultPrefix = "bb:settings:"

// MaxPlayerIDBytes bounds a player ID: settings.MaxPlayerIDBytes.
const MaxPlayerIDBytes = settings.MaxPlayerIDBytes

// ErrBadPlayer is returned for an empty or oversize player ID; it matches
// settings.ErrBadPlayer, so the settings handler answers it with a 400.
var ErrBadPlayer = fmt.Errorf("redisstore: %w", settings.ErrBadPlayer)

// Options configures a Store. The zero value is valid.
type Options struct {
	// Prefix starts every key. Default DefaultPrefix.
	Prefix string
}

// Store is a settings.Store on Redis. It is safe for concurrent use by
// many goroutines and processes; it holds no goroutines and needs no
// closing (close the client you passed in when you are done with it).
// The zero value is not usable: create one with New.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ settings.Store = (*Store)(nil)

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, o Options) (*Store, error) {
	if rdb == nil {
		return nil, fmt.Errorf("%w: redisstore needs a client", settings.ErrInvalidOptions)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: o.Prefix}, nil
}

func (s *Store) key(player string) (string, error) {
	if player == "" || len(player) > MaxPlayerIDBytes {
		return "", fmt.Errorf("%w: %d bytes, want 1-%d", ErrBadPlayer, len(player), MaxPlayerIDBytes)
	}
	// The hash tag is the whole ID; a '}' inside it only shortens the tag,
	// and every key of a player is this one key anyway.
	return s.prefix + "p:{" + player + "}", nil
}

// Load implements settings.Store.
func (s *Store) Load(ctx context.Context, player string) (settings.Snapshot, error) {
	k, err := s.key(player)
	if err != nil {
		return settings.Snapshot{}, err
	}
	m, err := s.rdb.HGetAll(ctx, k).Result()
	if err != nil {
		return settings.Snapshot{}, fmt.Errorf("redisstore: load: %w", err)
	}
	return fromHash(m)
}

func fromHash(m map[string]string) (settings.Snapshot, error) {
	snap := settings.Snapshot{Entries: make(map[string]settings.Entry, len(m)/2)}
	var err error
	for f, v := range m {
		switch {
		case f == "_s":
			snap.Schema, err = strconv.Atoi(v)
		case f == "_r":
			snap.Rev, err = strconv.ParseInt(v, 10, 64)
		case strings.HasPrefix(f, "v:"):
			k := f[2:]
			rev, perr := strconv.ParseInt(m["r:"+k], 10, 64)
			if perr != nil {
				err = perr
				break
			}
			snap.Entries[k] = settings.Entry{Value: json.RawMessage(v), Rev: rev}
		}
		if err != nil {
			return settings.Snapshot{}, fmt.Errorf("%w: redisstore field %q: %v", settings.ErrMalformed, f, err)
		}
	}
	return snap, nil
}

// apply checks every write's revision (ARGV: schema, then key, ifrev,
// value triples; ifrev -1 is any, an empty value deletes). On a conflict
// it returns {0, key, rev, value, ...} for the stale keys (rev 0 and
// value false when absent) and writes nothing; otherwise it writes with
// one new revision and returns {1, HGETALL...}.
var apply = redis.NewScript(`
local h = KEYS[1]
local stale = {0}
for i = 2, #ARGV, 3 do
  local want = tonumber(ARGV[i+1])
  if want ~= -1 then
    local cur = tonumber(redis.call('HGET', h, 'r:' .. ARGV[i]) or '0')
    if cur ~= want then
      table.insert(stale, ARGV[i])
      table.insert(stale, cur)
      table.insert(stale, redis.call('HGET', h, 'v:' .. ARGV[i]) or false)
    end
  end
end
if #stale > 1 then return stale end
if #ARGV > 1 then
  local rev = redis.call('HINCRBY', h, '_r', 1)
  for i = 2, #ARGV, 3 do
    local k = ARGV[i]
    if ARGV[i+2] == '' then
      redis.call('HDEL', h, 'v:' .. k, 'r:' .. k)
    else
      redis.call('HSET', h, 'v:' .. k, ARGV[i+2], 'r:' .. k, rev)
    end
  end
end
local s = tonumber(redis.call('HGET', h, '_s') or '0')
if tonumber(ARGV[1]) > s then redis.call('HSET', h, '_s', ARGV[1]) end
local out = redis.call('HGETALL', h)
table.insert(out, 1, 1)
return out
`)

// Apply implements settings.Store in one script run.
func (s *Store) Apply(ctx context.Context, player string, schema int, writes []settings.Write) (settings.Snapshot, error) {
	k, err := s.key(player)
	if err != nil {
		return settings.Snapshot{}, err
	}
	args := make([]any, 0, 1+3*len(writes))
	args = append(args, schema)
	for _, w := range writes {
		if w.Value != nil && (len(w.Value) == 0 || !json.Valid(w.Value)) {
			return settings.Snapshot{}, fmt.Errorf("%w: key %q: value is not JSON", settings.ErrMalformed, w.Key)
		}
		args = append(args, w.Key, w.IfRev, []byte(w.Value))
	}
	res, err := apply.Run(ctx, s.rdb, []string{k}, args...).Slice()
	if err != nil {
		return settings.Snapshot{}, fmt.Errorf("redisstore: apply: %w", err)
	}
	if len(res) == 0 {
		return settings.Snapshot{}, fmt.Errorf("%w: redisstore: empty script reply", settings.ErrMalformed)
	}
	if ok, _ := res[0].(int64); ok == 0 {
		ce := &settings.ConflictError{Current: map[string]settings.Entry{}}
		for i := 1; i+2 < len(res); i += 3 {
			key, _ := res[i].(string)
			rev, _ := res[i+1].(int64)
			ce.Keys = append(ce.Keys, key)
			if v, ok := res[i+2].(string); ok {
				ce.Current[key] = settings.Entry{Value: json.RawMessage(v), Rev: rev}
			}
		}
		slices.Sort(ce.Keys)
		ce.Keys = slices.Compact(ce.Keys)
		return settings.Snapshot{}, ce
	}
	m := make(map[string]string, (len(res)-1)/2)
	for i := 1; i+1 < len(res); i += 2 {
		f, _ := res[i].(string)
		v, _ := res[i+1].(string)
		m[f] = v
	}
	return fromHash(m)
}
