package eventbus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/eventbus/redisbus"
	"github.com/redis/go-redis/v9"
)

func Example() {
	ctx := context.Background()
	bus, _ := eventbus.New(eventbus.Options{}) // in-memory
	defer bus.Close()

	done := make(chan struct{})
	sub, _ := bus.Subscribe(ctx, "world.time.*", func(ctx context.Context, ev eventbus.Event) error {
		fmt.Printf("%s %s\n", ev.Topic, ev.Payload)
		if ev.Topic == "world.time.dusk" {
			close(done)
		}
		return nil
	}, eventbus.SubscribeOptions{})
	defer sub.Close()

	_ = bus.Publish(ctx, "world.time.dawn", eventbus.Event{Payload: []byte(`{"hour":6}`)})
	_ = bus.Publish(ctx, "world.weather.rain", eventbus.Event{Payload: []byte(`{}`)}) // not matched
	_ = bus.Publish(ctx, "world.time.dusk", eventbus.Event{Payload: []byte(`{"hour":19}`)})
	<-done
	// Output:
	// world.time.dawn {"hour":6}
	// world.time.dusk {"hour":19}
}

// SettingsChanged is a typed event.
type SettingsChanged struct {
	Player string `json:"player"`
	Volume int    `json:"volume"`
}

func ExampleHandle() {
	ctx := context.Background()
	bus, _ := eventbus.New(eventbus.Options{})
	defer bus.Close()

	done := make(chan struct{})
	_, _ = bus.Subscribe(ctx, "settings.changed", eventbus.Handle(func(ctx context.Context, ev eventbus.Event, s SettingsChanged) error {
		fmt.Printf("%s (%s, key %s): volume %d\n", ev.Type, ev.Topic, ev.Key, s.Volume)
		close(done)
		return nil
	}), eventbus.SubscribeOptions{})

	_ = eventbus.Publish(ctx, bus, "settings.changed", SettingsChanged{Player: "p1", Volume: 7}, eventbus.WithKey("p1"))
	<-done
	// Output:
	// eventbus_test.SettingsChanged (settings.changed, key p1): volume 7
}

func ExampleBus_History() {
	ctx := context.Background()
	bus, _ := eventbus.New(eventbus.Options{HistorySize: 100})
	defer bus.Close()

	var ids []eventbus.ID
	for _, phase := range []string{"dawn", "noon", "dusk", "night"} {
		ev := eventbus.Event{ID: eventbus.NewID(), Payload: []byte(phase)}
		ids = append(ids, ev.ID)
		_ = bus.Publish(ctx, "world.time.phase", ev)
	}

	// Everything after "noon":
	evs, _ := bus.History(ctx, "world.time.phase", eventbus.AfterID(ids[1]), 0)
	for _, ev := range evs {
		fmt.Println(string(ev.Payload))
	}

	// A late subscriber replays from the start, then gets live events.
	done := make(chan struct{})
	n := 0
	_, _ = bus.Subscribe(ctx, "world.time.phase", func(ctx context.Context, ev eventbus.Event) error {
		n++
		if n == 5 {
			fmt.Println("replayed 4, then live:", string(ev.Payload))
			close(done)
		}
		return nil
	}, eventbus.SubscribeOptions{From: eventbus.FromStart()})
	_ = bus.Publish(ctx, "world.time.phase", eventbus.Event{Payload: []byte("dawn")})
	<-done
	// Output:
	// dusk
	// night
	// replayed 4, then live: dawn
}

func ExampleSubscribeOptions_deadLetter() {
	ctx := context.Background()
	bus, _ := eventbus.New(eventbus.Options{})
	defer bus.Close()

	done := make(chan struct{})
	_, _ = bus.Subscribe(ctx, "deadletter.>", func(ctx context.Context, ev eventbus.Event) error {
		fmt.Println(ev.Topic, "after", ev.Header(eventbus.HeaderDeadLetterAttempts), "attempts:", ev.Header(eventbus.HeaderDeadLetterError))
		close(done)
		return nil
	}, eventbus.SubscribeOptions{})
	_, _ = bus.Subscribe(ctx, "audio.cue", func(ctx context.Context, ev eventbus.Event) error {
		return fmt.Errorf("no such cue %q", ev.Payload)
	}, eventbus.SubscribeOptions{Retry: eventbus.Retry{MaxAttempts: 3, Initial: time.Millisecond}})

	_ = bus.Publish(ctx, "audio.cue", eventbus.Event{Payload: []byte("thunder")})
	<-done
	// Output:
	// deadletter.audio.cue after 3 attempts: no such cue "thunder"
}

// Running several game servers: each one builds its Bus on the same Redis.
// Subscriptions with a Name are consumer groups shared by every server that
// uses the name; private ones (no Name) see every event.
func Example_redis() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close() // the bus never closes it

	tr, err := redisbus.NewStreams(client, redisbus.StreamsOptions{
		Prefix: "studio:",
		MaxLen: 1_000_000, // history horizon per topic (XADD MAXLEN ~)
	})
	if err != nil {
		panic(err)
	}
	bus, err := eventbus.New(eventbus.Options{Transport: tr})
	if err != nil {
		panic(err)
	}
	defer bus.Close()

	ctx := context.Background()
	// One handler per entitlement change across all servers, each event
	// handled once even if Redis redelivers it.
	_, _ = bus.Subscribe(ctx, "entitlement.>", func(ctx context.Context, ev eventbus.Event) error {
		return nil
	}, eventbus.SubscribeOptions{Name: "entitlement-sync", DedupWindow: 10 * time.Minute})

	_ = eventbus.Publish(ctx, bus, "entitlement.granted", map[string]string{"player": "p1", "sku": "dlc-1"})

	// Fire-and-forget cues go over Redis pub/sub instead (at-most-once).
	ps, err := redisbus.NewPubSub(client, redisbus.PubSubOptions{Prefix: "studio:"})
	if err != nil {
		panic(err)
	}
	cues, _ := eventbus.New(eventbus.Options{Transport: ps})
	defer cues.Close()
}
