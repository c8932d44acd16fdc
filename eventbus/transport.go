package eventbus

import (
	"context"
	"time"
)

// Transport carries events between Bus instances (package redisbus has the
// Redis implementations). A nil Transport in Options selects the in-process
// transport (MemoryFeatures()), which sits behind this same interface; the
// Bus only adds a fast path that hands it stamped events without the
// []Event copy, so that publishing in memory allocates nothing.
//
// The Bus validates topics, patterns and payload sizes and stamps IDs, times
// and sources before calling a Transport; it runs the handlers, retries,
// dead letters, dedup and statistics. A Transport only moves envelopes and
// remembers what was acknowledged.
type Transport interface {
	// Publish hands the events to the transport. It returns nil only once
	// the transport holds them as firmly as its Features promise (for Redis
	// Streams: Redis has acknowledged the XADD). Events may be for different
	// topics; the order within the slice is kept per topic.
	Publish(ctx context.Context, evs []Event) error
	// Subscribe starts receiving events that match req.Pattern and hands
	// them to sink, one at a time and in order per topic.
	Subscribe(ctx context.Context, req SubscribeRequest, sink Sink) (TransportSubscription, error)
	// History returns up to limit retained events of topic at or after
	// from, oldest first (limit ≤ 0: all retained). It returns
	// ErrNotSupported when the transport keeps no history.
	History(ctx context.Context, topic string, from Position, limit int) ([]Event, error)
	// Features says which guarantees the transport offers.
	Features() Features
	// Stats reports the transport's connection health and counters.
	Stats() TransportStats
	// Close releases what the transport started. It must not close clients
	// the caller passed in. The Bus closes its subscriptions first.
	Close() error
}

// SubscribeRequest is what the Bus asks of a Transport for one subscription.
type SubscribeRequest struct {
	// Pattern is a validated pattern (exact, '*' and '>' segments).
	Pattern string
	// Name is the durable, shared subscription name, or "" for a private one.
	Name string
	// From is where to start (zero: only new events).
	From Position
	// Buffer is a hint for how many unacknowledged events the transport
	// should have outstanding (the subscription's total queue capacity).
	Buffer int
}

// Delivery is one received event with what the transport needs to
// acknowledge it.
type Delivery struct {
	Event Event
	// PublishedAt is when the publisher called Publish (for latency stats).
	PublishedAt time.Time
	// Token identifies the delivery to the transport's Ack (a Redis stream
	// entry ID, say). Empty when the transport does not acknowledge.
	Token string
	// Redelivered is true when the transport delivers it again (after a
	// restart or reclaimed from a dead consumer).
	Redelivered bool
}

// Sink is where a Transport puts what it receives: the subscription's queue.
type Sink interface {
	// Deliver queues d under the subscription's overflow policy. With the
	// Block policy it waits for room until ctx ends or the subscription
	// closes. It returns ErrClosed once the subscription is closing; the
	// delivery was then not taken and must not be acknowledged.
	Deliver(ctx context.Context, d *Delivery) error
}

// TransportSubscription is a Transport's side of one subscription.
type TransportSubscription interface {
	// Ack tells the transport that the event with this token is finished:
	// handled, dead-lettered, suppressed as a duplicate or dropped by the
	// overflow policy. It must not block for long.
	Ack(topic, token string)
	// Close stops receiving. Deliveries not yet acknowledged stay with the
	// transport (and are delivered again where Features.Redelivery says so).
	Close() error
}

// Features describe what a transport guarantees. The conformance suite in
// package eventbustest skips checks for guarantees a transport lacks.
type Features struct {
	// Name identifies the transport ("memory", "redis-streams", ...).
	Name string
	// History: History and SubscribeOptions.From work.
	History bool
	// Redelivery: events not acknowledged (a crash, a Close with a backlog)
	// are delivered again; delivery is at-least-once. Without it, delivery
	// is at-most-once.
	Redelivery bool
	// Durable: events survive the publishing process.
	Durable bool
	// SharedSubscriptions: subscriptions with the same Name split events.
	SharedSubscriptions bool
	// CrossInstance: separate Bus instances on the same backend see each
	// other's events.
	CrossInstance bool
	// PublisherBackpressure: the Block overflow policy slows publishers
	// (only in-process; remote transports buffer in the backend instead).
	PublisherBackpressure bool
}

// TransportStats report a transport's health. Outages (a Redis restart,
// say) show as Disconnects, DownSince and Downtime.
type TransportStats struct {
	Name      string
	Connected bool
	// Disconnects counts outages that began; Reconnects those that ended.
	Disconnects uint64
	Reconnects  uint64
	// DownSince is when the current outage began (zero when connected);
	// Downtime adds up all outages, the current one included.
	DownSince time.Time
	Downtime  time.Duration
	// Errors counts failed backend calls; LastError is the latest.
	Errors      uint64
	LastError   string
	LastErrorAt time.Time
	// Published counts events accepted; PublishBatches the round trips
	// that carried them.
	Published      uint64
	PublishBatches uint64
	// Received counts events read from the backend; Redelivered those read
	// again from this consumer's pending list; Reclaimed those taken over
	// from other (dead) consumers.
	Received    uint64
	Redelivered uint64
	Reclaimed   uint64
	// Acked counts acknowledgements that reached the backend.
	Acked uint64
	// Trimmed counts pending entries the backend had already trimmed.
	Trimmed uint64
}
