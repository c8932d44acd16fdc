package eventbus

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/bodybroker/sdk/internal/backoff"
)

// Defaults used where Options and SubscribeOptions fields are zero.
const (
	DefaultMaxPayload       = 1 << 20  // 1 MiB
	DefaultMaxMetadata      = 64 << 10 // 64 KiB: room for headers, key, type, source and topic over MaxPayload
	DefaultHistorySize      = 4096     // events kept per topic by the in-memory transport
	DefaultQueueSize        = 1024     // per subscription worker
	DefaultMaxBlock         = 250 * time.Millisecond
	DefaultDeadLetterPrefix = "deadletter."
	DefaultMaxAttempts      = 3
	DefaultDedupMax         = 100_000
)

// Options configure a Bus. The zero value is a ready in-memory bus.
type Options struct {
	// Transport carries events between Bus instances. Nil selects the
	// in-process transport: per-subscriber ring buffers fed directly by
	// Publish, with per-topic history kept in memory.
	Transport Transport
	// Source is stamped on events published without one. Default:
	// "<hostname>/<pid>".
	Source string
	// MaxPayload is the largest payload Publish accepts, in bytes
	// (0: DefaultMaxPayload); a larger one is refused with a
	// *PayloadTooLargeError. NoPayloadLimit lifts this limit and the default
	// MaxEventBytes (an explicit MaxEventBytes still applies).
	MaxPayload     int
	NoPayloadLimit bool
	// MaxEventBytes is the largest event Publish accepts, in bytes, counting
	// everything a publisher can make large: len(Payload) + len(Topic) +
	// len(Type) + len(Source) (Options.Source when the event has none) +
	// len(Key) + the length of every header key and value. ID and Time
	// (fixed size) and the transport's framing do not count. A larger event
	// is refused with an *EventTooLargeError, so that no subscriber queue or
	// history holds it. 0 means MaxPayload + DefaultMaxMetadata (1 MiB +
	// 64 KiB with the defaults), or no limit with NoPayloadLimit.
	MaxEventBytes int
	// HistorySize is how many events per topic the in-memory transport keeps
	// for History and replay (0: DefaultHistorySize). DisableHistory keeps
	// none: History then returns ErrNotSupported. Remote transports keep
	// their own history (see redisbus). The history holds the events'
	// payloads, and every topic has its own: with many topics (one per
	// player, say) or large payloads, lower HistorySize or disable it.
	HistorySize    int
	DisableHistory bool
	// DeadLetterPrefix is prepended to a topic to name its dead-letter topic.
	// Default "deadletter.".
	DeadLetterPrefix string
	// TopicLatency also records publish→deliver latency per topic
	// (TopicStats.Latency), at the cost of a second histogram update per
	// delivery (about 22 KiB per topic). Per-subscription and bus-wide
	// latency are always recorded.
	TopicLatency bool
	// OnError, when set, is told about errors that have no caller to return
	// to: handler failures on dead letters, dead-letter publishes that
	// failed. When nil they are logged to Logger.
	OnError func(error)
	// Logger receives those errors when OnError is nil (nil: slog.Default()).
	Logger *slog.Logger
	// Now is the bus's clock (nil: time.Now). It stamps events' Time and
	// IDs and measures publish→deliver latency and dedup windows. Waiting
	// (MaxBlock, retry backoff) uses the standard library's timers, so
	// tests run inside testing/synctest see a fake clock.
	Now func() time.Time
}

// validate reports the first field New refuses, as an *OptionError. Zero
// fields mean the defaults; negative sizes are errors.
func (o Options) validate() error {
	if err := cmp.Or(
		nonNegative("Options.MaxPayload", o.MaxPayload),
		nonNegative("Options.MaxEventBytes", o.MaxEventBytes),
		nonNegative("Options.HistorySize", o.HistorySize),
	); err != nil {
		return err
	}
	if o.NoPayloadLimit && o.MaxPayload > 0 {
		return &OptionError{Field: "Options.MaxPayload", Value: o.MaxPayload, Reason: "set together with NoPayloadLimit"}
	}
	if o.DisableHistory && o.HistorySize > 0 {
		return &OptionError{Field: "Options.HistorySize", Value: o.HistorySize, Reason: "set together with DisableHistory"}
	}
	return nil
}

// nonNegative returns an *OptionError for a field below zero (0 means its
// default), or nil.
func nonNegative[T int | float64 | time.Duration](field string, v T) error {
	if v < 0 {
		return &OptionError{Field: field, Value: v, Reason: "must not be negative (0 means the default)"}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Source == "" {
		h, _ := os.Hostname()
		if h == "" {
			h = "localhost"
		}
		o.Source = fmt.Sprintf("%s/%d", h, os.Getpid())
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.NoPayloadLimit {
		o.MaxPayload = 0
	}
	if o.MaxEventBytes <= 0 && o.MaxPayload > 0 {
		o.MaxEventBytes = o.MaxPayload + DefaultMaxMetadata
	}
	if o.HistorySize <= 0 {
		o.HistorySize = DefaultHistorySize
	}
	if o.DisableHistory {
		o.HistorySize = 0
	}
	if o.DeadLetterPrefix == "" {
		o.DeadLetterPrefix = DefaultDeadLetterPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Overflow says what happens when a subscriber's queue is full.
type Overflow uint8

const (
	// Block makes the publisher wait for room — bounded by the publisher's
	// ctx and by SubscribeOptions.MaxBlock. When MaxBlock runs out the event
	// is dropped for this subscriber (Drops.Timeout) and the subscriber is
	// marked lagging: until its queue drains below half, further events it
	// has no room for are dropped at once (Drops.Lagging) instead of stalling
	// the publisher again. So one stuck subscriber costs publishers at most
	// one MaxBlock, never an indefinite stall. This is the default.
	//
	// Block also paces a publisher that outruns a fast subscriber: once more
	// than a few events (8) are queued for a worker, Publish waits for the
	// worker to catch up before it returns, so publish→deliver latency stays
	// at a few handler calls instead of a full queue's worth. A worker that
	// takes nothing for 100µs (a slow handler call) is not waited for: the
	// rest of QueueSize takes the burst.
	//
	// On remote transports the bus's receiver waits instead of the
	// publisher, without a time limit: the transport keeps the backlog and
	// nothing is dropped.
	Block Overflow = iota
	// DropOldest evicts the oldest queued event to make room (Drops.Oldest).
	DropOldest
	// DropNewest refuses the incoming event (Drops.Newest).
	DropNewest
	// KeepLatest conflates by topic and key: the incoming event replaces the
	// queued event with the same topic and Key (Drops.Superseded); with no
	// such event, the oldest queued event is evicted (Drops.Oldest).
	KeepLatest
)

func (o Overflow) String() string {
	switch o {
	case Block:
		return "block"
	case DropOldest:
		return "drop-oldest"
	case DropNewest:
		return "drop-newest"
	case KeepLatest:
		return "keep-latest"
	}
	return fmt.Sprintf("Overflow(%d)", uint8(o))
}

// Retry configures how a failing handler is retried before its event is
// dead-lettered. Retries happen in the subscription's worker, so later
// events with the same topic and key wait: ordering is kept.
type Retry struct {
	// MaxAttempts is the total number of handler calls per event, first one
	// included. 0 means DefaultMaxAttempts; 1 means no retries.
	MaxAttempts int
	// Initial (default 10ms), Multiplier (default 2) and Max (default 1s)
	// shape the backoff, which is jittered so that subscribers that fail
	// together (a database blip) do not retry in lockstep: the wait after
	// failed attempt n is random, uniform in
	// [Initial, min(Max, Initial × Multiplier^n)). The first wait is thus
	// between Initial and Multiplier × Initial; with Max = Initial every
	// wait is Initial.
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.Initial <= 0 {
		r.Initial = 10 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = time.Second
	}
	if r.Max < r.Initial {
		r.Max = r.Initial
	}
	if r.Multiplier < 1 {
		r.Multiplier = 2
	}
	return r
}

// backoff returns the jittered wait after failed attempt n ≥ 1 (see Retry).
func (r Retry) backoff(n int) time.Duration {
	// Ceiling n+1 is Initial × Multiplier^n.
	return backoff.Policy{Min: r.Initial, Initial: r.Initial, Max: r.Max, Multiplier: r.Multiplier}.Delay(n + 1)
}

// SubscribeOptions configure one subscription. The zero value is a private
// subscription with one worker, a DefaultQueueSize queue with the Block
// policy, three attempts per event and no dedup.
type SubscribeOptions struct {
	// Name makes the subscription durable and shared on transports that
	// support it (Redis Streams: the consumer group's name). Instances that
	// subscribe with the same Name split the events between them; different
	// names each get every event. Empty means a private subscription that
	// sees every event published while it is open.
	Name string
	// From replays retained events before live ones: FromStart, AfterID or
	// FromTime. Zero means live events only. On a durable subscription that
	// already exists in the transport, it continues where it left off and
	// From is ignored.
	From Position
	// QueueSize bounds each worker's queue (default DefaultQueueSize). The
	// queue's storage is allocated as events arrive: it starts at 8 events
	// and doubles, up to QueueSize, when it fills; it is not shrunk. An
	// idle subscription costs about 3.5 KiB (most of it its worker's
	// goroutine stack), so per-player subscriptions are affordable; a busy
	// one up to QueueSize × about 180 bytes per worker, plus the events'
	// payloads.
	QueueSize int
	// Overflow is the policy when the queue is full (default Block).
	Overflow Overflow
	// MaxBlock bounds how long the Block policy lets a publisher wait
	// (0: DefaultMaxBlock). BlockUntilCanceled removes the bound: only the
	// publisher's ctx limits the wait, so nothing is ever dropped, and a
	// stuck subscriber can stall its publishers.
	MaxBlock           time.Duration
	BlockUntilCanceled bool
	// Concurrency is the number of workers calling the handler (default 1).
	// Events are spread over workers by topic and key, so events with the
	// same topic and key stay in order.
	Concurrency int
	// Retry configures retries of failing handlers.
	Retry Retry
	// DeadLetterTopic overrides where failed events go
	// (default Options.DeadLetterPrefix + the event's topic).
	DeadLetterTopic string
	// DedupWindow, when positive, suppresses events whose ID this
	// subscription already handled within the window (effectively-once
	// handling over an at-least-once transport). The memory is per
	// subscription and per process: instances sharing a Name each remember
	// what they handled. DedupMax bounds the IDs remembered per worker
	// (default DefaultDedupMax).
	DedupWindow time.Duration
	DedupMax    int
}

// validate reports the first field Subscribe refuses, as an *OptionError.
func (o SubscribeOptions) validate() error {
	if o.Overflow > KeepLatest {
		return &OptionError{Field: "SubscribeOptions.Overflow", Value: o.Overflow, Reason: "unknown overflow policy"}
	}
	return cmp.Or(
		nonNegative("SubscribeOptions.QueueSize", o.QueueSize),
		nonNegative("SubscribeOptions.MaxBlock", o.MaxBlock),
		nonNegative("SubscribeOptions.Concurrency", o.Concurrency),
		nonNegative("SubscribeOptions.DedupWindow", o.DedupWindow),
		nonNegative("SubscribeOptions.DedupMax", o.DedupMax),
		nonNegative("SubscribeOptions.Retry.MaxAttempts", o.Retry.MaxAttempts),
		nonNegative("SubscribeOptions.Retry.Initial", o.Retry.Initial),
		nonNegative("SubscribeOptions.Retry.Max", o.Retry.Max),
		nonNegative("SubscribeOptions.Retry.Multiplier", o.Retry.Multiplier),
	)
}

func (o SubscribeOptions) withDefaults() SubscribeOptions {
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxBlock <= 0 {
		o.MaxBlock = DefaultMaxBlock
	}
	if o.BlockUntilCanceled {
		o.MaxBlock = 0
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	o.Retry = o.Retry.withDefaults()
	if o.DedupWindow > 0 && o.DedupMax <= 0 {
		o.DedupMax = DefaultDedupMax
	}
	return o
}
