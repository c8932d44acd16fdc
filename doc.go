// Package sdk is the Body Broker SDK: the backend of a game whose NPCs speak
// through large language models, as Go packages a studio imports into its own
// servers.
//
// This root package holds no code; it documents the SDK. Each package below
// is imported on its own, and none has global state, init side effects or
// goroutines its owner cannot stop.
//
// # Packages
//
//   - router: multi-tier model routing. A request names a responsibility
//     (bark, quest dialogue, story-critical line) and an NPC importance; the
//     router picks a tier, admits it under per-tier limits, picks a replica,
//     falls back before the first token and keeps p50/p95/p99 per tier.
//     Backends: router/openai (vLLM, llama.cpp server, Ollama) and
//     router/scripted (canned lines); router/routertest checks any Model.
//   - dialogue: the NPC conversation service over gRPC, with real token
//     streaming, sessions, personas, memory, auth, limits and fallback lines,
//     plus an HTTP/JSON and Server-Sent Events fallback. Generated API in
//     dialogue/dialoguev1; conversation memory (the Store seam and the
//     in-process store) in dialogue/history, in Redis in
//     dialogue/redisstore, neither linking grpc.
//   - payment: Stripe checkout, signed webhooks processed exactly once into
//     entitlements, coupons, promotion and ambassador codes. Stripe in
//     payment/stripepay, a Redis store in payment/redisstore, a stateful
//     fake Stripe in payment/fakepay, and the provider and store suites in
//     payment/paymenttest.
//   - eventbus: typed events between services, in process and across servers,
//     with history, replay and statistics. Redis Streams and pub/sub
//     transports in eventbus/redisbus; the conformance suite in
//     eventbus/eventbustest.
//   - identity: who is calling (a player or a trusted service), the
//     Authenticator seam, bearer-token parsing and a constant-time token
//     table; standard library only, shared by every server-facing package.
//   - latency: the one latency summary every Stats() reports (p50 to
//     p99.9 within 0.78 %), and the streaming sketch behind it.
//   - router/gateway: the router behind an OpenAI-compatible HTTP API
//     (chat, completions, models) with receipts in response headers, for
//     clients in any language.
//   - batching: an adaptive per-replica concurrency and token-window
//     limiter for the router's Limiter seam and a micro-batcher; vLLM,
//     llama.cpp and Ollama configuration in batching/engine, LoRA adapters
//     in batching/lora, engine and GPU telemetry in batching/vllmmetrics and
//     batching/nvml, and a continuous-batching simulator in batching/sim.
//   - worldtime: one authoritative game clock per world (phases, calendar,
//     sky, game-time timers, skip-safe events), shared across servers
//     through worldtime/redisstore.
//   - audio: the server-side audio director (mixer, ducking, voice limits,
//     ambient director, cue stream) and voice lines synthesized and served
//     as clips (audio/espeak, audio/openaitts, audio/cliphttp,
//     audio/redisclips).
//   - indicators: off-screen and attention indicator math: projection,
//     edge placement, fades, budgets and accessibility.
//   - settings: player settings with a schema, validation, migrations,
//     layers, live preview and safe persistence (settings/filestore,
//     settings/redisstore).
//
// See the README for the two set-up commands, and examples/quickstart for
// the packages assembled into a server.
//
// # Events
//
// Every topic the packages publish on an eventbus.Bus, with its payload
// type (JSON, versioned: new fields are only added) and event key. Publish
// with eventbus.Publish, decode with eventbus.Decode; subscribe by pattern
// ("world.time.*", "npc.dialogue.*").
//
//	topic                         constant                              payload                       key        published by
//	npc.dialogue.started          dialogue.TopicStarted                 dialogue.Started              player ID  dialogue (Options.Events), before a reply's first text
//	npc.dialogue.completed        dialogue.TopicCompleted               dialogue.Completed            player ID  dialogue, after each reply
//	payment.entitlement.changed   payment.TopicEntitlementChanged       payment.EntitlementChange     player ID  payment (Options.Events), when a webhook changes an entitlement
//	settings.changed              settings.TopicChanged                 settings.Changed              player ID  settings (Options.Bus): stored, reset or previewed values
//	world.time.phase              worldtime.TopicPhase                  worldtime.PhaseChanged        world ID   worldtime (Options.Bus): dawn, day, dusk, night …
//	world.time.hour               worldtime.TopicHour                   worldtime.HourChanged         world ID   worldtime, each game hour
//	world.time.day                worldtime.TopicDay                    worldtime.DayChanged          world ID   worldtime, each game day
//	world.time.set                worldtime.TopicSet                    worldtime.TimeSet             world ID   worldtime, when the clock is set backwards
//	audio.cue                     audio.TopicCue                        audio.Cue                     world ID   audio's director: voices, crossfades, bus gains, ducking
//	indicators.visible            indicators.TopicVisible               indicators.Visible            player ID  the studio's server (indicators does not import eventbus)
//	deadletter.<topic>            eventbus.Options.DeadLetterPrefix     the failed event, unchanged   its key    eventbus, after a subscription's retries
//
// Consumers inside the SDK: audio follows npc.dialogue.started (ducking,
// audio.TopicDialogueStarted) and settings.changed (bus volumes,
// audio.TopicSettingsChanged) without importing dialogue or settings.
// The router publishes nothing itself; its fallbacks reach a bus through
// router.Hooks.OnFallback if a server wires them (examples/server logs
// them and counts them in /metrics).
//
// # Conventions
//
// Every package follows the same few rules, so that learning one teaches
// the rest.
//
//   - Constructors: New(opts Options) (*T, error). It validates opts once
//     and returns a typed error naming the bad field; the zero Options means
//     the documented defaults. A constructor that starts background work
//     starts it only once validation has passed, and the value's Close (or
//     Shutdown) stops it. Setup helpers that can be misconfigured
//     (interceptors, handlers) return an error too; nothing panics at setup.
//   - Options: a struct per constructor (router.Options, eventbus.Options,
//     history.MemoryStoreOptions, …), never functional options, so that a
//     configuration can be built, stored, compared and logged as a value.
//     Durations are time.Duration; 0 means the default, and where 0 is a
//     real value a Disable… field says so.
//   - Time: Options.Now (func() time.Time; nil means time.Now) wherever a
//     package reads the clock; waiting uses the standard library's timers,
//     so tests run inside testing/synctest and see a fake clock.
//   - Context: blocking calls take a context.Context first and honour its
//     cancellation and deadline.
//   - Shutdown: Close stops now, Shutdown(ctx) drains within ctx; both are
//     idempotent, and calls after them return the package's ErrClosed.
//     Whoever creates a client (a *redis.Client) closes it: no package
//     closes a client it was given.
//   - Errors: sentinel errors for conditions (router.ErrSaturated,
//     payment.ErrBadSignature), typed errors for data, wrapped with %w and
//     matched with errors.Is and errors.As. gRPC status codes are chosen in
//     one place, in dialogue.
//   - Stats: every component has a cheap Stats() snapshot, a plain struct;
//     its latency figures are latency.Summary values from one streaming
//     sketch.
//   - Dependencies: core packages never import their heavy backends: a user
//     of the in-memory event bus does not link go-redis, and a user of the
//     payment types does not link stripe-go. deps_test.go enforces it.
package sdk
