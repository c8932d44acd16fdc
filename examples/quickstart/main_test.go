package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/router/openai/openaitest"
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

// TestRunWithModelServer: with BB_OPENAI_URL set, tiers 1 and 2 send every
// request to that server, naming BB_OPENAI_MODEL and sending
// BB_OPENAI_API_KEY. A stand-in plays the real server here.
func TestRunWithModelServer(t *testing.T) {
	real := openaitest.NewServer(openaitest.Behavior{Tokens: []string{"From ", "the ", "real ", "server."}})
	defer real.Close()
	t.Setenv("BB_OPENAI_URL", real.URL+"/v1")
	t.Setenv("BB_OPENAI_MODEL", "test/real-model")
	t.Setenv("BB_OPENAI_API_KEY", "sk-test")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"tiers 1 and 2 on the model server at " + real.URL + "/v1",
		"guard: From the real server.",
		"mara: From the real server.",
		"elara: From the real server.", // tier 3 is down: it falls back to tier 2, the real server
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	reqs := real.Requests()
	if len(reqs) < 4 { // three NPCs and the gateway's request
		t.Fatalf("the model server got %d requests, want at least 4", len(reqs))
	}
	for _, r := range reqs {
		if r.Model != "test/real-model" || r.Header.Get("Authorization") != "Bearer sk-test" {
			t.Errorf("request for model %q with Authorization %q, want test/real-model and the key",
				r.Model, r.Header.Get("Authorization"))
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}
