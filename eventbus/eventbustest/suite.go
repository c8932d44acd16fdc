// Package eventbustest is the conformance suite every eventbus transport
// passes: ordering, patterns, overflow policies, close semantics, retries and
// dead letters, typed events, history and redelivery. Checks for guarantees a
// transport does not offer (see eventbus.Features) are skipped.
//
//	func TestConformance(t *testing.T) {
//		eventbustest.Run(t, eventbustest.Harness{
//			Features: eventbus.MemoryFeatures(),
//			Backend: func(t *testing.T) eventbustest.Opener {
//				return func(opts eventbus.Options) *eventbus.Bus { ... }
//			},
//		})
//	}
package eventbustest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Opener opens a Bus on one test's backend. Every Bus an Opener returns
// shares that backend (where Features.CrossInstance), and the Opener closes
// them when the test ends.
type Opener func(opts eventbus.Options) *eventbus.Bus

// Harness describes a transport under test.
type Harness struct {
	// Features are the transport's guarantees; checks that need one it
	// lacks are skipped.
	Features eventbus.Features
	// Backend prepares an isolated backend (a fresh key prefix, say) for
	// one test and returns an Opener for it.
	Backend func(t *testing.T) Opener
	// Timeout bounds each wait (default 10s).
	Timeout time.Duration
}

// The guarantees some checks need; the others run on every transport.
func history(f eventbus.Features) bool       { return f.History }
func redelivery(f eventbus.Features) bool    { return f.Redelivery }
func crossInstance(f eventbus.Features) bool { return f.CrossInstance }
func shared(f eventbus.Features) bool        { return f.SharedSubscriptions }

// Run runs the conformance suite as subtests of t: a table of named checks,
// those that need a guarantee skipped where h.Features lacks it. Checks for
// guarantees some transports lack (History, PublisherBackpressure) check
// the documented behaviour either way (History without support returns
// eventbus.ErrNotSupported).
func Run(t *testing.T, h Harness) {
	if h.Timeout == 0 {
		h.Timeout = 10 * time.Second
	}
	tests := []struct {
		name string
		need func(eventbus.Features) bool // nil: every transport
		fn   func(*testing.T, *Harness)
	}{
		{"Envelope", nil, testEnvelope},
		{"Patterns", nil, testPatterns},
		{"OrderingSingleWorker", nil, testOrdering},
		{"OrderingPerKeyConcurrent", nil, testOrderingPerKey},
		{"CloseRemovesExactlyThatSubscription", nil, testCloseExact},
		{"CloseFromHandler", nil, testCloseFromHandler},
		{"OverflowDropNewest", nil, func(t *testing.T, h *Harness) { testOverflow(t, h, eventbus.DropNewest) }},
		{"OverflowDropOldest", nil, func(t *testing.T, h *Harness) { testOverflow(t, h, eventbus.DropOldest) }},
		{"OverflowKeepLatest", nil, func(t *testing.T, h *Harness) { testOverflow(t, h, eventbus.KeepLatest) }},
		{"OverflowBlock", nil, testOverflowBlock},
		{"RetryThenSucceed", nil, testRetry},
		{"DeadLetter", nil, testDeadLetter},
		{"PanicRecovered", nil, testPanic},
		{"GoexitRecovered", nil, testGoexit},
		{"TypedJSON", nil, testTypedJSON},
		{"TypedProto", nil, testTypedProto},
		{"UndecodableToDeadLetter", nil, testUndecodable},
		{"BadInput", nil, testBadInput},
		{"EventTooLarge", nil, testEventTooLarge},
		{"Stats", nil, testStats},
		{"History", nil, testHistory},
		{"SubscribeFromReplay", history, testReplaySubscribe},
		{"Redelivery", redelivery, testRedelivery},
		{"Dedup", nil, testDedup},
		{"CrossInstance", crossInstance, testCrossInstance},
		{"SharedSubscription", shared, testShared},
		{"ShutdownDrains", nil, testShutdown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.need != nil && !tc.need(h.Features) {
				t.Skip("the transport does not offer this guarantee (Harness.Features)")
			}
			tc.fn(t, &h)
		})
	}
}

func (h *Harness) open(t *testing.T) (Opener, *eventbus.Bus) {
	o := h.Backend(t)
	return o, o(eventbus.Options{})
}

// collector records what a handler saw.
type collector struct {
	mu   sync.Mutex
	evs  []eventbus.Event
	cond chan struct{}
}

func newCollector() *collector { return &collector{cond: make(chan struct{}, 1)} }

func (c *collector) handle(_ context.Context, ev eventbus.Event) error {
	c.mu.Lock()
	c.evs = append(c.evs, ev)
	c.mu.Unlock()
	select {
	case c.cond <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) snapshot() []eventbus.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.evs)
}

func (c *collector) wait(t *testing.T, n int, timeout time.Duration) []eventbus.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if evs := c.snapshot(); len(evs) >= n {
			return evs
		}
		select {
		case <-c.cond:
		case <-deadline:
			evs := c.snapshot()
			t.Fatalf("got %d events, want %d", len(evs), n)
			return nil
		}
	}
}

// quiet checks that no more than n events arrive within d.
func (c *collector) quiet(t *testing.T, n int, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if got := len(c.snapshot()); got > n {
		t.Fatalf("got %d events, want no more than %d", got, n)
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func mustSub(t *testing.T, b *eventbus.Bus, pattern string, h eventbus.Handler, opts eventbus.SubscribeOptions) *eventbus.Subscription {
	t.Helper()
	s, err := b.Subscribe(context.Background(), pattern, h, opts)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", pattern, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPub(t *testing.T, b *eventbus.Bus, topic string, ev eventbus.Event) {
	t.Helper()
	if err := b.Publish(context.Background(), topic, ev); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

func seq(ev eventbus.Event) int {
	n, err := strconv.Atoi(string(ev.Payload))
	if err != nil {
		return -1
	}
	return n
}

func seqs(evs []eventbus.Event) []int {
	out := make([]int, len(evs))
	for i, e := range evs {
		out[i] = seq(e)
	}
	return out
}

func payload(i int) []byte { return []byte(strconv.Itoa(i)) }

func testEnvelope(t *testing.T, h *Harness) {
	_, b := h.open(t)
	c := newCollector()
	mustSub(t, b, "world.time.dawn", c.handle, eventbus.SubscribeOptions{})
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	want := eventbus.Event{
		Type: "worldtime.PhaseChanged", Source: "test-source", Time: at, Key: "realm-7",
		Headers: map[string]string{"trace": "abc"}, Payload: []byte(`{"phase":"dawn"}`),
	}
	mustPub(t, b, "world.time.dawn", want)
	mustPub(t, b, "world.time.dawn", eventbus.Event{Payload: []byte("x")})
	got := c.wait(t, 2, h.Timeout)
	e := got[0]
	if e.ID.IsZero() || e.Topic != "world.time.dawn" || e.Type != want.Type || e.Source != want.Source ||
		!e.Time.Equal(at) || e.Key != want.Key || e.Headers["trace"] != "abc" || string(e.Payload) != string(want.Payload) {
		t.Fatalf("envelope not preserved: %+v", e)
	}
	d := got[1]
	if d.ID.IsZero() || d.Source == "" || d.Time.IsZero() || time.Since(d.Time) > time.Minute {
		t.Fatalf("defaults not stamped: %+v", d)
	}
	if d.ID.Compare(e.ID) <= 0 {
		t.Fatalf("IDs not increasing: %s then %s", e.ID, d.ID)
	}
	if _, err := eventbus.ParseID(d.ID.String()); err != nil {
		t.Fatal(err)
	}
}

func testPatterns(t *testing.T, h *Harness) {
	_, b := h.open(t)
	star, tail, exact := newCollector(), newCollector(), newCollector()
	mustSub(t, b, "world.time.*", star.handle, eventbus.SubscribeOptions{})
	mustSub(t, b, "npc.>", tail.handle, eventbus.SubscribeOptions{})
	mustSub(t, b, "world.time", exact.handle, eventbus.SubscribeOptions{})
	topics := []string{"world.time.dawn", "world.time", "world.time.dawn.early", "npc.guard", "npc.guard.spawned", "npc", "world.time.dusk", "npcs.x"}
	for i, tp := range topics {
		mustPub(t, b, tp, eventbus.Event{Payload: payload(i)})
	}
	check := func(c *collector, want ...string) {
		t.Helper()
		got := c.wait(t, len(want), h.Timeout)
		c.quiet(t, len(want), 100*time.Millisecond)
		var gotTopics []string
		for _, e := range got {
			gotTopics = append(gotTopics, e.Topic)
		}
		slices.Sort(gotTopics)
		slices.Sort(want)
		if !slices.Equal(gotTopics, want) {
			t.Fatalf("got topics %v, want %v", gotTopics, want)
		}
	}
	check(star, "world.time.dawn", "world.time.dusk")
	check(tail, "npc.guard", "npc.guard.spawned")
	check(exact, "world.time")
}

func testOrdering(t *testing.T, h *Harness) {
	_, b := h.open(t)
	c := newCollector()
	mustSub(t, b, "order.one", c.handle, eventbus.SubscribeOptions{QueueSize: 64})
	const n = 2000
	for i := 0; i < n; i++ {
		mustPub(t, b, "order.one", eventbus.Event{Payload: payload(i)})
	}
	got := seqs(c.wait(t, n, h.Timeout))
	for i := range got {
		if got[i] != i {
			t.Fatalf("event %d arrived at position %d: %v...", got[i], i, got[max(0, i-3):min(len(got), i+3)])
		}
	}
}

func testOrderingPerKey(t *testing.T, h *Harness) {
	_, b := h.open(t)
	var mu sync.Mutex
	last := map[string]int{}
	var bad atomic.Value
	var count atomic.Int64
	handler := func(_ context.Context, ev eventbus.Event) error {
		n := seq(ev)
		mu.Lock()
		if p, ok := last[ev.Key]; ok && n <= p {
			bad.Store(fmt.Sprintf("key %s: %d after %d", ev.Key, n, p))
		}
		last[ev.Key] = n
		mu.Unlock()
		if n%7 == 0 {
			time.Sleep(50 * time.Microsecond) // let workers interleave
		}
		count.Add(1)
		return nil
	}
	mustSub(t, b, "order.keyed", handler, eventbus.SubscribeOptions{Concurrency: 4, QueueSize: 128})
	const n = 2000
	evs := make([]eventbus.Event, 0, n)
	for i := 0; i < n; i++ {
		evs = append(evs, eventbus.Event{Topic: "order.keyed", Key: "k" + strconv.Itoa(i%13), Payload: payload(i)})
	}
	if err := b.PublishBatch(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	eventually(t, h.Timeout, "all keyed events", func() bool { return count.Load() == n })
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
}

func testCloseExact(t *testing.T, h *Harness) {
	_, b := h.open(t)
	a, c := newCollector(), newCollector()
	// The same handler value twice: Close must still remove only one.
	var hits atomic.Int64
	shared := func(ctx context.Context, ev eventbus.Event) error { hits.Add(1); return nil }
	s1 := mustSub(t, b, "close.t", shared, eventbus.SubscribeOptions{})
	s2 := mustSub(t, b, "close.t", shared, eventbus.SubscribeOptions{})
	sa := mustSub(t, b, "close.t", a.handle, eventbus.SubscribeOptions{})
	mustSub(t, b, "close.t", c.handle, eventbus.SubscribeOptions{})
	mustPub(t, b, "close.t", eventbus.Event{Payload: payload(0)})
	a.wait(t, 1, h.Timeout)
	c.wait(t, 1, h.Timeout)
	eventually(t, h.Timeout, "both shared handlers", func() bool { return hits.Load() == 2 })

	if err := sa.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sa.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sa.Done():
	case <-time.After(h.Timeout):
		t.Fatal("Done not closed after Close")
	}
	mustPub(t, b, "close.t", eventbus.Event{Payload: payload(1)})
	c.wait(t, 2, h.Timeout)
	eventually(t, h.Timeout, "remaining shared handler", func() bool { return hits.Load() == 3 })
	a.quiet(t, 1, 100*time.Millisecond)
	if hits.Load() != 3 {
		t.Fatalf("closed subscription still called: %d", hits.Load())
	}
	_ = s2
}

func testCloseFromHandler(t *testing.T, h *Harness) {
	_, b := h.open(t)
	var sub atomic.Pointer[eventbus.Subscription]
	var calls atomic.Int64
	ready := make(chan struct{})
	s := mustSub(t, b, "close.self", func(ctx context.Context, ev eventbus.Event) error {
		<-ready
		calls.Add(1)
		return sub.Load().Close()
	}, eventbus.SubscribeOptions{})
	sub.Store(s)
	close(ready)
	for i := 0; i < 5; i++ {
		_ = b.Publish(context.Background(), "close.self", eventbus.Event{Payload: payload(i)})
	}
	select {
	case <-s.Done():
	case <-time.After(h.Timeout):
		t.Fatal("subscription closed from its handler never finished")
	}
	if calls.Load() != 1 {
		t.Fatalf("handler called %d times after closing itself", calls.Load())
	}
}

// gate is a handler that blocks on the first event until released.
type gate struct {
	collector
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate() *gate {
	return &gate{collector: collector{cond: make(chan struct{}, 1)}, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) handle(ctx context.Context, ev eventbus.Event) error {
	first := false
	g.once.Do(func() { first = true; close(g.entered) })
	if first {
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err() // not handled: leave it for redelivery
		}
	}
	return g.collector.handle(ctx, ev)
}

func testOverflow(t *testing.T, h *Harness, policy eventbus.Overflow) {
	_, b := h.open(t)
	g := newGate()
	const qsize, n = 4, 20
	s := mustSub(t, b, "flow.t", g.handle, eventbus.SubscribeOptions{QueueSize: qsize, Overflow: policy})
	key := func(i int) string { return "k" + strconv.Itoa(i%4) }
	mustPub(t, b, "flow.t", eventbus.Event{Key: key(0), Payload: payload(0)})
	select {
	case <-g.entered:
	case <-time.After(h.Timeout):
		t.Fatal("handler never entered")
	}
	for i := 1; i < n; i++ {
		mustPub(t, b, "flow.t", eventbus.Event{Key: key(i), Payload: payload(i)})
	}
	eventually(t, h.Timeout, "all events received or dropped", func() bool {
		st := s.Stats()
		return st.Received-1+st.Dropped.Total()-st.Dropped.Superseded-st.Dropped.Oldest == n-1
	})
	close(g.release)
	var want []int
	switch policy {
	case eventbus.DropNewest:
		want = []int{0, 1, 2, 3, 4}
	case eventbus.DropOldest:
		want = []int{0, 16, 17, 18, 19}
	case eventbus.KeepLatest:
		want = []int{0, 17, 18, 19, 16} // keys 1,2,3,0 keep their first queue slots
	}
	got := seqs(g.wait(t, len(want), h.Timeout))
	g.quiet(t, len(want), 100*time.Millisecond)
	if !slices.Equal(got, want) {
		t.Fatalf("%v delivered %v, want %v", policy, got, want)
	}
	st := s.Stats()
	var dropped uint64
	switch policy {
	case eventbus.DropNewest:
		dropped = st.Dropped.Newest
	case eventbus.DropOldest:
		dropped = st.Dropped.Oldest
	case eventbus.KeepLatest:
		dropped = st.Dropped.Superseded
	}
	if dropped != uint64(n-len(want)) || st.Dropped.Total() != dropped {
		t.Fatalf("%v: dropped %+v, want %d of that reason", policy, st.Dropped, n-len(want))
	}
	if ts := b.Stats().Topics["flow.t"]; ts.Dropped.Total() != dropped {
		t.Fatalf("topic stats dropped %+v", ts.Dropped)
	}
}

func testOverflowBlock(t *testing.T, h *Harness) {
	_, b := h.open(t)
	g := newGate()
	fast := newCollector()
	const qsize = 4
	s := mustSub(t, b, "flow.block", g.handle, eventbus.SubscribeOptions{QueueSize: qsize, MaxBlock: 50 * time.Millisecond})
	mustSub(t, b, "flow.block", fast.handle, eventbus.SubscribeOptions{QueueSize: 64})
	mustPub(t, b, "flow.block", eventbus.Event{Payload: payload(0)})
	<-g.entered
	for i := 1; i <= qsize; i++ {
		mustPub(t, b, "flow.block", eventbus.Event{Payload: payload(i)})
	}
	if !h.Features.PublisherBackpressure {
		// Remote transports keep the backlog: nothing may be lost.
		for i := qsize + 1; i < 20; i++ {
			mustPub(t, b, "flow.block", eventbus.Event{Payload: payload(i)})
		}
		fast.wait(t, 20, h.Timeout)
		close(g.release)
		got := seqs(g.wait(t, 20, h.Timeout))
		if !slices.Equal(got, seqs(fast.snapshot())) {
			t.Fatalf("blocked subscriber got %v", got)
		}
		if d := s.Stats().Dropped.Total(); d != 0 {
			t.Fatalf("dropped %d", d)
		}
		return
	}
	start := time.Now()
	mustPub(t, b, "flow.block", eventbus.Event{Payload: payload(5)})
	if el := time.Since(start); el < 40*time.Millisecond || el > 5*time.Second {
		t.Fatalf("Publish into a full Block queue took %v, want about MaxBlock", el)
	}
	start = time.Now()
	mustPub(t, b, "flow.block", eventbus.Event{Payload: payload(6)})
	if el := time.Since(start); el > 30*time.Millisecond {
		t.Fatalf("Publish to a lagging subscriber took %v, want no wait", el)
	}
	// A cancelled publisher gives up at once and says why.
	st := s.Stats()
	if st.Dropped.Timeout != 1 || st.Dropped.Lagging != 1 || !st.Lagging {
		t.Fatalf("drops %+v lagging=%v", st.Dropped, st.Lagging)
	}
	fast.wait(t, 7, h.Timeout) // the other subscriber was not held up
	close(g.release)
	got := seqs(g.wait(t, 5, h.Timeout))
	if !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("got %v", got)
	}
	// Drained: no longer lagging, blocking again with a cancellable ctx.
	eventually(t, h.Timeout, "drain", func() bool { return s.Stats().QueueDepth == 0 })
	mustPub(t, b, "flow.block", eventbus.Event{Payload: payload(7)})
	g.wait(t, 6, h.Timeout)
	if s.Stats().Lagging {
		t.Fatal("still lagging after draining")
	}
}

func testRetry(t *testing.T, h *Harness) {
	_, b := h.open(t)
	var calls atomic.Int64
	done := make(chan struct{})
	s := mustSub(t, b, "retry.t", func(ctx context.Context, ev eventbus.Event) error {
		if calls.Add(1) < 3 {
			return errors.New("transient")
		}
		close(done)
		return nil
	}, eventbus.SubscribeOptions{Retry: eventbus.Retry{MaxAttempts: 5, Initial: time.Millisecond}})
	mustPub(t, b, "retry.t", eventbus.Event{Payload: payload(1)})
	select {
	case <-done:
	case <-time.After(h.Timeout):
		t.Fatal("never succeeded")
	}
	eventually(t, h.Timeout, "stats", func() bool {
		st := s.Stats()
		return st.Delivered == 1 && st.Retried == 2 && st.Failed == 2 && st.DeadLettered == 0
	})
}

func testDeadLetter(t *testing.T, h *Harness) {
	_, b := h.open(t)
	dl := newCollector()
	mustSub(t, b, "deadletter.dl.t", dl.handle, eventbus.SubscribeOptions{})
	var calls atomic.Int64
	s := mustSub(t, b, "dl.t", func(ctx context.Context, ev eventbus.Event) error {
		calls.Add(1)
		return errors.New("boom")
	}, eventbus.SubscribeOptions{Name: "dl-worker", Retry: eventbus.Retry{MaxAttempts: 3, Initial: time.Millisecond}})
	mustPub(t, b, "dl.t", eventbus.Event{Type: "x", Key: "k", Payload: payload(9)})
	got := dl.wait(t, 1, h.Timeout)[0]
	if got.Topic != "deadletter.dl.t" || seq(got) != 9 || got.Key != "k" ||
		got.Headers[eventbus.HeaderDeadLetterError] != "boom" || got.Headers[eventbus.HeaderDeadLetterTopic] != "dl.t" ||
		got.Headers[eventbus.HeaderDeadLetterAttempts] != "3" || got.Headers[eventbus.HeaderDeadLetterSubscription] != "dl-worker" {
		t.Fatalf("dead letter %+v", got)
	}
	if calls.Load() != 3 {
		t.Fatalf("handler called %d times, want 3", calls.Load())
	}
	eventually(t, h.Timeout, "stats", func() bool {
		st := s.Stats()
		return st.DeadLettered == 1 && st.Retried == 2 && b.Stats().Topics["dl.t"].DeadLettered == 1
	})
}

func testPanic(t *testing.T, h *Harness) {
	_, b := h.open(t)
	dl := newCollector()
	mustSub(t, b, "deadletter.panic.t", dl.handle, eventbus.SubscribeOptions{})
	ok := newCollector()
	s := mustSub(t, b, "panic.t", func(ctx context.Context, ev eventbus.Event) error {
		if seq(ev) == 0 {
			panic("handler bug")
		}
		return ok.handle(ctx, ev)
	}, eventbus.SubscribeOptions{Retry: eventbus.Retry{MaxAttempts: 2, Initial: time.Millisecond}})
	mustPub(t, b, "panic.t", eventbus.Event{Payload: payload(0)})
	mustPub(t, b, "panic.t", eventbus.Event{Payload: payload(1)})
	ok.wait(t, 1, h.Timeout)
	got := dl.wait(t, 1, h.Timeout)[0]
	if seq(got) != 0 || got.Headers[eventbus.HeaderDeadLetterError] == "" {
		t.Fatalf("dead letter %+v", got)
	}
	eventually(t, h.Timeout, "panic stats", func() bool { return s.Stats().Panics == 2 })
}

// testGoexit: a handler call that ends in runtime.Goexit is a failed call
// like a panic (retried, then dead-lettered), and the subscription goes on.
func testGoexit(t *testing.T, h *Harness) {
	_, b := h.open(t)
	dl := newCollector()
	mustSub(t, b, "deadletter.goexit.t", dl.handle, eventbus.SubscribeOptions{})
	ok := newCollector()
	s := mustSub(t, b, "goexit.t", func(ctx context.Context, ev eventbus.Event) error {
		if seq(ev) == 0 {
			runtime.Goexit()
		}
		return ok.handle(ctx, ev)
	}, eventbus.SubscribeOptions{Retry: eventbus.Retry{MaxAttempts: 2, Initial: time.Millisecond}})
	for i := range 3 {
		mustPub(t, b, "goexit.t", eventbus.Event{Payload: payload(i)})
	}
	if got := seqs(ok.wait(t, 2, h.Timeout)); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("handled %v, want [1 2]", got)
	}
	got := dl.wait(t, 1, h.Timeout)[0]
	if seq(got) != 0 || got.Headers[eventbus.HeaderDeadLetterError] == "" {
		t.Fatalf("dead letter %+v", got)
	}
	eventually(t, h.Timeout, "goexit stats", func() bool {
		st := s.Stats()
		return st.Goexits == 2 && st.Failed == 2 && st.Panics == 0
	})
}

// PhaseChanged is the typed event of the typed tests.
type PhaseChanged struct {
	Phase string `json:"phase"`
	Hour  int    `json:"hour"`
}

func testTypedJSON(t *testing.T, h *Harness) {
	_, b := h.open(t)
	got := make(chan PhaseChanged, 1)
	var typ atomic.Value
	mustSub(t, b, "world.time.phase", eventbus.Handle(func(ctx context.Context, ev eventbus.Event, v PhaseChanged) error {
		typ.Store(ev.Type)
		got <- v
		return nil
	}), eventbus.SubscribeOptions{})
	want := PhaseChanged{Phase: "dusk", Hour: 19}
	if err := eventbus.Publish(context.Background(), b, "world.time.phase", want, eventbus.WithKey("realm-1")); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != want {
			t.Fatalf("got %+v", v)
		}
		if typ.Load() != "eventbustest.PhaseChanged" {
			t.Fatalf("type %v", typ.Load())
		}
	case <-time.After(h.Timeout):
		t.Fatal("typed event not delivered")
	}
}

func testTypedProto(t *testing.T, h *Harness) {
	_, b := h.open(t)
	got := make(chan string, 1)
	mustSub(t, b, "audio.cue", eventbus.Handle(func(ctx context.Context, ev eventbus.Event, v *wrapperspb.StringValue) error {
		if ev.Type != "google.protobuf.StringValue" {
			return fmt.Errorf("type %q", ev.Type)
		}
		got <- v.GetValue()
		return nil
	}), eventbus.SubscribeOptions{})
	if err := eventbus.Publish(context.Background(), b, "audio.cue", wrapperspb.String("thunder")); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != "thunder" {
			t.Fatalf("got %q", v)
		}
	case <-time.After(h.Timeout):
		t.Fatal("proto event not delivered")
	}
}

func testUndecodable(t *testing.T, h *Harness) {
	_, b := h.open(t)
	dl := newCollector()
	mustSub(t, b, "deadletter.typed.bad", dl.handle, eventbus.SubscribeOptions{})
	var calls atomic.Int64
	s := mustSub(t, b, "typed.bad", eventbus.Handle(func(ctx context.Context, ev eventbus.Event, v PhaseChanged) error {
		calls.Add(1)
		return nil
	}), eventbus.SubscribeOptions{Retry: eventbus.Retry{MaxAttempts: 5, Initial: time.Millisecond}})
	mustPub(t, b, "typed.bad", eventbus.Event{Payload: []byte("{not json")})
	got := dl.wait(t, 1, h.Timeout)[0]
	if calls.Load() != 0 || got.Headers[eventbus.HeaderDeadLetterAttempts] != "1" {
		t.Fatalf("decode failure retried or handled: calls=%d headers=%v", calls.Load(), got.Headers)
	}
	if e := got.Headers[eventbus.HeaderDeadLetterError]; e == "" {
		t.Fatal("no decode error recorded")
	}
	if st := s.Stats(); st.Retried != 0 {
		t.Fatalf("retried %d", st.Retried)
	}
	if _, err := eventbus.Decode[PhaseChanged](got); !errors.Is(err, eventbus.ErrDecode) {
		t.Fatalf("Decode error %v", err)
	}
}

func testBadInput(t *testing.T, h *Harness) {
	o := h.Backend(t)
	b := o(eventbus.Options{MaxPayload: 16})
	ctx := context.Background()
	for _, tp := range []string{"", ".", "a..b", "a.", ".a", "a b", "a.*", "a.>", "a*b", "x\n"} {
		if err := b.Publish(ctx, tp, eventbus.Event{}); !errors.Is(err, eventbus.ErrInvalidTopic) {
			t.Errorf("Publish(%q) = %v, want ErrInvalidTopic", tp, err)
		}
	}
	for _, p := range []string{"", "a..b", "a.>.b", "a*", ">x", "a.b.", " "} {
		if _, err := b.Subscribe(ctx, p, func(context.Context, eventbus.Event) error { return nil }, eventbus.SubscribeOptions{}); !errors.Is(err, eventbus.ErrInvalidPattern) {
			t.Errorf("Subscribe(%q) = %v, want ErrInvalidPattern", p, err)
		}
	}
	err := b.Publish(ctx, "big.t", eventbus.Event{Payload: make([]byte, 17)})
	var pe *eventbus.PayloadTooLargeError
	if !errors.As(err, &pe) || pe.Size != 17 || pe.Limit != 16 || !errors.Is(err, eventbus.ErrPayloadTooLarge) {
		t.Errorf("oversize Publish = %v", err)
	}
	if err := b.Publish(ctx, "big.t", eventbus.Event{Payload: make([]byte, 16)}); err != nil {
		t.Errorf("Publish at the limit: %v", err)
	}
	if _, err := b.History(ctx, "a.*", eventbus.Position{}, 0); !errors.Is(err, eventbus.ErrInvalidTopic) {
		t.Errorf("History(pattern) = %v", err)
	}
}

// testEventTooLarge checks that the envelope as a whole is bounded, not
// only its payload: oversized headers, keys, types and sources are refused
// with an *EventTooLargeError, reach no subscriber and are not retained.
func testEventTooLarge(t *testing.T, h *Harness) {
	const limit = 256
	o := h.Backend(t)
	b := o(eventbus.Options{MaxEventBytes: limit, Source: "src"})
	ctx := context.Background()
	got := newCollector()
	mustSub(t, b, "big.>", got.handle, eventbus.SubscribeOptions{})
	big := string(make([]byte, limit))
	cases := []struct {
		name string
		ev   eventbus.Event
	}{
		{"header value", eventbus.Event{Headers: map[string]string{"h": big}}},
		{"header key", eventbus.Event{Headers: map[string]string{big: "v"}}},
		{"many headers", eventbus.Event{Headers: func() map[string]string {
			m := map[string]string{}
			for i := range 64 {
				m[strconv.Itoa(i)] = "0123456789"
			}
			return m
		}()}},
		{"key", eventbus.Event{Key: big}},
		{"type", eventbus.Event{Type: big}},
		{"source", eventbus.Event{Source: big}},
		{"payload", eventbus.Event{Payload: []byte(big)}},
		{"payload plus header", eventbus.Event{Payload: make([]byte, limit-20), Headers: map[string]string{"trace": "0123456789abcdef"}}},
	}
	for _, c := range cases {
		err := b.Publish(ctx, "big.t", c.ev)
		var te *eventbus.EventTooLargeError
		if !errors.As(err, &te) || !errors.Is(err, eventbus.ErrEventTooLarge) || te.Limit != limit || te.Size <= limit || te.Topic != "big.t" {
			t.Errorf("%s: Publish = %v, want *EventTooLargeError over %d bytes", c.name, err, limit)
		}
		if err := b.PublishBatch(ctx, []eventbus.Event{{Topic: "big.ok", Payload: payload(1)}, withTopic(c.ev, "big.t")}); !errors.Is(err, eventbus.ErrEventTooLarge) && !errors.Is(err, eventbus.ErrPayloadTooLarge) {
			t.Errorf("%s: PublishBatch = %v, want ErrEventTooLarge", c.name, err)
		}
	}
	// At the limit exactly: topic (5) + source (3) + header (1+7) + payload.
	atLimit := eventbus.Event{Headers: map[string]string{"h": "1234567"}, Payload: make([]byte, limit-5-3-8)}
	if err := b.Publish(ctx, "big.t", atLimit); err != nil {
		t.Fatalf("Publish at the limit: %v", err)
	}
	evs := got.wait(t, 1, h.Timeout)
	got.quiet(t, 1+len(cases), 50*time.Millisecond) // the batches' small events may arrive
	for _, ev := range evs {
		if ev.Topic == "big.t" && len(ev.Payload) != len(atLimit.Payload) {
			t.Fatalf("an oversized event reached a subscriber: %d-byte payload, %d headers", len(ev.Payload), len(ev.Headers))
		}
	}
	if h.Features.History {
		hist, err := b.History(ctx, "big.t", eventbus.FromStart(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 {
			t.Fatalf("history holds %d events of big.t, want only the one at the limit", len(hist))
		}
	}
}

func withTopic(ev eventbus.Event, topic string) eventbus.Event {
	ev.Topic = topic
	return ev
}

func testStats(t *testing.T, h *Harness) {
	b := h.Backend(t)(eventbus.Options{TopicLatency: true})
	c := newCollector()
	s := mustSub(t, b, "stats.>", c.handle, eventbus.SubscribeOptions{Name: "stats-sub"})
	for i := 0; i < 10; i++ {
		mustPub(t, b, "stats.a", eventbus.Event{Payload: payload(i)})
	}
	for i := 0; i < 5; i++ {
		mustPub(t, b, "stats.b", eventbus.Event{Payload: payload(i)})
	}
	c.wait(t, 15, h.Timeout)
	eventually(t, h.Timeout, "stats", func() bool {
		st := b.Stats()
		return st.Topics["stats.a"].Delivered == 10 && st.Topics["stats.b"].Delivered == 5
	})
	st := b.Stats()
	if st.Topics["stats.a"].Published != 10 || st.Topics["stats.b"].Published != 5 || st.Published != 15 {
		t.Fatalf("published %+v", st.Topics)
	}
	ss := s.Stats()
	if ss.Delivered != 15 || ss.Received != 15 || ss.Latency.Count != 15 || ss.Latency.P99 <= 0 || ss.Name != "stats-sub" || ss.Pattern != "stats.>" {
		t.Fatalf("subscription stats %+v", ss)
	}
	if len(st.Subscriptions) != 1 || st.Subscriptions[0].ID != ss.ID || st.Latency.Count != 15 {
		t.Fatalf("bus stats %+v", st)
	}
	if st.Topics["stats.a"].Latency.Count != 10 {
		t.Fatalf("topic latency %+v", st.Topics["stats.a"].Latency)
	}
	if !st.Transport.Connected {
		t.Fatalf("transport %+v", st.Transport)
	}
}

func testHistory(t *testing.T, h *Harness) {
	_, b := h.open(t)
	ctx := context.Background()
	if !h.Features.History {
		if _, err := b.History(ctx, "hist.t", eventbus.FromStart(), 0); !errors.Is(err, eventbus.ErrNotSupported) {
			t.Fatalf("History without support = %v", err)
		}
		return
	}
	var ids []eventbus.ID
	for i := 0; i < 10; i++ {
		ev := eventbus.Event{ID: eventbus.NewID(), Payload: payload(i), Time: time.UnixMilli(int64(1_000_000 + i*1000))}
		ids = append(ids, ev.ID)
		mustPub(t, b, "hist.t", ev)
	}
	mustPub(t, b, "hist.other", eventbus.Event{Payload: payload(99)})
	all, err := b.History(ctx, "hist.t", eventbus.FromStart(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs(all), []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) || all[3].ID != ids[3] {
		t.Fatalf("history %v", seqs(all))
	}
	zero, _ := b.History(ctx, "hist.t", eventbus.Position{}, 3)
	if !slices.Equal(seqs(zero), []int{0, 1, 2}) {
		t.Fatalf("zero position, limit 3: %v", seqs(zero))
	}
	after, _ := b.History(ctx, "hist.t", eventbus.AfterID(ids[4]), 0)
	if !slices.Equal(seqs(after), []int{5, 6, 7, 8, 9}) {
		t.Fatalf("after ID: %v", seqs(after))
	}
	after2, _ := b.History(ctx, "hist.t", eventbus.AfterID(ids[4]), 2)
	if !slices.Equal(seqs(after2), []int{5, 6}) {
		t.Fatalf("after ID, limit 2: %v", seqs(after2))
	}
	fromT, _ := b.History(ctx, "hist.t", eventbus.FromTime(time.UnixMilli(1_007_000)), 0)
	if !slices.Equal(seqs(fromT), []int{7, 8, 9}) {
		t.Fatalf("from time: %v", seqs(fromT))
	}
	none, err := b.History(ctx, "hist.never", eventbus.FromStart(), 0)
	if err != nil || len(none) != 0 {
		t.Fatalf("unknown topic: %v %v", none, err)
	}
}

func testReplaySubscribe(t *testing.T, h *Harness) {
	_, b := h.open(t)
	var ids []eventbus.ID
	for i := 0; i < 5; i++ {
		ev := eventbus.Event{ID: eventbus.NewID(), Payload: payload(i)}
		ids = append(ids, ev.ID)
		mustPub(t, b, "replay.t", ev)
	}
	all, from2 := newCollector(), newCollector()
	mustSub(t, b, "replay.t", all.handle, eventbus.SubscribeOptions{From: eventbus.FromStart()})
	mustSub(t, b, "replay.t", from2.handle, eventbus.SubscribeOptions{From: eventbus.AfterID(ids[2])})
	for i := 5; i < 8; i++ {
		mustPub(t, b, "replay.t", eventbus.Event{Payload: payload(i)})
	}
	if got := seqs(all.wait(t, 8, h.Timeout)); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("replay from start then live: %v", got)
	}
	if got := seqs(from2.wait(t, 5, h.Timeout)); !slices.Equal(got, []int{3, 4, 5, 6, 7}) {
		t.Fatalf("replay after ID then live: %v", got)
	}
	all.quiet(t, 8, 100*time.Millisecond)
}

func testRedelivery(t *testing.T, h *Harness) {
	o, b := h.open(t)
	g := newGate()
	s, err := b.Subscribe(context.Background(), "redeliver.t", g.handle, eventbus.SubscribeOptions{Name: "durable"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		mustPub(t, b, "redeliver.t", eventbus.Event{Payload: payload(i)})
	}
	<-g.entered
	eventually(t, h.Timeout, "queued", func() bool { return s.Stats().Received == 5 })
	_ = s.Close() // cancels the blocked handler: nothing acknowledged
	<-s.Done()
	c := newCollector()
	mustSub(t, b, "redeliver.t", c.handle, eventbus.SubscribeOptions{Name: "durable"})
	got := seqs(c.wait(t, 5, h.Timeout))
	slices.Sort(got)
	if !slices.Equal(slices.Compact(got), []int{0, 1, 2, 3, 4}) {
		t.Fatalf("redelivered %v", got)
	}
	_ = o
}

func testDedup(t *testing.T, h *Harness) {
	_, b := h.open(t)
	c := newCollector()
	s := mustSub(t, b, "dedup.t", c.handle, eventbus.SubscribeOptions{DedupWindow: time.Minute})
	id := eventbus.NewID()
	for i := 0; i < 3; i++ { // a publisher retrying with the same ID
		mustPub(t, b, "dedup.t", eventbus.Event{ID: id, Payload: payload(1)})
	}
	mustPub(t, b, "dedup.t", eventbus.Event{Payload: payload(2)})
	got := seqs(c.wait(t, 2, h.Timeout))
	c.quiet(t, 2, 100*time.Millisecond)
	if !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("got %v", got)
	}
	eventually(t, h.Timeout, "duplicates counted", func() bool { return s.Stats().Duplicates == 2 })
}

func testCrossInstance(t *testing.T, h *Harness) {
	o, a := h.open(t)
	b := o(eventbus.Options{})
	ca, cb := newCollector(), newCollector()
	mustSub(t, a, "cross.>", ca.handle, eventbus.SubscribeOptions{})
	mustSub(t, b, "cross.>", cb.handle, eventbus.SubscribeOptions{})
	mustPub(t, a, "cross.from.a", eventbus.Event{Payload: payload(1)})
	mustPub(t, b, "cross.from.b", eventbus.Event{Payload: payload(2)})
	for _, c := range []*collector{ca, cb} {
		got := seqs(c.wait(t, 2, h.Timeout))
		slices.Sort(got)
		if !slices.Equal(got, []int{1, 2}) {
			t.Fatalf("got %v", got)
		}
	}
}

func testShared(t *testing.T, h *Harness) {
	o, a := h.open(t)
	b := o(eventbus.Options{})
	var mu sync.Mutex
	seen := map[int]int{}
	var total atomic.Int64
	hf := func(ctx context.Context, ev eventbus.Event) error {
		mu.Lock()
		seen[seq(ev)]++
		mu.Unlock()
		total.Add(1)
		return nil
	}
	mustSub(t, a, "shared.t", hf, eventbus.SubscribeOptions{Name: "workers"})
	mustSub(t, b, "shared.t", hf, eventbus.SubscribeOptions{Name: "workers"})
	const n = 200
	for i := 0; i < n; i++ {
		mustPub(t, a, "shared.t", eventbus.Event{Payload: payload(i)})
	}
	eventually(t, h.Timeout, "all shared events", func() bool { return total.Load() >= n })
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n || total.Load() != n {
		t.Fatalf("shared group handled %d distinct, %d total, want %d once each", len(seen), total.Load(), n)
	}
}

func testShutdown(t *testing.T, h *Harness) {
	o := h.Backend(t)
	b := o(eventbus.Options{})
	var handled atomic.Int64
	mustSub(t, b, "shutdown.t", func(ctx context.Context, ev eventbus.Event) error {
		time.Sleep(time.Millisecond)
		handled.Add(1)
		return nil
	}, eventbus.SubscribeOptions{QueueSize: 256})
	const n = 50
	for i := 0; i < n; i++ {
		mustPub(t, b, "shutdown.t", eventbus.Event{Payload: payload(i)})
	}
	if h.Features.CrossInstance {
		// Give the receiver time to take the events off the backend.
		eventually(t, h.Timeout, "received", func() bool { return b.Stats().Subscriptions[0].Received == n })
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if handled.Load() != n {
		t.Fatalf("Shutdown drained %d of %d", handled.Load(), n)
	}
	if err := b.Publish(context.Background(), "shutdown.t", eventbus.Event{}); !errors.Is(err, eventbus.ErrClosed) {
		t.Fatalf("Publish after Shutdown = %v", err)
	}
	if _, err := b.Subscribe(context.Background(), "x", func(context.Context, eventbus.Event) error { return nil }, eventbus.SubscribeOptions{}); !errors.Is(err, eventbus.ErrClosed) {
		t.Fatalf("Subscribe after Shutdown = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// Memory returns the harness for the in-process transport, with the
// guarantees eventbus.MemoryFeatures reports.
func Memory() Harness {
	return Harness{
		Features: eventbus.MemoryFeatures(),
		Backend: func(t *testing.T) Opener {
			return func(opts eventbus.Options) *eventbus.Bus {
				b, err := eventbus.New(opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close() })
				return b
			}
		},
	}
}
