package sim_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/batching"
	"github.com/bodybroker/sdk/batching/sim"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/routertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestModelConformance(t *testing.T) {
	routertest.TestModel(t, routertest.Harness{
		Features: routertest.AllFeatures(),
		New: func(t *testing.T, line string, tokenDelay time.Duration) router.Model {
			step := sim.StepModel{DecodeFixed: tokenDelay, PrefillFixed: time.Nanosecond}
			if tokenDelay == 0 {
				step.DecodeFixed = time.Nanosecond
			}
			m, err := sim.NewModel(sim.ModelOptions{
				Engine: sim.Config{Step: step},
				Reply:  func(router.Request) string { return line },
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			return m
		},
	})
}

// TestModelBehindRouter drives a router over two simulated H200 replicas,
// one behind a batching.Limiter, with many concurrent conversations in
// fake time: every request
// completes, the engines batch them, and time per token grows with the
// batch as the step model says.
func TestModelBehindRouter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var models []*sim.Model
		var replicas []router.Replica
		for i := range 2 {
			m, err := sim.NewModel(sim.ModelOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			models = append(models, m)
			rep := router.Replica{Name: fmt.Sprint("h200-", i), Model: m}
			if i == 0 {
				// One replica behind the adaptive limiter's seam.
				if rep.Limiter, err = batching.NewLimiter(batching.LimiterOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			replicas = append(replicas, rep)
		}
		r, err := router.New(router.Options{Tiers: []router.Tier{{Name: "tier2", Replicas: replicas, TTFTTarget: time.Second}}})
		if err != nil {
			t.Fatal(err)
		}
		const n = 200
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 5 * time.Millisecond)
				resp, err := r.Generate(context.Background(), router.Request{
					Messages: []router.Message{
						{Role: router.RoleSystem, Content: "You are Maren, the miller. " + string(make([]byte, 2000))},
						{Role: router.RoleUser, Content: "Is the road north safe?"},
					},
					NPC:         "maren",
					AffinityKey: fmt.Sprint("player-", i%20),
				})
				if err != nil {
					errs <- err
					return
				}
				if resp.Text != sim.DefaultReply || resp.FinishReason != router.FinishStop {
					errs <- fmt.Errorf("got %q (%s)", resp.Text, resp.FinishReason)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		completed := 0
		for _, m := range models {
			st := m.Stats()
			completed += st.Completed
			if st.Steps == 0 || st.ITL.Count == 0 {
				t.Errorf("stats %+v: want steps and ITL samples", st)
			}
			// Decode steps of an 8B model on an H200 take 4.5 ms plus
			// a little per sequence; batching keeps them under 10 ms.
			if st.ITL.P50 < 4*time.Millisecond || st.ITL.P50 > 10*time.Millisecond {
				t.Errorf("ITL p50 %v, want the H200 decode step (4.5–10 ms)", st.ITL.P50)
			}
		}
		if completed != n {
			t.Errorf("completed %d, want %d", completed, n)
		}
	})
}

func TestModelCancelAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := sim.NewModel(sim.ModelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		s, err := m.Stream(ctx, router.Request{Messages: []router.Message{{Role: router.RoleUser, Content: "hello"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := s.Recv(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Recv after cancel: %v, want context.Canceled", err)
		}
		// The engine drops a cancelled sequence when its step ends.
		time.Sleep(time.Second)
		synctest.Wait()
		if st := m.Stats(); st.Running != 0 || st.Waiting != 0 {
			t.Errorf("after cancel: %+v, want nothing in flight", st)
		}
		s.Close()

		// Close ends a stream in flight and refuses new ones.
		s, err = m.Stream(context.Background(), router.Request{Messages: []router.Message{{Role: router.RoleUser, Content: "hello"}}})
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		m.Close()
		for {
			_, err := s.Recv()
			if err == io.EOF {
				t.Fatal("stream finished after Close")
			}
			if err != nil {
				if !errors.Is(err, sim.ErrClosed) {
					t.Fatalf("Recv after Close: %v, want ErrClosed", err)
				}
				break
			}
		}
		s.Close()
		if _, err := m.Stream(context.Background(), router.Request{}); !errors.Is(err, sim.ErrClosed) {
			t.Errorf("Stream after Close: %v, want ErrClosed", err)
		}
		// A request the engine could never hold fails before any token.
		small, _ := sim.NewModel(sim.ModelOptions{Engine: sim.Config{KVBlocks: 4}})
		defer small.Close()
		big := router.Request{Messages: []router.Message{{Role: router.RoleUser, Content: string(make([]byte, 4096))}}}
		if _, err := small.Stream(context.Background(), big); !errors.Is(err, sim.ErrTooLarge) {
			t.Errorf("oversized request: %v, want ErrTooLarge", err)
		}
	})
}
