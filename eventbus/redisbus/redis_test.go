package redisbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/eventbus/eventbustest"
	"github.com/bodybroker/sdk/eventbus/redisbus"
	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	// The fault test makes go-redis log every refused dial; keep the output
	// readable.
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m)
}

// testClient returns a client on BB_REDIS_ADDR and a key prefix unique to
// the test; keys under it are deleted afterwards.
func testClient(t testing.TB) (*redis.Client, string) {
	c := servicetest.Redis(t)
	return c, servicetest.KeyPrefix(t, c, "eventbus")
}

// mustStreams returns a Streams transport, failing tb if the options are
// refused.
func mustStreams(tb testing.TB, c redis.UniversalClient, opts redisbus.StreamsOptions) *redisbus.Streams {
	tb.Helper()
	tr, err := redisbus.NewStreams(c, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

// mustPubSub returns a PubSub transport, failing tb if the options are
// refused.
func mustPubSub(tb testing.TB, c redis.UniversalClient, opts redisbus.PubSubOptions) *redisbus.PubSub {
	tb.Helper()
	tr, err := redisbus.NewPubSub(c, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

func fastStreams(prefix string) redisbus.StreamsOptions {
	return redisbus.StreamsOptions{
		Prefix: prefix, Block: 100 * time.Millisecond, DiscoverInterval: 50 * time.Millisecond,
		ClaimInterval: 100 * time.Millisecond, ClaimMinIdle: time.Second,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
	}
}

func streamsHarness() eventbustest.Harness {
	return eventbustest.Harness{
		Features: redisbus.StreamsFeatures(),
		Backend: func(t *testing.T) eventbustest.Opener {
			c, prefix := testClient(t)
			return func(opts eventbus.Options) *eventbus.Bus {
				opts.Transport = mustStreams(t, c, fastStreams(prefix))
				b, err := eventbus.New(opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close() })
				return b
			}
		},
	}
}

func pubsubHarness() eventbustest.Harness {
	return eventbustest.Harness{
		Features: redisbus.PubSubFeatures(),
		Backend: func(t *testing.T) eventbustest.Opener {
			c, prefix := testClient(t)
			return func(opts eventbus.Options) *eventbus.Bus {
				opts.Transport = mustPubSub(t, c, redisbus.PubSubOptions{Prefix: prefix})
				b, err := eventbus.New(opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close() })
				return b
			}
		},
	}
}

func TestStreamsConformance(t *testing.T) {
	servicetest.Redis(t) // skip (or fail in CI) before building the harness
	eventbustest.Run(t, streamsHarness())
}

func TestPubSubConformance(t *testing.T) {
	servicetest.Redis(t) // skip (or fail in CI) before building the harness
	eventbustest.Run(t, pubsubHarness())
}
