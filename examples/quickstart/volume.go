package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/settings"
)

// volume previews a quieter music volume for player-7 and reverts it, as a
// game's options screen does while the player drags a slider: everyone
// reading the player's settings (and every settings.changed subscriber,
// such as the audio mixer) sees the previewed value at once, nothing is
// stored, and the preview reverts on its own if never confirmed.
func volume(ctx context.Context, w io.Writer, bus *eventbus.Bus, log *slog.Logger) error {
	m, err := settings.New(settings.Options{Bus: bus, Logger: log})
	if err != nil {
		return err
	}
	defer m.Close()

	const player, key = "player-7", "audio.music"
	show := func(when string) error {
		r, err := m.Get(ctx, player, settings.Target{})
		if err != nil {
			return err
		}
		v, _ := r.Value(key)
		ex, _ := r.Explain(key)
		fmt.Fprintf(w, "  %-16s %s = %v (from the %v layer)\n", when, key, v, ex.Layer)
		return nil
	}
	fmt.Fprintln(w, "settings: player-7 drags the music slider")
	if err := show("before:"); err != nil {
		return err
	}
	p, err := m.Begin(ctx, player, 0)
	if err != nil {
		return err
	}
	if err := m.Preview(ctx, player, p.ID, map[string]any{key: 0.3}); err != nil {
		return err
	}
	if err := show("previewing:"); err != nil {
		return err
	}
	if err := m.Revert(ctx, player, p.ID); err != nil {
		return err
	}
	if err := show("reverted:"); err != nil {
		return err
	}

	// What the audio mixer hears: settings.changed events on the bus.
	evs, err := bus.History(ctx, settings.TopicChanged, eventbus.FromStart(), 0)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		c, err := eventbus.Decode[settings.Changed](ev)
		if err != nil {
			return err
		}
		for _, k := range c.Keys {
			fmt.Fprintf(w, "  %s  %s %-9s %s: %v → %v\n", settings.TopicChanged, c.PlayerID, c.Kind, k.Key, k.Old, k.New)
		}
	}
	fmt.Fprintln(w)
	return nil
}
