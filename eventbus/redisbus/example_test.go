package redisbus_test

import (
	"context"
	"fmt"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/eventbus/redisbus"
)

// WorldPhase is an example event payload.
type WorldPhase struct {
	Phase string `json:"phase"`
}

// Every game server builds its Bus on Redis Streams. Subscriptions with the
// same Name share one consumer group: each event is handled by one server
// of the group, at least once, and entries a crashed server took are
// reclaimed by the others. The application owns the client and closes it;
// the bus never does.
func ExampleNewStreams() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()

	tr, err := redisbus.NewStreams(rdb, redisbus.StreamsOptions{Prefix: "game:", MaxLen: 100_000})
	if err != nil {
		log.Fatal(err)
	}
	bus, err := eventbus.New(eventbus.Options{Transport: tr})
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	sub, err := bus.Subscribe(ctx, "world.time.*", eventbus.Handle(func(ctx context.Context, ev eventbus.Event, p WorldPhase) error {
		fmt.Println("phase is now", p.Phase)
		return nil // acknowledged (XACK) only after the handler succeeds
	}), eventbus.SubscribeOptions{Name: "audio-director"})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	if err := eventbus.Publish(ctx, bus, "world.time.phase", WorldPhase{Phase: "dusk"}); err != nil {
		log.Fatal(err)
	}
}
