package lora

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/bodybroker/sdk/router"
)

// Model wraps one replica's [router.Model] so that a request naming an
// adapter (router.Request.Adapter, which the router fills from the tier
// when the request sets none) has it loaded on that replica, and pinned,
// before it is sent; the pin is released when the reply ends. Use it as
// the replica's Model in router.Replica.
//
// An adapter the Manager does not know (not registered: loaded statically
// with vLLM's --lora-modules, say) passes through untouched. A load that
// fails fails the request before its first token, which the router treats
// like any backend error there: it may fall back to another tier. The
// load's time counts in the router's TTFT for that request.
type Model struct {
	m       *Manager
	replica string
	inner   router.Model
}

var _ router.Model = (*Model)(nil)

// Model returns inner wrapped for replica, which must be one of the
// Manager's replicas.
func (m *Manager) Model(replica string, inner router.Model) (*Model, error) {
	if inner == nil {
		return nil, fmt.Errorf("lora: Model for %q: nil inner model", replica)
	}
	m.mu.Lock()
	_, ok := m.replicas[replica]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownReplica, replica)
	}
	return &Model{m: m, replica: replica, inner: inner}, nil
}

// acquire pins req's adapter, returning a release (a no-op when there is
// nothing to pin).
func (w *Model) acquire(ctx context.Context, req router.Request) (func(), error) {
	if req.Adapter == "" {
		return func() {}, nil
	}
	release, err := w.m.Acquire(ctx, w.replica, req.Adapter)
	if errors.Is(err, ErrUnknownAdapter) {
		return func() {}, nil
	}
	return release, err
}

// Generate loads and pins the request's adapter, then calls the inner
// model.
func (w *Model) Generate(ctx context.Context, req router.Request) (*router.Response, error) {
	release, err := w.acquire(ctx, req)
	if err != nil {
		return nil, err
	}
	defer release()
	return w.inner.Generate(ctx, req)
}

// Stream loads and pins the request's adapter, then opens the inner
// stream; the pin lasts until the stream ends or is closed.
func (w *Model) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	release, err := w.acquire(ctx, req)
	if err != nil {
		return nil, err
	}
	s, err := w.inner.Stream(ctx, req)
	if err != nil {
		release()
		return nil, err
	}
	return &stream{Stream: s, release: release}, nil
}

type stream struct {
	router.Stream
	once    sync.Once
	release func()
}

// Recv releases the pin as soon as the stream ends (io.EOF or an error).
func (s *stream) Recv() (router.Delta, error) {
	d, err := s.Stream.Recv()
	if err != nil {
		s.once.Do(s.release)
	}
	return d, err
}

func (s *stream) Close() error {
	s.once.Do(s.release)
	return s.Stream.Close()
}
