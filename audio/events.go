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
// audio decodes it (audio does not import dialogue): the wire shape of
// dialogue.Started. Version 1.
type DialogueStarted struct {
	Version int       `json:"version"`
	NPC     string    `json:"npc_id"`
	Player  string    `json:"player_id"`
	Session string    `json:"session_id"`
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
// reads it (audio does not import settings): the keys one player's change
// touched, with their new values, in the settings package's wire shape
// ({"version":1,"player_id":"p1","keys":[{"key":"audio.music","new":0.5}]}).
// Audio reads the keys "audio.<bus>" ("audio.master", "audio.music", ...)
// whose new values are numbers in [0, 1] (linear volumes, taper version 1)
// and ignores every other key. Version 1.
type SettingsChanged struct {
	Version  int                 `json:"version"`
	PlayerID string              `json:"player_id"`
	Keys     []SettingsKeyChange `json:"keys"`
}

// SettingsKeyChange is one key of a [SettingsChanged]: its new value as
// the event carries it (audio needs no old value).
type SettingsKeyChange struct {
	Key string          `json:"key"`
	New json.RawMessage `json:"new"`
}

// Values returns the event's new values by key.
func (c SettingsChanged) Values() map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(c.Keys))
	for _, k := range c.Keys {
		m[k.Key] = k.New
	}
	return m
}

// SettingsPrefix is the key prefix of audio volumes in settings.
const SettingsPrefix = "audio."

// settingsBuses maps a settings volume name to the default bus it drives
// where the two differ: the player's "effects" slider is the Effect
// category's bus, "sfx".
var settingsBuses = map[string]string{"effects": BusSFX}

// PlayerVolumesFromSettings picks the "audio.<name>" keys with numeric
// values out of settings values and names them by bus ("audio.effects"
// drives the "sfx" bus; every other name is the bus's own). A number
// outside [0, 1] is a *ValueError.
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
		if b, ok := settingsBuses[bus]; ok {
			bus = b
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
		pv, err := PlayerVolumesFromSettings(ev.Values())
		if err != nil {
			return eventbus.Permanent(err)
		}
		if len(pv) == 0 {
			return nil
		}
		// Merge and set in one critical section, so two changes of one
		// player's volumes never overwrite each other's keys.
		if err := d.lock(); err != nil {
			return nil // closed
		}
		defer d.mu.Unlock()
		merged := PlayerVolumes{}
		for k, v := range d.players[ev.PlayerID] {
			merged[k] = v
		}
		for k, v := range pv {
			if _, ok := d.mixer.index[k]; ok {
				merged[k] = v
			}
		}
		return d.setPlayerVolumes(ev.PlayerID, merged)
	}), opts)
}
