package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguetest"
	"github.com/bodybroker/sdk/dialogue/redisstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// client connects to BB_REDIS_ADDR (default 127.0.0.1:6379), skipping the
// test when Redis is unreachable unless BB_REQUIRE_SERVICES=1.
func client(t *testing.T) redis.UniversalClient {
	t.Helper()
	addr := os.Getenv("BB_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		if os.Getenv("BB_REQUIRE_SERVICES") == "1" {
			t.Fatalf("redis at %s unreachable: %v", addr, err)
		}
		t.Skipf("redis at %s unreachable (set BB_REQUIRE_SERVICES=1 to fail): %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// prefix returns a unique key prefix and deletes its keys after the test.
func prefix(t *testing.T, c redis.UniversalClient) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "bbtest:dialogue:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, p+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return p
}

func TestStoreConformance(t *testing.T) {
	c := client(t)
	dialoguetest.TestStore(t, dialoguetest.StoreConfig{MaxTurns: 4}, func(t *testing.T) dialogue.Store {
		s, err := redisstore.New(c, redisstore.Options{Prefix: prefix(t, c), MaxTurns: 4, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestStoreTTL(t *testing.T) {
	c := client(t)
	p := prefix(t, c)
	s, err := redisstore.New(c, redisstore.Options{Prefix: p, TTL: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conv := dialogue.Conversation{ID: "s1", Player: "p", NPC: "n"}
	if err := s.Append(ctx, conv, dialogue.Turn{Player: "a", NPC: "b"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{p + "{s1}:meta", p + "{s1}:turns"} {
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 150*time.Millisecond {
			t.Errorf("PTTL(%s) = %v, want in (0, 150ms]", k, ttl)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := s.Load(ctx, "s1")
		if errors.Is(err, dialogue.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("conversation still there after its TTL: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := redisstore.New(nil, redisstore.Options{}); err == nil {
		t.Error("nil client accepted")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := redisstore.New(c, redisstore.Options{TTL: -1}); err == nil {
		t.Error("negative TTL accepted")
	}
}

func TestUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	s, err := redisstore.New(c, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(context.Background(), "x"); err == nil || errors.Is(err, dialogue.ErrNotFound) {
		t.Errorf("Load on a dead server = %v, want a connection error", err)
	}
}
