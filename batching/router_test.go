package batching_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/batching"
	"github.com/bodybroker/sdk/router"
	"github.com/google/go-cmp/cmp"
)

// kneeModel is an in-memory engine whose first token takes the curve's
// TTFT for the requests it has in flight when the request arrives, then
// streams four tokens 10 ms apart. It runs on timers, for synctest.
type kneeModel struct {
	curve    engineCurve
	inflight atomic.Int64
	peak     atomic.Int64
}

func (m *kneeModel) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("kneeModel: Generate not used")
}

func (m *kneeModel) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	n := m.inflight.Add(1)
	for {
		p := m.peak.Load()
		if n <= p || m.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return &kneeStream{m: m, ctx: ctx, ttft: m.curve.ttft(int(n))}, nil
}

type kneeStream struct {
	m      *kneeModel
	ctx    context.Context
	ttft   time.Duration
	i      int
	closed bool
}

func (s *kneeStream) Recv() (router.Delta, error) {
	if s.i == 4 {
		return router.Delta{}, io.EOF
	}
	d := 10 * time.Millisecond
	if s.i == 0 {
		d = s.ttft
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
		return router.Delta{}, s.ctx.Err()
	}
	s.i++
	dl := router.Delta{Text: "w"}
	if s.i == 4 {
		dl.FinishReason = router.FinishStop
	}
	return dl, nil
}

func (s *kneeStream) Close() error {
	if !s.closed {
		s.closed = true
		s.m.inflight.Add(-1)
	}
	return nil
}

// TestLimiterBehindRouter runs the limiter on the router's admission seam
// against engines whose TTFT rises past 6, 16 or 40 requests in flight,
// under a closed-loop load of 80 players, on synctest's clock: the window
// settles near the knee, the engine sees little more than the window,
// every request is served, and a request whose deadline passes while it
// waits for admission fails with its context's error and leaves nothing
// held.
func TestLimiterBehindRouter(t *testing.T) {
	for _, knee := range []int{6, 16, 40} {
		t.Run(fmt.Sprint("knee=", knee), func(t *testing.T) { testLimiterBehindRouter(t, knee) })
	}
}

func testLimiterBehindRouter(t *testing.T, knee int) {
	synctest.Test(t, func(t *testing.T) {
		m := &kneeModel{curve: engineCurve{base: 100 * time.Millisecond, knee: knee}}
		lim := mustLimiter(t, batching.LimiterOptions{TTFTTarget: 150 * time.Millisecond, MaxWindow: 64})
		r, err := router.New(router.Options{
			Tiers: []router.Tier{{
				Name:      "main",
				Replicas:  []router.Replica{{Name: "m", Model: m, Limiter: lim}},
				MaxQueued: 1000, QueueTimeout: time.Minute,
			}},
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ctx := context.Background()
		var stop atomic.Bool
		var wg sync.WaitGroup
		var served, failed atomic.Int64
		for p := range 80 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					_, err := r.Generate(ctx, router.Request{FairnessKey: fmt.Sprint("player-", p), PromptTokens: 200, MaxTokens: 4})
					if err != nil {
						failed.Add(1)
						t.Error(err)
						return
					}
					served.Add(1)
				}
			}()
		}
		time.Sleep(20 * time.Second)
		// The window moves in a sawtooth below the knee: sample it.
		var sum float64
		lo, hi := 1<<30, 0
		for range 100 {
			time.Sleep(100 * time.Millisecond)
			w := lim.Stats().Window
			sum += float64(w)
			lo, hi = min(lo, w), max(hi, w)
		}
		mean := sum / 100
		// The queue is deep now: a request with 50 ms to live expires in it.
		dctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		_, err = r.Generate(dctx, router.Request{})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 50*time.Millisecond {
			t.Errorf("request expiring in the queue: %v after %v, want context.DeadlineExceeded after 50ms", err, time.Since(start))
		}
		st := lim.Stats()
		want := float64(knee) * 7 / 6 // where TTFT reaches its target
		t.Logf("20s to 30s: window mean %.1f in [%d, %d] (knee at %.1f), engine peak %d, served %d, reasons %v", mean, lo, hi, want, m.peak.Load(), served.Load(), st.Reasons)
		if mean < 0.7*want || mean > 1.2*want+1 {
			t.Errorf("window mean %.1f, want near the knee (about %.1f)", mean, want)
		}
		if p := float64(m.peak.Load()); p > 1.6*want+2 {
			t.Errorf("engine peak in flight %v, want near the knee (about %.1f)", p, want)
		}
		stop.Store(true)
		wg.Wait()
		if st := lim.Stats(); st.InFlight != 0 || st.TokensInFlight != 0 {
			t.Errorf("after the load: limiter holds %d requests, %d tokens", st.InFlight, st.TokensInFlight)
		}
		if failed.Load() != 0 || served.Load() == 0 {
			t.Errorf("served %d, failed %d", served.Load(), failed.Load())
		}
	})
}

// TestLimiterOrderAndTokenWindow runs the limiter behind the router with a
// token window that fits two requests: the engine never has more than two
// in flight, and requests waiting for the limiter start in the router's
// order (importance first, then fair rounds across players).
func TestLimiterOrderAndTokenWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &orderModel{ttft: 100 * time.Millisecond}
		lim := mustLimiter(t, batching.LimiterOptions{InitialWindow: 16, MaxTokens: 1000})
		r, err := router.New(router.Options{
			Tiers: []router.Tier{{
				Name:      "main",
				Replicas:  []router.Replica{{Name: "m", Model: m, Limiter: lim}},
				MaxQueued: 100, QueueTimeout: time.Minute,
			}},
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var wg sync.WaitGroup
		send := func(npc, player string, imp router.Importance) {
			wg.Go(func() {
				// 400 prompt + 100 reply tokens: two fit in the window.
				req := router.Request{NPC: npc, FairnessKey: player, Importance: imp, PromptTokens: 400, MaxTokens: 100}
				if _, err := r.Generate(context.Background(), req); err != nil {
					t.Error(err)
				}
			})
			synctest.Wait()
		}
		send("first", "zed", router.Generic)
		send("second", "zed", router.Generic)
		send("g1", "ann", router.Generic)
		send("g2", "ann", router.Generic)
		send("g3", "bob", router.Generic)
		send("m1", "cat", router.Major)
		send("e1", "dan", router.Elite)
		wg.Wait()
		// Two start at each instant (the token window); which of the two
		// calls the model first is up to the scheduler.
		want := [][]string{{"first", "second"}, {"e1", "m1"}, {"g1", "g3"}, {"g2"}}
		if got := m.waves(); !cmp.Equal(got, want) {
			t.Errorf("start order %v, want %v", got, want)
		}
		if p := m.peak.Load(); p != 2 {
			t.Errorf("engine peak in flight %d, want 2 (the token window)", p)
		}
		if st := lim.Stats(); st.RefusedTokens == 0 || st.RefusedWindow != 0 {
			t.Errorf("refusals: tokens %d, window %d; want only token refusals", st.RefusedTokens, st.RefusedWindow)
		}
	})
}

// orderModel answers one token after ttft and records which requests (by
// Request.NPC) started at each instant, and its peak in flight.
type orderModel struct {
	ttft     time.Duration
	mu       sync.Mutex
	started  []string
	at       []time.Time
	inflight atomic.Int64
	peak     atomic.Int64
}

// waves returns the requests that started at each instant, sorted by name
// within one instant.
func (m *orderModel) waves() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out [][]string
	for i, npc := range m.started {
		if i == 0 || !m.at[i].Equal(m.at[i-1]) {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], npc)
	}
	for _, w := range out {
		slices.Sort(w)
	}
	return out
}

func (m *orderModel) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("orderModel: Generate not used")
}

func (m *orderModel) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	m.mu.Lock()
	m.started = append(m.started, req.NPC)
	m.at = append(m.at, time.Now())
	m.mu.Unlock()
	n := m.inflight.Add(1)
	for p := m.peak.Load(); n > p && !m.peak.CompareAndSwap(p, n); p = m.peak.Load() {
	}
	km := &kneeModel{curve: engineCurve{base: m.ttft, knee: 1 << 20}}
	s, _ := km.Stream(ctx, req)
	return &orderStream{Stream: s, m: m}, nil
}

type orderStream struct {
	router.Stream
	m    *orderModel
	done bool
}

func (s *orderStream) Close() error {
	if !s.done {
		s.done = true
		s.m.inflight.Add(-1)
	}
	return s.Stream.Close()
}
