package eventbus_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, topic string
		want           bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.b.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"*.b", "a.b", true},
		{"*", "a", true},
		{"*", "a.b", false},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c.d", true},
		{"a.>", "a", false},
		{">", "a", true},
		{">", "a.b", true},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"a.*.>", "a.b.c", true},
		{"a.*.>", "a.b", false},
		{"world.time.*", "world.time.dawn", true},
		{"npc.>", "npcs.x", false},
	}
	for _, c := range cases {
		if got := eventbus.Match(c.pattern, c.topic); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.topic, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, ok := range []string{"a", "a.b", "player.123.settings", "ünïcode.t", "a-b_c:d"} {
		if err := eventbus.ValidateTopic(ok); err != nil {
			t.Errorf("ValidateTopic(%q) = %v", ok, err)
		}
	}
	long := make([]byte, eventbus.MaxTopicLen+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{"", ".", "a.", ".a", "a..b", "a b", "a\tb", "a.*", "a.>", "x*", string(long), "\xff"} {
		err := eventbus.ValidateTopic(bad)
		var te *eventbus.TopicError
		if !errors.Is(err, eventbus.ErrInvalidTopic) || !errors.As(err, &te) || te.Reason == "" {
			t.Errorf("ValidateTopic(%q) = %v", bad, err)
		}
	}
	for _, ok := range []string{"a", "*", ">", "a.*.c", "a.>", "*.*"} {
		if err := eventbus.ValidatePattern(ok); err != nil {
			t.Errorf("ValidatePattern(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a.>.b", "a*", "*a", ">>", "a..b", "a."} {
		if err := eventbus.ValidatePattern(bad); !errors.Is(err, eventbus.ErrInvalidPattern) {
			t.Errorf("ValidatePattern(%q) = %v", bad, err)
		}
	}
}

func TestIDs(t *testing.T) {
	prev := eventbus.NewID()
	for i := 0; i < 10000; i++ {
		id := eventbus.NewID()
		if id.Compare(prev) <= 0 {
			t.Fatalf("IDs not increasing: %s then %s", prev, id)
		}
		if s, ps := id.String(), prev.String(); s <= ps {
			t.Fatalf("text forms not increasing: %s then %s", ps, s)
		}
		prev = id
	}
	s := prev.String()
	if len(s) != 26 {
		t.Fatalf("len %d", len(s))
	}
	back, err := eventbus.ParseID(s)
	if err != nil || back != prev {
		t.Fatalf("ParseID(%s) = %s, %v", s, back, err)
	}
	if d := time.Since(prev.Time()); d < 0 || d > time.Minute {
		t.Fatalf("ID time %v", prev.Time())
	}
	for _, bad := range []string{"", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "0000000000000000000000000U", "short"} {
		if _, err := eventbus.ParseID(bad); !errors.Is(err, eventbus.ErrInvalidID) {
			t.Errorf("ParseID(%q) = %v", bad, err)
		}
	}
	var id eventbus.ID
	if err := id.UnmarshalText([]byte(s)); err != nil || id != prev {
		t.Fatal(err)
	}
}

func TestConcurrentPublishersPerKeyOrder(t *testing.T) {
	for _, c := range []struct {
		name string
		opts eventbus.SubscribeOptions
	}{
		{"small-queue-unbounded-block", eventbus.SubscribeOptions{Concurrency: 3, QueueSize: 16, BlockUntilCanceled: true}},
		{"default-queue-paced", eventbus.SubscribeOptions{Concurrency: 3}},
	} {
		t.Run(c.name, func(t *testing.T) { testConcurrentPublishersPerKeyOrder(t, c.opts) })
	}
}

func testConcurrentPublishersPerKeyOrder(t *testing.T, opts eventbus.SubscribeOptions) {
	b, _ := eventbus.New(eventbus.Options{})
	defer b.Close()
	var mu sync.Mutex
	got := map[string][]int{}
	done := make(chan struct{})
	total := 0
	const pubs, per = 4, 500
	sub, err := b.Subscribe(context.Background(), "p.>", func(ctx context.Context, ev eventbus.Event) error {
		mu.Lock()
		got[ev.Key] = append(got[ev.Key], int(ev.Payload[0])<<8|int(ev.Payload[1]))
		total++
		if total == pubs*per {
			close(done)
		}
		mu.Unlock()
		return nil
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for p := 0; p < pubs; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			key := string(rune('a' + p))
			for i := 0; i < per; i++ {
				if err := b.Publish(context.Background(), "p."+key, eventbus.Event{Key: key, Payload: []byte{byte(i >> 8), byte(i)}}); err != nil {
					t.Error(err)
					return
				}
			}
		}(p)
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not all delivered")
	}
	for k, seq := range got {
		if !slices.IsSorted(seq) || len(seq) != per {
			t.Fatalf("key %s out of order or incomplete (%d)", k, len(seq))
		}
	}
	if d := sub.Stats().Dropped; d.Total() != 0 {
		t.Fatalf("drops %+v, want none", d)
	}
}

func TestBlockPublisherCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := eventbus.New(eventbus.Options{})
		defer b.Close()
		release := make(chan struct{})
		s, _ := b.Subscribe(context.Background(), "c.t", func(ctx context.Context, ev eventbus.Event) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}, eventbus.SubscribeOptions{QueueSize: 1, BlockUntilCanceled: true})
		ctx := context.Background()
		_ = b.Publish(ctx, "c.t", eventbus.Event{}) // in the handler
		synctest.Wait()
		_ = b.Publish(ctx, "c.t", eventbus.Event{}) // fills the queue
		cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := b.Publish(cctx, "c.t", eventbus.Event{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Publish into a full queue with BlockUntilCanceled = %v, want the ctx error", err)
		}
		if waited := time.Since(start); waited != 30*time.Millisecond {
			t.Fatalf("Publish waited %v, want the ctx's 30ms", waited)
		}
		if d := s.Stats().Dropped; d.Canceled != 1 {
			t.Fatalf("drops %+v", d)
		}
		close(release)
	})
}

// MaxBlock bounds the Block policy's wait; after a timeout the subscriber
// is lagging and further events it has no room for are dropped at once,
// until its queue drains below half.
func TestBlockMaxBlockThenLagging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := eventbus.New(eventbus.Options{})
		defer b.Close()
		release := make(chan struct{})
		s, _ := b.Subscribe(context.Background(), "m.t", func(ctx context.Context, ev eventbus.Event) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}, eventbus.SubscribeOptions{QueueSize: 2, MaxBlock: 40 * time.Millisecond})
		ctx := context.Background()
		_ = b.Publish(ctx, "m.t", eventbus.Event{}) // in the handler
		synctest.Wait()
		_ = b.Publish(ctx, "m.t", eventbus.Event{})
		_ = b.Publish(ctx, "m.t", eventbus.Event{}) // queue full
		start := time.Now()
		if err := b.Publish(ctx, "m.t", eventbus.Event{}); err != nil {
			t.Fatalf("Publish after MaxBlock = %v, want nil (dropped for this subscriber)", err)
		}
		if waited := time.Since(start); waited != 40*time.Millisecond {
			t.Fatalf("Publish waited %v, want MaxBlock (40ms)", waited)
		}
		start = time.Now()
		_ = b.Publish(ctx, "m.t", eventbus.Event{})
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("Publish to a lagging subscriber waited %v, want no wait", waited)
		}
		if d := s.Stats().Dropped; d.Timeout != 1 || d.Lagging != 1 || d.Total() != 2 {
			t.Fatalf("drops %+v, want one Timeout and one Lagging", d)
		}
		close(release)
	})
}

func TestShutdownDeadlineAbandons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := eventbus.New(eventbus.Options{})
		s, _ := b.Subscribe(context.Background(), "s.t", func(ctx context.Context, ev eventbus.Event) error {
			<-ctx.Done()
			return ctx.Err()
		}, eventbus.SubscribeOptions{QueueSize: 8})
		for i := 0; i < 5; i++ {
			_ = b.Publish(context.Background(), "s.t", eventbus.Event{})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := b.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v", err)
		}
		<-s.Done()
		if d := s.Stats().Dropped.Closed; d != 5 {
			t.Fatalf("abandoned %d, want 5 counted as closed", d)
		}
		_ = b.Close()
	})
}

func TestNilHandlerAndUnknownPolicy(t *testing.T) {
	b, _ := eventbus.New(eventbus.Options{})
	defer b.Close()
	if _, err := b.Subscribe(context.Background(), "a", nil, eventbus.SubscribeOptions{}); err == nil {
		t.Fatal("nil handler accepted")
	}
	if _, err := b.Subscribe(context.Background(), "a", func(context.Context, eventbus.Event) error { return nil }, eventbus.SubscribeOptions{Overflow: 99}); err == nil {
		t.Fatal("unknown overflow accepted")
	}
}

func TestMemoryConformance(t *testing.T) {
	// The suite itself lives in eventbustest; this only checks that the
	// in-memory features describe what the suite expects.
	if f := eventbus.MemoryFeatures(); !f.History || f.Redelivery || !f.PublisherBackpressure {
		t.Fatalf("%+v", f)
	}
}

// Features are values: what a caller does with one changes nothing else.
func TestFeaturesCannotBeChanged(t *testing.T) {
	f := eventbus.MemoryFeatures()
	f.Redelivery, f.Durable, f.Name = true, true, "changed"
	if g := eventbus.MemoryFeatures(); g.Redelivery || g.Durable || g.Name != "memory" {
		t.Fatalf("MemoryFeatures() = %+v after a caller changed its copy", g)
	}
	b, err := eventbus.New(eventbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, want := b.Features(), eventbus.MemoryFeatures(); got != want {
		t.Fatalf("Bus.Features() = %+v, want %+v", got, want)
	}
}

func TestStatsKeepClosedSubscriptions(t *testing.T) {
	b, _ := eventbus.New(eventbus.Options{})
	defer b.Close()
	done := make(chan struct{})
	s, _ := b.Subscribe(context.Background(), "k.t", func(ctx context.Context, ev eventbus.Event) error {
		close(done)
		return nil
	}, eventbus.SubscribeOptions{})
	_ = b.Publish(context.Background(), "k.t", eventbus.Event{})
	<-done
	_ = s.Close()
	<-s.Done()
	st := b.Stats()
	if st.Delivered != 1 || st.Latency.Count != 1 || len(st.Subscriptions) != 0 || st.Topics["k.t"].Published != 1 {
		t.Fatalf("stats after close: %+v", st)
	}
}
