package audio

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

func TestCueJSONIsStable(t *testing.T) {
	// The wire format is versioned: changing it needs a new CueVersion.
	tests := []struct {
		c    Cue
		want string
	}{
		{
			Cue{Version: 1, Seq: 7, World: "w", Kind: CuePlay, At: t0, Voice: &Voice{ID: "line:s1:mara", Sound: "ab.wav", Group: "dialogue", Bus: "voice", Emitter: "mara", Volume: 1, Duration: 1500 * time.Millisecond}},
			`{"version":1,"seq":7,"world":"w","kind":"play","at":"2026-01-01T12:00:00Z","voice":{"id":"line:s1:mara","sound":"ab.wav","group":"dialogue","bus":"voice","emitter":"mara","position":{"x":0,"y":0,"z":0},"volume":1,"duration":1500000000}}`,
		},
		{
			Cue{Version: 1, Seq: 8, World: "w", Kind: CueCrossfade, At: t0, Crossfade: &Crossfade{Slot: SlotTimeOfDay, Bus: "ambient", From: "MS_DuskAmbient", To: "MS_NightAmbient", FromGain: 1, ToGain: 1, Start: t0, Duration: 30 * time.Second}},
			`{"version":1,"seq":8,"world":"w","kind":"crossfade","at":"2026-01-01T12:00:00Z","crossfade":{"slot":"time_of_day","bus":"ambient","from":"MS_DuskAmbient","to":"MS_NightAmbient","from_gain":1,"to_gain":1,"start":"2026-01-01T12:00:00Z","duration":30000000000,"curve":"equal_power"}}`,
		},
		{
			Cue{Version: 1, Seq: 9, World: "w", Kind: CueDuck, At: t0, Duck: &DuckState{Rule: "dialogue", Targets: []DuckTarget{{Bus: "music", DB: -12}}, Ramp: Ramp{Start: t0, From: 0, To: 1, Duration: 200 * time.Millisecond}}},
			`{"version":1,"seq":9,"world":"w","kind":"duck","at":"2026-01-01T12:00:00Z","duck":{"rule":"dialogue","targets":[{"bus":"music","db":-12}],"ramp":{"start":"2026-01-01T12:00:00Z","from":0,"to":1,"duration":200000000}}}`,
		},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.c)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("JSON of %s cue:\n got %s\nwant %s", tt.c.Kind, b, tt.want)
		}
	}
}

func TestCuesRetainsTheLatest(t *testing.T) {
	d, _ := newDirector(t, Options{MaxCues: 3})
	ctx := context.Background()
	for _, v := range []float64{0.1, 0.2, 0.3, 0.4, 0.5} {
		d.SetBusVolume(ctx, BusMusic, v)
	}
	cues := d.Cues(0)
	if len(cues) != 3 || cues[0].Seq != 3 || cues[2].Seq != 5 || cues[2].Bus.Volume != 0.5 {
		t.Errorf("cues = %+v", cues)
	}
	if cues := d.Cues(4); len(cues) != 1 || cues[0].Seq != 5 {
		t.Errorf("Cues(4) = %+v", cues)
	}
}

func TestStoppingAVirtualVoiceSendsNoStop(t *testing.T) {
	d, _ := newDirector(t, Options{Voices: VoicesOptions{Limits: []Limit{{Group: "g", Max: 1, Virtualize: true}}}})
	ctx := context.Background()
	d.Play(ctx, Voice{ID: "a", Group: "g", Bus: BusSFX, Volume: 1})
	if out, _ := d.Play(ctx, Voice{ID: "b", Group: "g", Bus: BusSFX, Volume: 1}); out != Queued {
		t.Fatalf("b: %v", out)
	}
	seq := d.Snapshot().Seq
	if err := d.Stop(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if cues := d.Cues(seq); len(cues) != 0 {
		t.Errorf("stopping a virtual voice sent %+v", cues)
	}
	d.Stop(ctx, "a")
	cues := d.Cues(seq)
	if len(cues) != 1 || cues[0].Kind != CueStop || cues[0].Reason != ReasonStopped {
		t.Errorf("stopping a playing voice: %+v", cues)
	}
}

func TestSpeakerLineRefused(t *testing.T) {
	d, _ := newDirector(t, Options{Voices: VoicesOptions{Limits: []Limit{{Group: "dialogue", Max: 1}}}})
	ctx := context.Background()
	d.VoiceLineStarted(ctx, VoiceLine{NPC: "mara", Session: "s1", Duration: time.Minute})
	store, _ := NewMemoryClipStore(0)
	sp, _ := NewSpeaker(SpeakerOptions{Synthesizer: &fakeSynth{}, Store: store, Director: d, Line: VoiceLine{NPC: "olaf", Session: "s2"}})
	if _, err := sp.Say(ctx, "Not now."); !errors.Is(err, ErrLineRefused) {
		t.Errorf("Say over a full dialogue limit: %v", err)
	}
}

func TestFailedPublishIsCountedNotReturned(t *testing.T) {
	bus, err := eventbus.New(eventbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bus.Close() // every publish now fails
	d, _ := newDirector(t, Options{Events: bus, Logger: slog.New(slog.DiscardHandler)})
	if err := d.SetPhase(context.Background(), "day"); err != nil {
		t.Errorf("SetPhase = %v; a failed publish is logged and counted, the decision stands", err)
	}
	if st := d.Stats(); st.PublishErrors != 1 || st.Cues != 1 {
		t.Errorf("stats = %+v", st)
	}
	if d.State().Phase != "day" {
		t.Error("the phase was not set")
	}
}

func TestFollowDialogueRejectsUnknownVersions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		bus, _ := eventbus.New(eventbus.Options{})
		defer bus.Close()
		d, _ := New(Options{})
		defer d.Close()
		dead := make(chan eventbus.Event, 1)
		dsub, _ := bus.Subscribe(ctx, "deadletter."+TopicDialogueStarted, func(_ context.Context, ev eventbus.Event) error {
			dead <- ev
			return nil
		}, eventbus.SubscribeOptions{})
		defer dsub.Close()
		sub, err := d.FollowDialogue(ctx, bus, "", eventbus.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		bus.Publish(ctx, TopicDialogueStarted, eventbus.Event{Payload: []byte(`{"version":2,"npc_id":"mara","session_id":"s1"}`)})
		synctest.Wait()
		select {
		case <-dead:
		default:
			t.Error("a version-2 event was not dead-lettered")
		}
		if d.voices.Len() != 0 {
			t.Error("a version-2 event started a line")
		}
	})
}
