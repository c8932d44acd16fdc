package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguetest"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/dialogue/redisstore"
	"github.com/bodybroker/sdk/identity"
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

// storeConfig is the suite's configuration on a single node and on a
// cluster.
func storeConfig() dialoguetest.StoreConfig {
	return dialoguetest.StoreConfig{
		MaxTurns:             4,
		TTL:                  time.Minute,
		MaxConversationBytes: 1024,
		MaxSessionsPerPlayer: 8,
		// No Budget: the total is Redis's maxmemory. No Expiry: Redis
		// keeps real time; TestStoreTTL and TestStoreTTLRefreshed check it.
	}
}

func TestStoreConformance(t *testing.T) {
	c := client(t)
	cfg := storeConfig()
	dialoguetest.TestStore(t, cfg, func(t *testing.T) history.Store {
		s, err := redisstore.New(c, redisstore.Options{Prefix: prefix(t, c), MaxTurns: cfg.MaxTurns, TTL: cfg.TTL,
			MaxConversationBytes: cfg.MaxConversationBytes, MaxSessionsPerPlayer: cfg.MaxSessionsPerPlayer})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestStoreTTL(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	conv := history.Conversation{ID: "s1", Player: "p", NPC: "n"}

	// Every key the conversation uses has the TTL. (A long one, so that a
	// loaded machine cannot let it lapse before it is read.)
	p := prefix(t, c)
	s, err := redisstore.New(c, redisstore.Options{Prefix: p, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, conv, history.Turn{Player: "a", NPC: "b"}); err != nil {
		t.Fatal(err)
	}
	keys := scanKeys(t, c, p)
	if len(keys) != 4 {
		t.Errorf("keys under the prefix = %q, want 4 (owner, meta, turns, sessions)", keys)
	}
	for _, k := range keys {
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("PTTL(%s) = %v, want in (0, 1m]", k, ttl)
		}
	}

	// With a short TTL, the conversation and all its keys go.
	p = prefix(t, c)
	s, err = redisstore.New(c, redisstore.Options{Prefix: p, TTL: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, conv, history.Turn{Player: "a", NPC: "b"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second) // bounds a hang only
	for {
		_, err := s.Load(ctx, "s1")
		if errors.Is(err, history.ErrNotFound) && len(scanKeys(t, c, p)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("conversation still there after its TTL: Load = %v, keys %q", err, scanKeys(t, c, p))
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
	if _, err := redisstore.New(c, redisstore.Options{MaxSessionsPerPlayer: -1}); err == nil {
		t.Error("negative MaxSessionsPerPlayer accepted")
	}
	if _, err := redisstore.New(c, redisstore.Options{MaxConversationBytes: -1}); err == nil {
		t.Error("negative MaxConversationBytes accepted")
	}
	s, err := redisstore.New(c, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, conv := range []history.Conversation{{Player: "p", NPC: "n"}, {ID: "s", NPC: "n"}, {ID: "s", Player: "p"}} {
		if err := s.Append(context.Background(), conv, history.Turn{}); !errors.Is(err, history.ErrInvalidConversation) {
			t.Errorf("Append(%+v) = %v, want ErrInvalidConversation", conv, err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	s, err := redisstore.New(c, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(context.Background(), "x"); err == nil || errors.Is(err, history.ErrNotFound) {
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
	r, err := router.New(router.Options{Tiers: []router.Tier{{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}}}})
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
	p1 := identity.NewContext(context.Background(), identity.Identity{Kind: identity.KindPlayer, ID: "p1"})
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
	want := []history.Turn{{Player: "Hello", NPC: "Aye."}, {Player: "Again", NPC: "Aye."}}
	if conv.Player != "p1" || conv.NPC != "mara" || len(conv.Turns) != 2 || conv.Turns[0] != want[0] || conv.Turns[1] != want[1] {
		t.Errorf("stored conversation = %+v", conv)
	}
	p2 := identity.NewContext(context.Background(), identity.Identity{Kind: identity.KindPlayer, ID: "p2"})
	if _, err := svc.Say(p2, &dialoguev1.Utterance{NpcId: "mara", SessionId: sess, Text: "Mine now"}); !errors.Is(err, dialogue.ErrPermissionDenied) {
		t.Errorf("another player's session = %v, want ErrPermissionDenied", err)
	}
}

// scanKeys returns the keys under prefix p, sorted.
func scanKeys(t *testing.T, c redis.UniversalClient, p string) []string {
	t.Helper()
	var keys []string
	iter := c.Scan(context.Background(), 0, p+"*", 100).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// TestStoreTTLRefreshed: each Append restarts the TTL of every key the
// conversation uses, the owner key and the player's session set included.
func TestStoreTTLRefreshed(t *testing.T) {
	c := client(t)
	p := prefix(t, c)
	s, err := redisstore.New(c, redisstore.Options{Prefix: p, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conv := history.Conversation{ID: "s1", Player: "p", NPC: "n"}
	if err := s.Append(ctx, conv, history.Turn{Player: "a", NPC: "b"}); err != nil {
		t.Fatal(err)
	}
	keys := scanKeys(t, c, p)
	for _, k := range keys {
		if err := c.PExpire(ctx, k, 5*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append(ctx, conv, history.Turn{Player: "c", NPC: "d"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 30*time.Second || ttl > time.Minute {
			t.Errorf("PTTL(%s) after Append = %v, want restarted to about 1m", k, ttl)
		}
	}
}

// TestStoreKeyLayout: the keys are those the package documents, and a
// player's keys share one hash tag, so that they live in one Redis
// Cluster slot; braces in IDs cannot break out of the tag.
func TestStoreKeyLayout(t *testing.T) {
	c := client(t)
	p := prefix(t, c)
	s, err := redisstore.New(c, redisstore.Options{Prefix: p, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"s1", "s2"} {
		if err := s.Append(ctx, history.Conversation{ID: id, Player: "p{1}%", NPC: "n"}, history.Turn{Player: "a", NPC: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	tag := "{p%7B1%7D%25}"
	want := []string{
		p + "s:{s1}",
		p + "s:{s2}",
		p + tag + ":c:s1:meta",
		p + tag + ":c:s1:turns",
		p + tag + ":c:s2:meta",
		p + tag + ":c:s2:turns",
		p + tag + ":sessions",
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, scanKeys(t, c, p)); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	for _, k := range want[2:] {
		if got := hashTag(k[len(p):]); got != tag[1:len(tag)-1] {
			t.Errorf("hash tag of %s = %q, want %q", k, got, tag[1:len(tag)-1])
		}
	}
}

// hashTag returns the part of key that Redis Cluster hashes: the text
// between the first '{' and the next '}', when not empty.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

// TestStorePlayerCapConcurrent: a player opening sessions from many
// connections at once still holds at most MaxSessionsPerPlayer, with no
// keys left behind for the sessions that went, and another player's
// conversation stays.
func TestStorePlayerCapConcurrent(t *testing.T) {
	c := client(t)
	p := prefix(t, c)
	const limit = 5
	s, err := redisstore.New(c, redisstore.Options{Prefix: p, TTL: time.Minute, MaxSessionsPerPlayer: limit})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	other := history.Conversation{ID: "other", Player: "quiet", NPC: "n"}
	if err := s.Append(ctx, other, history.Turn{Player: "a", NPC: "b"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				c := history.Conversation{ID: fmt.Sprint("hog-", w, "-", i), Player: "hog", NPC: "n"}
				if err := s.Append(ctx, c, history.Turn{Player: "a", NPC: "b"}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var owners, metas, turns int
	for _, k := range scanKeys(t, c, p) {
		switch {
		case strings.HasPrefix(k, p+"s:{hog-"):
			owners++
		case strings.HasPrefix(k, p+"{hog}:c:") && strings.HasSuffix(k, ":meta"):
			metas++
		case strings.HasPrefix(k, p+"{hog}:c:") && strings.HasSuffix(k, ":turns"):
			turns++
		}
	}
	if owners != limit || metas != limit || turns != limit {
		t.Errorf("hog's keys: %d owner, %d meta, %d turns; want %d each", owners, metas, turns, limit)
	}
	ids := c.ZRange(ctx, p+"{hog}:sessions", 0, -1).Val()
	if len(ids) != limit {
		t.Errorf("hog's session set = %q, want %d sessions", ids, limit)
	}
	for _, id := range ids {
		if _, err := s.Load(ctx, id); err != nil {
			t.Errorf("Load(%s) = %v, want a session in the player's set to load", id, err)
		}
	}
	if _, err := s.Load(ctx, other.ID); err != nil {
		t.Errorf("another player's conversation: Load = %v, want kept", err)
	}
}

// TestStoreOnePlayerBytes: one player opening 50 full conversations
// (~168 KiB of turns each, ~8 MiB in all) leaves at most
// MaxSessionsPerPlayer conversations of at most MaxConversationBytes each
// in Redis, as Redis's MEMORY USAGE counts them.
func TestStoreOnePlayerBytes(t *testing.T) {
	c := client(t)
	p := prefix(t, c)
	s, err := redisstore.New(c, redisstore.Options{Prefix: p, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 50 {
		conv := history.Conversation{ID: fmt.Sprint("s", i), Player: "hog", NPC: "n"}
		for j := range history.DefaultMaxTurns {
			ch := string(rune('a' + j%26))
			if err := s.Append(ctx, conv, history.Turn{Player: strings.Repeat(ch, 2000), NPC: strings.Repeat(ch, 3376)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var used int64
	keys := scanKeys(t, c, p)
	for _, k := range keys {
		used += c.MemoryUsage(ctx, k).Val()
	}
	// The text bound plus a generous 16 KiB per conversation for Redis's
	// own structures.
	bound := int64(history.DefaultMaxSessionsPerPlayer * (history.DefaultMaxConversationBytes + 16<<10))
	if want := 3*history.DefaultMaxSessionsPerPlayer + 1; len(keys) != want || used > bound {
		t.Errorf("after 50 full conversations: %d keys, %d bytes; want %d keys, at most %d bytes", len(keys), used, want, bound)
	}
	t.Logf("one player, 50 full conversations: Redis holds %d keys, %d bytes (%.2f MiB) by MEMORY USAGE", len(keys), used, float64(used)/(1<<20))
}
