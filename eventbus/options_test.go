package eventbus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		opts  eventbus.Options
		field string
	}{
		{eventbus.Options{MaxPayload: -1}, "Options.MaxPayload"},
		{eventbus.Options{MaxEventBytes: -1}, "Options.MaxEventBytes"},
		{eventbus.Options{HistorySize: -5}, "Options.HistorySize"},
		{eventbus.Options{HistorySize: 10, DisableHistory: true}, "Options.HistorySize"},
		{eventbus.Options{MaxPayload: 10, NoPayloadLimit: true}, "Options.MaxPayload"},
	}
	for _, c := range cases {
		b, err := eventbus.New(c.opts)
		if b != nil {
			_ = b.Close()
		}
		var oe *eventbus.OptionError
		if !errors.Is(err, eventbus.ErrInvalidOptions) || !errors.As(err, &oe) {
			t.Errorf("New(%+v) = %v, want an *OptionError", c.opts, err)
			continue
		}
		if oe.Field != c.field {
			t.Errorf("New(%+v): field %q, want %q", c.opts, oe.Field, c.field)
		}
	}
}

func TestSubscribeRejectsBadOptions(t *testing.T) {
	b, err := eventbus.New(eventbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := func(context.Context, eventbus.Event) error { return nil }
	cases := []struct {
		opts  eventbus.SubscribeOptions
		field string
	}{
		{eventbus.SubscribeOptions{Overflow: 99}, "SubscribeOptions.Overflow"},
		{eventbus.SubscribeOptions{QueueSize: -1}, "SubscribeOptions.QueueSize"},
		{eventbus.SubscribeOptions{Concurrency: -2}, "SubscribeOptions.Concurrency"},
		{eventbus.SubscribeOptions{MaxBlock: -time.Second}, "SubscribeOptions.MaxBlock"},
		{eventbus.SubscribeOptions{DedupWindow: -time.Second}, "SubscribeOptions.DedupWindow"},
		{eventbus.SubscribeOptions{DedupMax: -1}, "SubscribeOptions.DedupMax"},
		{eventbus.SubscribeOptions{Retry: eventbus.Retry{MaxAttempts: -1}}, "SubscribeOptions.Retry.MaxAttempts"},
		{eventbus.SubscribeOptions{Retry: eventbus.Retry{Initial: -1}}, "SubscribeOptions.Retry.Initial"},
		{eventbus.SubscribeOptions{Retry: eventbus.Retry{Max: -1}}, "SubscribeOptions.Retry.Max"},
		{eventbus.SubscribeOptions{Retry: eventbus.Retry{Multiplier: -1}}, "SubscribeOptions.Retry.Multiplier"},
	}
	for _, c := range cases {
		s, err := b.Subscribe(context.Background(), "a", h, c.opts)
		if s != nil {
			_ = s.Close()
		}
		var oe *eventbus.OptionError
		if !errors.Is(err, eventbus.ErrInvalidOptions) || !errors.As(err, &oe) {
			t.Errorf("Subscribe(%+v) = %v, want an *OptionError", c.opts, err)
			continue
		}
		if oe.Field != c.field {
			t.Errorf("Subscribe(%+v): field %q, want %q", c.opts, oe.Field, c.field)
		}
	}
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := new(fakeClock)
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestNowStampsEvents(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := newFakeClock(at)
	b, err := eventbus.New(eventbus.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.Publish(ctx, "a.b", eventbus.Event{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	evs, err := b.History(ctx, "a.b", eventbus.Position{}, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("History = %v, %v", evs, err)
	}
	if got := evs[0].Time; !got.Equal(at) {
		t.Errorf("event Time = %v, want %v", got, at)
	}
	if got := evs[0].ID.Time(); !got.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("ID time = %v, want %v", got, at)
	}
}

// The dedup window is measured on Options.Now: an ID seen again after the
// clock moved past the window is handled again.
func TestDedupWindowUsesNow(t *testing.T) {
	clk := newFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	b, err := eventbus.New(eventbus.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	handled := make(chan eventbus.ID, 8)
	s, err := b.Subscribe(ctx, "d", func(_ context.Context, ev eventbus.Event) error {
		handled <- ev.ID
		return nil
	}, eventbus.SubscribeOptions{DedupWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	id := eventbus.NewID()
	publish := func() {
		t.Helper()
		if err := b.Publish(ctx, "d", eventbus.Event{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	<-handled
	publish()                                                                      // within the window: suppressed
	for deadline := time.Now().Add(30 * time.Second); s.Stats().Duplicates != 1; { // bounds a hang only
		if time.Now().After(deadline) {
			t.Fatal("event within the dedup window was not suppressed")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Advance(2 * time.Minute)
	publish() // past the window: handled again
	select {
	case got := <-handled:
		if got != id {
			t.Fatalf("handled %v, want %v", got, id)
		}
	case <-time.After(30 * time.Second): // bounds a hang only
		t.Fatal("event past the dedup window was not handled")
	}
	_ = s.Close()
	if d := s.Stats().Duplicates; d != 1 {
		t.Errorf("Duplicates = %d, want 1", d)
	}
}
