package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/redis/go-redis/v9"
)

// StreamsOptions configure the Redis Streams transport. Zero fields take the
// defaults in parentheses.
type StreamsOptions struct {
	// Prefix starts every key ("bb:"). Topic T lives in the stream
	// Prefix+"s:"+T; the set Prefix+"topics" lists the topics for pattern
	// subscriptions. On Redis Cluster, see the package documentation
	// for the choice between spreading topics and a hash tag ("{bb}:").
	Prefix string
	// MaxLen bounds each stream with XADD MAXLEN ~ (100000): it is the
	// history and replay horizon.
	MaxLen int64
	// Batch tunes publish pipelining.
	Batch BatchOptions
	// ReadCount is the COUNT of each XREADGROUP (256).
	ReadCount int64
	// Block is the BLOCK of each XREADGROUP (500ms); it also bounds how
	// long closing a subscription waits for its reader.
	Block time.Duration
	// Consumer names this instance within consumer groups
	// ("<hostname>-<pid>-<random>"). Give it a stable value to let a
	// restarted instance take back its own pending entries at once.
	Consumer string
	// ClaimInterval (5s) is how often durable subscriptions look for
	// entries that another consumer took and has not acknowledged for
	// ClaimMinIdle (30s), and take them over (XAUTOCLAIM).
	ClaimInterval time.Duration
	ClaimMinIdle  time.Duration
	// DiscoverInterval is how often pattern subscriptions look for new
	// topics (1s). Events published before discovery are not lost: groups
	// on newly found topics start at the beginning of the stream.
	DiscoverInterval time.Duration
	// ClockSkew is how far publishers' clocks may be from Redis's when
	// replaying AfterID or FromTime (5s).
	ClockSkew time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between retries while
	// Redis is unreachable (50ms, 2s). Each wait is random, between
	// ReconnectMin and a ceiling that starts at twice ReconnectMin and
	// doubles up to ReconnectMax, so that the servers of a studio do not
	// reconnect in lockstep. Publish uses the same backoff to retry events
	// Redis refused without executing them (LOADING while a restarted Redis
	// replays its AOF, MASTERDOWN, TRYAGAIN), while its ctx's deadline leaves
	// time (without a deadline, for up to Batch.Timeout).
	ReconnectMin, ReconnectMax time.Duration
	// OnError is told about every error no caller sees (receive, ack,
	// claim). When nil, outages and their end are logged to Logger.
	OnError func(error)
	// Logger is used when OnError is nil (nil: slog.Default()).
	Logger *slog.Logger
	// Now is the transport's clock (nil: time.Now): the publish time
	// carried with each event (publish→deliver latency) and the outage
	// times in Stats. Waiting (backoff, BLOCK) uses the standard library's
	// timers.
	Now func() time.Time
}

func (o StreamsOptions) withDefaults() StreamsOptions {
	if o.Prefix == "" {
		o.Prefix = "bb:"
	}
	if o.MaxLen <= 0 {
		o.MaxLen = 100_000
	}
	if o.ReadCount <= 0 {
		o.ReadCount = 256
	}
	if o.Block <= 0 {
		o.Block = 500 * time.Millisecond
	}
	if o.Consumer == "" {
		o.Consumer = defaultConsumer()
	}
	if o.ClaimInterval <= 0 {
		o.ClaimInterval = 5 * time.Second
	}
	if o.ClaimMinIdle <= 0 {
		o.ClaimMinIdle = 30 * time.Second
	}
	if o.DiscoverInterval <= 0 {
		o.DiscoverInterval = time.Second
	}
	if o.ClockSkew <= 0 {
		o.ClockSkew = 5 * time.Second
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 50 * time.Millisecond
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func defaultConsumer() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "localhost"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", h, os.Getpid(), hex.EncodeToString(b[:]))
}

// Streams is the Redis Streams transport: durable, at-least-once delivery
// through consumer groups. See the package documentation.
//
// Its goroutines, by owner: the transport runs the publish flushers
// (batcher.go) and the acker (ack.go), from NewStreams to Close; each
// subscription runs a reader (consumer.go), a claimer when it is durable
// (claim.go) and a discoverer when its pattern has wildcards (discover.go),
// from Subscribe to its Close or the transport's. Replay positions live in
// replay.go.
type Streams struct {
	client redis.UniversalClient
	opts   StreamsOptions
	health *health
	batch  *batcher
	known  sync.Map // topic → struct{}: already in the topic set
	keys   sync.Map // topic → stream key, so that hot paths build it once

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	acks   chan ackReq
	seq    atomic.Uint64

	received    atomic.Uint64
	redelivered atomic.Uint64
	reclaimed   atomic.Uint64
	acked       atomic.Uint64
	trimmed     atomic.Uint64
}

var _ eventbus.Transport = (*Streams)(nil)

// NewStreams returns a Redis Streams transport on client. It returns
// ErrNilClient without a client, and an *eventbus.OptionError (errors.Is
// eventbus.ErrInvalidOptions) naming the first field it refuses: a negative
// size or duration, or ReconnectMax below ReconnectMin. Once the options
// are valid it starts its publish flushers and acknowledger, which Close
// stops. Closing the transport (or the Bus using it) does not close client.
func NewStreams(client redis.UniversalClient, opts StreamsOptions) (*Streams, error) {
	if err := checkClient(client); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	t := &Streams{client: client, opts: opts, health: newHealth(opts.Now), acks: make(chan ackReq, 8192)}
	t.health.onError, t.health.logger, t.health.name = opts.OnError, opts.Logger, "redis-streams"
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.batch = newBatcher(client, opts.Batch, t.health, reconnectPolicy(opts.ReconnectMin, opts.ReconnectMax), opts.Now, func(ctx context.Context, pipe redis.Pipeliner, ev *eventbus.Event, data []byte) {
		pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: t.streamKey(ev.Topic), MaxLen: t.opts.MaxLen, Approx: true,
			Values: []any{"e", data},
		})
	})
	t.wg.Add(1)
	go t.acker()
	return t, nil
}

// Consumer returns this instance's consumer name.
func (t *Streams) Consumer() string { return t.opts.Consumer }

func (t *Streams) streamKey(topic string) string {
	if k, ok := t.keys.Load(topic); ok {
		return k.(string)
	}
	k := t.opts.Prefix + "s:" + topic
	t.keys.Store(topic, k)
	return k
}

func (t *Streams) topicOf(key string) string { return strings.TrimPrefix(key, t.opts.Prefix+"s:") }

func (t *Streams) registryKey() string { return t.opts.Prefix + "topics" }

// StreamsFeatures returns the guarantees of the Streams transport. Each call
// returns a fresh value: changing it changes nothing else.
func StreamsFeatures() eventbus.Features {
	return eventbus.Features{
		Name: "redis-streams", History: true, Redelivery: true, Durable: true,
		SharedSubscriptions: true, CrossInstance: true,
	}
}

// Features implements eventbus.Transport.
func (t *Streams) Features() eventbus.Features { return StreamsFeatures() }

// Stats implements eventbus.Transport.
func (t *Streams) Stats() eventbus.TransportStats {
	st := eventbus.TransportStats{
		Name:           "redis-streams",
		Published:      t.batch.published.Load(),
		PublishBatches: t.batch.batches.Load(),
		Received:       t.received.Load(),
		Redelivered:    t.redelivered.Load(),
		Reclaimed:      t.reclaimed.Load(),
		Acked:          t.acked.Load(),
		Trimmed:        t.trimmed.Load(),
	}
	t.health.fill(&st)
	return st
}

// Publish implements eventbus.Transport: one pipelined XADD MAXLEN ~ per
// event, batched with concurrent publishes. It returns nil once Redis has
// acknowledged every XADD.
func (t *Streams) Publish(ctx context.Context, evs []eventbus.Event) error {
	if err := t.register(ctx, evs); err != nil {
		return err
	}
	return t.batch.publish(ctx, evs)
}

// register adds topics this process has not published before to the topic
// set that pattern subscriptions discover topics from.
func (t *Streams) register(ctx context.Context, evs []eventbus.Event) error {
	var fresh []any
	for i := range evs {
		if _, ok := t.known.Load(evs[i].Topic); !ok {
			fresh = append(fresh, evs[i].Topic)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	var start time.Time
	var refused error
	for n := 1; ; n++ {
		err := t.client.SAdd(ctx, t.registryKey(), fresh...).Err()
		if err == nil {
			break
		}
		t.health.fail(err)
		if !tryAgain(err) {
			return withRefusal(err, refused)
		}
		refused = err
		if n == 1 {
			start = time.Now()
		}
		if !retryWait(ctx, reconnectPolicy(t.opts.ReconnectMin, t.opts.ReconnectMax), n, start, t.batch.opts.Timeout) {
			return err
		}
	}
	t.health.ok()
	for _, tp := range fresh {
		t.known.Store(tp, struct{}{})
	}
	return nil
}

// Subscribe implements eventbus.Transport with one consumer group per
// subscription: req.Name when given (shared by every instance that uses the
// name), otherwise a private group that is destroyed on Close.
func (t *Streams) Subscribe(ctx context.Context, req eventbus.SubscribeRequest, sink eventbus.Sink) (eventbus.TransportSubscription, error) {
	pat, err := eventbus.ParsePattern(req.Pattern)
	if err != nil {
		return nil, err
	}
	s := &streamSub{t: t, req: req, pat: pat, sink: sink, private: req.Name == "", inflight: make(map[ackKey]struct{})}
	s.group = req.Name
	if s.private {
		s.group = fmt.Sprintf("bb.private.%s.%d", t.opts.Consumer, t.seq.Add(1))
	}
	s.ctx, s.cancel = context.WithCancel(t.ctx)
	var topics []string
	if pat.IsLiteral() {
		topics = []string{req.Pattern}
	} else {
		all, err := t.client.SMembers(ctx, t.registryKey()).Result()
		if err != nil {
			t.health.fail(err)
			s.cancel()
			return nil, err
		}
		for _, tp := range all {
			if pat.Match(tp) {
				topics = append(topics, tp)
			}
		}
	}
	for _, tp := range topics {
		key := t.streamKey(tp)
		start, err := t.startID(ctx, key, req.From)
		if err == nil {
			err = s.ensureGroup(ctx, key, start)
		}
		if err != nil {
			s.cancel()
			s.destroyGroups()
			return nil, err
		}
		s.keys = append(s.keys, key)
	}
	s.wg.Add(1)
	go s.reader()
	if !s.private {
		s.wg.Add(1)
		go s.claimer()
	}
	if !pat.IsLiteral() {
		s.wg.Add(1)
		go s.discoverer()
	}
	return s, nil
}

// Close implements eventbus.Transport. It stops every subscription's
// receiver, flushes acknowledgements and pending publishes, and leaves the
// client open.
func (t *Streams) Close() error {
	t.batch.close()
	t.cancel()
	t.wg.Wait()
	return nil
}
