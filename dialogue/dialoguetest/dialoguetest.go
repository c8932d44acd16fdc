// Package dialoguetest checks implementations of dialogue's seams against
// their contracts, like testing/fstest does for file systems.
package dialoguetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/google/go-cmp/cmp"
)

// StoreConfig describes the store under test: the bounds newStore
// configures it with, and what it can do.
type StoreConfig struct {
	// MaxTurns is the store's configured bound on turns per conversation.
	MaxTurns int
	// MaxConversationBytes is the store's bound on the bytes one
	// conversation keeps; the suite checks that the oldest turns go first
	// and that a turn too large even alone is refused with an error
	// matching [history.ErrTooLarge]. 0 skips those checks.
	MaxConversationBytes int
	// MaxSessionsPerPlayer is the store's cap on one player's
	// conversations; the suite checks that a player past it loses their
	// own least recently active conversation, and nobody else's. 0 skips
	// that check.
	MaxSessionsPerPlayer int
	// TTL is the store's idle TTL, checked when Features.Expiry is set.
	TTL time.Duration
	// MaxBytes is the store's total byte budget, checked when
	// Features.Budget is set.
	MaxBytes int64
	// Bytes, if set, returns the bytes s holds as counted against
	// MaxBytes; the Budget check then also asserts the bound after every
	// write.
	Bytes func(s history.Store) int64
	// Features says which optional behaviours to check.
	Features Features
}

// Features are optional behaviours of a store, for [StoreConfig]; checks
// that need one the store lacks are skipped by name.
type Features struct {
	// Expiry: conversations idle for StoreConfig.TTL are gone, and each
	// Append restarts that timer. The suite checks it inside a
	// testing/synctest bubble, calling newStore there, so the store must
	// keep time with time.Now and do no I/O outside the bubble (the
	// in-memory store). A store on a server checks expiry in its own tests.
	Expiry bool
	// Budget: the store holds at most StoreConfig.MaxBytes in all and,
	// when full, evicts from the player holding the most, so that a player
	// opening sessions without end cannot evict another player's
	// conversation. A store that leaves the total to its server (Redis
	// maxmemory) has no such budget.
	Budget bool
}

// AllFeatures returns Features with every feature set.
func AllFeatures() Features { return Features{Expiry: true, Budget: true} }

// TestStore runs the [history.Store] conformance suite. newStore returns a
// fresh store configured as cfg says (with a TTL of at least a minute
// unless cfg.Features.Expiry is set); it should register any cleanup with
// t.Cleanup. Session and player IDs are random, so stores backed by shared
// servers can run the suite concurrently. The suite is a table of named
// checks, run in order as subtests; cfg.Features drives the optional ones.
func TestStore(t *testing.T, cfg StoreConfig, newStore func(t *testing.T) history.Store) {
	t.Helper()
	ctx := context.Background()
	id := func() string {
		var b [8]byte
		_, _ = rand.Read(b[:])
		return "dt-" + hex.EncodeToString(b[:])
	}

	type check struct {
		name string
		need func(Features) bool // nil: every store
		fn   func(t *testing.T)
	}
	var checks []check
	add := func(name string, need func(Features) bool, fn func(t *testing.T)) {
		checks = append(checks, check{name, need, fn})
	}
	expiry := func(f Features) bool { return f.Expiry }
	budget := func(f Features) bool { return f.Budget }

	add("LoadMissing", nil, func(t *testing.T) {
		s := newStore(t)
		_, err := s.Load(ctx, id())
		if !errors.Is(err, history.ErrNotFound) {
			t.Fatalf("Load(missing) = %v, want ErrNotFound", err)
		}
	})

	add("AppendLoad", nil, func(t *testing.T) {
		s := newStore(t)
		c := history.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		turns := []history.Turn{{Player: "Hello", NPC: "Well met."}, {Player: "Ünïcödé ✓", NPC: "Aye\nmultiline"}}
		for _, tn := range turns {
			if err := s.Append(ctx, c, tn); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		got, err := s.Load(ctx, c.ID)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		want := history.Conversation{ID: c.ID, Player: "p1", NPC: "npc1", Turns: turns}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Load mismatch (-want +got):\n%s", diff)
		}
	})

	add("BoundedTurns", nil, func(t *testing.T) {
		s := newStore(t)
		c := history.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		n := cfg.MaxTurns + 3
		for i := range n {
			if err := s.Append(ctx, c, history.Turn{Player: fmt.Sprint("q", i), NPC: fmt.Sprint("a", i)}); err != nil {
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

	add("Ownership", nil, func(t *testing.T) {
		s := newStore(t)
		c := history.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		if err := s.Append(ctx, c, history.Turn{Player: "a", NPC: "b"}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		for _, other := range []history.Conversation{
			{ID: c.ID, Player: "p2", NPC: "npc1"},
			{ID: c.ID, Player: "p1", NPC: "npc2"},
		} {
			if err := s.Append(ctx, other, history.Turn{Player: "x", NPC: "y"}); !errors.Is(err, history.ErrNotOwner) {
				t.Errorf("Append as %s/%s = %v, want ErrNotOwner", other.Player, other.NPC, err)
			}
		}
		got, err := s.Load(ctx, c.ID)
		if err != nil || len(got.Turns) != 1 {
			t.Errorf("after refused appends: %d turns, err %v; want 1, nil", len(got.Turns), err)
		}
	})

	add("Summary", nil, func(t *testing.T) {
		s := newStore(t)
		if err := s.SetSummary(ctx, id(), "x"); !errors.Is(err, history.ErrNotFound) {
			t.Errorf("SetSummary(missing) = %v, want ErrNotFound", err)
		}
		c := history.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		if err := s.Append(ctx, c, history.Turn{Player: "a", NPC: "b"}); err != nil {
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

	add("Delete", nil, func(t *testing.T) {
		s := newStore(t)
		c := history.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		if err := s.Append(ctx, c, history.Turn{Player: "a", NPC: "b"}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if err := s.Delete(ctx, c.ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := s.Delete(ctx, c.ID); err != nil {
			t.Fatalf("Delete(missing): %v", err)
		}
		if _, err := s.Load(ctx, c.ID); !errors.Is(err, history.ErrNotFound) {
			t.Errorf("Load after Delete = %v, want ErrNotFound", err)
		}
	})

	add("Concurrent", nil, func(t *testing.T) {
		s := newStore(t)
		c := history.Conversation{ID: id(), Player: "p1", NPC: "npc1"}
		const workers, each = 8, 5
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					if err := s.Append(ctx, c, history.Turn{Player: fmt.Sprint(w, i), NPC: "ok"}); err != nil {
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

	add("Cancelled", nil, func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Load(cctx, id()); err == nil {
			t.Errorf("Load with cancelled context succeeded")
		}
	})

	add("PlayerCap", nil, func(t *testing.T) {
		if cfg.MaxSessionsPerPlayer == 0 {
			t.Skip("StoreConfig.MaxSessionsPerPlayer is 0")
		}
		s := newStore(t)
		p, q := id(), id()
		add := func(c history.Conversation) {
			t.Helper()
			if err := s.Append(ctx, c, history.Turn{Player: "a", NPC: "b"}); err != nil {
				t.Fatalf("Append(%s): %v", c.ID, err)
			}
		}
		other := history.Conversation{ID: id(), Player: q, NPC: "npc1"}
		add(other)
		n := cfg.MaxSessionsPerPlayer
		own := make([]history.Conversation, n+2)
		for i := range own {
			own[i] = history.Conversation{ID: id(), Player: p, NPC: fmt.Sprint("npc", i%3)}
		}
		for _, c := range own[:n] {
			add(c)
		}
		add(own[0]) // active again: own[1] is now the player's oldest
		add(own[n])
		add(own[n+1])
		for i, c := range own {
			want := i != 1 && i != 2
			_, err := s.Load(ctx, c.ID)
			if err != nil && !errors.Is(err, history.ErrNotFound) {
				t.Fatalf("Load: %v", err)
			}
			if got := err == nil; got != want {
				t.Errorf("session %d of %d kept = %v, want %v", i, len(own), got, want)
			}
		}
		if _, err := s.Load(ctx, other.ID); err != nil {
			t.Errorf("another player's conversation: Load = %v, want it kept", err)
		}
		// The player can go on with an evicted session; it starts afresh.
		add(own[1])
		if got, err := s.Load(ctx, own[1].ID); err != nil || len(got.Turns) != 1 {
			t.Errorf("evicted session continued: %d turns, %v; want 1, nil", len(got.Turns), err)
		}
	})

	add("ConversationBytes", nil, func(t *testing.T) {
		if cfg.MaxConversationBytes == 0 {
			t.Skip("StoreConfig.MaxConversationBytes is 0")
		}
		if cfg.MaxTurns < 4 {
			t.Skip("needs MaxTurns of at least 4")
		}
		s := newStore(t)
		c := history.Conversation{ID: id(), Player: id(), NPC: "npc1"}
		third := cfg.MaxConversationBytes / 3
		var turns []history.Turn
		for i := range 4 {
			tn := history.Turn{Player: fmt.Sprint("q", i), NPC: strings.Repeat(string(rune('a'+i)), third-8)}
			turns = append(turns, tn)
			if err := s.Append(ctx, c, tn); err != nil {
				t.Fatalf("Append %d: %v", i, err)
			}
		}
		got, err := s.Load(ctx, c.ID)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		text := 0
		for _, tn := range got.Turns {
			text += len(tn.Player) + len(tn.NPC)
		}
		if text > cfg.MaxConversationBytes {
			t.Errorf("kept %d bytes of turns, want at most %d", text, cfg.MaxConversationBytes)
		}
		if len(got.Turns) == 0 || len(got.Turns) == len(turns) {
			t.Fatalf("kept %d of %d turns of %d bytes each, want the newest, not all", len(got.Turns), len(turns), third)
		}
		if diff := cmp.Diff(turns[len(turns)-len(got.Turns):], got.Turns); diff != "" {
			t.Errorf("kept turns are not the newest (-want +got):\n%s", diff)
		}

		huge := history.Turn{Player: "q", NPC: strings.Repeat("x", cfg.MaxConversationBytes)}
		if err := s.Append(ctx, c, huge); !errors.Is(err, history.ErrTooLarge) {
			t.Errorf("Append(turn over MaxConversationBytes) = %v, want ErrTooLarge", err)
		}
		if err := s.Append(ctx, history.Conversation{ID: id(), Player: c.Player, NPC: "npc1"}, huge); !errors.Is(err, history.ErrTooLarge) {
			t.Errorf("Append(new session, turn over MaxConversationBytes) = %v, want ErrTooLarge", err)
		}
		if err := s.SetSummary(ctx, c.ID, strings.Repeat("s", cfg.MaxConversationBytes+1)); !errors.Is(err, history.ErrTooLarge) {
			t.Errorf("SetSummary(over MaxConversationBytes) = %v, want ErrTooLarge", err)
		}
		again, err := s.Load(ctx, c.ID)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Errorf("refused writes changed the conversation (-before +after):\n%s", diff)
		}

		// A summary takes room from the oldest turns.
		summary := strings.Repeat("s", third)
		if err := s.SetSummary(ctx, c.ID, summary); err != nil {
			t.Fatalf("SetSummary: %v", err)
		}
		got, err = s.Load(ctx, c.ID)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		text = len(got.Summary)
		for _, tn := range got.Turns {
			text += len(tn.Player) + len(tn.NPC)
		}
		if got.Summary != summary || text > cfg.MaxConversationBytes {
			t.Errorf("after SetSummary: summary of %d bytes, %d bytes in all; want %d, at most %d", len(got.Summary), text, len(summary), cfg.MaxConversationBytes)
		}
	})

	add("Budget", budget, func(t *testing.T) {
		s := newStore(t)
		victim := history.Conversation{ID: id(), Player: id(), NPC: "npc1"}
		line := history.Turn{Player: "Remember the docks?", NPC: "I do."}
		if err := s.Append(ctx, victim, line); err != nil {
			t.Fatalf("Append: %v", err)
		}
		// One player opens sessions without end, each as full as the
		// store allows, asking for many times the budget.
		hog := id()
		size := max(cfg.MaxConversationBytes/max(cfg.MaxTurns, 1)-64, 1)
		var last history.Conversation
		for written := int64(0); written < 4*cfg.MaxBytes; {
			last = history.Conversation{ID: id(), Player: hog, NPC: "npc1"}
			for range max(cfg.MaxTurns, 1) {
				if err := s.Append(ctx, last, history.Turn{Player: "more", NPC: strings.Repeat("x", size)}); err != nil {
					t.Fatalf("Append: %v", err)
				}
				written += int64(size)
				if cfg.Bytes != nil {
					if got := cfg.Bytes(s); got > cfg.MaxBytes {
						t.Fatalf("store holds %d bytes, over its budget of %d", got, cfg.MaxBytes)
					}
				}
			}
		}
		got, err := s.Load(ctx, victim.ID)
		if err != nil {
			t.Fatalf("another player's conversation after a player filled the store: Load = %v", err)
		}
		if diff := cmp.Diff([]history.Turn{line}, got.Turns); diff != "" {
			t.Errorf("another player's turns (-want +got):\n%s", diff)
		}
		if _, err := s.Load(ctx, last.ID); err != nil {
			t.Errorf("the filling player's newest conversation: Load = %v", err)
		}
	})

	add("Expiry", expiry, func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newStore(t)
			c := history.Conversation{ID: id(), Player: id(), NPC: "npc1"}
			step := cfg.TTL * 3 / 4
			for range 3 {
				if err := s.Append(ctx, c, history.Turn{Player: "a", NPC: "b"}); err != nil {
					t.Fatalf("Append: %v", err)
				}
				time.Sleep(step) // activity restarts the idle timer
			}
			if got, err := s.Load(ctx, c.ID); err != nil || len(got.Turns) != min(3, cfg.MaxTurns) {
				t.Fatalf("Load %v after the last Append = %d turns, %v; want %d, nil", step, len(got.Turns), err, min(3, cfg.MaxTurns))
			}
			time.Sleep(cfg.TTL - step)
			if _, err := s.Load(ctx, c.ID); !errors.Is(err, history.ErrNotFound) {
				t.Fatalf("Load after the idle TTL = %v, want ErrNotFound", err)
			}
			// An expired session can be claimed afresh.
			other := history.Conversation{ID: c.ID, Player: id(), NPC: "npc2"}
			if err := s.Append(ctx, other, history.Turn{Player: "x", NPC: "y"}); err != nil {
				t.Errorf("Append to an expired session by another player: %v", err)
			}
		})
	})

	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.need != nil && !c.need(cfg.Features) {
				t.Skip("the store does not offer this feature (StoreConfig.Features)")
			}
			c.fn(t)
		})
	}
}
