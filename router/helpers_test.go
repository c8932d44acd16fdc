package router_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

// backend is an openaitest server and an openai.Model talking to it.
type backend struct {
	srv   *openaitest.Server
	model *openai.Model
}

func newBackend(t testing.TB, b openaitest.Behavior) *backend {
	t.Helper()
	srv := openaitest.NewServer(b)
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

func waitFor(t testing.TB, srv *openaitest.Server, what string, cond func(openaitest.Stats) bool) {
	t.Helper()
	// The bound only catches a hang; it never measures speed.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
		d.Usage = &router.Usage{PromptTokens: 3, CompletionTokens: len(s.tokens), Reported: true}
	}
	return d, nil
}

func (s *instantStream) Close() error { return nil }

// paced is an in-memory Model whose streams wait TTFT before the first
// token and Gap between tokens (timers, so tests run it inside
// testing/synctest), and which counts what it served. With Tokens nil it
// streams "w0", " w1", ... forever, ignoring Request.MaxTokens, like a
// runaway backend; with StallAfter > 0 it stops sending after that many
// tokens and waits for the context.
type paced struct {
	TTFT, Gap  time.Duration
	Tokens     []string
	StallAfter int

	started, inFlight, maxInFlight, cancelled, sent atomic.Int64
}

func (m *paced) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("paced: Generate not used")
}

func (m *paced) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	m.started.Add(1)
	n := m.inFlight.Add(1)
	for {
		old := m.maxInFlight.Load()
		if n <= old || m.maxInFlight.CompareAndSwap(old, n) {
			break
		}
	}
	return &pacedStream{m: m, ctx: ctx}, nil
}

type pacedStream struct {
	m      *paced
	ctx    context.Context
	i      int
	ended  bool
	closed bool
}

func (s *pacedStream) wait(d time.Duration) error {
	if s.m.StallAfter > 0 && s.i >= s.m.StallAfter {
		d = time.Duration(1<<63 - 1)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.ctx.Done():
		if !s.ended {
			s.ended = true
			s.m.cancelled.Add(1)
		}
		return s.ctx.Err()
	}
}

func (s *pacedStream) Recv() (router.Delta, error) {
	if s.ended {
		return router.Delta{}, io.EOF
	}
	d := s.m.Gap
	if s.i == 0 {
		d = s.m.TTFT
	}
	if err := s.wait(d); err != nil {
		return router.Delta{}, err
	}
	var dl router.Delta
	if s.m.Tokens == nil {
		dl.Text = " w" + strconv.Itoa(s.i)
		if s.i == 0 {
			dl.Text = "w0"
		}
	} else {
		dl.Text = s.m.Tokens[s.i]
		if s.i == len(s.m.Tokens)-1 {
			dl.FinishReason = router.FinishStop
			s.ended = true
		}
	}
	s.i++
	s.m.sent.Add(1)
	return dl, nil
}

func (s *pacedStream) Close() error {
	if !s.closed {
		s.closed = true
		if !s.ended && s.ctx.Err() != nil {
			s.m.cancelled.Add(1)
		}
		s.ended = true
		s.m.inFlight.Add(-1)
	}
	return nil
}

// switchable is an in-memory Model that fails every stream before its
// first token while Fail is set, and answers "ok" otherwise. It counts the
// streams it was asked for.
type switchable struct {
	Fail  atomic.Bool
	calls atomic.Int64
}

func (m *switchable) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("switchable: Generate not used")
}

func (m *switchable) Stream(context.Context, router.Request) (router.Stream, error) {
	m.calls.Add(1)
	if m.Fail.Load() {
		return nil, errors.New("switchable: down")
	}
	return &instantStream{tokens: []string{"ok"}}, nil
}
