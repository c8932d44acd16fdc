// Package redisbus carries eventbus events between game servers over Redis,
// with go-redis v9. It accepts any redis.UniversalClient (client, cluster,
// failover) and never closes it: whoever creates the client closes it.
//
// # Usage
//
//	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	defer client.Close()
//	tr, err := redisbus.NewStreams(client, redisbus.StreamsOptions{Prefix: "studio:"})
//	if err != nil { // a nil client or a bad option: nothing was started
//		return err
//	}
//	bus, _ := eventbus.New(eventbus.Options{Transport: tr})
//	defer bus.Close() // closes tr, never client
//
// # Streams: durable, at-least-once
//
// NewStreams stores topic T in the stream Prefix+"s:"+T, bounded by
// XADD MAXLEN ~ StreamsOptions.MaxLen, which is also the history and replay
// horizon (Bus.History, SubscribeOptions.From).
//
// Each subscription is a consumer group. A subscription with a Name uses the
// group of that name: every instance that subscribes with the name shares
// its events (each event goes to one of them), and the group outlives the
// process, so a restarted instance continues from the last acknowledged
// entry. A subscription without a Name gets a private group that sees every
// event published while it is open and is destroyed on Close (a process that
// crashes leaves its private groups behind; they hold no data, only a
// position).
//
// An entry is acknowledged (XACK, batched) only after the handler succeeded,
// the event was dead-lettered, suppressed as a duplicate, or dropped by the
// subscription's overflow policy. Entries a crashed or closed instance left
// unacknowledged are read again from its own pending list when it
// subscribes again, and taken over by other instances of the group after
// StreamsOptions.ClaimMinIdle (XAUTOCLAIM). Delivery is therefore
// at-least-once; SubscribeOptions.DedupWindow makes handling effectively
// once per instance.
//
// Publishes are pipelined: concurrent Publish calls, and the events of one
// PublishBatch, share round trips (see BatchOptions). Reads use XREADGROUP
// with COUNT StreamsOptions.ReadCount and BLOCK StreamsOptions.Block, over
// all the streams a pattern matches. Pattern subscriptions find new topics in
// the set Prefix+"topics" every DiscoverInterval.
//
// When Redis is unreachable (a restart, a failover) every loop retries with
// jittered backoff between ReconnectMin and ReconnectMax, so that the
// servers of a studio do not reconnect in lockstep; after any error a
// reader first re-reads its pending entries, since an outage can lose
// replies. A Publish that Redis refuses without executing it (LOADING while
// a restarted Redis replays its AOF, MASTERDOWN, TRYAGAIN) is tried again
// with the same backoff while its ctx's deadline leaves time (without a
// deadline, for up to BatchOptions.Timeout); a batch of which Redis
// executed part is not resent, so nothing is duplicated or reordered.
// Publish returns an error for events Redis did not acknowledge: with AOF
// (appendfsync always or everysec) every event whose Publish returned nil
// survives a restart of Redis. Stats().Transport shows outages
// (Disconnects, DownSince, Downtime) and counts redeliveries, reclaims,
// acknowledgements and entries trimmed before they were handled.
//
// # PubSub: at-most-once, lowest latency
//
// NewPubSub publishes topic T on the channel Prefix+"c:"+T (pipelined
// PUBLISH) and subscribes with SUBSCRIBE or, for patterns, PSUBSCRIBE
// filtered exactly. Redis pub/sub keeps nothing: events published while a
// subscriber is disconnected, or still queued when it closes, are lost, and
// there is no history, replay, redelivery or shared subscription. Use it for
// fire-and-forget events where the newest value matters (audio cues,
// indicators).
//
// # Redis Cluster
//
// Both transports run on a Redis Cluster through a *redis.ClusterClient
// (tested on three masters). The keys, with P the prefix and T a topic:
//
//	Ps:T       stream of topic T (XADD MAXLEN ~); its consumer groups live in it
//	Ptopics    set of the topics published, read by pattern subscriptions
//	Pc:T       pub/sub channel of topic T (not a key)
//
// With a prefix without hash tag (the default "bb:"), each topic's stream
// hashes to its own slot, so topics spread over the masters and throughput
// grows with them. Every command names one key, except XREADGROUP of a
// subscription that reads several topics (a pattern): on a cluster the
// transport splits that read by slot and reads the parts in turn, blocking
// at most StreamsOptions.Block per pass when nothing arrives. A prefix with
// a hash tag ("{studio}:") puts every key of the bus in one slot, so one
// XREADGROUP reads all the topics of a pattern, at the cost of serving the
// whole bus from one master.
//
// PUBLISH names no key; the transport routes each topic's publishes to the
// master of its channel's slot, so a topic keeps its order, and Redis
// forwards every message to every node (classic, not sharded, pub/sub), so
// SUBSCRIBE and PSUBSCRIBE work on whichever node the client picks.
//
// # Wire format
//
// An event travels as one binary envelope (the stream field "e", or the
// pub/sub message): a version byte (1), the 16-byte ID, the event time and
// the publish time as zig-zag varint Unix nanoseconds, then topic, type,
// source and key as uvarint-length-prefixed strings, a uvarint header count
// with length-prefixed key/value pairs, and the length-prefixed payload.
package redisbus
