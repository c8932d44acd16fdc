// Package redisclips implements [audio.ClipStore] on Redis with go-redis
// v9, so that every server of a fleet can serve every clip.
//
// It accepts any redis.UniversalClient and never closes it. A clip is one
// hash under Options.Prefix (default "bb:audio:") + "clip:" + ID, with
// fields t (content type), d (duration in ns) and b (bytes), and a TTL.
// Clips are content-addressed, so a Put of a clip that exists only
// refreshes its TTL (one Lua script, one key: atomic, and Cluster-safe).
// Bound the store's memory with the TTL, MaxBytes per clip, and Redis's
// own maxmemory policy (allkeys-lru suits a cache of clips).
package redisclips

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key when Options.Prefix is empty.
const DefaultPrefix = "bb:audio:"

// Options configures a Store. The zero value is valid.
type Options struct {
	Prefix string
	// TTL of a clip since its last Put; 0 means 24 h.
	TTL time.Duration
	// MaxBytes bounds one clip; 0 means 16 MiB. Larger clips give
	// audio.ErrClipTooLarge.
	MaxBytes int
}

// Store is an audio.ClipStore on Redis, safe for concurrent use by many
// goroutines and processes. It holds no goroutines and needs no closing.
type Store struct {
	rdb  redis.UniversalClient
	opts Options
}

var _ audio.ClipStore = (*Store)(nil)

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, opts Options) (*Store, error) {
	if rdb == nil || opts.TTL < 0 || opts.MaxBytes < 0 {
		return nil, fmt.Errorf("redisclips: a client and non-negative limits are required: %w", audio.ErrInvalidValue)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.TTL == 0 {
		opts.TTL = 24 * time.Hour
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 16 << 20
	}
	return &Store{rdb: rdb, opts: opts}, nil
}

func (s *Store) key(id string) string { return s.opts.Prefix + "clip:" + id }

// putClip stores the clip unless it exists; either way it (re)sets the
// TTL. Returns 1 when it stored the clip.
var putClip = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
	redis.call('PEXPIRE', KEYS[1], ARGV[4])
	return 0
end
redis.call('HSET', KEYS[1], 't', ARGV[1], 'd', ARGV[2], 'b', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// Put implements audio.ClipStore.
func (s *Store) Put(ctx context.Context, c audio.Clip) (audio.Clip, error) {
	if len(c.Data) > s.opts.MaxBytes {
		return audio.Clip{}, fmt.Errorf("%w: %d bytes, limit %d", audio.ErrClipTooLarge, len(c.Data), s.opts.MaxBytes)
	}
	c.ID = audio.ClipID(c.ContentType, c.Data)
	err := putClip.Run(ctx, s.rdb, []string{s.key(c.ID)},
		c.ContentType, int64(c.Duration), c.Data, s.opts.TTL.Milliseconds()).Err()
	if err != nil {
		return audio.Clip{}, fmt.Errorf("redisclips: put %s: %w", c.ID, err)
	}
	return c, nil
}

// Get implements audio.ClipStore.
func (s *Store) Get(ctx context.Context, id string) (audio.Clip, error) {
	v, err := s.rdb.HMGet(ctx, s.key(id), "t", "d", "b").Result()
	if err != nil {
		return audio.Clip{}, fmt.Errorf("redisclips: get %s: %w", id, err)
	}
	t, ok1 := v[0].(string)
	d, ok2 := v[1].(string)
	b, ok3 := v[2].(string)
	if !ok1 || !ok2 || !ok3 {
		return audio.Clip{}, fmt.Errorf("%w: %q", audio.ErrClipNotFound, id)
	}
	dur, err := strconv.ParseInt(d, 10, 64)
	if err != nil {
		return audio.Clip{}, errors.Join(fmt.Errorf("redisclips: clip %s has a bad duration", id), err)
	}
	return audio.Clip{ID: id, ContentType: t, Duration: time.Duration(dur), Data: []byte(b)}, nil
}
