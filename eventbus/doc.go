// Package eventbus is the Body Broker SDK's event bus: typed events between
// the packages of one game server, and across the servers of a studio over
// Redis, with history, replay, retries and dead letters.
//
// # Publishing and subscribing
//
//	bus, _ := eventbus.New(eventbus.Options{}) // in-memory transport
//	defer bus.Close()
//	sub, _ := bus.Subscribe(ctx, "world.time.*", func(ctx context.Context, ev eventbus.Event) error {
//		log.Printf("%s: %s", ev.Topic, ev.Payload)
//		return nil
//	}, eventbus.SubscribeOptions{})
//	defer sub.Close()
//	_ = bus.Publish(ctx, "world.time.dawn", eventbus.Event{Payload: []byte(`{"hour":6}`)})
//
// Topics are dot-separated segments ("npc.guard.spawned"). Patterns match
// them exactly, with '*' for one segment ("world.time.*") or with a final
// '>' for one or more segments ("npc.>"). Malformed topics and patterns are
// rejected with a *TopicError; payloads over Options.MaxPayload with a
// *PayloadTooLargeError; and events whose whole envelope (payload, headers,
// key, type, source and topic) is over Options.MaxEventBytes (default
// MaxPayload + 64 KiB) with an *EventTooLargeError, so that no queue or
// history holds an oversized event.
//
// New and Subscribe validate their options once: a negative size or
// duration, an unknown Overflow policy, or a limit set beside the flag that
// disables it is refused with an *OptionError naming the field
// (errors.Is ErrInvalidOptions). Options.Now (nil: time.Now) is the bus's
// clock for event times, IDs, latency and dedup windows; waiting uses the
// standard library's timers, so tests can run inside testing/synctest.
//
// # Typed events
//
// Publish[T] encodes a value as JSON, or as protobuf when T is a
// proto.Message, and Handle[T] decodes it for a typed handler:
//
//	eventbus.Publish(ctx, bus, "world.time.phase", PhaseChanged{Phase: "dusk"})
//	bus.Subscribe(ctx, "world.time.phase", eventbus.Handle(func(ctx context.Context, ev eventbus.Event, p PhaseChanged) error {
//		...
//	}), eventbus.SubscribeOptions{})
//
// A payload that does not decode is not retried: it goes to the dead-letter
// topic with the *DecodeError.
//
// # Delivery
//
// Every subscription has its own bounded queue per worker and its own
// worker goroutine(s); publishers never run handlers. Queues grow as events
// arrive, up to SubscribeOptions.QueueSize, so an idle subscription costs a
// few KiB (BenchmarkIdleSubscriptionMemory reports it). Events with the same
// topic (and key) reach each subscriber in publish order; with
// SubscribeOptions.Concurrency > 1, events are spread over workers by topic
// and Event.Key, so per-key order still holds.
//
// When a queue is full, SubscribeOptions.Overflow decides: Block (the
// default) makes the publisher wait, but at most MaxBlock, after which that
// subscriber is marked lagging and loses events (counted) instead of
// stalling publishers again; DropOldest, DropNewest and KeepLatest (conflate
// by topic and key) never wait. Every dropped event is counted by reason in
// Stats. Block also paces a publisher that outruns a fast subscriber, so
// that only a few events wait in its queue and publish→deliver latency stays
// at a few handler calls; a subscriber busy in a slow handler call is not
// waited for, and the queue takes the burst.
//
// A handler that returns an error is retried with jittered exponential
// backoff (SubscribeOptions.Retry), then its event is published to the
// dead-letter topic ("deadletter." + topic) with the error, attempt count
// and subscription in its headers. A panicking handler is recovered, counted and
// treated as a failure; so is a handler that calls runtime.Goexit (its
// worker goes on in a new goroutine; SubscriptionStats.Goexits counts it).
// Permanent(err) skips the retries.
//
// SubscribeOptions.DedupWindow suppresses events whose ID the subscription
// already handled: with a redelivering transport that gives effectively-once
// handling.
//
// # History and replay
//
// History(ctx, topic, from, limit) returns retained events; SubscribeOptions
// .From replays them to a new subscription before live ones, without gaps or
// duplicates: FromStart(), AfterID(id) or FromTime(t). The in-memory
// transport keeps Options.HistorySize events per topic; Redis Streams keep
// what MAXLEN allows.
//
// # Transports
//
// The zero Options use the in-process transport. Package redisbus has two
// Redis transports on go-redis v9: Streams (durable, at-least-once, consumer
// groups shared by subscription name, XAUTOCLAIM of dead consumers' entries,
// survives Redis restarts) and PubSub (at-most-once, lowest latency).
// Features tells what a transport guarantees; package eventbustest is the
// conformance suite every transport passes.
//
// # Statistics and shutdown
//
// Stats reports per topic and per subscription: published, delivered,
// failed, retried, dead-lettered, dropped by reason, queue depth, and
// publish→deliver latency quantiles; and the transport's connection health,
// including outages. Shutdown drains queues until its ctx ends; Close stops
// at once, also when a Shutdown is under way. Subscription.Close removes
// exactly that subscription.
//
// # Concurrency
//
// A Bus and its Subscriptions are safe for concurrent use. A subscription's
// handler is called from its own worker goroutines only: with the default
// Concurrency of 1 it is never called concurrently with itself, so handlers
// written as serial code need no locks. The ctx a handler gets is cancelled
// when its subscription or the bus closes.
//
// # Performance
//
// Publishing an event with a pre-encoded payload on the in-memory transport
// allocates nothing: the envelope is copied into each subscriber's ring, the
// ID is generated from a clock and a counter, and the worker reads the ring
// without taking a lock (for the Block and DropNewest policies).
package eventbus
