// Package indicators draws a player's attention subtly: soft edge glows and
// small screen-edge markers toward off-screen targets, fading in and out,
// and only for what matters now. "No massive arrows" is a checked rule
// here, not a guideline.
//
// The package is engine-neutral and deterministic: pure projection and
// placement math plus a small stateful [Set] for what needs memory (fades,
// expiry, hysteresis, the guide). A Go game client (Ebitengine, say), a
// server deciding what each player may see, bots, replays and tests all
// compute the same frames from the same inputs and clock.
//
// # Usage
//
// One [Set] per local player (split-screen: one per viewport). Add
// indicators, then ask for a frame each rendered frame:
//
//	set, _ := indicators.New(indicators.Options{}) // the original's defaults
//	id, _ := set.Add(indicators.Indicator{Target: chest, Kind: indicators.ScreenEdge, Meaning: indicators.Objective})
//	var states []indicators.State
//	for range frames {
//		set.UpdateLocation(id, chest)
//		f, err := set.Frame(camera, viewport, states) // reuses states: no allocation
//		if err != nil { … }                           // a degenerate camera or viewport
//		states = f.States
//		draw(f.States) // position, angle, alpha, intensity, colour, size, style, shape
//	}
//
// [Draw] renders states into an image.RGBA, for designers and golden
// tests; examples/indicators-png writes such frames to PNG files.
//
// # Projection and placement
//
// [NewProjector] builds a projector from a [Camera] (position, forward, up,
// vertical field of view, aspect, near plane, or a view-projection
// [Mat4]) and a [Viewport]. Screen Y grows downwards and world up maps to
// smaller Y. A target behind the camera's near plane is reported as
// Behind, never mirrored and never at the screen centre: its direction is
// the way the player should turn, and one straight behind points to the
// bottom edge. [Place] intersects the ray from the safe area's centre
// toward the target with the safe rectangle or ellipse ([Area]), so the
// marker glides along the edge as the target moves (clamping X and Y
// separately makes it jump), and always returns a point inside the area.
// The bearing is continuous as a target moves, also where it crosses
// behind the camera; it turns only around the straight-behind axis.
//
// For targets a player may only know roughly, [Quantize] snaps bearings to
// 8 or 16 sectors (Indicator.Sectors does so in frames), and [Roughen]
// reduces a position to a sector and a distance band that a server can
// send instead of coordinates.
//
// # Styles, subtlety and animation
//
// [Kind] keeps the original system's four kinds: EdgeGlow and ScreenEdge
// indicate off-screen targets; Contextual is a glow on its target while the
// target is on screen and an edge marker while it is off, decided every
// frame, and shown while the game keeps it active ([Set.SetActive]);
// MinionNPC marks targets for the [Guide], a point that walks toward the
// highest-priority one at 100 units/s (off by default).
//
// Intensity is GlowIntensity × (1 − distance/MaxDistance) × priority,
// clamped to [Limits].MaxIntensity. [New] rejects, with a
// *[SubtletyError], an [Appearance] whose marker is larger than 4% of the
// screen height, whose glow is brighter than 0.6, or that pulses more than
// three times a second. Fades are eased ([Easing]) and timed by the
// injected clock; pulses too.
//
// # Budget
//
// At most [Budget].Max indicators show at once (8), at most MaxPerRegion in
// one screen region (3). Candidates rank by score (priority × closeness),
// then by ID, so every viewer of the same inputs sees the same set.
// Separate enter and exit thresholds and a minimum dwell (500 ms) keep
// indicators from flickering; indicators of one style drawn close together
// merge into the highest-ranked one, which reports how many it stands for.
//
// # Accessibility
//
// A [Profile] (colour-vision deficiency, scale, high contrast, reduced
// motion, flash cap) reaches a set through [Options] or [Set.SetProfile],
// for instance from a settings.changed event handler; this package does
// not import a settings package. Indicators with a [Meaning] take a
// palette colour chosen for the player's deficiency and a shape of their
// own, so colour never carries meaning alone. High contrast raises colours
// to at least 3:1 against a reference background (WCAG 1.4.11, XAG 102);
// reduce-motion turns pulses into static glows; pulses never exceed three
// a second (WCAG 2.3.1, XAG 118). [Simulate], [Contrast] and [DeltaE] let
// designers check their own palettes.
//
// # Server-decided indicators
//
// A server that decides what each player may see (team visibility, line
// of sight, quest state) publishes a [Visible] payload per player on
// [TopicVisible], keyed by player ID, with exact targets only where the
// player may know them and [Rough] sectors and bands elsewhere. The client
// subscribes with the KeepLatest overflow policy and hands each payload to
// [Set.Apply], which adds, updates and fades out indicators by key.
//
// # Bad input
//
// NaN, infinite or huge (beyond [MaxCoord]) coordinates are rejected with
// [ErrBadTarget] when added; zero-size viewports and degenerate cameras
// make [Set.Frame] fail with [ErrBadViewport] or [ErrBadCamera] and leave
// the set unchanged. No output is ever NaN.
//
// # Concurrency
//
// A [Set] is safe for concurrent use; [Projector] values and the package
// functions are pure. Nothing in this package starts a goroutine or holds
// a resource to close.
package indicators
