package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/settings"
)

// volume previews a quieter music volume for player-7 and reverts it, as a
// game's options screen does while the player drags a slider: everyone
// reading the player's settings sees the previewed value at once, nothing
// is stored, and the preview reverts on its own if never confirmed. The
// audio director follows through settings.changed events on the bus (it
// does not import package settings): player-7's music bus gain is the
// world's mix level times the player's slider.
func volume(ctx context.Context, w io.Writer, bus *eventbus.Bus, d *audio.Director, log *slog.Logger) error {
	m, err := settings.New(settings.Options{Bus: bus, Logger: log})
	if err != nil {
		return err
	}
	defer m.Close()
	sub, err := d.FollowSettings(ctx, bus, eventbus.SubscribeOptions{})
	if err != nil {
		return err
	}
	defer sub.Close()

	const player, key = "player-7", "audio.music"
	show := func(when string, audioFollows bool) error {
		r, err := m.Get(ctx, player, settings.Target{})
		if err != nil {
			return err
		}
		v, _ := r.Value(key)
		ex, _ := r.Explain(key)
		fmt.Fprintf(w, "  %-16s %s = %v (from the %v layer)", when, key, v, ex.Layer)
		if !audioFollows {
			fmt.Fprintln(w)
			return nil
		}
		// The director applies the event on its subscription's worker;
		// wait until the player's music gain reflects the slider.
		want, _ := v.(float64)
		g, mix, err := musicGain(ctx, d, player, want)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "; audio: player-7's music bus at %.2f (mix %.1f × slider)\n", g, mix)
		return nil
	}
	fmt.Fprintln(w, "settings: player-7 drags the music slider")
	if err := show("before:", false); err != nil {
		return err
	}
	p, err := m.Begin(ctx, player, 0)
	if err != nil {
		return err
	}
	if err := m.Preview(ctx, player, p.ID, map[string]any{key: 0.3}); err != nil {
		return err
	}
	if err := show("previewing:", true); err != nil {
		return err
	}
	if err := m.Revert(ctx, player, p.ID); err != nil {
		return err
	}
	if err := show("reverted:", true); err != nil {
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

// musicGain waits until the director's music gain for player follows a
// slider at volume (its mix level, 0.7 by default, times volume) and
// returns it and the mix level. The director applies settings.changed events on its bus
// subscription's worker, so the new value arrives a moment after the
// change; the wait is bounded by ctx.
func musicGain(ctx context.Context, d *audio.Director, player string, volume float64) (gain, mix float64, err error) {
	world, err := d.PlayerGain("", audio.BusMusic) // no player: the world's mix alone
	if err != nil {
		return 0, 0, err
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		g, err := d.PlayerGain(player, audio.BusMusic)
		if err != nil {
			return 0, 0, err
		}
		if math.Abs(g-world*volume) < 1e-9 {
			return g, world, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("the audio director never applied %s's music volume %v: %w", player, volume, ctx.Err())
		case <-tick.C:
		}
	}
}
