package sdk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/scripted"
	"github.com/bodybroker/sdk/settings"
)

// TestSettingsVolumesReachAudio: a player's volume sliders, changed through
// settings, reach the audio director over the bus — the two packages agree
// on the settings.changed payload without importing each other.
func TestSettingsVolumesReachAudio(t *testing.T) {
	ctx := context.Background()
	bus, d := busAndDirector(t)
	sub, err := d.FollowSettings(ctx, bus, eventbus.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	m, err := settings.New(settings.Options{Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	if _, err := m.Set(ctx, "p1", []settings.Change{
		{Key: "audio.music", Value: 0.5, IfRev: settings.AnyRev},
		{Key: "audio.effects", Value: 0.25, IfRev: settings.AnyRev},
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"music": 0.5, "sfx": 0.25}
	deadline := time.Now().Add(30 * time.Second) // bounds a hang only
	for {
		got := map[string]float64{}
		for bus := range want {
			world, err := d.PlayerGain("nobody", bus)
			if err != nil {
				t.Fatal(err)
			}
			g, err := d.PlayerGain("p1", bus)
			if err != nil {
				t.Fatal(err)
			}
			got[bus] = g / world
		}
		if near(got["music"], want["music"]) && near(got["sfx"], want["sfx"]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("player gain relative to the world's: %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// busAndDirector returns an in-memory bus and an audio director on it,
// both closed when the test ends.
func busAndDirector(t *testing.T) (*eventbus.Bus, *audio.Director) {
	t.Helper()
	bus, err := eventbus.New(eventbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	d, err := audio.New(audio.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return bus, d
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// TestDialogueStartDucksAudio: an NPC reply starting in dialogue starts a
// voice line in the audio director over the bus — the two packages agree
// on the npc.dialogue.started payload without importing each other.
func TestDialogueStartDucksAudio(t *testing.T) {
	ctx := context.Background()
	bus, d := busAndDirector(t)
	sub, err := d.FollowDialogue(ctx, bus, "", eventbus.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	lines, err := scripted.New(scripted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.Options{Tiers: []router.Tier{{Name: router.Tier1,
		Replicas: []router.Replica{{Name: "lines", Model: lines}}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps, err := dialogue.NewPersonas(dialogue.Persona{ID: "mara", Name: "Mara", SystemPrompt: "A harbour master.",
		FallbackLines: []string{"Not now."}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := dialogue.New(dialogue.Options{Completer: dialogue.RouterCompleter(r), Personas: ps, Events: bus})
	if err != nil {
		t.Fatal(err)
	}
	player := identity.NewContext(ctx, identity.Identity{Kind: identity.KindPlayer, ID: "p1"})
	if _, err := svc.Say(player, &dialoguev1.Utterance{NpcId: "mara", Text: "When does the boat leave?"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // bounds a hang only
	for d.Stats().Voices.Played == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no voice line started in audio after a dialogue reply; audio stats %+v, bus stats %+v", d.Stats(), sub.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v := d.Snapshot().Voices; len(v) != 1 || !strings.Contains(v[0].Voice.ID, "mara") {
		t.Errorf("playing voices = %+v, want mara's line", v)
	}
}
