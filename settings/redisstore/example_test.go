package redisstore_test

import (
	"context"
	"fmt"

	"github.com/bodybroker/sdk/settings"
	"github.com/bodybroker/sdk/settings/redisstore"
	"github.com/redis/go-redis/v9"
)

// Settings in Redis, shared by every game server: two devices editing
// different keys from the same view both land. (This example needs a
// Redis server, so it is compiled but not run; TestConformance runs the
// same calls.)
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close() // the store never closes the client

	store, _ := redisstore.New(rdb, redisstore.Options{})
	m, _ := settings.New(settings.Options{Store: store})
	defer m.Close()
	ctx := context.Background()

	view, _ := m.Get(ctx, "player-1", settings.Target{})
	_, _ = m.Set(ctx, "player-1", []settings.Change{{Key: "gameplay.subtitles", Value: false, IfRev: view.Rev("gameplay.subtitles")}})
	_, _ = m.Set(ctx, "player-1", []settings.Change{{Key: "controls.invert_y", Value: true, IfRev: view.Rev("controls.invert_y")}})

	r, _ := m.Get(ctx, "player-1", settings.Target{})
	subtitles, _ := r.Value("gameplay.subtitles")
	invert, _ := r.Value("controls.invert_y")
	fmt.Println(subtitles, invert)
}
