package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/audio/espeak"
)

// speak synthesizes an NPC's reply as voice clips with espeak-ng, sentence
// by sentence as a Speaker does while a reply streams in, and prints each
// clip's schedule. Without espeak-ng on PATH it says so and does nothing:
// the quickstart needs no external program. (audio/openaitts is the
// Synthesizer for an OpenAI-compatible speech server.)
func speak(ctx context.Context, w io.Writer, npc, reply string) error {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		fmt.Fprint(w, "voice: espeak-ng is not on PATH, so no clips (Debian: apt install espeak-ng)\n\n")
		return nil
	}
	synth, err := espeak.New(espeak.Options{})
	if err != nil {
		return err
	}
	store, err := audio.NewMemoryClipStore(8 << 20)
	if err != nil {
		return err
	}
	sp, err := audio.NewSpeaker(audio.SpeakerOptions{
		Synthesizer: synth, Store: store, Line: audio.VoiceLine{NPC: npc, Session: "quickstart"},
	})
	if err != nil {
		return err
	}
	if _, err := sp.Write(ctx, reply); err != nil {
		return err
	}
	if _, err := sp.Flush(ctx); err != nil {
		return err
	}
	cues := sp.Cues()
	fmt.Fprintf(w, "voice: %s's reply as %d espeak-ng clips, stored by content address (audio/cliphttp serves them):\n", npc, len(cues))
	start := cues[0].At
	for _, c := range cues {
		fmt.Fprintf(w, "  +%-6v %-6v %.19s…  %q\n", c.At.Sub(start).Round(10*time.Millisecond),
			c.Duration.Round(10*time.Millisecond), c.Clip, c.Text)
	}
	fmt.Fprintln(w)
	return nil
}
