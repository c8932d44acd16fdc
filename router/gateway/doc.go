// Package gateway serves a [router.Router] as an OpenAI-compatible HTTP
// API, so that any tool that speaks the OpenAI API through its official
// SDKs (Python, TypeScript, Go, curl) gets the router's tier policy,
// admission, fallback before the first token, breakers, affinity and
// receipts by pointing its base URL at the gateway.
//
// # Usage
//
//	g, err := gateway.New(gateway.Options{Router: r})
//	defer g.Close()
//	http.ListenAndServe("127.0.0.1:8080", g) // base URL http://127.0.0.1:8080/v1
//
// A [Gateway] is an http.Handler serving:
//
//   - POST /v1/chat/completions: streaming (Server-Sent Events, with a
//     last usage chunk when stream_options.include_usage is set) and not.
//   - POST /v1/completions: the prompt becomes the request's single user
//     message.
//   - GET /v1/models: the names a caller may use (filtered by its key).
//
// # Models and routing
//
// The request's "model" names a route, not a model:
//
//   - an alias from Options.Aliases ("gpt-4o-mini" → tier1, say);
//   - "npc/<responsibility>" ("npc/quest_dialogue"), routed by the
//     router's policy; the responsibilities a caller may name are
//     Options.Responsibilities (default: those of
//     router.DefaultResponsibilityTiers);
//   - anything else is a tier name ("tier2"), passed to the router as an
//     explicit tier.
//
// A name that matches none of these is HTTP 404 "model_not_found". The
// optional headers [HeaderNPC], [HeaderPlayer], [HeaderImportance]
// (generic, elite or major) and [HeaderAffinityKey] carry what the OpenAI
// API has no field for. Without an affinity key, player and NPC together
// (the player defaults to the body's "user" field) are the key, so a
// conversation stays on the replica that has its prompt prefix cached.
//
// Nothing a player sends raises their tier: [HeaderImportance] counts only
// for trusted callers (service keys, [identity.Identity.Trusted]; every
// caller when the gateway has no Authenticator), and a player's key always
// speaks for that player. Which models a key may name at all is its
// [KeyPolicy].
//
// Of the sampling fields the gateway passes max_tokens (or
// max_completion_tokens), temperature (0 to 2) and stop (up to 4); it
// accepts and ignores the others (top_p, seed, …); n must be 1.
//
// The response's "model" is the model (or LoRA adapter) the router sent
// to the backend, or the tier's name when it sent none. The route receipt
// travels in response headers: [HeaderTier], [HeaderReplica],
// [HeaderReasons], [HeaderAttempts] and [HeaderFallback]. Usage is what
// the backend reported; when it reported none, the body has no usage and
// a stream no usage chunk.
//
// # Errors
//
// Errors are OpenAI error objects ({"error": {"message", "type", "param",
// "code"}}) with the statuses OpenAI's clients expect: 400 for a bad body
// ([ErrInvalidRequest], with the field in "param"), 401 for a missing or
// refused API key, 404 for an unknown model or one the key may not use,
// 413 for a body over Options.MaxRequestBytes, 429 with Retry-After when
// the key is over its rate or every tier that could serve the request is
// at capacity, 503 with Retry-After when every tier is down (or the
// gateway is closed), 504 when the request's deadline passed. Once the
// first token is out a failure (a stall, a backend cut) ends the stream
// with an error event ("data: {"error": …}") and no [DONE], never with a
// silent close; OpenAI's SDKs raise it as an error. Error messages do not
// pass on what a backend said (Options.OnError sees the whole error).
//
// # API keys
//
// With Options.Authenticator (an identity.Authenticator, such as
// identity.TokenAuthenticator) every request needs "Authorization: Bearer
// <key>", which is what OpenAI's clients send their API key as; the
// authenticator says whose key it is (an identity.Identity), and
// Options.Keys gives that caller a [KeyPolicy]: the models it may use and
// a request rate (a token bucket). The caller's identity is in the
// context the router's models see (identity.FromContext). Without an
// Authenticator every request is accepted as the zero identity: only for
// loopback and tests.
//
// # Limits and cancellation
//
// A body is read up to Options.MaxRequestBytes (1 MiB); a request has at
// most [MaxMessages] messages and routing headers at most
// [MaxHeaderValueBytes] each. The reply is bounded by the router's reply
// limits. When the client goes away its request's context ends, which
// cancels the router stream and releases its tier and replica slots at
// once. Every write to the client has Options.WriteTimeout (10s): a
// client that stops reading is cut off after it and its slots released.
// How long a client may take to send its headers and body, and how large
// its headers may be, are the http.Server's to bound (ReadHeaderTimeout,
// ReadTimeout, MaxHeaderBytes). The gateway sets a write deadline before
// each write, which replaces the http.Server's WriteTimeout for its
// responses, so a long stream is never cut for its length.
//
// # Stats
//
// [Gateway.Stats] counts requests, outcomes, tokens and time to first
// token, in total, per key ID and per model name.
//
// # Concurrency
//
// A Gateway is safe for concurrent use. Each request runs on its
// handler's goroutine and starts none of its own. [Gateway.Shutdown]
// refuses new requests and lets those in progress finish within its
// context; [Gateway.Close] cancels them. Both wait for the handlers and
// neither closes the router.
package gateway
