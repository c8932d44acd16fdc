// Package redisstore is a [history.Store] on Redis (go-redis v9), so that
// conversation memory survives restarts and is shared by every instance of
// the dialogue service.
//
// # Bounds
//
// Every key expires after Options.TTL without activity (each Append
// restarts it). A conversation keeps at most MaxTurns turns and
// MaxConversationBytes bytes (its summary plus its JSON-encoded turns; the
// oldest turns go first). A player keeps at most MaxSessionsPerPlayer
// conversations: starting one more deletes that player's own least
// recently active one. So one player holds at most
// MaxSessionsPerPlayer × MaxConversationBytes of text, whatever they do.
// The total across players is left to the server: set Redis's maxmemory
// with a volatile-* eviction policy (every key here has a TTL).
//
// # Layout
//
// With P the prefix and {player} the player's ID (with '%', '{' and '}'
// percent-encoded), a conversation with session ID id is:
//
//	P{player}:c:<id>:meta   hash: npc, summary, bytes (of the turns)
//	P{player}:c:<id>:turns  list of JSON turns, oldest first
//	P{player}:sessions      sorted set of the player's session IDs,
//	                        scored by last activity (a per-player sequence)
//	Ps:{<id>}               string: the owning player, so that Load,
//	                        SetSummary and Delete, which get only the
//	                        session ID, can find the conversation
//
// A player's keys share the hash tag {player}, so they live in one Redis
// Cluster slot and one Lua script updates them atomically: Append checks
// the NPC, pushes the turn, trims the conversation to its bounds, records
// the activity in the player's sorted set, deletes the player's sessions
// past the cap and restarts the TTLs, all at once. Ownership is decided
// first, on the owner key, in a script of its own (another slot): a session
// ID belongs to the first player to append to it for as long as its owner
// key lives. The scripts build the keys of evicted sessions from the
// player's hash tag, so they stay in the slot of the keys they are given.
//
// Load and Append each take two round trips: one for the owner key, one
// for the player's keys.
//
// # Concurrency
//
// A Store is safe for concurrent use. It never closes the client it is
// given.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bodybroker/sdk/dialogue/history"
)

// Options configures a Store. The zero value means the defaults.
type Options struct {
	// Prefix starts every key; "" means "bb:dialogue:".
	Prefix string
	// TTL is how long an idle conversation is kept; 0 means
	// history.DefaultTTL.
	TTL time.Duration
	// MaxTurns bounds the turns kept; 0 means history.DefaultMaxTurns.
	MaxTurns int
	// MaxConversationBytes bounds a conversation's summary plus its
	// JSON-encoded turns; past it the oldest turns are dropped, and a turn
	// or summary that cannot fit even alone is refused with an error
	// matching history.ErrTooLarge. 0 means
	// history.DefaultMaxConversationBytes.
	MaxConversationBytes int
	// MaxSessionsPerPlayer bounds the conversations one player keeps; a
	// player starting one more loses their own least recently active one.
	// 0 means history.DefaultMaxSessionsPerPlayer.
	MaxSessionsPerPlayer int
}

// Store is a history.Store on Redis.
type Store struct {
	c    redis.UniversalClient
	opts Options
}

var _ history.Store = (*Store)(nil)

// New returns a Store using c, which the caller keeps and closes.
func New(c redis.UniversalClient, opts Options) (*Store, error) {
	if c == nil {
		return nil, errors.New("redisstore: nil client")
	}
	if opts.TTL < 0 || opts.MaxTurns < 0 || opts.MaxConversationBytes < 0 || opts.MaxSessionsPerPlayer < 0 {
		return nil, errors.New("redisstore: negative TTL, MaxTurns, MaxConversationBytes or MaxSessionsPerPlayer")
	}
	if opts.TTL > 0 && opts.TTL < time.Millisecond {
		return nil, errors.New("redisstore: TTL below a millisecond")
	}
	if opts.Prefix == "" {
		opts.Prefix = "bb:dialogue:"
	}
	if opts.TTL == 0 {
		opts.TTL = history.DefaultTTL
	}
	if opts.MaxTurns == 0 {
		opts.MaxTurns = history.DefaultMaxTurns
	}
	if opts.MaxConversationBytes == 0 {
		opts.MaxConversationBytes = history.DefaultMaxConversationBytes
	}
	if opts.MaxSessionsPerPlayer == 0 {
		opts.MaxSessionsPerPlayer = history.DefaultMaxSessionsPerPlayer
	}
	return &Store{c: c, opts: opts}, nil
}

// tagEscaper percent-encodes the characters that would end a hash tag
// early or make two IDs' keys collide.
var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

// ownerKey is the key naming the player who owns session id.
func (s *Store) ownerKey(id string) string {
	return s.opts.Prefix + "s:{" + tagEscaper.Replace(id) + "}"
}

// playerKeys returns the player's sorted set of sessions and the prefix of
// their conversations' keys.
func (s *Store) playerKeys(player string) (sessions, conv string) {
	base := s.opts.Prefix + "{" + tagEscaper.Replace(player) + "}:"
	return base + "sessions", base + "c:"
}

// convKeys returns the keys of conversation id of player.
func (s *Store) convKeys(player, id string) (meta, turns string) {
	_, conv := s.playerKeys(player)
	return conv + id + ":meta", conv + id + ":turns"
}

// ownScript claims or confirms the owner of a session and restarts its
// TTL. KEYS: owner. ARGV: player, ttl (ms). Returns 1, or 0 for another
// owner.
var ownScript = redis.NewScript(`
local p = redis.call('GET', KEYS[1])
if p and p ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// appendScript adds a turn to a player's conversation. KEYS: meta, turns,
// sessions. ARGV: npc, turn, maxTurns, maxBytes, ttl (ms), maxSessions, id,
// conversation key prefix. Returns {1, evicted session IDs...}, {0} for
// another NPC, or {-1} when the turn and summary exceed maxBytes.
var appendScript = redis.NewScript(`
local meta, turns, sessions = KEYS[1], KEYS[2], KEYS[3]
local turn, maxTurns, maxBytes = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl, maxSessions, id, base = ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
local npc = redis.call('HGET', meta, 'npc')
local summary = 0
if npc then
  if npc ~= ARGV[1] then
    return {0}
  end
  summary = redis.call('HSTRLEN', meta, 'summary')
end
if summary + #turn > maxBytes then
  return {-1}
end
if not npc then
  redis.call('DEL', turns)
  redis.call('HSET', meta, 'npc', ARGV[1], 'bytes', 0)
end
redis.call('RPUSH', turns, turn)
local bytes = redis.call('HINCRBY', meta, 'bytes', #turn)
local n = redis.call('LLEN', turns)
while n > maxTurns or bytes + summary > maxBytes do
  local old = redis.call('LPOP', turns)
  bytes = redis.call('HINCRBY', meta, 'bytes', -#old)
  n = n - 1
end
redis.call('PEXPIRE', meta, ttl)
redis.call('PEXPIRE', turns, ttl)
local top = redis.call('ZRANGE', sessions, -1, -1, 'WITHSCORES')
local seq = 1
if top[2] then
  seq = tonumber(top[2]) + 1
end
redis.call('ZADD', sessions, seq, id)
local evicted = {}
local over = redis.call('ZCARD', sessions) - maxSessions
if over > 0 then
  evicted = redis.call('ZRANGE', sessions, 0, over - 1)
  redis.call('ZREMRANGEBYRANK', sessions, 0, over - 1)
  for _, e in ipairs(evicted) do
    redis.call('DEL', base .. e .. ':meta', base .. e .. ':turns')
  end
end
redis.call('PEXPIRE', sessions, ttl)
return {1, unpack(evicted)}
`)

// summaryScript sets the summary of an existing conversation and drops its
// oldest turns to fit. KEYS: meta, turns. ARGV: summary, maxBytes. Returns
// 1, or 0 when the conversation does not exist.
var summaryScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'summary', ARGV[1])
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
while bytes + #ARGV[1] > tonumber(ARGV[2]) do
  local old = redis.call('LPOP', KEYS[2])
  if not old then
    break
  end
  bytes = redis.call('HINCRBY', KEYS[1], 'bytes', -#old)
end
return 1
`)

// deleteScript forgets a player's conversation. KEYS: meta, turns,
// sessions. ARGV: id.
var deleteScript = redis.NewScript(`
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`)

// disownScript deletes an owner key if it still names the player. KEYS:
// owner. ARGV: player.
var disownScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// owner returns the player who owns session id, or history.ErrNotFound.
func (s *Store) owner(ctx context.Context, id string) (string, error) {
	p, err := s.c.Get(ctx, s.ownerKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", history.ErrNotFound
	}
	return p, err
}

// Load implements history.Store.
func (s *Store) Load(ctx context.Context, id string) (history.Conversation, error) {
	player, err := s.owner(ctx, id)
	if errors.Is(err, history.ErrNotFound) {
		return history.Conversation{}, err
	}
	if err != nil {
		return history.Conversation{}, fmt.Errorf("redisstore: load %s: %w", id, err)
	}
	meta, turns := s.convKeys(player, id)
	var h *redis.MapStringStringCmd
	var l *redis.StringSliceCmd
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, meta)
		l = p.LRange(ctx, turns, 0, -1)
		return nil
	})
	if err != nil {
		return history.Conversation{}, fmt.Errorf("redisstore: load %s: %w", id, err)
	}
	m := h.Val()
	if m["npc"] == "" {
		return history.Conversation{}, history.ErrNotFound
	}
	c := history.Conversation{ID: id, Player: player, NPC: m["npc"], Summary: m["summary"]}
	for _, raw := range l.Val() {
		var t history.Turn
		if err := json.Unmarshal([]byte(raw), &t); err != nil {
			return history.Conversation{}, fmt.Errorf("redisstore: corrupt turn in %s: %w", id, err)
		}
		c.Turns = append(c.Turns, t)
	}
	return c, nil
}

// Append implements history.Store. It returns an error matching
// history.ErrInvalidConversation for a conversation without an ID, player or
// NPC, and one matching history.ErrTooLarge for a turn that, with the
// conversation's summary, exceeds MaxConversationBytes.
func (s *Store) Append(ctx context.Context, c history.Conversation, t history.Turn) error {
	if c.ID == "" || c.Player == "" || c.NPC == "" {
		return fmt.Errorf("redisstore: %w", history.ErrInvalidConversation)
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if len(b) > s.opts.MaxConversationBytes {
		return s.tooLarge("turn", len(b))
	}
	ttl := s.opts.TTL.Milliseconds()
	ok, err := ownScript.Run(ctx, s.c, []string{s.ownerKey(c.ID)}, c.Player, ttl).Int()
	if err != nil {
		return fmt.Errorf("redisstore: append %s: %w", c.ID, err)
	}
	if ok == 0 {
		return history.ErrNotOwner
	}
	meta, turns := s.convKeys(c.Player, c.ID)
	sessions, conv := s.playerKeys(c.Player)
	res, err := appendScript.Run(ctx, s.c, []string{meta, turns, sessions},
		c.NPC, b, s.opts.MaxTurns, s.opts.MaxConversationBytes, ttl, s.opts.MaxSessionsPerPlayer, c.ID, conv).Slice()
	if err != nil {
		return fmt.Errorf("redisstore: append %s: %w", c.ID, err)
	}
	switch res[0] {
	case int64(0):
		return history.ErrNotOwner
	case int64(-1):
		return s.tooLarge("turn", len(b))
	}
	if len(res) > 1 {
		// The evicted sessions' data is gone; their owner keys would
		// expire with their TTL, but go now so that a player opening
		// sessions without end holds no more than the cap. Best effort:
		// a key left behind only names a player with no conversation.
		_, _ = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range res[1:] {
				if id, ok := e.(string); ok {
					_ = disownScript.Eval(ctx, p, []string{s.ownerKey(id)}, c.Player) // EVALSHA cannot fall back inside a pipeline
				}
			}
			return nil
		})
	}
	return nil
}

func (s *Store) tooLarge(what string, n int) error {
	return fmt.Errorf("%w: redisstore: a %s of %d bytes does not fit the store's %d bytes per conversation",
		history.ErrTooLarge, what, n, s.opts.MaxConversationBytes)
}

// SetSummary implements history.Store. It drops the oldest turns if need
// be to stay within MaxConversationBytes, and returns an error matching
// history.ErrTooLarge for a summary that cannot fit even alone.
func (s *Store) SetSummary(ctx context.Context, id, summary string) error {
	if len(summary) > s.opts.MaxConversationBytes {
		return s.tooLarge("summary", len(summary))
	}
	player, err := s.owner(ctx, id)
	if errors.Is(err, history.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("redisstore: set summary %s: %w", id, err)
	}
	meta, turns := s.convKeys(player, id)
	n, err := summaryScript.Run(ctx, s.c, []string{meta, turns}, summary, s.opts.MaxConversationBytes).Int()
	if err != nil {
		return fmt.Errorf("redisstore: set summary %s: %w", id, err)
	}
	if n == 0 {
		return history.ErrNotFound
	}
	return nil
}

// Delete implements history.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	player, err := s.owner(ctx, id)
	if errors.Is(err, history.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("redisstore: delete %s: %w", id, err)
	}
	meta, turns := s.convKeys(player, id)
	sessions, _ := s.playerKeys(player)
	if err := deleteScript.Run(ctx, s.c, []string{meta, turns, sessions}, id).Err(); err != nil {
		return fmt.Errorf("redisstore: delete %s: %w", id, err)
	}
	if err := disownScript.Run(ctx, s.c, []string{s.ownerKey(id)}, player).Err(); err != nil {
		return fmt.Errorf("redisstore: delete %s: %w", id, err)
	}
	return nil
}
