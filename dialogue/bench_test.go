package dialogue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/latency"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/scripted"
)

// BenchmarkTTFTAdded measures the time to first token that the gRPC layer
// and the service logic add over calling the router directly, on loopback.
// The backend is router/scripted with no delay, so what remains is routing
// (both paths) plus, for the gRPC path, client and server gRPC, auth,
// validation, memory load, prompt assembly and segmentation. Each iteration
// runs both paths back to back, so CPU noise hits them alike.
func BenchmarkTTFTAdded(b *testing.B) {
	lines, err := scripted.New(scripted.Options{NPCLines: map[string][]string{"guard": {"Move along now, citizen."}}})
	if err != nil {
		b.Fatal(err)
	}
	svc, r := newRouterServiceAnd(b, router.Options{Tiers: []router.Tier{{Name: router.Tier1, Replicas: []router.Replica{{Name: "lines", Model: lines}}}}})
	h := serve(b, svc, true, nil)
	ctx := as(context.Background(), tokP1)
	direct := router.Request{NPC: "guard", AffinityKey: "s", MaxTokens: 256, Importance: router.Generic,
		Messages: []router.Message{{Role: router.RoleSystem, Content: "You are a guard."}, {Role: router.RoleUser, Content: "Halt?"}}}
	in := &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{NpcId: "guard", Text: "Halt?"}}

	var hd, hg latency.Histogram
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		s, err := r.Stream(ctx, direct)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			b.Fatal(err)
		}
		hd.Record(time.Since(t0))
		for {
			if _, err := s.Recv(); err != nil {
				break
			}
		}
		_ = s.Close()

		t0 = time.Now()
		st, err := h.client.StreamSay(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			b.Fatal(err)
		}
		hg.Record(time.Since(t0))
		for {
			if _, err := st.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(hd.Quantile(0.5)), "direct-p50-µs")
	b.ReportMetric(us(hg.Quantile(0.5)), "grpc-p50-µs")
	b.ReportMetric(us(hg.Quantile(0.5)-hd.Quantile(0.5)), "added-p50-µs")
	b.ReportMetric(us(hg.Quantile(0.99)-hd.Quantile(0.99)), "added-p99-µs")
}

// gateModel streams "Hello", then holds every stream open until release
// is closed, then finishes with " there.".
type gateModel struct{ release chan struct{} }

func (g *gateModel) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("gateModel: streaming only")
}

func (g *gateModel) Stream(ctx context.Context, _ router.Request) (router.Stream, error) {
	return &gateStream{ctx: ctx, release: g.release}, nil
}

type gateStream struct {
	ctx     context.Context
	release chan struct{}
	n       int
}

func (s *gateStream) Recv() (router.Delta, error) {
	s.n++
	switch s.n {
	case 1:
		return router.Delta{Text: "Hello"}, nil
	case 2:
		select {
		case <-s.release:
			return router.Delta{Text: " there.", FinishReason: router.FinishStop}, nil
		case <-s.ctx.Done():
			return router.Delta{}, s.ctx.Err()
		}
	default:
		return router.Delta{}, io.EOF
	}
}

func (s *gateStream) Close() error { return nil }

// BenchmarkConcurrentStreamSay opens 2,000 StreamSay streams at once over
// loopback TCP (8 client connections), holds them all open after their
// first chunk, measures heap, goroutine stacks and goroutines per open
// stream (client and server together, since both run in this process; one
// of the goroutines per stream is the benchmark's own reader), then lets
// them all
// finish and checks that none failed.
func BenchmarkConcurrentStreamSay(b *testing.B) {
	const streams, conns = 2000, 8
	gm := &gateModel{}
	svc := newRouterService(b, router.Options{
		Tiers: []router.Tier{
			{Name: router.Tier1, StallTimeout: time.Minute,
				Replicas: []router.Replica{{Name: "gate", Model: gm}}},
		},
	})
	h := serve(b, svc, true, nil)
	clients := make([]dialoguev1.DialogueServiceClient, conns)
	for i := range clients {
		c, err := grpc.NewClient(h.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = dialoguev1.NewDialogueServiceClient(c)
	}
	ctx := as(context.Background(), tokSvc) // a game server speaking for 2,000 players
	var heapPer, stackPer, gorPer, openSecs float64
	for b.Loop() {
		gm.release = make(chan struct{})
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap0, stack0, gor0 := ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine()

		var opened, done sync.WaitGroup
		var failed atomic.Int64
		var firstErr atomic.Value
		opened.Add(streams)
		done.Add(streams)
		start := time.Now()
		for i := range streams {
			go func() {
				defer done.Done()
				ok := false
				defer func() {
					if !ok {
						opened.Done()
					}
				}()
				st, err := clients[i%conns].StreamSay(ctx, &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{
					NpcId: "guard", Text: "Halt?", PlayerId: fmt.Sprint("p", i)}})
				if err == nil {
					_, err = st.Recv()
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					return
				}
				ok = true
				opened.Done()
				for {
					m, err := st.Recv()
					if err == io.EOF {
						return
					}
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
						return
					}
					_ = m
				}
			}()
		}
		opened.Wait()
		openSecs = time.Since(start).Seconds()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heapPer = float64(int64(ms.HeapInuse)-int64(heap0)) / streams
		stackPer = float64(int64(ms.StackInuse)-int64(stack0)) / streams
		gorPer = float64(runtime.NumGoroutine()-gor0) / streams
		if a := svc.Stats().Active; a != streams && failed.Load() == 0 {
			b.Errorf("%d replies active, want %d", a, streams)
		}
		close(gm.release)
		done.Wait()
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d of %d streams failed; first: %v", n, streams, firstErr.Load())
		}
	}
	b.ReportMetric(streams, "streams")
	b.ReportMetric(heapPer, "heap-B/stream")
	b.ReportMetric(stackPer, "stack-B/stream")
	b.ReportMetric(heapPer+stackPer, "mem-B/stream")
	b.ReportMetric(gorPer, "goroutines/stream")
	b.ReportMetric(openSecs*1000, "open-all-ms")
}
