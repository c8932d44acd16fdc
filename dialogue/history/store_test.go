package history_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/dialogue/dialoguetest"
	"github.com/bodybroker/sdk/dialogue/history"
)

// newStore returns a MemoryStore built from opts, failing t if it cannot.
func newStore(t testing.TB, opts history.MemoryStoreOptions) *history.MemoryStore {
	t.Helper()
	s, err := history.NewMemoryStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMemoryStoreConformance(t *testing.T) {
	opts := history.MemoryStoreOptions{
		MaxTurns:             4,
		TTL:                  time.Hour,
		MaxConversationBytes: 1024,
		MaxSessionsPerPlayer: 8,
		MaxBytes:             6 << 10, // less than one player's 8 full sessions
	}
	cfg := dialoguetest.StoreConfig{
		MaxTurns:             opts.MaxTurns,
		TTL:                  opts.TTL,
		MaxConversationBytes: opts.MaxConversationBytes,
		MaxSessionsPerPlayer: opts.MaxSessionsPerPlayer,
		MaxBytes:             opts.MaxBytes,
		Bytes:                func(s history.Store) int64 { return s.(*history.MemoryStore).Stats().Bytes },
		Features:             dialoguetest.AllFeatures(),
	}
	dialoguetest.TestStore(t, cfg, func(t *testing.T) history.Store {
		return newStore(t, opts)
	})
}

func TestMemoryStoreTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t, history.MemoryStoreOptions{TTL: time.Minute})
		c := history.Conversation{ID: "s1", Player: "p", NPC: "n"}
		if err := s.Append(ctx, c, history.Turn{Player: "a", NPC: "b"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Second)
		// Activity restarts the idle timer.
		if err := s.Append(ctx, c, history.Turn{Player: "c", NPC: "d"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Second)
		if got, err := s.Load(ctx, "s1"); err != nil || len(got.Turns) != 2 {
			t.Fatalf("Load at 100s = %d turns, %v; want 2, nil", len(got.Turns), err)
		}
		time.Sleep(11 * time.Second)
		if _, err := s.Load(ctx, "s1"); !errors.Is(err, history.ErrNotFound) {
			t.Fatalf("Load after idle TTL = %v, want ErrNotFound", err)
		}
		if n := s.Len(); n != 0 {
			t.Errorf("Len after expiry = %d, want 0", n)
		}
		// Expired conversations can be claimed afresh.
		other := history.Conversation{ID: "s1", Player: "p2", NPC: "n"}
		if err := s.Append(ctx, other, history.Turn{Player: "x", NPC: "y"}); err != nil {
			t.Errorf("Append to expired session by another player: %v", err)
		}
	})
}

func TestMemoryStoreSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t, history.MemoryStoreOptions{TTL: time.Second})
		// One player per conversation: a player's own sessions are capped
		// (MaxSessionsPerPlayer), and this test is about the sweep.
		for i := range 1000 {
			c := history.Conversation{ID: "old" + string(rune('a'+i%26)) + time.Duration(i).String(), Player: fmt.Sprint("p", i), NPC: "n"}
			if err := s.Append(ctx, c, history.Turn{Player: "a", NPC: "b"}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Second)
		for i := range 24 {
			c := history.Conversation{ID: "new" + time.Duration(i).String(), Player: fmt.Sprint("p", i), NPC: "n"}
			if err := s.Append(ctx, c, history.Turn{Player: "a", NPC: "b"}); err != nil {
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
		s := newStore(t, history.MemoryStoreOptions{TTL: time.Hour, MaxConversations: 3})
		add := func(id string) {
			t.Helper()
			if err := s.Append(ctx, history.Conversation{ID: id, Player: "p", NPC: "n"}, history.Turn{Player: "a", NPC: "b"}); err != nil {
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

// TestMemoryStoreOnePlayerCannotEvictAnother: a player opening sessions
// without end loses their own oldest sessions, not another player's. (With
// one global LRU, the newest 100,000 sessions of one player evicted
// everyone else.)
func TestMemoryStoreOnePlayerCannotEvictAnother(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, history.MemoryStoreOptions{MaxConversations: 100})
	victim := history.Conversation{ID: "victim", Player: "v", NPC: "n"}
	if err := s.Append(ctx, victim, history.Turn{Player: "a", NPC: "b"}); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		c := history.Conversation{ID: fmt.Sprint("hog", i), Player: "hog", NPC: "n"}
		if err := s.Append(ctx, c, history.Turn{Player: "a", NPC: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Load(ctx, "victim"); err != nil {
		t.Errorf("Load(victim) after another player opened 1,000 sessions = %v, want kept", err)
	}
	if n, want := s.Len(), 1+history.DefaultMaxSessionsPerPlayer; n != want {
		t.Errorf("Len = %d, want %d (the victim and the hog's newest sessions)", n, want)
	}
	for i := 1000 - history.DefaultMaxSessionsPerPlayer; i < 1000; i++ {
		if _, err := s.Load(ctx, fmt.Sprint("hog", i)); err != nil {
			t.Errorf("Load(hog%d) = %v, want the hog's newest sessions kept", i, err)
		}
	}
}

// TestMemoryStoreFairEviction: when a few players fill the byte budget,
// those holding the most lose their own oldest sessions; the bytes held
// never exceed MaxBytes; players holding less keep their history.
func TestMemoryStoreFairEviction(t *testing.T) {
	ctx := context.Background()
	const budget = 64 << 10
	s := newStore(t, history.MemoryStoreOptions{
		MaxBytes: budget, MaxTurns: 8, MaxConversationBytes: 8 << 10, MaxSessionsPerPlayer: 100,
	})
	// Three quiet players, each with a conversation of a few turns.
	var quiet []history.Conversation
	for i := range 3 {
		c := history.Conversation{ID: fmt.Sprint("quiet", i), Player: fmt.Sprint("q", i), NPC: "n"}
		quiet = append(quiet, c)
		for j := range 3 {
			if err := s.Append(ctx, c, history.Turn{Player: strings.Repeat("p", 500), NPC: fmt.Sprint("reply ", j)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Three hogs take turns opening full sessions, 10 budgets' worth.
	line := history.Turn{Player: strings.Repeat("h", 500), NPC: strings.Repeat("n", 500)}
	for i := range 10 * budget / (8 * 1000) {
		for h := range 3 {
			c := history.Conversation{ID: fmt.Sprint("hog", h, "-", i), Player: fmt.Sprint("hog", h), NPC: "n"}
			for range 8 {
				if err := s.Append(ctx, c, line); err != nil {
					t.Fatal(err)
				}
				if st := s.Stats(); st.Bytes > budget {
					t.Fatalf("Stats().Bytes = %d, over MaxBytes %d", st.Bytes, budget)
				}
			}
		}
	}
	for _, c := range quiet {
		got, err := s.Load(ctx, c.ID)
		if err != nil || len(got.Turns) != 3 {
			t.Errorf("quiet player %s: %d turns, %v; want 3, nil", c.Player, len(got.Turns), err)
		}
	}
	st := s.Stats()
	if st.EvictedBudget == 0 || st.Players != 6 {
		t.Errorf("Stats = %+v, want budget evictions and all 6 players still present", st)
	}
}

// TestMemoryStoreOnePlayerBytes is the figure behind the byte bound: one
// player opening 1,000 full conversations (~168 KiB each, ~164 MiB in all)
// leaves the store holding at most MaxSessionsPerPlayer conversations of
// at most MaxConversationBytes each (~1 MiB), far under DefaultMaxBytes.
func TestMemoryStoreOnePlayerBytes(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, history.MemoryStoreOptions{})
	for i := range 1000 {
		c := history.Conversation{ID: fmt.Sprint("s", i), Player: "hog", NPC: "n"}
		for j := range history.DefaultMaxTurns {
			if err := s.Append(ctx, c, fullTurn(j)); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := s.Stats()
	perConv := int64(history.DefaultMaxConversationBytes + 256 + 32*history.DefaultMaxTurns)
	if bound := history.DefaultMaxSessionsPerPlayer * perConv; st.Bytes > bound || st.Conversations != history.DefaultMaxSessionsPerPlayer {
		t.Errorf("after 1,000 full conversations: %d conversations, %d bytes; want %d, at most %d",
			st.Conversations, st.Bytes, history.DefaultMaxSessionsPerPlayer, bound)
	}
	t.Logf("one player, 1,000 full conversations: store holds %d conversations, %d bytes (%.2f MiB); MaxBytes %d MiB",
		st.Conversations, st.Bytes, float64(st.Bytes)/(1<<20), history.DefaultMaxBytes>>20)
}

// TestMemoryStoreSmallBudget: a budget smaller than a default conversation
// lowers MaxConversationBytes to fit; a turn that cannot fit is refused
// with ErrTooLarge and the bound holds.
func TestMemoryStoreSmallBudget(t *testing.T) {
	ctx := context.Background()
	const budget = 2048
	s := newStore(t, history.MemoryStoreOptions{MaxBytes: budget, MaxTurns: 4})
	c := history.Conversation{ID: "s", Player: "p", NPC: "n"}
	if err := s.Append(ctx, c, history.Turn{Player: strings.Repeat("x", budget), NPC: "y"}); !errors.Is(err, history.ErrTooLarge) {
		t.Errorf("Append(turn over the whole budget) = %v, want ErrTooLarge", err)
	}
	for i := range 20 {
		if err := s.Append(ctx, c, history.Turn{Player: strings.Repeat("x", 500), NPC: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Bytes > budget {
			t.Fatalf("Stats().Bytes = %d, over MaxBytes %d", st.Bytes, budget)
		}
	}
	got, err := s.Load(ctx, "s")
	if err != nil || len(got.Turns) == 0 || got.Turns[len(got.Turns)-1].NPC != "19" {
		t.Errorf("Load = %d turns, %v; want the newest kept", len(got.Turns), err)
	}
}

// fullTurn returns a turn as large as the service's default limits allow:
// a 2,000-byte utterance and a 1,024-token (about 3,376-byte) reply, so 32
// of them make the ~168 KiB of a full conversation. Each call allocates
// fresh strings, as the service does.
func fullTurn(i int) history.Turn {
	c := string(rune('a' + i%26))
	return history.Turn{Player: strings.Repeat(c, 2000), NPC: strings.Repeat(c, 3376)}
}

// BenchmarkMemoryStoreOnePlayer reports what a MemoryStore with default
// options holds after one player opens 1,000 full conversations (32 turns of
// fullTurn each): heap-MiB is the live heap it retains, measured after a GC.
//
//	go test -run '^$' -bench MemoryStoreOnePlayer -benchtime 1x ./dialogue/history
func BenchmarkMemoryStoreOnePlayer(b *testing.B) {
	const convs, turns = 1000, 32
	ctx := context.Background()
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := newStore(b, history.MemoryStoreOptions{})
		for i := range convs {
			c := history.Conversation{ID: fmt.Sprint("s", i), Player: "hog", NPC: "n"}
			for j := range turns {
				if err := s.Append(ctx, c, fullTurn(j)); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
		b.ReportMetric(float64(s.Len()), "conversations")
		b.ReportMetric(float64(s.Stats().Bytes)/(1<<20), "counted-MiB")
		runtime.KeepAlive(s)
	}
}

// BenchmarkMemoryStoreAppend measures an Append to a store holding 10,000
// players' conversations (the heap of players costs O(log players)).
//
//	go test -run '^$' -bench MemoryStoreAppend ./dialogue/history
func BenchmarkMemoryStoreAppend(b *testing.B) {
	ctx := context.Background()
	s := newStore(b, history.MemoryStoreOptions{})
	const players = 10_000
	convs := make([]history.Conversation, players)
	for i := range convs {
		convs[i] = history.Conversation{ID: fmt.Sprint("s", i), Player: fmt.Sprint("p", i), NPC: "n"}
	}
	turn := history.Turn{Player: "Where is the harbour master?", NPC: "Down by the third pier, past the nets."}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Append(ctx, convs[i%players], turn); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// TestNewMemoryStoreRejectsNegative: a negative bound is a mistake, not a
// request for the default; NewMemoryStore names the field.
func TestNewMemoryStoreRejectsNegative(t *testing.T) {
	for _, tt := range []struct {
		field string
		opts  history.MemoryStoreOptions
	}{
		{"TTL", history.MemoryStoreOptions{TTL: -time.Second}},
		{"MaxTurns", history.MemoryStoreOptions{MaxTurns: -1}},
		{"MaxConversationBytes", history.MemoryStoreOptions{MaxConversationBytes: -1}},
		{"MaxSessionsPerPlayer", history.MemoryStoreOptions{MaxSessionsPerPlayer: -1}},
		{"MaxBytes", history.MemoryStoreOptions{MaxBytes: -1}},
		{"MaxConversations", history.MemoryStoreOptions{MaxConversations: -1}},
	} {
		s, err := history.NewMemoryStore(tt.opts)
		var oe *history.OptionsError
		if s != nil || !errors.Is(err, history.ErrInvalidOptions) || !errors.As(err, &oe) || oe.Field != tt.field {
			t.Errorf("NewMemoryStore(%s < 0) = %v, %v; want nil and an *OptionsError for %s", tt.field, s, err, tt.field)
		}
	}
	if _, err := history.NewMemoryStore(history.MemoryStoreOptions{}); err != nil {
		t.Errorf("NewMemoryStore(zero options) = %v, want the defaults", err)
	}
}
