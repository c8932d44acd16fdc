package settings_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/settings"
	"github.com/google/go-cmp/cmp"
)

func TestChangesPublishedKeyedByPlayer(t *testing.T) {
	bus, err := eventbus.New(eventbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	m := newManager(t, settings.Options{Bus: bus, Now: func() time.Time { return now }})
	ctx := context.Background()
	if _, err := m.Set(ctx, "p1", []settings.Change{{Key: "audio.music", Value: 0.5}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ResetToDefaults(ctx, "p1", "audio"); err != nil {
		t.Fatal(err)
	}
	evs, err := bus.History(ctx, settings.TopicChanged, eventbus.FromStart(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	var kinds []settings.Kind
	for _, ev := range evs {
		if ev.Key != "p1" {
			t.Errorf("event key %q, want p1", ev.Key)
		}
		c, err := eventbus.Decode[settings.Changed](ev)
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != 1 || c.PlayerID != "p1" || !c.At.Equal(now) {
			t.Errorf("payload %+v", c)
		}
		kinds = append(kinds, c.Kind)
	}
	if !cmp.Equal(kinds, []settings.Kind{settings.KindApplied, settings.KindReset}) {
		t.Errorf("kinds %v", kinds)
	}
	c, _ := eventbus.Decode[settings.Changed](evs[0])
	if !cmp.Equal(c.Keys, []settings.KeyChange{{Key: "audio.music", Old: 0.8, New: 0.5}}) {
		t.Errorf("keys %+v", c.Keys)
	}
	// A bus that refuses costs the player nothing.
	bus.Close()
	if _, err := m.Set(ctx, "p1", []settings.Change{{Key: "audio.music", Value: 0.4}}); err != nil {
		t.Errorf("Set with a closed bus: %v", err)
	}
	if got := m.Stats().PublishFailures; got != 1 {
		t.Errorf("PublishFailures %d, want 1", got)
	}
}

func TestSubscriptionMatchOrderAndBound(t *testing.T) {
	m := newManager(t, settings.Options{SubscriptionBuffer: 3})
	ctx := context.Background()
	audio, _ := m.Subscribe(settings.Match{Groups: []string{"audio"}})
	fov, _ := m.Subscribe(settings.Match{Keys: []string{"video.fov"}})
	all, _ := m.Subscribe(settings.Match{})
	for i := range 5 {
		_, err := m.Set(ctx, "p1", []settings.Change{
			{Key: "audio.music", Value: float64(i) / 10, IfRev: settings.AnyRev},
			{Key: "video.fov", Value: 100 + i, IfRev: settings.AnyRev},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 3 {
		c := <-audio.C()
		if len(c.Keys) != 1 || c.Keys[0].Key != "audio.music" {
			t.Fatalf("audio subscription got %+v", c.Keys)
		}
		got = append(got, fmt.Sprint(c.Keys[0].New))
	}
	if !cmp.Equal(got, []string{"0", "0.1", "0.2"}) {
		t.Errorf("audio values in order %v, want the first three", got)
	}
	if audio.Dropped() != 2 || fov.Dropped() != 2 || all.Dropped() != 2 {
		t.Errorf("dropped %d %d %d, want 2 each (buffer 3, 5 changes)", audio.Dropped(), fov.Dropped(), all.Dropped())
	}
	if c := <-fov.C(); len(c.Keys) != 1 || c.Keys[0].Key != "video.fov" {
		t.Errorf("fov subscription got %+v", c.Keys)
	}
	if c := <-all.C(); len(c.Keys) != 2 {
		t.Errorf("match-all got %+v", c.Keys)
	}
	audio.Unsubscribe()
	audio.Unsubscribe()
	if _, err := m.Set(ctx, "p1", []settings.Change{{Key: "audio.ui", Value: 0.1}}); err != nil {
		t.Fatal(err)
	}
	for range audio.C() { // drains what was buffered; closed
	}
	if got := m.Stats().Dropped; got != 6 {
		t.Errorf("Stats.Dropped %d, want 6", got)
	}
}
