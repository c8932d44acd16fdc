package batching_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/bodybroker/sdk/batching"
	"github.com/bodybroker/sdk/router"
)

// oneToken is an in-memory Model that answers one token at once.
type oneToken struct{}

func (oneToken) Generate(context.Context, router.Request) (*router.Response, error) {
	return &router.Response{Text: "x", FinishReason: router.FinishStop}, nil
}

func (oneToken) Stream(context.Context, router.Request) (router.Stream, error) {
	return &oneTokenStream{}, nil
}

type oneTokenStream struct{ done bool }

func (s *oneTokenStream) Recv() (router.Delta, error) {
	if s.done {
		return router.Delta{}, io.EOF
	}
	s.done = true
	return router.Delta{Text: "x", FinishReason: router.FinishStop}, nil
}

func (s *oneTokenStream) Close() error { return nil }

// BenchmarkRouterWithLimiter is the router's whole public path (Stream,
// Recv, Close) on four replicas with an in-memory model, without and with
// a batching.Limiter on each replica: the difference is what the limiter
// adds to a routing decision (BenchmarkRouteAdmitRecord in package router
// measures the decision alone).
func BenchmarkRouterWithLimiter(b *testing.B) {
	for _, withLimiter := range []bool{false, true} {
		b.Run(fmt.Sprintf("limiter=%v", withLimiter), func(b *testing.B) {
			var reps []router.Replica
			for i := range 4 {
				rep := router.Replica{Name: fmt.Sprint("r", i), Model: oneToken{}}
				if withLimiter {
					rep.Limiter = mustLimiter(b, batching.LimiterOptions{InitialWindow: 64, MaxTokens: 1 << 20})
				}
				reps = append(reps, rep)
			}
			r, err := router.New(router.Options{
				Tiers:  []router.Tier{{Name: "main", Replicas: reps, MaxQueued: 16}},
				Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			req := router.Request{AffinityKey: "conversation-42", FairnessKey: "player-7", PromptTokens: 900, MaxTokens: 60}
			b.ReportAllocs()
			for b.Loop() {
				s, err := r.Stream(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := s.Recv(); err != nil {
						break
					}
				}
				s.Close()
			}
		})
	}
}
