package redisclips_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/audio/audiotest"
	"github.com/bodybroker/sdk/audio/redisclips"
	"github.com/bodybroker/sdk/internal/servicetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t *testing.T, opts redisclips.Options) *redisclips.Store {
	rdb := servicetest.Redis(t)
	opts.Prefix = servicetest.KeyPrefix(t, rdb, "audio")
	s, err := redisclips.New(rdb, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	audiotest.TestClipStore(t, func(t *testing.T) audio.ClipStore { return newStore(t, redisclips.Options{}) })
}

func TestTTLAndLimits(t *testing.T) {
	rdb := servicetest.Redis(t)
	prefix := servicetest.KeyPrefix(t, rdb, "audio")
	s, err := redisclips.New(rdb, redisclips.Options{Prefix: prefix, TTL: time.Hour, MaxBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := s.Put(ctx, audio.Clip{ContentType: "audio/wav", Data: audio.EncodeWAV(8000, 1, make([]int16, 100))})
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.PTTL(ctx, prefix+"clip:"+c.ID).Result()
	if err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("TTL = %v, %v; want (0, 1h]", ttl, err)
	}
	if _, err := s.Put(ctx, audio.Clip{Data: make([]byte, 1001)}); !errors.Is(err, audio.ErrClipTooLarge) {
		t.Errorf("oversize: %v", err)
	}
	if _, err := redisclips.New(nil, redisclips.Options{}); !errors.Is(err, audio.ErrInvalidValue) {
		t.Errorf("nil client: %v", err)
	}
}
