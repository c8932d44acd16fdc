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
//     dialogue/dialoguev1; conversation memory in Redis in
//     dialogue/redisstore.
//   - payment: Stripe checkout, signed webhooks processed exactly once into
//     entitlements, coupons, promotion and ambassador codes. Stripe in
//     payment/stripepay, a Redis store in payment/redisstore, a stateful
//     fake Stripe and the store suite in payment/paymenttest.
//   - eventbus: typed events between services, in process and across servers,
//     with history, replay and statistics. Redis Streams and pub/sub
//     transports in eventbus/redisbus; the conformance suite in
//     eventbus/eventbustest.
//   - internal/stats: the streaming latency sketch behind every Stats().
//
// See the README for the two set-up commands, and examples/quickstart for
// the packages assembled into a server.
//
// # Conventions
//
// Blocking calls take a context.Context first. Constructors validate their
// options once and return an error; zero options mean documented defaults.
// Close and Shutdown are idempotent. Core packages never import their heavy
// backends: a user of the in-memory event bus does not link go-redis, and a
// user of the payment types does not link stripe-go.
package sdk
