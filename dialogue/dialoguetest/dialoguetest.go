// Package dialoguetest checks implementations of dialogue's seams against
// their contracts, like testing/fstest does for file systems.
package dialoguetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bodybroker/sdk/dialogue"
)

// StoreConfig describes the store under test.
type StoreConfig struct {
	// MaxTurns is the store's configured bound on turns per conversation.
	MaxTurns int
}

// TestStore runs the [dialogue.Store] conformance suite. newStore returns a
// fresh store configured with cfg.MaxTurns and a TTL of at least a minute;
// it should register any cleanup with t.Cleanup. Session IDs are random, so
// stores backed by shared servers can run the suite concurrently.
func TestStore(t *testing.T, cfg StoreConfig, newStore func(t *testing.T) dialogue.Store) {
	t.Helper()
	ctx := context.Background()
	id := func() string {
		var b [8]byte
		_, _ = rand.Read(b[:])
		return "dt-" + hex.EncodeToString(b[:])
	}

	t.Run("LoadMissing", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Load(ctx, id())
		if !errors.Is(err, dialogue.ErrNotFound) {
			t.Fatalf("Load(missing) = %v, want ErrNotFound", err)
		}
	})

	t.Run("AppendLoad", func(t *testing.T) {
		s := newStore(t)
		c := dialogue.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		turns := []dialogue.Turn{{Player: "Hello", NPC: "Well met."}, {Player: "Ünïcödé ✓", NPC: "Aye\nmultiline"}}
		for _, tn := range turns {
			if err := s.Append(ctx, c, tn); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		got, err := s.Load(ctx, c.ID)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		want := dialogue.Conversation{ID: c.ID, Player: "p1", NPC: "npc1", Turns: turns}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Load mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("BoundedTurns", func(t *testing.T) {
		s := newStore(t)
		c := dialogue.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		n := cfg.MaxTurns + 3
		for i := range n {
			if err := s.Append(ctx, c, dialogue.Turn{Player: fmt.Sprint("q", i), NPC: fmt.Sprint("a", i)}); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		got, err := s.Load(ctx, c.ID)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if len(got.Turns) != cfg.MaxTurns {
			t.Fatalf("kept %d turns, want %d", len(got.Turns), cfg.MaxTurns)
		}
		if first, want := got.Turns[0].Player, fmt.Sprint("q", n-cfg.MaxTurns); first != want {
			t.Errorf("oldest kept turn = %q, want %q", first, want)
		}
		if last, want := got.Turns[len(got.Turns)-1].NPC, fmt.Sprint("a", n-1); last != want {
			t.Errorf("newest turn = %q, want %q", last, want)
		}
	})

	t.Run("Ownership", func(t *testing.T) {
		s := newStore(t)
		c := dialogue.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		if err := s.Append(ctx, c, dialogue.Turn{Player: "a", NPC: "b"}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		for _, other := range []dialogue.Conversation{
			{ID: c.ID, Player: "p2", NPC: "npc1"},
			{ID: c.ID, Player: "p1", NPC: "npc2"},
		} {
			if err := s.Append(ctx, other, dialogue.Turn{Player: "x", NPC: "y"}); !errors.Is(err, dialogue.ErrNotOwner) {
				t.Errorf("Append as %s/%s = %v, want ErrNotOwner", other.Player, other.NPC, err)
			}
		}
		got, err := s.Load(ctx, c.ID)
		if err != nil || len(got.Turns) != 1 {
			t.Errorf("after refused appends: %d turns, err %v; want 1, nil", len(got.Turns), err)
		}
	})

	t.Run("Summary", func(t *testing.T) {
		s := newStore(t)
		if err := s.SetSummary(ctx, id(), "x"); !errors.Is(err, dialogue.ErrNotFound) {
			t.Errorf("SetSummary(missing) = %v, want ErrNotFound", err)
		}
		c := dialogue.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		if err := s.Append(ctx, c, dialogue.Turn{Player: "a", NPC: "b"}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if err := s.SetSummary(ctx, c.ID, "They met at the docks."); err != nil {
			t.Fatalf("SetSummary: %v", err)
		}
		got, err := s.Load(ctx, c.ID)
		if err != nil || got.Summary != "They met at the docks." {
			t.Errorf("Load after SetSummary = %q, %v", got.Summary, err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		c := dialogue.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		if err := s.Append(ctx, c, dialogue.Turn{Player: "a", NPC: "b"}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if err := s.Delete(ctx, c.ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := s.Delete(ctx, c.ID); err != nil {
			t.Fatalf("Delete(missing): %v", err)
		}
		if _, err := s.Load(ctx, c.ID); !errors.Is(err, dialogue.ErrNotFound) {
			t.Errorf("Load after Delete = %v, want ErrNotFound", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		c := dialogue.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		const workers, each = 8, 5
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					if err := s.Append(ctx, c, dialogue.Turn{Player: fmt.Sprint(w, i), NPC: "ok"}); err != nil {
						errs <- err
					}
					if _, err := s.Load(ctx, c.ID); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent: %v", err)
		}
		got, err := s.Load(ctx, c.ID)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if want := min(workers*each, cfg.MaxTurns); len(got.Turns) != want {
			t.Errorf("after concurrent appends: %d turns, want %d", len(got.Turns), want)
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Load(cctx, id()); err == nil {
			t.Errorf("Load with cancelled context succeeded")
		}
	})
}
