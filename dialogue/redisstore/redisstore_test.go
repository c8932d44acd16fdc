package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguetest"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/redisstore"
	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/scripted"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// client returns a Redis client on BB_REDIS_ADDR, or skips the test.
func client(t *testing.T) redis.UniversalClient { return servicetest.Redis(t) }

// prefix returns a unique key prefix and deletes its keys after the test.
func prefix(t *testing.T, c redis.UniversalClient) string {
	return servicetest.KeyPrefix(t, c, "dialogue")
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

// TestServiceOnRedis: the dialogue service remembers a conversation in
// Redis and keeps it to its owner.
func TestServiceOnRedis(t *testing.T) {
	c := client(t)
	store, err := redisstore.New(c, redisstore.Options{Prefix: prefix(t, c), TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := scripted.New(scripted.Options{Default: []string{"Aye."}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.WithTier(router.Tier{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps, err := dialogue.NewPersonas(dialogue.Persona{ID: "mara", Name: "Mara", SystemPrompt: "A fence.", FallbackLines: []string{"Later."}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := dialogue.New(dialogue.Options{Completer: dialogue.RouterCompleter(r), Personas: ps, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	p1 := dialogue.WithIdentity(context.Background(), dialogue.Identity{Kind: dialogue.KindPlayer, ID: "p1"})
	first, err := svc.Say(p1, &dialoguev1.Utterance{NpcId: "mara", Text: "Hello"})
	if err != nil {
		t.Fatal(err)
	}
	sess := first.GetCompletion().GetSessionId()
	if _, err := svc.Say(p1, &dialoguev1.Utterance{NpcId: "mara", SessionId: sess, Text: "Again"}); err != nil {
		t.Fatal(err)
	}
	conv, err := store.Load(context.Background(), sess)
	if err != nil {
		t.Fatal(err)
	}
	want := []dialogue.Turn{{Player: "Hello", NPC: "Aye."}, {Player: "Again", NPC: "Aye."}}
	if conv.Player != "p1" || conv.NPC != "mara" || len(conv.Turns) != 2 || conv.Turns[0] != want[0] || conv.Turns[1] != want[1] {
		t.Errorf("stored conversation = %+v", conv)
	}
	p2 := dialogue.WithIdentity(context.Background(), dialogue.Identity{Kind: dialogue.KindPlayer, ID: "p2"})
	if _, err := svc.Say(p2, &dialoguev1.Utterance{NpcId: "mara", SessionId: sess, Text: "Mine now"}); !errors.Is(err, dialogue.ErrPermissionDenied) {
		t.Errorf("another player's session = %v, want ErrPermissionDenied", err)
	}
}
