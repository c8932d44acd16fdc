package dialogue_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
)

// runawayGuard stops a runaway stream in case the service never does, so
// that a failing test ends instead of filling memory.
const runawayGuard = 8 << 20

var errRunaway = errors.New("runaway stream stopped by the test's guard")

// runawayStream streams delta for ever (until closed, cancelled, or the
// test's guard), and counts what it produced.
type runawayStream struct {
	ctx   context.Context
	delta string

	mu       sync.Mutex
	produced int
	closed   bool
}

func (s *runawayStream) Recv() (router.Delta, error) {
	if err := s.ctx.Err(); err != nil {
		return router.Delta{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return router.Delta{}, errors.New("Recv after Close")
	}
	if s.produced >= runawayGuard {
		return router.Delta{}, errRunaway
	}
	s.produced += len(s.delta)
	return router.Delta{Text: s.delta}, nil
}

func (s *runawayStream) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *runawayStream) Receipt() router.Receipt {
	return router.Receipt{Tier: "tier1", Model: "npc-7b"}
}

func (s *runawayStream) state() (produced int, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.produced, s.closed
}

// TestRunawayReplyIsBounded: a backend that never stops streaming ends as
// a FINISH_REASON_LENGTH reply of at most Limits.MaxReplyBytes; nothing
// beyond is kept, sent or stored, and the backend stream is closed.
func TestRunawayReplyIsBounded(t *testing.T) {
	// Multi-byte runes, deltas that do not divide the limit, and no
	// sentence end (so segmentation and moderation hold text back).
	const delta = "Ünd sö wéiter ünd wéiter ünd "
	tests := []struct {
		name      string
		limit     int // Limits.MaxReplyBytes; 0 means the default
		wantLimit int
		moderator dialogue.Moderator
	}{
		{name: "default limit", wantLimit: 16 << 10},
		{name: "configured limit", limit: 1000, wantLimit: 1000},
		{name: "moderated", limit: 1000, wantLimit: 1000, moderator: testModerator{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var streams []*runawayStream
			var mu sync.Mutex
			fc := &fakeCompleter{respond: func(ctx context.Context, _ router.Request) (dialogue.CompletionStream, error) {
				s := &runawayStream{ctx: ctx, delta: delta}
				mu.Lock()
				streams = append(streams, s)
				mu.Unlock()
				return s, nil
			}}
			store := newMemoryStore(t)
			s := newService(t, fc, func(o *dialogue.Options) {
				o.Store = store
				o.Limits.MaxReplyBytes = tt.limit
				o.Moderator = tt.moderator
			})
			if got := s.Limits().MaxReplyBytes; got != tt.wantLimit {
				t.Errorf("Limits().MaxReplyBytes = %d, want %d", got, tt.wantLimit)
			}
			ctx := identity.NewContext(context.Background(), player1)

			r, err := s.Say(ctx, &dialoguev1.Utterance{NpcId: "mara", Text: "Tell me a story."})
			if err != nil {
				t.Fatal(err)
			}
			text := r.GetText()
			t.Logf("runaway reply: %d bytes kept", len(text))
			if len(text) > tt.wantLimit || len(text) < tt.wantLimit-len(delta) {
				t.Errorf("reply holds %d bytes, want at most %d (and close to it)", len(text), tt.wantLimit)
			}
			if !utf8.ValidString(text) {
				t.Error("reply is not valid UTF-8: the cut split a rune")
			}
			if got := r.GetCompletion().GetFinishReason(); got != dialoguev1.FinishReason_FINISH_REASON_LENGTH {
				t.Errorf("finish reason = %v, want FINISH_REASON_LENGTH", got)
			}
			produced, closed := streams[0].state()
			if !closed {
				t.Error("the backend stream was not closed")
			}
			if produced > tt.wantLimit+len(delta) {
				t.Errorf("the service read %d bytes from the backend, want at most %d", produced, tt.wantLimit+len(delta))
			}
			c, err := store.Load(ctx, r.GetCompletion().GetSessionId())
			if err != nil {
				t.Fatal(err)
			}
			if n := len(c.Turns[len(c.Turns)-1].NPC); n > tt.wantLimit {
				t.Errorf("stored NPC turn holds %d bytes, want at most %d", n, tt.wantLimit)
			}

			// Streamed, the chunks add up to the same bound.
			sent := 0
			var final *dialoguev1.Chunk
			err = s.StreamSay(ctx, &dialoguev1.Utterance{NpcId: "mara", Text: "Another."}, func(c *dialoguev1.Chunk) error {
				sent += len(c.GetText())
				if c.GetFinal() {
					final = c
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if sent > tt.wantLimit {
				t.Errorf("StreamSay sent %d bytes, want at most %d", sent, tt.wantLimit)
			}
			if got := final.GetCompletion().GetFinishReason(); got != dialoguev1.FinishReason_FINISH_REASON_LENGTH {
				t.Errorf("streamed finish reason = %v, want FINISH_REASON_LENGTH", got)
			}
			if st := s.Stats(); st.Clipped != 2 || st.Truncated != 0 {
				t.Errorf("Stats: Clipped %d, Truncated %d; want 2, 0", st.Clipped, st.Truncated)
			}
		})
	}
}

// TestReplyAtTheLimitIsNotClipped: a reply that ends exactly at the limit
// is a normal one.
func TestReplyAtTheLimitIsNotClipped(t *testing.T) {
	text := strings.Repeat("ab ", 100) + "end."
	s := newService(t, &fakeCompleter{respond: replying(text)}, func(o *dialogue.Options) { o.Limits.MaxReplyBytes = len(text) })
	r, err := s.Say(identity.NewContext(context.Background(), player1), &dialoguev1.Utterance{NpcId: "mara", Text: "?"})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetText() != text || r.GetCompletion().GetFinishReason() != dialoguev1.FinishReason_FINISH_REASON_STOP {
		t.Errorf("reply = %q, %v; want the whole text, FINISH_REASON_STOP", r.GetText(), r.GetCompletion().GetFinishReason())
	}
}

// BenchmarkRunawayReply measures what one reply from a backend that never
// stops costs the service: the bytes it keeps (reply-bytes) and, through
// ReportAllocs, the bytes it allocates. The stream's own guard stops it at
// 8 MiB should the service not.
func BenchmarkRunawayReply(b *testing.B) {
	fc := &fakeCompleter{respond: func(ctx context.Context, _ router.Request) (dialogue.CompletionStream, error) {
		return &runawayStream{ctx: ctx, delta: "Ünd sö wéiter ünd wéiter ünd "}, nil
	}}
	s := newService(b, fc, nil)
	ctx := identity.NewContext(context.Background(), player1)
	u := &dialoguev1.Utterance{NpcId: "mara", Text: "Tell me a story."}
	kept := 0
	b.ReportAllocs()
	for b.Loop() {
		r, err := s.Say(ctx, u)
		if err != nil {
			b.Fatal(err)
		}
		kept = len(r.GetText())
	}
	b.ReportMetric(float64(kept), "reply-bytes")
}
