package redisstore_test

import (
	"errors"
	"testing"

	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/bodybroker/sdk/settings"
	"github.com/bodybroker/sdk/settings/redisstore"
	"github.com/bodybroker/sdk/settings/settingstest"
)

func TestConformance(t *testing.T) {
	rdb := servicetest.Redis(t)
	settingstest.TestStore(t, func(t *testing.T) settings.Store {
		s, err := redisstore.New(rdb, redisstore.Options{Prefix: servicetest.KeyPrefix(t, rdb, "settings")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestManagerOnRedis(t *testing.T) {
	rdb := servicetest.Redis(t)
	s, _ := redisstore.New(rdb, redisstore.Options{Prefix: servicetest.KeyPrefix(t, rdb, "settings")})
	m, err := settings.New(settings.Options{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := t.Context()
	if _, err := m.Set(ctx, "p1", []settings.Change{{Key: "audio.music", Value: 0.25}}); err != nil {
		t.Fatal(err)
	}
	r, err := m.Get(ctx, "p1", settings.Target{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Value("audio.music"); v != 0.25 {
		t.Errorf("audio.music %v, want 0.25", v)
	}
	if _, err := s.Load(ctx, ""); !errors.Is(err, redisstore.ErrBadPlayer) {
		t.Errorf("empty player: %v", err)
	}
	if _, err := redisstore.New(nil, redisstore.Options{}); !errors.Is(err, settings.ErrInvalidOptions) {
		t.Errorf("nil client: %v", err)
	}
}
