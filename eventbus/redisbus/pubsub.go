package redisbus

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/internal/backoff"
	"github.com/redis/go-redis/v9"
)

// PubSubOptions configure the Redis pub/sub transport.
type PubSubOptions struct {
	// Prefix starts every channel ("bb:"); topic T is published on
	// Prefix+"c:"+T.
	Prefix string
	// Batch tunes publish pipelining.
	Batch BatchOptions
	// ReconnectMin and ReconnectMax bound the backoff between retries while
	// Redis is unreachable (50ms, 2s), with jitter, and between tries of a
	// Publish that Redis refused with LOADING; see StreamsOptions.
	ReconnectMin, ReconnectMax time.Duration
	// OnError is told about every receive error. When nil, outages and
	// their end are logged to Logger.
	OnError func(error)
	// Logger is used when OnError is nil (nil: slog.Default()).
	Logger *slog.Logger
	// Now is the transport's clock (nil: time.Now); see StreamsOptions.Now.
	Now func() time.Time
}

func (o PubSubOptions) withDefaults() PubSubOptions {
	if o.Prefix == "" {
		o.Prefix = "bb:"
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

// PubSub is the Redis pub/sub transport: fire-and-forget, lowest latency,
// at-most-once. Events published while a subscriber is disconnected, or
// still queued when it closes, are lost; there is no history, replay,
// redelivery or shared subscription (a Name is only a label).
type PubSub struct {
	client redis.UniversalClient
	opts   PubSubOptions
	health *health
	batch  *batcher

	ctx      context.Context
	cancel   context.CancelFunc
	received atomic.Uint64
}

var _ eventbus.Transport = (*PubSub)(nil)

// NewPubSub returns a Redis pub/sub transport on client. It refuses a nil
// client (ErrNilClient) and bad options (*eventbus.OptionError) as
// NewStreams does; once they are valid it starts its publish flushers,
// which Close stops. Closing it does not close client.
func NewPubSub(client redis.UniversalClient, opts PubSubOptions) (*PubSub, error) {
	if err := checkClient(client); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	t := &PubSub{client: client, opts: opts, health: newHealth(opts.Now)}
	t.health.onError, t.health.logger, t.health.name = opts.OnError, opts.Logger, "redis-pubsub"
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.batch = newBatcher(client, opts.Batch, t.health, reconnectPolicy(opts.ReconnectMin, opts.ReconnectMax), opts.Now, func(ctx context.Context, pipe redis.Pipeliner, ev *eventbus.Event, data []byte) {
		// PUBLISH names no key, so a cluster client would spread one
		// topic's events over every node and they would arrive out of
		// order; route each by its channel's slot instead.
		pipe.Publish(ctx, t.channel(ev.Topic), data).SetFirstKeyPos(1)
	})
	return t, nil
}

func (t *PubSub) channel(topic string) string { return t.opts.Prefix + "c:" + topic }

// PubSubFeatures returns the guarantees of the pub/sub transport: none
// beyond reaching other instances. Each call returns a fresh value.
func PubSubFeatures() eventbus.Features {
	return eventbus.Features{Name: "redis-pubsub", CrossInstance: true}
}

// Features implements eventbus.Transport.
func (t *PubSub) Features() eventbus.Features { return PubSubFeatures() }

// Stats implements eventbus.Transport.
func (t *PubSub) Stats() eventbus.TransportStats {
	st := eventbus.TransportStats{
		Name:           "redis-pubsub",
		Published:      t.batch.published.Load(),
		PublishBatches: t.batch.batches.Load(),
		Received:       t.received.Load(),
	}
	t.health.fill(&st)
	return st
}

// Publish implements eventbus.Transport with pipelined PUBLISH commands. A
// nil error means Redis accepted the events, not that anyone received them.
func (t *PubSub) Publish(ctx context.Context, evs []eventbus.Event) error {
	return t.batch.publish(ctx, evs)
}

// History implements eventbus.Transport: pub/sub keeps none.
func (t *PubSub) History(context.Context, string, eventbus.Position, int) ([]eventbus.Event, error) {
	return nil, eventbus.ErrNotSupported
}

// Close implements eventbus.Transport; it leaves the client open.
func (t *PubSub) Close() error {
	t.batch.close()
	t.cancel()
	return nil
}

// glob turns a pattern into a PSUBSCRIBE glob matching a superset of its
// topics; the receiver filters exactly.
func (t *PubSub) glob(p eventbus.Pattern) string {
	var b strings.Builder
	b.WriteString(globEscape(t.opts.Prefix + "c:"))
	for i, seg := range p.Segments() {
		if i > 0 {
			b.WriteByte('.')
		}
		switch seg {
		case "*", ">":
			b.WriteByte('*')
		default:
			b.WriteString(globEscape(seg))
		}
	}
	return b.String()
}

func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Subscribe implements eventbus.Transport with SUBSCRIBE (exact topics) or
// PSUBSCRIBE (patterns). It returns once Redis has confirmed the
// subscription, so events published after it returns are received.
func (t *PubSub) Subscribe(ctx context.Context, req eventbus.SubscribeRequest, sink eventbus.Sink) (eventbus.TransportSubscription, error) {
	if !req.From.IsZero() {
		return nil, eventbus.ErrNotSupported
	}
	pat, err := eventbus.ParsePattern(req.Pattern)
	if err != nil {
		return nil, err
	}
	var ps *redis.PubSub
	if pat.IsLiteral() {
		ps = t.client.Subscribe(ctx, t.channel(req.Pattern))
	} else {
		ps = t.client.PSubscribe(ctx, t.glob(pat))
	}
	// Wait for the confirmation.
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		t.health.fail(err)
		return nil, err
	}
	t.health.ok()
	s := &psSub{t: t, ps: ps, pat: pat, sink: sink, prefix: t.opts.Prefix + "c:"}
	s.ctx, s.cancel = context.WithCancel(t.ctx)
	s.wg.Add(1)
	go s.reader()
	return s, nil
}

type psSub struct {
	t      *PubSub
	ps     *redis.PubSub
	pat    eventbus.Pattern
	sink   eventbus.Sink
	prefix string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Ack implements eventbus.TransportSubscription; pub/sub has nothing to
// acknowledge.
func (s *psSub) Ack(string, string) {}

// Close implements eventbus.TransportSubscription.
func (s *psSub) Close() error {
	s.once.Do(func() {
		s.cancel()
		_ = s.ps.Close()
		s.wg.Wait()
	})
	return nil
}

func (s *psSub) reader() {
	defer s.wg.Done()
	t := s.t
	bo := backoff.New(reconnectPolicy(t.opts.ReconnectMin, t.opts.ReconnectMax))
	for s.ctx.Err() == nil {
		msg, err := s.ps.ReceiveTimeout(s.ctx, time.Second)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			var nerr interface{ Timeout() bool }
			if errors.As(err, &nerr) && nerr.Timeout() {
				continue // idle; the next call pings
			}
			// go-redis reconnects and resubscribes on the next Receive;
			// what was published meanwhile is lost (at-most-once).
			t.health.fail(err)
			if !sleepCtx(s.ctx, bo.Next()) {
				return
			}
			continue
		}
		bo.Reset()
		switch m := msg.(type) {
		case *redis.Subscription, *redis.Pong:
			t.health.ok()
		case *redis.Message:
			t.health.ok()
			ev, pub, err := decode([]byte(m.Payload))
			if err != nil {
				t.health.fail(errors.New("redisbus: dropping malformed message on " + m.Channel))
				continue
			}
			ev.Topic = strings.TrimPrefix(m.Channel, s.prefix)
			if !s.pat.Match(ev.Topic) {
				continue
			}
			t.received.Add(1)
			d := eventbus.Delivery{Event: ev, PublishedAt: pub}
			if err := s.sink.Deliver(s.ctx, &d); err != nil {
				return
			}
		}
	}
}
