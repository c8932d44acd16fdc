package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun runs the whole tour, bounded, and checks that each part showed
// what it is there to show. The bound only stops a hang; the tour takes a
// few seconds.
func TestRun(t *testing.T) {
	t.Setenv("BB_OPENAI_URL", "") // the stand-ins, whatever the environment says
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		// dialogue over gRPC, streamed, with the tier that served it
		"mara: The tide turns at dusk. Be at the pier, and come alone.",
		"via tier2/",
		"3 events on npc.dialogue.completed",
		// the router behind the OpenAI-compatible gateway
		"model npc/greeting, stream\n  guard: Hail, traveller.\n  └ ",
		"X-BB-Tier: tier1",
		// the world clock at speed
		"world.time.phase  day 1 18:00: day → dusk",
		"world.time.phase  day 1 20:00: dusk → night",
		// the audio director's ambience following the clock
		"audio.cue  ambient time_of_day: MS_DuskAmbient → MS_NightAmbient over 30s",
		// the shop
		"(ambassador creator-alice)",
		"webhook invoice.paid",
		"entitlement: player=player-7 plan=vip active status=active",
		"payment.entitlement.changed  player-7: none → vip (active)",
		"ambassador creator-alice: 1 checkout, 1 paid invoice, revenue 8.00 USD",
		// settings
		"previewing:      audio.music = 0.3 (from the preview layer)",
		"settings.changed  player-7 reverted  audio.music: 0.3 → 0.8",
		// the audio bus following the slider
		"audio: player-7's music bus at 0.21 (mix 0.7 × slider)",
		"audio: player-7's music bus at 0.56 (mix 0.7 × slider)",
		// the router's table
		"router stats:",
		"TTFT p50",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Voice clips need espeak-ng; without it the quickstart says so.
	voice := "voice: espeak-ng is not on PATH"
	if _, err := exec.LookPath("espeak-ng"); err == nil {
		voice = "voice: mara's reply as 2 espeak-ng clips"
	}
	if !strings.Contains(got, voice) {
		t.Errorf("output lacks %q", voice)
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}
