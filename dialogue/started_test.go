package dialogue_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/identity"
)

// A voice line starting is announced once per reply, before its first
// chunk reaches the client, so an audio director can duck the music as the
// line begins rather than when it ends.
func TestVoiceLineStartIsPublished(t *testing.T) {
	bus, err := eventbus.New(eventbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	var hooked []dialogue.Started
	s := newService(t, &fakeCompleter{respond: replying("Well met. The boat leaves at dawn.")}, func(o *dialogue.Options) {
		o.Events = bus
		o.OnStarted = func(_ context.Context, st dialogue.Started) { hooked = append(hooked, st) }
	})
	ctx := identity.NewContext(context.Background(), player1)
	var chunksBeforeStart []int
	err = s.StreamSay(ctx, &dialoguev1.Utterance{NpcId: "mara", Text: "Hello?",
		Context: &dialoguev1.GameContext{Region: "docks"}}, func(c *dialoguev1.Chunk) error {
		if len(hooked) == 0 {
			chunksBeforeStart = append(chunksBeforeStart, int(c.GetIndex()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(chunksBeforeStart) != 0 {
		t.Errorf("chunks %v reached the client before the start was announced", chunksBeforeStart)
	}
	if len(hooked) != 1 {
		t.Fatalf("hook saw %d starts for one reply, want 1", len(hooked))
	}
	got := hooked[0]
	if got.Version != 1 || got.NPCID != "mara" || got.PlayerID != "p1" || got.SessionID == "" || got.Region != "docks" || got.At.IsZero() {
		t.Errorf("Started = %+v, want version 1, mara, p1, a session, region docks and a time", got)
	}
	evs, err := bus.History(ctx, dialogue.TopicStarted, eventbus.FromStart(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Key != "p1" {
		t.Fatalf("bus has %d start events (key %v), want 1 keyed p1", len(evs), evs)
	}
	onBus, err := eventbus.Decode[dialogue.Started](evs[0])
	if err != nil {
		t.Fatal(err)
	}
	if onBus.SessionID != got.SessionID || onBus.NPCID != got.NPCID {
		t.Errorf("bus payload %+v differs from the hook's %+v", onBus, got)
	}
}

// A stuck subscriber (one that never takes its events, with publishers
// waiting until cancelled) delays a reply's events by a bounded time, never
// forever: the start and completion are published on a context of their
// own with a timeout.
func TestStuckSubscriberDoesNotHoldReplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, err := eventbus.New(eventbus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close()
		stuck := make(chan struct{})
		defer close(stuck)
		sub, err := bus.Subscribe(context.Background(), "npc.dialogue.>", func(ctx context.Context, _ eventbus.Event) error {
			select {
			case <-stuck:
			case <-ctx.Done():
			}
			return nil
		}, eventbus.SubscribeOptions{QueueSize: 1, BlockUntilCanceled: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		s := newService(t, &fakeCompleter{respond: replying("Aye.")}, func(o *dialogue.Options) { o.Events = bus })
		ctx := identity.NewContext(context.Background(), player1)
		for i := range 3 { // the handler takes one event, the queue one more; the rest would wait forever
			if _, err := s.Say(ctx, &dialoguev1.Utterance{NpcId: "mara", Text: "Hello?"}); err != nil {
				t.Fatalf("Say %d: %v", i, err)
			}
		}
		if st := s.Stats(); st.PublishErrors == 0 {
			t.Error("no publish was refused, yet the only subscriber is stuck")
		}
	})
}
