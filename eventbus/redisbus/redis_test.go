package redisbus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/eventbus/eventbustest"
	"github.com/bodybroker/sdk/eventbus/redisbus"
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

// redisAddr returns BB_REDIS_ADDR (default 127.0.0.1:6379). When nothing
// answers there the test is skipped, or fails if BB_REQUIRE_SERVICES=1 (CI).
func redisAddr(t testing.TB) string {
	addr := os.Getenv("BB_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		if os.Getenv("BB_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Redis at %s (BB_REDIS_ADDR) unreachable and BB_REQUIRE_SERVICES=1: %v", addr, err)
		}
		t.Skipf("Redis at %s (BB_REDIS_ADDR) unreachable: %v", addr, err)
	}
	return addr
}

// testClient returns a client on BB_REDIS_ADDR and a key prefix unique to
// the test; keys under it are deleted afterwards.
func testClient(t testing.TB) (*redis.Client, string) {
	addr := redisAddr(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at %s: %v", addr, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "bbtest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
		_ = c.Close()
	})
	return c, prefix
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
		Features: redisbus.StreamsFeatures,
		Backend: func(t *testing.T) eventbustest.Opener {
			c, prefix := testClient(t)
			return func(opts eventbus.Options) *eventbus.Bus {
				opts.Transport = redisbus.NewStreams(c, fastStreams(prefix))
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
		Features: redisbus.PubSubFeatures,
		Backend: func(t *testing.T) eventbustest.Opener {
			c, prefix := testClient(t)
			return func(opts eventbus.Options) *eventbus.Bus {
				opts.Transport = redisbus.NewPubSub(c, redisbus.PubSubOptions{Prefix: prefix})
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
	redisAddr(t)
	eventbustest.Run(t, streamsHarness())
}

func TestPubSubConformance(t *testing.T) {
	redisAddr(t)
	eventbustest.Run(t, pubsubHarness())
}
