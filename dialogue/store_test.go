package dialogue_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	dialoguetest.TestStore(t, dialoguetest.StoreConfig{MaxTurns: 4}, func(t *testing.T) dialogue.Store {
		return dialogue.NewMemoryStore(dialogue.MemoryStoreOptions{MaxTurns: 4, TTL: time.Hour})
	})
}

func TestMemoryStoreTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := dialogue.NewMemoryStore(dialogue.MemoryStoreOptions{TTL: time.Minute})
		c := dialogue.Conversation{ID: "s1", Player: "p", NPC: "n"}
		if err := s.Append(ctx, c, dialogue.Turn{Player: "a", NPC: "b"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Second)
		// Activity restarts the idle timer.
		if err := s.Append(ctx, c, dialogue.Turn{Player: "c", NPC: "d"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Second)
		if got, err := s.Load(ctx, "s1"); err != nil || len(got.Turns) != 2 {
			t.Fatalf("Load at 100s = %d turns, %v; want 2, nil", len(got.Turns), err)
		}
		time.Sleep(11 * time.Second)
		if _, err := s.Load(ctx, "s1"); !errors.Is(err, dialogue.ErrNotFound) {
			t.Fatalf("Load after idle TTL = %v, want ErrNotFound", err)
		}
		if n := s.Len(); n != 0 {
			t.Errorf("Len after expiry = %d, want 0", n)
		}
		// Expired conversations can be claimed afresh.
		other := dialogue.Conversation{ID: "s1", Player: "p2", NPC: "n"}
		if err := s.Append(ctx, other, dialogue.Turn{Player: "x", NPC: "y"}); err != nil {
			t.Errorf("Append to expired session by another player: %v", err)
		}
	})
}

func TestMemoryStoreSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := dialogue.NewMemoryStore(dialogue.MemoryStoreOptions{TTL: time.Second})
		for i := range 1000 {
			c := dialogue.Conversation{ID: "old" + string(rune('a'+i%26)) + time.Duration(i).String(), Player: "p", NPC: "n"}
			if err := s.Append(ctx, c, dialogue.Turn{Player: "a", NPC: "b"}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Second)
		for i := range 24 {
			c := dialogue.Conversation{ID: "new" + time.Duration(i).String(), Player: "p", NPC: "n"}
			if err := s.Append(ctx, c, dialogue.Turn{Player: "a", NPC: "b"}); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.Len(); n != 24 {
			t.Errorf("Len after sweep = %d, want 24", n)
		}
	})
}

// TestMemoryStoreBounded: the store holds at most MaxConversations; past
// that, the least recently active conversation goes first. (Without a
// bound, one player starting sessions at the rate limit filled memory for
// the whole TTL.)
func TestMemoryStoreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := dialogue.NewMemoryStore(dialogue.MemoryStoreOptions{TTL: time.Hour, MaxConversations: 3})
		add := func(id string) {
			t.Helper()
			if err := s.Append(ctx, dialogue.Conversation{ID: id, Player: "p", NPC: "n"}, dialogue.Turn{Player: "a", NPC: "b"}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
		}
		add("s1")
		add("s2")
		add("s3")
		add("s1") // s1 is active again; s2 is now the least recent
		add("s4")
		add("s5")
		if n := s.Len(); n != 3 {
			t.Errorf("Len = %d, want 3", n)
		}
		for id, want := range map[string]bool{"s1": true, "s2": false, "s3": false, "s4": true, "s5": true} {
			_, err := s.Load(ctx, id)
			if got := err == nil; got != want {
				t.Errorf("Load(%s) = %v, want kept %v", id, err, want)
			}
		}
	})
}
