package audio

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// TopicDialogueStarted is dialogue's "voice line started" topic: an NPC
// reply's first text is about to be sent.
const TopicDialogueStarted = "npc.dialogue.started"

// DialogueStarted is the payload of an npc.dialogue.started event, as
// audio decodes it (audio does not import dialogue). Version 1.
type DialogueStarted struct {
	Version int       `json:"version"`
	NPC     string    `json:"npc"`
	Player  string    `json:"player"`
	Session string    `json:"session"`
	Region  string    `json:"region"`
	Tier    string    `json:"tier"`
	At      time.Time `json:"at"`
}

// FollowDialogue subscribes on bus to TopicDialogueStarted and starts a
// voice line for each reply (ID "line:<session>:<npc>", duration unknown,
// so it ducks until [Director.VoiceLineEnded] or MaxLineDuration). With
// region set, only events of that region are followed. The line starts at
// the director's now; the event's At is informational. An event of
// another payload version is dead-lettered. Close the returned
// subscription to stop.
func (d *Director) FollowDialogue(ctx context.Context, bus *eventbus.Bus, region string, opts eventbus.SubscribeOptions) (*eventbus.Subscription, error) {
	return bus.Subscribe(ctx, TopicDialogueStarted, eventbus.Handle(func(ctx context.Context, _ eventbus.Event, ev DialogueStarted) error {
		if ev.Version != 1 {
			return eventbus.Permanent(fmt.Errorf("audio: dialogue.started version %d not supported", ev.Version))
		}
		if region != "" && ev.Region != region {
			return nil
		}
		_, err := d.VoiceLineStarted(ctx, VoiceLine{NPC: ev.NPC, Player: ev.Player, Session: ev.Session})
		if err == ErrClosed {
			return nil
		}
		return err
	}), opts)
}

// TopicSettingsChanged is the settings package's change topic.
const TopicSettingsChanged = "settings.changed"

// SettingsChanged is the payload of a settings.changed event as audio
// reads it (audio does not import settings): a player's changed values by
// key. Audio reads the keys "audio.<bus>" ("audio.master",
// "audio.music", ...) whose values are numbers in [0, 1] (linear volumes)
// and ignores every other key. Version 1.
type SettingsChanged struct {
	Version int                        `json:"version"`
	Player  string                     `json:"player"`
	Values  map[string]json.RawMessage `json:"values"`
}

// SettingsPrefix is the key prefix of audio volumes in settings.
const SettingsPrefix = "audio."

// PlayerVolumesFromSettings picks the "audio.<bus>" keys with numeric
// values out of settings values. A number outside [0, 1] is a *ValueError.
func PlayerVolumesFromSettings(values map[string]json.RawMessage) (PlayerVolumes, error) {
	pv := PlayerVolumes{}
	for k, raw := range values {
		bus, ok := strings.CutPrefix(k, SettingsPrefix)
		if !ok || bus == "" {
			continue
		}
		var v float64
		if json.Unmarshal(raw, &v) != nil {
			continue
		}
		if err := CheckGain(k, v); err != nil {
			return nil, err
		}
		pv[bus] = v
	}
	return pv, nil
}

// FollowSettings subscribes on bus to TopicSettingsChanged and merges each
// player's audio volumes into the director's per-player volumes (keys for
// buses the mixer lacks are ignored). Close the subscription to stop.
func (d *Director) FollowSettings(ctx context.Context, bus *eventbus.Bus, opts eventbus.SubscribeOptions) (*eventbus.Subscription, error) {
	return bus.Subscribe(ctx, TopicSettingsChanged, eventbus.Handle(func(ctx context.Context, _ eventbus.Event, ev SettingsChanged) error {
		pv, err := PlayerVolumesFromSettings(ev.Values)
		if err != nil {
			return eventbus.Permanent(err)
		}
		if len(pv) == 0 {
			return nil
		}
		d.mu.Lock()
		merged := PlayerVolumes{}
		for k, v := range d.players[ev.Player] {
			merged[k] = v
		}
		for k, v := range pv {
			if _, ok := d.mixer.index[k]; ok {
				merged[k] = v
			}
		}
		d.mu.Unlock()
		err = d.SetPlayerVolumes(ev.Player, merged)
		if err == ErrClosed {
			return nil
		}
		return err
	}), opts)
}
