package router

import (
	"context"
	"fmt"
	"io"
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

func benchRouter(b *testing.B) *Router {
	opts := Options{Fallbacks: [][]string{{Tier3, Tier2, Tier1}}}
	for i, name := range []string{Tier1, Tier2, Tier3} {
		var reps []Replica
		for j := range 4 {
			reps = append(reps, Replica{Name: fmt.Sprintf("%s-%d", name, j), Model: nopModel{}})
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
		name string
		req  Request
	}{
		{"affinity", Request{Responsibility: QuestDialogue, Importance: Elite, AffinityKey: "conversation-42"}},
		{"p2c", Request{Responsibility: Greeting, Importance: Generic}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := benchRouter(b)
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
				adm.l.finish(outcomeSuccess, 0, now.Add(time.Second), now, 2, nil)
			}
		})
	}
}

// BenchmarkStreamInMemory is the whole public path (Stream, Recv, Close)
// with an in-memory model, allocations included: the RoutedStream, the
// attempt, its context and stall timer, and the model's own stream.
func BenchmarkStreamInMemory(b *testing.B) {
	r := benchRouter(b)
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
		adm.l.finish(outcomeSuccess, 0, now, now, 1, nil)
	})
	if allocs != 0 {
		t.Errorf("routing, admission and stats recording allocate %v times per request, want 0", allocs)
	}
}
