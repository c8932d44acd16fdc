package router_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/internal/llmtest"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
)

// backend is an llmtest server and an openai.Model talking to it.
type backend struct {
	srv   *llmtest.Server
	model *openai.Model
}

func newBackend(t testing.TB, b llmtest.Behavior) *backend {
	t.Helper()
	srv := llmtest.NewServer(b)
	m, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1", Model: "base", RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		srv.Close()
	})
	return &backend{srv: srv, model: m}
}

func (b *backend) replica(name string) router.Replica {
	return router.Replica{Name: name, Model: b.model}
}

func tier(name string, reps ...router.Replica) router.Tier {
	return router.Tier{Name: name, Replicas: reps}
}

// drain reads s to its end; it returns the joined text and the error that
// ended it (nil for io.EOF). It closes s.
func drain(s *router.RoutedStream) (string, error) {
	defer s.Close()
	var b strings.Builder
	for {
		d, err := s.Recv()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		b.WriteString(d.Text)
	}
}

func waitFor(t testing.TB, srv *llmtest.Server, what string, cond func(llmtest.Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.WaitFor(ctx, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// gateModel is an in-memory Model whose streams each wait for a release
// before sending their tokens, and which records the order in which
// streams started.
type gateModel struct {
	mu      sync.Mutex
	started []string // Request.NPC of each started stream
	gates   chan struct{}
	tokens  []string
	fail    error
}

func newGate(tokens ...string) *gateModel {
	if len(tokens) == 0 {
		tokens = []string{"a", "b"}
	}
	return &gateModel{gates: make(chan struct{}, 1024), tokens: tokens}
}

// release lets n waiting (or future) streams proceed.
func (g *gateModel) release(n int) {
	for range n {
		g.gates <- struct{}{}
	}
}

func (g *gateModel) order() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.started...)
}

func (g *gateModel) Generate(ctx context.Context, req router.Request) (*router.Response, error) {
	return nil, errors.New("gateModel: Generate not used")
}

func (g *gateModel) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	g.mu.Lock()
	g.started = append(g.started, req.NPC)
	g.mu.Unlock()
	if g.fail != nil {
		return nil, g.fail
	}
	return &gateStream{ctx: ctx, g: g}, nil
}

type gateStream struct {
	ctx    context.Context
	g      *gateModel
	i      int
	opened bool
}

func (s *gateStream) Recv() (router.Delta, error) {
	if !s.opened {
		select {
		case <-s.g.gates:
			s.opened = true
		case <-s.ctx.Done():
			return router.Delta{}, s.ctx.Err()
		}
	}
	if s.i >= len(s.g.tokens) {
		return router.Delta{}, io.EOF
	}
	d := router.Delta{Text: s.g.tokens[s.i]}
	s.i++
	if s.i == len(s.g.tokens) {
		d.FinishReason = router.FinishStop
	}
	return d, nil
}

func (s *gateStream) Close() error { return nil }

// instant is an in-memory Model that answers at once.
type instant struct{ tokens []string }

func (m instant) Generate(ctx context.Context, req router.Request) (*router.Response, error) {
	return &router.Response{Text: strings.Join(m.tokens, ""), FinishReason: router.FinishStop}, nil
}

func (m instant) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	return &instantStream{tokens: m.tokens}, nil
}

type instantStream struct {
	tokens []string
	i      int
}

func (s *instantStream) Recv() (router.Delta, error) {
	if s.i >= len(s.tokens) {
		return router.Delta{}, io.EOF
	}
	d := router.Delta{Text: s.tokens[s.i]}
	s.i++
	if s.i == len(s.tokens) {
		d.FinishReason = router.FinishStop
		d.Usage = &router.Usage{PromptTokens: 3, CompletionTokens: len(s.tokens)}
	}
	return d, nil
}

func (s *instantStream) Close() error { return nil }
