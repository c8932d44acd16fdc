package settings

import "slices"

// BuiltinVersion is the version of the [Builtin] schema.
//
// Version 1 is the original SaveGame's settings, with their keys,
// defaults and allowed values, so that a studio migrating from it keeps its
// players' values: audio master/music/voice/effects/ui, video resolution,
// quality preset, window mode, vsync and frame-rate limit, controls
// sensitivity, invert Y and key bindings, gameplay subtitles, difficulty and
// autosave interval. Version 2 adds the rest of audio, video scalability
// groups and picture settings, controls, gameplay language and
// accessibility; its migration expands a version 1 quality preset into the
// per-group scalability levels.
const BuiltinVersion = 2

// Scalability levels, as UE5's scalability groups use them.
var scalabilityChoices = []Choice{
	{int64(0), "Low"}, {int64(1), "Medium"}, {int64(2), "High"}, {int64(3), "Epic"}, {int64(4), "Cinematic"},
}

// ScalabilityGroups returns the video scalability keys the quality preset
// (video.quality) expands to, in UE5's order.
func ScalabilityGroups() []string { return slices.Clone(scalabilityGroups) }

var scalabilityGroups = []string{
	"video.view_distance", "video.anti_aliasing", "video.shadows", "video.post_processing",
	"video.textures", "video.effects", "video.foliage", "video.shading",
}

// Window modes of video.window_mode, numbered as the original SaveGame
// numbered them (UE5 numbers them differently; [ExportINI] translates).
const (
	WindowFullscreen         int64 = 0
	WindowWindowed           int64 = 1
	WindowWindowedFullscreen int64 = 2
)

func volume(key string, def float64, since int, doc string) Setting {
	return Setting{Key: key, Type: Float, Default: def, Min: 0, Max: 1, HasRange: true, Units: "gain",
		Tags: []Tag{TagShared}, Since: since, Conflict: ConflictLastWriterWins, Doc: doc}
}

func scalability(key string) Setting {
	return Setting{Key: key, Type: Int, Default: int64(2), Choices: scalabilityChoices, Units: "level",
		Tags: []Tag{TagLocal}, Since: 2, Conflict: ConflictLastWriterWins, Doc: "scalability level 0–4"}
}

var builtinSettings = func() []Setting {
	ss := []Setting{
		// Audio. The player's volumes multiply the audio package's bus mix
		// levels (audio owns the mix: music 0.7, UI 0.9 there; the
		// player's music 0.8 here scales it, it does not replace it).
		volume("audio.master", 1.0, 1, "master volume; multiplies every bus"),
		volume("audio.music", 0.8, 1, "music volume; multiplies audio's music bus mix level"),
		volume("audio.voice", 1.0, 1, "dialogue volume; multiplies audio's voice bus mix level"),
		volume("audio.effects", 1.0, 1, "sound-effects volume; multiplies audio's effects bus mix level"),
		volume("audio.ui", 0.7, 1, "interface volume; multiplies audio's UI bus mix level"),
		volume("audio.ambient", 1.0, 2, "ambient volume (the original had no slider); multiplies audio's ambient bus mix level"),
		{Key: "audio.speaker_mode", Type: String, Default: "stereo", Tags: []Tag{TagLocal}, Since: 2,
			Choices: []Choice{{"stereo", "Stereo"}, {"headphones", "Headphones"}, {"surround_5_1", "5.1 Surround"}, {"surround_7_1", "7.1 Surround"}},
			Doc:     "speaker layout"},

		// Video.
		{Key: "video.resolution", Type: String, Default: "1920x1080", Tags: []Tag{TagLocal}, Since: 1, Units: "px",
			Choices: []Choice{{"1280x720", "1280 × 720"}, {"1920x1080", "1920 × 1080"}, {"2560x1440", "2560 × 1440"}, {"3840x2160", "3840 × 2160"}},
			Doc:     "screen resolution"},
		{Key: "video.quality", Type: Int, Default: int64(2), Tags: []Tag{TagLocal}, Since: 1, Units: "preset",
			Choices: []Choice{{int64(0), "Low"}, {int64(1), "Medium"}, {int64(2), "High"}, {int64(3), "Ultra"}},
			Doc:     "overall quality preset; setting it sets every scalability group to the same level"},
		{Key: "video.window_mode", Type: Int, Default: WindowFullscreen, Tags: []Tag{TagLocal, PlatformTag("pc")}, Since: 1,
			Choices: []Choice{{WindowFullscreen, "Fullscreen"}, {WindowWindowed, "Windowed"}, {WindowWindowedFullscreen, "Windowed Fullscreen"}},
			Doc:     "window mode"},
		{Key: "video.vsync", Type: Bool, Default: true, Tags: []Tag{TagLocal}, Since: 1, Doc: "vertical sync"},
		{Key: "video.frame_rate_limit", Type: Int, Default: int64(60), Min: 0, Max: 360, HasRange: true, Units: "fps",
			Tags: []Tag{TagLocal}, Since: 1, Doc: "frame-rate cap; 0 means uncapped"},
	}
	for _, k := range scalabilityGroups {
		ss = append(ss, scalability(k))
	}
	ss = append(ss,
		Setting{Key: "video.brightness", Type: Float, Default: 1.0, Min: 0.5, Max: 1.5, HasRange: true, Units: "gamma",
			Tags: []Tag{TagLocal}, Since: 2, Doc: "display gamma"},
		Setting{Key: "video.fov", Type: Int, Default: int64(90), Min: 60, Max: 120, HasRange: true, Units: "deg",
			Tags: []Tag{TagShared, TagCompetitive}, Since: 2, Doc: "horizontal field of view"},
		Setting{Key: "video.motion_blur", Type: Bool, Default: true, Tags: []Tag{TagLocal}, Since: 2, Doc: "motion blur"},

		// Controls.
		Setting{Key: "controls.sensitivity", Type: Float, Default: 1.0, Min: 0.1, Max: 10, HasRange: true, Units: "x",
			Tags: []Tag{TagShared}, Since: 1, Conflict: ConflictLastWriterWins, Doc: "mouse sensitivity"},
		Setting{Key: "controls.invert_y", Type: Bool, Default: false, Tags: []Tag{TagShared}, Since: 1, Doc: "invert the Y axis"},
		Setting{Key: "controls.bindings", Type: Bindings, Default: map[string]string{}, Tags: []Tag{TagShared}, Since: 1,
			Doc: "action → key or button; no two actions on one key"},
		Setting{Key: "controls.dead_zone_left", Type: Float, Default: 0.15, Min: 0.05, Max: 0.9, HasRange: true, Units: "ratio",
			Tags: []Tag{TagShared, TagCompetitive}, Since: 2, Doc: "left stick dead zone"},
		Setting{Key: "controls.dead_zone_right", Type: Float, Default: 0.15, Min: 0.05, Max: 0.9, HasRange: true, Units: "ratio",
			Tags: []Tag{TagShared, TagCompetitive}, Since: 2, Doc: "right stick dead zone"},
		Setting{Key: "controls.vibration", Type: Bool, Default: true, Tags: []Tag{TagShared}, Since: 2, Doc: "controller vibration"},

		// Gameplay.
		Setting{Key: "gameplay.subtitles", Type: Bool, Default: true, Tags: []Tag{TagShared, TagAccessibility}, Since: 1, Doc: "subtitles"},
		Setting{Key: "gameplay.difficulty", Type: Int, Default: int64(1), Tags: []Tag{TagShared}, Since: 1,
			Choices: []Choice{{int64(0), "Easy"}, {int64(1), "Normal"}, {int64(2), "Hard"}, {int64(3), "Nightmare"}}, Doc: "difficulty"},
		Setting{Key: "gameplay.autosave_interval", Type: Int, Default: int64(5), Min: 1, Max: 60, HasRange: true, Units: "min",
			Tags: []Tag{TagShared}, Since: 1, Doc: "minutes between autosaves"},
		Setting{Key: "gameplay.language", Type: String, Default: "en", Units: UnitLanguage, Tags: []Tag{TagShared}, Since: 2,
			Doc: "interface and subtitle language (BCP 47)"},

		// Accessibility.
		Setting{Key: "accessibility.color_vision", Type: String, Default: "off", Tags: []Tag{TagShared, TagAccessibility}, Since: 2,
			Choices: []Choice{{"off", "Off"}, {"protanopia", "Protanopia"}, {"deuteranopia", "Deuteranopia"}, {"tritanopia", "Tritanopia"}},
			Doc:     "colour-vision filter"},
		Setting{Key: "accessibility.text_size", Type: Float, Default: 1.0, Min: 0.75, Max: 2.0, HasRange: true, Units: "x",
			Tags: []Tag{TagShared, TagAccessibility}, Since: 2, Conflict: ConflictMax, Doc: "text scale; conflicting writes keep the larger"},
		Setting{Key: "accessibility.reduce_motion", Type: Bool, Default: false, Tags: []Tag{TagShared, TagAccessibility}, Since: 2,
			Doc: "reduce camera shake and screen motion"},
		Setting{Key: "accessibility.flash_cap", Type: Int, Default: int64(3), Min: 0, Max: 3, HasRange: true, Units: "flashes/s",
			Tags: []Tag{TagShared, TagAccessibility}, Since: 2, Doc: "most flashes per second (3 is the WCAG bound)"},
	)
	return ss
}

// migrateV1 expands the version 1 quality preset into the scalability
// groups version 2 adds (keeping any group a document already has), and
// keeps every other value as it is.
func migrateV1(values map[string]any) error {
	q, ok := values["video.quality"]
	if !ok {
		return nil // the default preset: the groups' defaults match it
	}
	f, ok := q.(float64)
	if !ok || f != float64(int64(f)) || f < 0 || f > 3 {
		return nil // invalid in version 1 too: resolving ignores it, the groups keep their defaults
	}
	for _, k := range scalabilityGroups {
		if _, set := values[k]; !set {
			values[k] = f
		}
	}
	return nil
}

// Builtin returns the built-in schema (version [BuiltinVersion]): audio,
// video, controls, gameplay and accessibility. Each call returns the same
// immutable schema; extend it with [Schema.Extend].
func Builtin() *Schema { return builtin }

var builtin = func() *Schema {
	s, err := NewSchema(BuiltinVersion, builtinSettings(), map[int]Migration{1: migrateV1})
	if err != nil {
		panic(err) // a bug in this file, caught by every test
	}
	return s
}()
