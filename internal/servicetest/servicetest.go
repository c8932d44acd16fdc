// Package servicetest finds the real servers that integration tests talk to
// (Redis, stripe-mock) and decides what a test does when one is missing.
//
// A server's address comes from an environment variable with a loopback
// default. When the server does not answer, the test is skipped with a
// message that says what it needs, or fails when BB_REQUIRE_SERVICES=1 (CI
// sets it, so a missing server can never pass as a skipped test).
//
// Tests share one Redis (and one Redis Cluster) with every other package's
// tests, which run at the same time: use [KeyPrefix] for every key, and never
// flush the database.
package servicetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Environment variables read by this package.
const (
	EnvRequire    = "BB_REQUIRE_SERVICES" // "1": a missing server fails the test
	EnvRedisAddr  = "BB_REDIS_ADDR"       // host:port, default 127.0.0.1:6379
	EnvStripeMock = "BB_STRIPE_MOCK_URL"  // default http://127.0.0.1:12111
	// EnvRedisCluster lists the seed nodes of a Redis Cluster,
	// comma-separated; default 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
	// (what `bash .ci/redis-cluster start` runs).
	EnvRedisCluster = "BB_REDIS_CLUSTER_ADDRS"
)

// Required reports whether missing servers fail tests instead of skipping
// them.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Unavailable skips tb, or fails it when servers are required, saying which
// server is missing, why, and how to provide it.
func Unavailable(tb testing.TB, server string, err error, hint string) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s unavailable and %s=1: %v", server, EnvRequire, err)
	}
	tb.Skipf("%s unavailable (%v); %s", server, err, hint)
}

// RedisAddr returns the Redis address tests use.
func RedisAddr() string {
	if a := os.Getenv(EnvRedisAddr); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Redis returns a client on [RedisAddr] that answered a PING, closed when
// the test ends. It skips or fails tb when Redis does not answer.
func Redis(tb testing.TB) *redis.Client {
	tb.Helper()
	addr := RedisAddr()
	c := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		Unavailable(tb, "Redis at "+addr, err, "start redis-server or set "+EnvRedisAddr)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// RedisClusterAddrs returns the seed nodes of the Redis Cluster tests use.
func RedisClusterAddrs() []string {
	if a := os.Getenv(EnvRedisCluster); a != "" {
		return strings.Split(a, ",")
	}
	return []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
}

// RedisCluster returns a cluster client on [RedisClusterAddrs] whose
// cluster answered CLUSTER INFO with cluster_state:ok on every master,
// closed when the test ends. It skips or fails tb when there is no cluster.
func RedisCluster(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	addrs := RedisClusterAddrs()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		info, err := m.ClusterInfo(ctx).Result()
		if err == nil && !strings.Contains(info, "cluster_state:ok") {
			err = errors.New(m.Options().Addr + " says cluster state is not ok")
		}
		return err
	})
	if err != nil {
		_ = c.Close()
		Unavailable(tb, "Redis Cluster at "+strings.Join(addrs, ","), err,
			"run `bash .ci/redis-cluster start` or set "+EnvRedisCluster)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// KeyPrefix returns a key prefix unique to this test, "bbtest:<area>:<random>:",
// and deletes every key under it when the test ends. On a
// *redis.ClusterClient it scans every master, since each holds its own
// slots.
func KeyPrefix(tb testing.TB, c redis.UniversalClient, area string) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "bbtest:" + area + ":" + hex.EncodeToString(b[:]) + ":"
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if cc, ok := c.(*redis.ClusterClient); ok {
			_ = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
				deleteKeys(ctx, m, p)
				return nil
			})
			return
		}
		deleteKeys(ctx, c, p)
	})
	return p
}

// deleteKeys deletes the keys under prefix on one node. Keys are deleted
// one per command (pipelined) so that keys of different slots never meet
// in one DEL.
func deleteKeys(ctx context.Context, c redis.Cmdable, prefix string) {
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	keys := make([]string, 0, 500)
	flush := func() {
		pipe := c.Pipeline()
		for _, k := range keys {
			pipe.Unlink(ctx, k)
		}
		_, _ = pipe.Exec(ctx)
		keys = keys[:0]
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == cap(keys) {
			flush()
		}
	}
	if len(keys) > 0 {
		flush()
	}
}

// StripeMockURL returns the base URL of stripe-mock.
func StripeMockURL() string {
	if u := os.Getenv(EnvStripeMock); u != "" {
		return u
	}
	return "http://127.0.0.1:12111"
}

// StripeMock returns [StripeMockURL] after checking that stripe-mock
// answers there; it skips or fails tb when it does not.
func StripeMock(tb testing.TB) string {
	tb.Helper()
	base := StripeMockURL()
	c := &http.Client{Timeout: 2 * time.Second}
	req, err := http.NewRequest(http.MethodGet, base+"/v1/coupons", nil)
	if err == nil {
		req.SetBasicAuth("sk_test_123", "")
		var resp *http.Response
		if resp, err = c.Do(req); err == nil {
			_ = resp.Body.Close()
			return base
		}
	}
	Unavailable(tb, "stripe-mock at "+base, err,
		"go install github.com/stripe/stripe-mock@v0.162.0 and run `stripe-mock -http-addr 127.0.0.1:12111 -https-addr 127.0.0.1:12112`, or set "+EnvStripeMock)
	return ""
}

// RedisServer returns the path of the redis-server program, for fault tests
// that start, kill and restart a private server. It skips or fails tb when
// none is on PATH.
func RedisServer(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(tb, "redis-server", err, "install it (Debian: apt-get install redis-server) for the fault tests")
	}
	return path
}

// Espeak returns the path of the espeak-ng program, for audio's local
// speech synthesizer and the tests that decode its clips. It skips or
// fails tb when none is on PATH.
func Espeak(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("espeak-ng")
	if err != nil {
		Unavailable(tb, "espeak-ng", err, "install it (Debian: apt-get install espeak-ng)")
	}
	return path
}
