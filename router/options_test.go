package router_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/router"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// ticking is an in-memory Model whose streams move a fake clock by TTFT
// before their first token and by Gap before each later one.
type ticking struct {
	clock     *fakeClock
	TTFT, Gap time.Duration
	Tokens    []string
}

func (m *ticking) Generate(context.Context, router.Request) (*router.Response, error) {
	panic("ticking: Generate not used")
}

func (m *ticking) Stream(context.Context, router.Request) (router.Stream, error) {
	return &tickingStream{m: m}, nil
}

type tickingStream struct {
	m *ticking
	i int
}

func (s *tickingStream) Recv() (router.Delta, error) {
	if s.i >= len(s.m.Tokens) {
		return router.Delta{}, io.EOF
	}
	if s.i == 0 {
		s.m.clock.Advance(s.m.TTFT)
	} else {
		s.m.clock.Advance(s.m.Gap)
	}
	d := router.Delta{Text: s.m.Tokens[s.i]}
	s.i++
	if s.i == len(s.m.Tokens) {
		d.FinishReason = router.FinishStop
	}
	return d, nil
}

func (s *tickingStream) Close() error { return nil }

// TestNowIsTheClock: receipts, latency stats and breaker cooldowns are
// measured by Options.Now, and Reconfigure keeps the clock New was given.
// The fake clock moves only when the test or the model moves it; no real
// time passes.
func TestNowIsTheClock(t *testing.T) {
	clock := newFakeClock()
	m := &ticking{clock: clock, TTFT: 250 * time.Millisecond, Gap: 40 * time.Millisecond, Tokens: []string{"a", "b", "c"}}
	opts := router.Options{
		Tiers: []router.Tier{
			{Name: "main", Replicas: []router.Replica{{Name: "m", Model: m}}},
			{Name: "flaky", Replicas: []router.Replica{{Name: "f", Model: failing{}}},
				Breaker: router.Breaker{ConsecutiveFailures: 1, Cooldown: time.Minute}},
		},
		Now: clock.Now,
	}
	r := mustRouter(t, opts)
	ctx := context.Background()

	res, err := r.Generate(ctx, router.Request{Tier: "main"})
	if err != nil {
		t.Fatal(err)
	}
	want := router.Timing{TTFT: 250 * time.Millisecond, PredictedTTFT: 0, Total: 330 * time.Millisecond}
	if res.Receipt.Timing != want {
		t.Errorf("Timing = %+v, want %+v", res.Receipt.Timing, want)
	}
	st, _ := r.Stats().Tier("main")
	if st.TTFT.Count != 1 || st.TTFT.Max < 240*time.Millisecond || st.TTFT.Max > 260*time.Millisecond {
		t.Errorf("TTFT stats = %+v, want one sample of about 250ms", st.TTFT)
	}
	if st.InterToken.Count != 2 || st.InterToken.Max < 38*time.Millisecond || st.InterToken.Max > 42*time.Millisecond {
		t.Errorf("inter-token stats = %+v, want two samples of about 40ms", st.InterToken)
	}

	breaker := func() router.BreakerState {
		st, _ := r.Stats().Tier("flaky")
		return st.Replicas[0].Breaker
	}
	if _, err := r.Generate(ctx, router.Request{Tier: "flaky"}); err == nil {
		t.Fatal("a failing tier succeeded")
	}
	if b := breaker(); b != router.BreakerOpen {
		t.Fatalf("after a failure: %v, want open", b)
	}
	// Reconfigure ignores Now: the router keeps the fake clock.
	opts.Now = nil
	if err := r.Reconfigure(opts); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute - time.Nanosecond)
	if b := breaker(); b != router.BreakerOpen {
		t.Errorf("a nanosecond before the cooldown ends: %v, want open", b)
	}
	clock.Advance(time.Nanosecond)
	if b := breaker(); b != router.BreakerHalfOpen {
		t.Errorf("when the cooldown ends: %v, want half_open", b)
	}
}

// recorder is an in-memory Model that records the temperature of the
// last request it streamed.
type recorder struct {
	mu   sync.Mutex
	temp *float64
}

func (m *recorder) Generate(context.Context, router.Request) (*router.Response, error) {
	panic("recorder: Generate not used")
}

func (m *recorder) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	m.mu.Lock()
	if req.Temperature != nil {
		v := *req.Temperature
		m.temp = &v
	}
	m.mu.Unlock()
	return instant{tokens: []string{"ok"}}.Stream(ctx, req)
}

// TestOptionsAreCopied: changing the Options after New (slices, maps, the
// temperature a tier points to) changes nothing in the router.
func TestOptionsAreCopied(t *testing.T) {
	rec := &recorder{}
	temp := 0.5
	opts := router.Options{
		Tiers: []router.Tier{
			{Name: "a", Replicas: []router.Replica{{Name: "ra", Model: rec}}, Temperature: &temp},
			{Name: "b", Replicas: []router.Replica{{Name: "rb", Model: instant{tokens: []string{"b"}}}}},
		},
		Fallbacks: [][]string{{"a", "b"}},
		Policy: router.Policy{
			Responsibilities: map[router.Responsibility]string{router.Greeting: "a"},
			Default:          "b",
		},
	}
	r := mustRouter(t, opts)

	temp = 2
	opts.Tiers[0].Name = "z"
	opts.Tiers[0].Replicas[0].Name = "rz"
	opts.Tiers[0].Replicas[0].Model = failing{}
	opts.Fallbacks[0][1] = "z"
	opts.Policy.Responsibilities[router.Greeting] = "b"
	opts.Tiers = append(opts.Tiers[:0], opts.Tiers[1])

	res, err := r.Generate(context.Background(), router.Request{Responsibility: router.Greeting})
	if err != nil {
		t.Fatal(err)
	}
	if res.Receipt.Tier != "a" || res.Receipt.Replica != "ra" || res.Text != "ok" {
		t.Errorf("served by %s/%s with %q, want a/ra with \"ok\"", res.Receipt.Tier, res.Receipt.Replica, res.Text)
	}
	rec.mu.Lock()
	got := rec.temp
	rec.mu.Unlock()
	if got == nil {
		t.Error("no temperature sent, want 0.5")
	} else if *got != 0.5 {
		t.Errorf("temperature sent = %v, want 0.5", *got)
	}
	var names []string
	for _, ts := range r.Stats().Tiers {
		names = append(names, ts.Name)
	}
	if len(names) != 2 || names[0] != "a" || names[1] != "b" {
		t.Errorf("tiers %v, want [a b]", names)
	}
}

// TestZeroPolicyIsDefault: the zero Policy means DefaultPolicy, keeping
// the tiers that exist, with tier2 the default when it exists.
func TestZeroPolicyIsDefault(t *testing.T) {
	m := instant{tokens: []string{"x"}}
	r := mustRouter(t, router.Options{Tiers: []router.Tier{
		{Name: "scripted", Replicas: []router.Replica{{Name: "s", Model: m}}},
		{Name: router.Tier1, Replicas: []router.Replica{{Name: "a", Model: m}}},
		{Name: router.Tier2, Replicas: []router.Replica{{Name: "b", Model: m}}},
	}})
	for _, tt := range []struct {
		req        router.Request
		wantTier   string
		wantReason router.Reason
	}{
		{router.Request{Responsibility: router.Greeting}, router.Tier1, router.ReasonResponsibility},
		{router.Request{Importance: router.Elite}, router.Tier2, router.ReasonImportance},
		{router.Request{Responsibility: router.StoryCritical}, router.Tier2, router.ReasonDefault}, // tier3 is absent
		{router.Request{}, router.Tier2, router.ReasonDefault},
	} {
		res, err := r.Generate(context.Background(), tt.req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Receipt.Tier != tt.wantTier || res.Receipt.Reasons[0] != tt.wantReason {
			t.Errorf("%+v: served by %s for %v, want %s for %s", tt.req, res.Receipt.Tier, res.Receipt.Reasons, tt.wantTier, tt.wantReason)
		}
	}
}
