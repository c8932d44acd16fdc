// Package settings keeps players' audio, video, controls, gameplay and
// accessibility settings on the server: a typed schema with defaults,
// validation with per-key errors, migrations between schema versions,
// layered sources with explanations, per-key optimistic concurrency, live
// preview with automatic revert, change notifications and export to UE5's
// GameUserSettings.ini.
//
// # Schema
//
// Every setting has a key ("group.name"), a [Type], a default, a range or
// a list of [Choice]s with display labels, units, [Tag]s (local or shared,
// competitive, server-only, accessibility) and the schema version it
// appeared in. [Builtin] is version [BuiltinVersion]; its version 1 is the
// original SaveGame's settings with the original's defaults and allowed
// values (audio master 1.0, music 0.8, voice 1.0, effects 1.0, UI 0.7;
// 1920x1080 from 1280x720…3840x2160; quality preset High of Low, Medium,
// High, Ultra; fullscreen; vsync on; 60 fps; sensitivity 1.0; invert Y
// off; key bindings; subtitles on; difficulty Normal of Easy…Nightmare;
// autosave every 5 minutes), so that a studio migrating from it keeps its
// players' values. Studios add their own keys with [Schema.Extend].
// Tags split what follows a player across devices from what stays with a
// machine: [Schema.Keys](TagShared) is what may go to cloud storage,
// Keys(TagLocal) (video, the speaker layout) stays local; [PlatformTag]
// limits a key to platforms (window mode is "platform:pc").
//
// The audio volumes are the player's sliders: they multiply the audio
// package's bus mix levels, they do not replace them. Where both define a
// default (the original had music 0.8 here and 0.7 in its audio manager's
// mix, UI 0.7 here and 0.9 there) the effective gain is the product, not
// one of the two.
//
// Setting video.quality (a preset, 0–3) also sets every scalability group
// ([ScalabilityGroups], 0–4 like UE5's) the same change does not set.
//
// # Validation
//
// [Schema.Validate], [Schema.DecodeDocument] and every write report all
// offending keys at once in a *[ValidationError]; each [Problem] wraps a
// sentinel ([ErrUnknownKey], [ErrWrongType], [ErrOutOfRange],
// [ErrNotAllowed], [ErrBindingConflict], [ErrServerOnly], [ErrTooLarge]),
// so errors.Is works on the whole error. Documents and change sets are
// bounded in bytes (Options.MaxDocumentBytes, default 64 KiB), strings to
// [MaxStringBytes], bindings to [MaxBindings] actions. The language key
// accepts the same BCP 47 subset as dialogue.
//
// # Layers
//
// A player's effective settings are resolved from, lowest first: the
// schema's defaults, the platform (Options.Platforms), the device profile
// (Options.Devices), the player's stored values, the open preview, and
// the server's overrides (Options.Overrides). Server [Rule]s then clamp
// number settings per mode, with a reason ("FOV limited to 110 in
// ranked"): competitive keys are judged on the server at every read,
// whatever a client stored. [Resolved.Explain] tells which layer won, what
// it shadowed, and whether a rule clamped it.
//
// # Migrations
//
// A [Migration] is a plain function from version n to n+1 over
// JSON-decoded values. [Manager.Get] migrates an older stored document
// once and stores the result; keys the migrations do not touch, known or
// not, are preserved, so a newer server's keys survive an older one.
//
// # Persistence and conflicts
//
// A [Store] holds each key with a store-issued revision. Writes carry the
// revision the client saw ([Change].IfRev, from [Resolved.Rev]): two
// devices editing different keys merge; a write from a stale revision of
// the same key is resolved by the key's [ConflictPolicy]: reject with a
// *[ConflictError] (the default), last writer wins, or keep the larger
// number (text size). Stores: [MemoryStore]; settings/filestore (one file
// per player, atomic saves, quarantine of malformed files);
// settings/redisstore (one hash per player, one Lua script per write).
// settings/settingstest is the conformance suite every store passes.
//
// # Preview
//
// [Manager.Begin] opens a server-side preview; [Manager.Preview] shows
// values to every reader and subscriber at once without storing them;
// [Manager.Confirm] stores them; [Manager.Revert], or the timeout
// (Options.PreviewTimeout, default 15 s), restores what was shown before,
// video included. [Manager.ResetToDefaults] drops the player's stored
// values of all keys or of some groups.
//
// # Notifications
//
// Every change (applied, reset, previewed, reverted) is a [Changed]: on
// [Manager.Subscribe]'s channels in process, filtered by keys or groups,
// and on Options.Bus as [TopicChanged] ("settings.changed") keyed by
// player ID, so one player's changes stay in order. Changed carries the
// effective old and new values; after the bus's JSON encoding, numbers
// arrive as float64.
//
// # Export
//
// [ExportINI] renders resolved settings as UE5 GameUserSettings.ini
// sections; [ExportJSON] renders values with display labels and
// revisions for other clients.
//
// # HTTP
//
// [Manager.Handler] serves read, write, explain, reset, preview, confirm
// and revert for game clients and services, authenticated with the
// identity package (an identity.Authenticator, or the identity a server's
// middleware put in the request's context); errors are one documented
// JSON object ([HTTPError]) with a code per offending key.
//
// # Concurrency
//
// [Manager], [Schema], [Resolved], [MemoryStore] and [Subscription] are
// safe for concurrent use. A Manager starts one timer per open preview
// and no goroutines of its own; [Manager.Close] stops the timers and
// closes subscriptions.
package settings
