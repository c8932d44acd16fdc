// Package audio is a server-side audio director for multiplayer worlds:
// the server decides what the world sounds like and every client renders
// the same thing. It does not play sound. It computes mixer gains,
// ducking, which voices may play, and which ambient bed and layers fit
// the zone, the time of day, the weather and combat, and it sends each
// decision as a timestamped intent ([Cue]) that clients evaluate at their
// own "now".
//
// # Gain model
//
// Pure functions: [Linear] and [DB] convert decibels and linear gains
// (DB(0) is −Inf, the only gain that is); [Taper] maps volume slider
// positions to gains, versioned so that a saved slider keeps its
// loudness ([TaperLinear] is version 1, the original system's linear
// 0–1 volumes); [Curve] is an equal-power or linear crossfade;
// [SilenceDB] (−80 dB) is the silence floor. Bad values (NaN, out of
// range, boosts where cuts are expected, negative durations) are a
// *[ValueError] wrapping [ErrInvalidValue].
//
// # Mixer and ducking
//
// A [Mixer] is a bus hierarchy: master → music, voice, sfx, ambient, ui
// by default ([DefaultBuses], with the original's volumes 1.0, 0.7, 1.0,
// 1.0, 0.8, 0.9), or any tree ([ErrBusCycle], [ErrUnknownBus]). A bus's
// effective gain is the product along its path of volumes (0 when muted)
// and ducking multipliers, so a volume change reaches every playing sound
// below it. The original's categories map to buses by [Category.Bus]:
// Voice → voice, Ambient → ambient, Music → music, Effect → sfx, UI → ui.
// Per-player volumes ([PlayerVolumes]) apply on top.
//
// A [DuckRule] lowers target buses by a depth in dB with attack and
// release times; each rule keeps its own state ([Ducker]), several
// rules multiply, and the product stays within [floor, 1]. The default
// rule ducks music by 12 dB and ambient by 8 dB while a voice plays;
// voice is never ducked ([ErrNeverDucked]). The director adds the
// original's weather ducks: ambient by intensity × 0.6, music by 0.2
// when the weather is not clear and intensity is above 0.3, over 2 s.
//
// # Voices
//
// [Voices] applies per-group [Limit]s with a [Resolution] (reject new,
// stop oldest, lowest priority, farthest, quietest), a never-steal class
// for narrative-critical lines, cooldowns (spatial with a radius), and
// virtual voices that resume at their elapsed position when a slot
// frees. Stealing is deterministic: ties go by priority, distance, start
// time, then ID.
//
// # Ambience
//
// The director chooses beds and layers per slot: time of day (worldtime
// phases: dawn, day, dusk, night → MS_DawnAmbient …, crossfading over
// 30 s), zone (MS_Zone_<name>, 5 s, with a reverb preset per [ZoneType]
// over 3 s), weather (the original's 14 states and two-layer table,
// [DefaultWeatherLayers]: layer 2 above intensity 0.5 at 0.7 × it, over
// 5 s), and combat. Each change is a [Crossfade] (from, to, start,
// duration, curve), so a client that joins mid-way evaluates it at "now"
// and hears what everyone else hears. Storms strike thunder as seeded
// one-shots ([Thunder], [Variation]): every server and client computes
// the same strikes. [Occlude] turns an obstruction fraction into a gain
// and a low-pass cutoff.
//
// # Usage
//
//	d, err := audio.New(audio.Options{World: "harbor", Events: bus})
//	defer d.Close()
//	stop, _ := d.FollowClock(ctx, clock)               // worldtime phases → ambience
//	sub, _ := d.FollowDialogue(ctx, bus, "harbor", eventbus.SubscribeOptions{}) // npc.dialogue.started → voice lines
//	d.SetZone(ctx, audio.Zone{Name: "Docks", Type: audio.SemiExterior})
//	d.SetWeather(ctx, audio.WeatherStorm, 0.8)
//	d.Play(ctx, audio.Voice{ID: "horn-7", Sound: "ShipHorn", Bus: audio.BusSFX, Volume: 1, Duration: 4 * time.Second})
//	var f audio.Frame
//	for range ticker.C {
//		d.Update(ctx, &f) // voices end, slots free, thunder strikes; f is the mix
//	}
//
// # Cue stream
//
// Every decision is a [Cue] (play, stop, crossfade, bus_gain, duck) with a
// sequence number: as Go values ([Options].OnCue, [Director.Cues]), as
// JSON, and on an optional eventbus.Bus as [TopicCue] ("audio.cue"),
// keyed by world. Pub/sub keeps no history, so a late joiner takes a
// [Snapshot] from the director, applies the cues after it
// ([Snapshot.Apply]) and evaluates [Snapshot.Mix] at its own time. An
// [Adapter] maps cues to MetaSounds, Wwise or FMOD names
// ([MetaSoundsAdapter], [WwiseAdapter], [FMODAdapter]).
//
// # Voice lines
//
// dialogue announces a reply on [TopicDialogueStarted]
// ("npc.dialogue.started"); [Director.FollowDialogue] turns each into a
// voice line ([Director.VoiceLineStarted]) that ducks music and ambience
// until it ends: at its clip's known duration, on a client's ack
// ([Director.VoiceLineEnded]) or after MaxLineDuration. A [Speaker]
// synthesizes a streamed reply sentence by sentence through a
// [Synthesizer] (audio/espeak runs espeak-ng locally; audio/openaitts
// calls an OpenAI-compatible /v1/audio/speech server), stores each clip by
// content address in a [ClipStore] ([MemoryClipStore], bounded in bytes)
// and schedules it on the line right after the previous one
// ([Director.AppendClip]), so the first sentence plays before the reply
// has ended. audio/cliphttp serves the clips with range requests.
// [ParseWAV] decodes them.
//
// Settings reach audio through [TopicSettingsChanged] ("settings.changed",
// [Director.FollowSettings]), in the settings package's payload: the new
// values of "audio.<bus>" keys are a player's linear volumes
// ("audio.effects" drives the "sfx" bus). audio imports neither dialogue
// nor settings; a test at the module root holds the two to one payload.
//
// # Concurrency
//
// A [Director] is safe for concurrent use and starts no goroutines: its
// adapters run on the worldtime clock's goroutine or the bus's
// subscription workers and stop with the func or subscription they
// return. Each call publishes its cues before it returns, in sequence
// order, each publish bounded by PublishTimeout. [Mixer], [Ducker] and
// [Voices] are building blocks that are not safe for concurrent use; the
// director serialises its own. [MemoryClipStore] is safe for concurrent
// use; a [Speaker] serves one reply and is not. Every other type ([Cue],
// [Snapshot], [Crossfade], [Ramp], [Voice], [Adapter], ...) is a plain
// value: copy it freely and read it from several goroutines, but do not
// modify one while another goroutine reads it.
//
// # Performance
//
// One [Director.Update] with 1,000 playing voices on 20 buses takes 11 to
// 36 µs on the shared two-core CI machine (the budget is 100 µs) and
// allocates nothing when its [Frame] is reused (BenchmarkUpdate).
package audio
