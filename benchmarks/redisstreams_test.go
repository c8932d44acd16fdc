package benchmarks

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/eventbus/redisbus"
	"github.com/bodybroker/sdk/internal/servicetest"
)

// redisEvents is how many events one Redis Streams run moves
// (BB_BENCH_EVENTS, default 20000).
var redisEvents = func() int {
	if v, err := strconv.Atoi(os.Getenv("BB_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	return 20_000
}()

// streamsPipe is one contender on Redis Streams: publish sends n events the
// way the run's mode says, handled counts handler calls, and streamKey is
// the Redis stream the consumer group reads, whose pending count tells
// when every event has been acknowledged.
type streamsPipe struct {
	publishBatch func(ctx context.Context, payloads [][]byte) error
	publishOne   func(ctx context.Context, payload []byte) error
	handled      *atomic.Int64
	streamKey    string
}

type streamsContender struct {
	name  string
	setup func(b *testing.B, prefix string) streamsPipe
}

func streamsContenders() []streamsContender {
	return []streamsContender{
		{"eventbus", func(b *testing.B, prefix string) streamsPipe {
			c := redis.NewClient(&redis.Options{Addr: servicetest.RedisAddr()})
			b.Cleanup(func() { _ = c.Close() })
			opts := redisbus.StreamsOptions{Prefix: prefix, MaxLen: 1_000_000}
			pubTr, err := redisbus.NewStreams(c, opts)
			if err != nil {
				b.Fatal(err)
			}
			pub, err := eventbus.New(eventbus.Options{Transport: pubTr})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = pub.Close() })
			conTr, err := redisbus.NewStreams(c, opts)
			if err != nil {
				b.Fatal(err)
			}
			con, err := eventbus.New(eventbus.Options{Transport: conTr})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = con.Close() })
			handled := new(atomic.Int64)
			if _, err := con.Subscribe(context.Background(), "bench.t", func(ctx context.Context, ev eventbus.Event) error {
				handled.Add(1)
				return nil
			}, eventbus.SubscribeOptions{Name: "bench"}); err != nil {
				b.Fatal(err)
			}
			evs := make([]eventbus.Event, 0, 256)
			return streamsPipe{
				publishBatch: func(ctx context.Context, ps [][]byte) error {
					evs = evs[:0]
					for _, p := range ps {
						evs = append(evs, eventbus.Event{Topic: "bench.t", Payload: p})
					}
					return pub.PublishBatch(ctx, evs)
				},
				publishOne: func(ctx context.Context, p []byte) error {
					return pub.Publish(ctx, "bench.t", eventbus.Event{Payload: p})
				},
				handled:   handled,
				streamKey: prefix + "s:bench.t",
			}
		}},
		{"watermill-redisstream", func(b *testing.B, prefix string) streamsPipe {
			// The Subscriber closes the client it is given, so each side
			// gets its own.
			pc := redis.NewClient(&redis.Options{Addr: servicetest.RedisAddr()})
			b.Cleanup(func() { _ = pc.Close() })
			sc := redis.NewClient(&redis.Options{Addr: servicetest.RedisAddr()})
			pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: pc}, watermill.NopLogger{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = pub.Close() })
			sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{Client: sc, ConsumerGroup: "bench"}, watermill.NopLogger{})
			if err != nil {
				b.Fatal(err)
			}
			topic := prefix + "wm.bench.t"
			ctx, cancel := context.WithCancel(context.Background())
			msgs, err := sub.Subscribe(ctx, topic)
			if err != nil {
				b.Fatal(err)
			}
			handled := new(atomic.Int64)
			var wg sync.WaitGroup
			wg.Go(func() {
				for m := range msgs {
					handled.Add(1)
					m.Ack()
				}
			})
			b.Cleanup(func() { cancel(); _ = sub.Close(); wg.Wait() })
			return streamsPipe{
				publishBatch: func(ctx context.Context, ps [][]byte) error {
					ms := make([]*message.Message, len(ps))
					for i, p := range ps {
						ms[i] = message.NewMessage(watermill.NewUUID(), p)
					}
					return pub.Publish(topic, ms...)
				},
				publishOne: func(ctx context.Context, p []byte) error {
					return pub.Publish(topic, message.NewMessage(watermill.NewUUID(), p))
				},
				handled:   handled,
				streamKey: topic,
			}
		}},
	}
}

// BenchmarkRedisStreams moves events end to end through Redis Streams with
// eventbus (eventbus/redisbus) and with watermill-redisstream, on the same
// Redis, in one run: one publisher → one consumer group, every event
// handled and acknowledged (XACK); 100-byte payloads; default options on
// both sides except eventbus's MaxLen (watermill trims nothing by default).
//
//	BB_REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench RedisStreams -benchtime 1x -count 5 . | tee streams.txt
//
// publish=batch256 sends batches of 256 from one goroutine (eventbus:
// PublishBatch, one pipelined round trip; watermill: Publish(topic, msgs...),
// which sends them one XADD at a time). publish=64goroutines has 64
// goroutines each publishing single events. events/s counts from the first
// publish until Redis holds no pending (unacknowledged) entry for the
// group after all events were handled. The whole run is one b.Loop
// iteration (its ns/op is the whole run): use -benchtime 1x
// (BB_BENCH_EVENTS sets the event count).
// Skips without Redis.
func BenchmarkRedisStreams(b *testing.B) {
	servicetest.Redis(b) // skip (or fail in CI) before anything else
	for _, mode := range []string{"batch256", "64goroutines"} {
		for _, c := range streamsContenders() {
			b.Run("impl="+c.name+"/publish="+mode, func(b *testing.B) {
				check := servicetest.Redis(b)
				prefix := servicetest.KeyPrefix(b, check, "benchmarks")
				p := c.setup(b, prefix)
				n := redisEvents
				payload := make([]byte, payloadSize)
				for i := range payload {
					payload[i] = 'a' + byte(i%26)
				}
				ctx := context.Background()
				t0 := time.Now()
				for b.Loop() {
					if mode == "batch256" {
						publishBatches(b, ctx, p, n, payload)
					} else {
						publishConcurrent(b, ctx, p, n, payload)
					}
				}
				waitAcked(b, check, p, int64(n))
				el := time.Since(t0)
				b.ReportMetric(float64(n)/el.Seconds(), "events/s")
			})
		}
	}
}

func publishBatches(b *testing.B, ctx context.Context, p streamsPipe, n int, payload []byte) {
	batch := make([][]byte, 0, 256)
	for i := range n {
		batch = append(batch, payload)
		if len(batch) == cap(batch) || i == n-1 {
			if err := p.publishBatch(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

func publishConcurrent(b *testing.B, ctx context.Context, p streamsPipe, n int, payload []byte) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 64 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := p.publishOne(ctx, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// waitAcked waits until n events were handled and the stream's consumer
// groups hold no pending entry: every event acknowledged in Redis. The
// deadline only bounds a hang.
func waitAcked(b *testing.B, c *redis.Client, p streamsPipe, n int64) {
	deadline := time.Now().Add(5 * time.Minute)
	for p.handled.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("handled %d of %d", p.handled.Load(), n)
		}
		time.Sleep(200 * time.Microsecond)
	}
	for {
		groups, err := c.XInfoGroups(context.Background(), p.streamKey).Result()
		if err != nil {
			b.Fatal(err)
		}
		var pending int64
		for _, g := range groups {
			pending += g.Pending
		}
		if len(groups) > 0 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d entries still pending", pending)
		}
		time.Sleep(200 * time.Microsecond)
	}
	if got := p.handled.Load(); got != n {
		b.Fatalf("handled %d events, want %d", got, n)
	}
}
