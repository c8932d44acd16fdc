package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/worldtime"
)

// worldClock runs a world's clock from 17:50 at 6,000× (a game day in
// 14.4 real seconds) and prints the phase events it publishes on the bus
// until night falls: dusk at 18:00, night at 20:00, about 1.3 real seconds
// in all. Game servers and clients follow these events (or the clock's
// Payload) instead of keeping time themselves. The audio director follows
// the clock too: each phase crossfades the ambient bed, and it prints the
// crossfade cues clients receive.
func worldClock(ctx context.Context, w io.Writer, bus *eventbus.Bus, d *audio.Director, log *slog.Logger) error {
	phases := make(chan worldtime.PhaseChanged, 8)
	sub, err := bus.Subscribe(ctx, worldtime.TopicPhase, eventbus.Handle(
		func(ctx context.Context, _ eventbus.Event, p worldtime.PhaseChanged) error {
			select {
			case phases <- p:
			case <-ctx.Done():
			}
			return nil
		}), eventbus.SubscribeOptions{})
	if err != nil {
		return err
	}
	defer sub.Close()

	const dayLength = 14400 * time.Millisecond // 6,000× real time
	fast, err := worldtime.DayLength(dayLength)
	if err != nil {
		return err
	}
	clock, err := worldtime.New(ctx, worldtime.Options{
		World: "harbour", Start: worldtime.At(1, 17, 50), Scale: fast, Bus: bus, Logger: log,
	})
	if err != nil {
		return err
	}
	defer clock.Close()
	stopFollowing, err := d.FollowClock(ctx, clock)
	if err != nil {
		return err
	}
	defer stopFollowing()
	now := clock.Now()
	fmt.Fprintf(w, "world clock %q: day %d, %s (%s), %g× real time: a game day every %v\n",
		clock.World(), now.Day, now.Clock(), now.Phase, fast.Multiplier(), dayLength)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p := <-phases:
			fmt.Fprintf(w, "  %s  day %d %s: %s → %s\n", worldtime.TopicPhase, p.Day, p.Clock, p.From, p.To)
			if p.To == worldtime.PhaseNight {
				// Stop the clock (it waits for its goroutine, where the
				// director's cues go out) before reading the cues.
				stopFollowing()
				if err := clock.Close(); err != nil {
					return err
				}
				printCrossfades(w, d)
				fmt.Fprintln(w)
				return nil
			}
		}
	}
}

// printCrossfades prints the ambient crossfades the director has sent, as
// clients receive them on audio.cue.
func printCrossfades(w io.Writer, d *audio.Director) {
	for _, c := range d.Cues(0) {
		x := c.Crossfade
		if c.Kind != audio.CueCrossfade || x == nil || x.Slot != audio.SlotTimeOfDay {
			continue
		}
		from := x.From
		if from == "" {
			from = "silence"
		}
		fmt.Fprintf(w, "  %s  ambient %s: %s → %s over %v, %s\n", audio.TopicCue, x.Slot, from, x.To, x.Duration, x.Curve)
	}
}
