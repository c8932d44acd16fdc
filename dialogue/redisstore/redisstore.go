// Package redisstore is a [dialogue.Store] on Redis (go-redis v9), so that
// conversation memory survives restarts and is shared by every instance of
// the dialogue service.
//
// # Layout
//
// A conversation is two keys sharing a hash tag, so they live in one
// cluster slot: "<prefix>{<id>}:meta", a hash of the owner (player, npc) and
// the summary, and "<prefix>{<id>}:turns", a list of JSON turns, oldest
// first. Append runs as one Lua script: it checks the owner, pushes the
// turn, trims the list to MaxTurns and restarts both keys' TTL, atomically.
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
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bodybroker/sdk/dialogue"
)

// Options configures a Store. The zero value means the defaults.
type Options struct {
	// Prefix starts every key; "" means "bb:dialogue:".
	Prefix string
	// TTL is how long an idle conversation is kept; 0 means
	// dialogue.DefaultTTL.
	TTL time.Duration
	// MaxTurns bounds the turns kept; 0 means dialogue.DefaultMaxTurns.
	MaxTurns int
}

// Store is a dialogue.Store on Redis.
type Store struct {
	c    redis.UniversalClient
	opts Options
}

var _ dialogue.Store = (*Store)(nil)

// New returns a Store using c, which the caller keeps and closes.
func New(c redis.UniversalClient, opts Options) (*Store, error) {
	if c == nil {
		return nil, errors.New("redisstore: nil client")
	}
	if opts.TTL < 0 || opts.MaxTurns < 0 {
		return nil, errors.New("redisstore: negative TTL or MaxTurns")
	}
	if opts.TTL > 0 && opts.TTL < time.Millisecond {
		return nil, errors.New("redisstore: TTL below a millisecond")
	}
	if opts.Prefix == "" {
		opts.Prefix = "bb:dialogue:"
	}
	if opts.TTL == 0 {
		opts.TTL = dialogue.DefaultTTL
	}
	if opts.MaxTurns == 0 {
		opts.MaxTurns = dialogue.DefaultMaxTurns
	}
	return &Store{c: c, opts: opts}, nil
}

func (s *Store) keys(id string) (meta, turns string) {
	base := s.opts.Prefix + "{" + id + "}:"
	return base + "meta", base + "turns"
}

var appendScript = redis.NewScript(`
local p = redis.call('HGET', KEYS[1], 'player')
if p then
  if p ~= ARGV[1] or redis.call('HGET', KEYS[1], 'npc') ~= ARGV[2] then
    return 0
  end
else
  redis.call('HSET', KEYS[1], 'player', ARGV[1], 'npc', ARGV[2])
end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
`)

var summaryScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'summary', ARGV[1])
return 1
`)

// Load implements dialogue.Store.
func (s *Store) Load(ctx context.Context, id string) (dialogue.Conversation, error) {
	meta, turns := s.keys(id)
	var h *redis.MapStringStringCmd
	var l *redis.StringSliceCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, meta)
		l = p.LRange(ctx, turns, 0, -1)
		return nil
	})
	if err != nil {
		return dialogue.Conversation{}, fmt.Errorf("redisstore: load %s: %w", id, err)
	}
	m := h.Val()
	if m["player"] == "" {
		return dialogue.Conversation{}, dialogue.ErrNotFound
	}
	c := dialogue.Conversation{ID: id, Player: m["player"], NPC: m["npc"], Summary: m["summary"]}
	for _, raw := range l.Val() {
		var t dialogue.Turn
		if err := json.Unmarshal([]byte(raw), &t); err != nil {
			return dialogue.Conversation{}, fmt.Errorf("redisstore: corrupt turn in %s: %w", id, err)
		}
		c.Turns = append(c.Turns, t)
	}
	return c, nil
}

// Append implements dialogue.Store.
func (s *Store) Append(ctx context.Context, c dialogue.Conversation, t dialogue.Turn) error {
	if c.Player == "" || c.NPC == "" {
		return errors.New("redisstore: a conversation needs a player and an NPC")
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	meta, turns := s.keys(c.ID)
	n, err := appendScript.Run(ctx, s.c, []string{meta, turns},
		c.Player, c.NPC, b, s.opts.MaxTurns, s.opts.TTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redisstore: append %s: %w", c.ID, err)
	}
	if n == 0 {
		return dialogue.ErrNotOwner
	}
	return nil
}

// SetSummary implements dialogue.Store.
func (s *Store) SetSummary(ctx context.Context, id, summary string) error {
	meta, _ := s.keys(id)
	n, err := summaryScript.Run(ctx, s.c, []string{meta}, summary).Int()
	if err != nil {
		return fmt.Errorf("redisstore: set summary %s: %w", id, err)
	}
	if n == 0 {
		return dialogue.ErrNotFound
	}
	return nil
}

// Delete implements dialogue.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	meta, turns := s.keys(id)
	if err := s.c.Del(ctx, meta, turns).Err(); err != nil {
		return fmt.Errorf("redisstore: delete %s: %w", id, err)
	}
	return nil
}
