package dialogue_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeCompleter records requests and answers with whatever respond returns.
type fakeCompleter struct {
	mu      sync.Mutex
	reqs    []router.Request
	respond func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error)
}

func (f *fakeCompleter) Stream(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	return f.respond(ctx, req)
}

func (f *fakeCompleter) requests() []router.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]router.Request(nil), f.reqs...)
}

var errBackend = errors.New("backend down")

// fakeStream plays deltas, then either ends, fails with err, or (hang)
// blocks until its context is cancelled, which it reports on cancelled.
type fakeStream struct {
	ctx       context.Context
	deltas    []router.Delta
	err       error
	hang      bool
	cancelled chan struct{}
	receipt   router.Receipt
	// delay is waited before each delta; cancellation cuts it short.
	delay time.Duration

	mu     sync.Mutex
	i      int
	closed bool
}

func (s *fakeStream) Recv() (router.Delta, error) {
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-s.ctx.Done():
			if s.cancelled != nil {
				close(s.cancelled)
			}
			return router.Delta{}, s.ctx.Err()
		}
	}
	s.mu.Lock()
	if s.i < len(s.deltas) {
		d := s.deltas[s.i]
		s.i++
		s.mu.Unlock()
		return d, nil
	}
	s.mu.Unlock()
	if s.hang {
		<-s.ctx.Done()
		if s.cancelled != nil {
			close(s.cancelled)
		}
		return router.Delta{}, s.ctx.Err()
	}
	if s.err != nil {
		return router.Delta{}, s.err
	}
	return router.Delta{}, io.EOF
}

func (s *fakeStream) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *fakeStream) Receipt() router.Receipt { return s.receipt }

// words streams text word by word and finishes with "stop".
func words(text string) []router.Delta {
	var ds []router.Delta
	for i, w := range strings.SplitAfter(text, " ") {
		_ = i
		ds = append(ds, router.Delta{Text: w})
	}
	ds = append(ds, router.Delta{FinishReason: router.FinishStop, Usage: &router.Usage{PromptTokens: 42, CompletionTokens: len(ds)}})
	return ds
}

// replying returns a respond func that streams text.
func replying(text string) func(context.Context, router.Request) (dialogue.CompletionStream, error) {
	return func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
		return &fakeStream{ctx: ctx, deltas: words(text),
			receipt: router.Receipt{Tier: "tier1", Replica: "r0", Model: "npc-7b", Reasons: []router.Reason{router.ReasonResponsibility}, Attempts: 1}}, nil
	}
}

func failing(context.Context, router.Request) (dialogue.CompletionStream, error) {
	return nil, errBackend
}

var testPersonas = []dialogue.Persona{
	{
		ID: "mara", Name: "Mara", SystemPrompt: "A dockside fence who trusts no one.",
		Importance: router.Elite, Adapter: "mara-lora", Style: "clipped", Knowledge: []string{"The harbourmaster is corrupt."},
		FallbackLines: []string{"Not now. Come back later.", "Busy. Later."},
	},
	{
		ID: "guard", Name: "Guard", SystemPrompt: "A bored town guard.", Importance: router.Generic,
		FallbackLines: []string{"Move along."},
	},
}

var (
	player1 = identity.Identity{Kind: identity.KindPlayer, ID: "p1"}
	player2 = identity.Identity{Kind: identity.KindPlayer, ID: "p2"}
	server  = identity.Identity{Kind: identity.KindService, ID: "gameserver"}
)

func newService(t testing.TB, fc *fakeCompleter, edit func(*dialogue.Options)) *dialogue.Service {
	t.Helper()
	ps, err := dialogue.NewPersonas(testPersonas...)
	if err != nil {
		t.Fatal(err)
	}
	opts := dialogue.Options{
		Completer: fc, Personas: ps, WorldLore: "The Drowned Coast.",
		Regions:   map[string]string{"greywater": "A harbour town."},
		RateLimit: dialogue.RateLimit{Disable: true},
		Logger:    discardLogger(),
	}
	if edit != nil {
		edit(&opts)
	}
	s, err := dialogue.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newMemoryStore returns a MemoryStore with the default bounds.
func newMemoryStore(t testing.TB) *history.MemoryStore {
	t.Helper()
	s, err := history.NewMemoryStore(history.MemoryStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
