package router

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// nopModel is an in-memory Model for the routing benchmarks.
type nopModel struct{}

func (nopModel) Generate(context.Context, Request) (*Response, error) {
	return &Response{Text: "x", FinishReason: FinishStop}, nil
}

func (nopModel) Stream(context.Context, Request) (Stream, error) { return &nopStream{}, nil }

type nopStream struct{ done bool }

func (s *nopStream) Recv() (Delta, error) {
	if s.done {
		return Delta{}, io.EOF
	}
	s.done = true
	return Delta{Text: "x", FinishReason: FinishStop, Usage: &Usage{PromptTokens: 10, CompletionTokens: 1}}, nil
}

func (s *nopStream) Close() error { return nil }

// benchLimiter is a Limiter as cheap as a real one can be: a mutex and
// two counters. It isolates what the seam costs the router.
type benchLimiter struct {
	mu               sync.Mutex
	inflight, tokens int
}

func (l *benchLimiter) TryAcquire(a Admission) bool {
	l.mu.Lock()
	l.inflight++
	l.tokens += a.Tokens
	l.mu.Unlock()
	return true
}

func (l *benchLimiter) Release(a Admission, _ LimitOutcome) {
	l.mu.Lock()
	l.inflight--
	l.tokens -= a.Tokens
	l.mu.Unlock()
}

func benchRouter(b *testing.B, withLimiter bool) *Router {
	opts := Options{Fallbacks: [][]string{{Tier3, Tier2, Tier1}}}
	for i, name := range []string{Tier1, Tier2, Tier3} {
		var reps []Replica
		for j := range 4 {
			rep := Replica{Name: fmt.Sprintf("%s-%d", name, j), Model: nopModel{}}
			if withLimiter {
				rep.Limiter = &benchLimiter{}
			}
			reps = append(reps, rep)
		}
		opts.Tiers = append(opts.Tiers, Tier{Name: name, Replicas: reps, MaxConcurrent: 20 >> i, MaxQueued: 16, TTFTTarget: 150 * time.Millisecond << i})
	}
	r, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// BenchmarkRouteAdmitRecord measures the router's own work per request:
// the policy decision, admission (tier and replica slots, breaker check,
// deadline prediction, affinity or power-of-two choice), request defaults,
// stats recording for a first token, a later token and the end, and the
// release that hands the slot on. The budget: ≤ 1 µs, 0 allocs.
func BenchmarkRouteAdmitRecord(b *testing.B) {
	for _, bc := range []struct {
		name    string
		req     Request
		limiter bool
	}{
		{"affinity", Request{Responsibility: QuestDialogue, Importance: Elite, AffinityKey: "conversation-42"}, false},
		{"p2c", Request{Responsibility: Greeting, Importance: Generic}, false},
		{"limiter", Request{Responsibility: QuestDialogue, Importance: Elite, AffinityKey: "conversation-42", FairnessKey: "player-7", PromptTokens: 900}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := benchRouter(b, bc.limiter)
			c := r.cfg.Load()
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			req := bc.req
			b.ReportAllocs()
			for b.Loop() {
				now := time.Now()
				t, _, err := c.route(&req)
				if err != nil {
					b.Fatal(err)
				}
				t.st.requests.Add(1)
				adm, err := t.admit(ctx, &req, now, t.next != nil)
				if err != nil {
					b.Fatal(err)
				}
				adm.l.rep.st.requests.Add(1)
				prepared := t.prepare(req, true)
				_ = prepared
				adm.l.recordFirst(now, 120*time.Millisecond)
				adm.l.recordToken(20 * time.Millisecond)
				adm.l.finish(outcomeSuccess, 0, now.Add(time.Second), now, 2, nil, LimitOutcome{})
			}
		})
	}
}

// BenchmarkStreamInMemory is the whole public path (Stream, Recv, Close)
// with an in-memory model, allocations included: the RoutedStream, the
// attempt, its context and stall timer, and the model's own stream.
func BenchmarkStreamInMemory(b *testing.B) {
	r := benchRouter(b, false)
	ctx := context.Background()
	req := Request{Responsibility: QuestDialogue, Importance: Elite, AffinityKey: "conversation-42"}
	b.ReportAllocs()
	for b.Loop() {
		s, err := r.Stream(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
		s.Close()
	}
}

func TestRouteAdmitRecordAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count is checked in full runs")
	}
	r, err := New(Options{Tiers: []Tier{{Name: Tier2, Replicas: []Replica{{Name: "a", Model: nopModel{}}, {Name: "b", Model: nopModel{}}}, MaxConcurrent: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := r.cfg.Load()
	ctx := context.Background()
	req := Request{Responsibility: QuestDialogue, AffinityKey: "k"}
	allocs := testing.AllocsPerRun(1000, func() {
		now := time.Now()
		tr, _, _ := c.route(&req)
		adm, err := tr.admit(ctx, &req, now, tr.next != nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = tr.prepare(req, true)
		adm.l.recordFirst(now, time.Millisecond)
		adm.l.recordToken(time.Millisecond)
		adm.l.finish(outcomeSuccess, 0, now, now, 1, nil, LimitOutcome{})
	})
	if allocs != 0 {
		t.Errorf("routing, admission and stats recording allocate %v times per request, want 0", allocs)
	}
}
