package settings_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bodybroker/sdk/settings"
)

// The built-in defaults are the original SaveGame's, with display labels
// for enum values.
func Example_defaults() {
	m, _ := settings.New(settings.Options{})
	defer m.Close()
	r, _ := m.Get(context.Background(), "player-1", settings.Target{})
	for _, k := range []string{"audio.music", "audio.ui", "video.resolution", "video.quality", "gameplay.difficulty", "gameplay.autosave_interval"} {
		v, _ := r.Value(k)
		st, _ := m.Schema().Lookup(k)
		fmt.Printf("%s = %v", k, v)
		if st.Units != "" {
			fmt.Print(" ", st.Units)
		}
		if l := st.Label(v); l != "" {
			fmt.Printf(" (%s)", l)
		}
		fmt.Println()
	}
	// Output:
	// audio.music = 0.8 gain
	// audio.ui = 0.7 gain
	// video.resolution = 1920x1080 px (1920 × 1080)
	// video.quality = 2 preset (High)
	// gameplay.difficulty = 1 (Normal)
	// gameplay.autosave_interval = 5 min
}

// A change is validated on the server; every offending key is reported at
// once, and a valid change is stored and explained.
func ExampleManager_Set() {
	m, _ := settings.New(settings.Options{
		Rules: []settings.Rule{{Key: "video.fov", Mode: "ranked", Min: 60, Max: 110, Reason: "FOV limited to 110 in ranked"}},
	})
	defer m.Close()
	ctx := context.Background()

	_, err := m.Set(ctx, "player-1", []settings.Change{
		{Key: "audio.master", Value: 1.4},
		{Key: "video.window_mode", Value: 7},
		{Key: "cheats.wallhack", Value: true},
	})
	var ve *settings.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Println("refused:", p)
		}
	}

	if _, err := m.Set(ctx, "player-1", []settings.Change{{Key: "video.fov", Value: 120}}); err != nil {
		fmt.Println(err)
	}
	r, _ := m.Get(ctx, "player-1", settings.Target{Mode: "ranked"})
	e, _ := r.Explain("video.fov")
	fmt.Printf("fov %v from the %v layer (%s; the player chose %v)\n", e.Value, e.Layer, e.Reason, e.Unclamped)
	// Output:
	// refused: audio.master: 1.4 outside [0, 1]
	// refused: cheats.wallhack: unknown key
	// refused: video.window_mode: 7 is not one of 0 (Fullscreen), 1 (Windowed), 2 (Windowed Fullscreen)
	// fov 110 from the player layer (FOV limited to 110 in ranked; the player chose 120)
}

// A preview shows values to everyone at once and reverts on its own when
// the player does not confirm in time.
func ExampleManager_Begin() {
	m, _ := settings.New(settings.Options{})
	defer m.Close()
	ctx := context.Background()
	sub, _ := m.Subscribe(settings.Match{Groups: []string{"video"}})

	p, _ := m.Begin(ctx, "player-1", 50*time.Millisecond)
	_ = m.Preview(ctx, "player-1", p.ID, map[string]any{"video.resolution": "3840x2160"})
	for c := range sub.C() {
		fmt.Println(c.Kind, c.Keys[0].Key, c.Keys[0].Old, "→", c.Keys[0].New)
		if c.Kind == settings.KindReverted {
			break
		}
	}
	// Output:
	// previewed video.resolution 1920x1080 → 3840x2160
	// reverted video.resolution 3840x2160 → 1920x1080
}

// A version 1 document (the original SaveGame's keys) migrates to the
// current schema: the player's values stay, the quality preset fills the
// scalability groups version 2 added.
func ExampleSchema_Migrate() {
	s := settings.Builtin()
	v1 := map[string]any{"video.quality": 0.0, "audio.music": 0.35, "studio.future_key": "kept"}
	v2, _ := s.Migrate(1, v1)
	fmt.Println(v2["audio.music"], v2["video.quality"], v2["video.shadows"], v2["video.textures"], v2["studio.future_key"])
	// Output:
	// 0.35 0 0 0 kept
}
