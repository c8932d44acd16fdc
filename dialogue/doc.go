// Package dialogue is the NPC conversation service: a player speaks to an
// NPC, the service assembles the prompt from the NPC's persona and the
// conversation so far, routes it through package router, and streams the
// NPC's words back token by token, marked at sentence boundaries so a game
// client can show subtitles and feed text-to-speech as they arrive.
//
// The contract is proto/bodybroker/dialogue/v1/dialogue.proto (generated Go
// in dialogue/dialoguev1): Say (unary), StreamSay (server streaming) and
// Converse (bidirectional, with barge-in).
//
// # Usage
//
// Build a router (see package router), register personas, and create a
// [Service]; then either run the ready-made [Server] or register the
// service on your own *grpc.Server:
//
//	personas, _ := dialogue.NewPersonas(dialogue.Persona{
//		ID: "mara", Name: "Mara", SystemPrompt: "A dockside fence.",
//		Importance: router.Elite, Adapter: "mara-lora",
//		FallbackLines: []string{"Not now. Come back later."},
//	})
//	svc, _ := dialogue.New(dialogue.Options{Completer: dialogue.RouterCompleter(r), Personas: personas})
//	auth, _ := identity.NewTokenAuthenticator(tokens)
//	srv, _ := dialogue.NewServer(svc, dialogue.ServerOptions{Authenticator: auth, Credentials: creds})
//	go srv.Serve(lis)
//	defer srv.Shutdown(ctx)
//
// To embed in a studio's own server, install the interceptors from
// [Interceptors] (they act on this service's methods only), bound message
// sizes with grpc.MaxRecvMsgSize(svc.MaxRecvMsgSize()), and call
// [Service.Register], giving both the same [HandlerOptions] (an
// Authenticator is required; a missing one is an error at setup, never a
// panic); see the examples. [Service.HTTPHandler] serves the
// same calls as JSON (protojson) over HTTP, with StreamSay as Server-Sent
// Events, for clients without a gRPC stack.
//
// # Prompt layout
//
// [Prompt.Assemble] lays every prompt out in one canonical order — world
// lore, region lore, persona; then memory summary and reply language; then
// the most recent turns; then the scene and the player's new line — so that
// requests for the same NPC share byte-identical prefixes and engine prefix
// caches hit. It keeps the system part and the newest turns within
// Options.PromptBudget tokens. The player's words (and the game context the
// client sends) only ever appear in user messages; they cannot replace the
// persona. An optional [Moderator] filters input and each output sentence.
//
// # Memory
//
// Conversations live in a [history.Store] under a session ID, owned by one player
// and one NPC: a player may continue only their own sessions
// (PermissionDenied otherwise). Session IDs are issued by the service: a
// request without one starts a session under a random ID that comes back
// in Completion.session_id, and an ID the store does not hold — never
// issued, or expired or evicted — fails with [ErrSessionNotFound]
// (NotFound) rather than creating a session under a name the client chose.
// While the store cannot be read, a player is answered without history and
// the turn is not saved. Conversation memory lives in dialogue/history,
// which links no grpc: the [history.Store] seam and [history.MemoryStore],
// the in-process default (idle TTL, bounded turns); dialogue/redisstore
// keeps conversations in Redis. dialoguetest.TestStore checks any
// implementation.
//
// Stores bound what they keep, so that no player can exhaust them: turns
// and bytes per conversation, conversations per player (a player past the
// cap loses their own least recently active session) and idle time.
// [history.MemoryStore] also holds at most MaxBytes (256 MiB by default)
// in all and, when full, evicts from the player holding the most, so that a few
// accounts opening sessions without end cannot evict another player's
// history. In dialogue/redisstore every key expires and Redis's own
// maxmemory bounds the total.
//
// # Security
//
// Callers authenticate with "authorization: Bearer <token>"; an
// [identity.Authenticator] maps the token to an [identity.Identity], a
// player or a trusted service. [identity.TokenAuthenticator] compares token
// hashes in constant time.
// The player is taken from the identity, never from the request body (a
// trusted service may name the player it speaks for). Tier and adapter
// overrides are honoured only for services. So is raising a reply's tier
// or queue priority: a player's importance and responsibility may lower
// what the persona's importance calls for, never raise it (see
// [Service.Say] and Options.Responsibilities). Each player has a token-bucket
// rate limit (ResourceExhausted), requests and messages have size limits,
// handler panics become Internal, and [Code] maps every error to a status
// code in one place. A request message over Limits.MaxMessageBytes is
// InvalidArgument on both transports. [Server] adds keepalive enforcement,
// TLS through standard credentials, the standard health service, server
// reflection if ServerOptions.Reflection asks for it (it is off by
// default) and a graceful [Server.Shutdown] bounded by its context. The
// HTTP handler answers every error, 404 and 405 included, with the same
// JSON error object.
//
// # Conversations
//
// On a Converse stream a turn the service refuses (invalid, rate limited,
// another player's session, an unknown session) is answered with a TurnError for that turn and
// the stream stays open; the next turn inherits the NPC and session of the
// last answered one. A new turn or an Interrupt cancels the reply in
// progress, which ends with FINISH_REASON_INTERRUPTED.
//
// # Failure
//
// When no tier of the router can produce a first token, the NPC answers
// with one of its persona's fallback lines, and Completion.fallback says so:
// the player never sees an error for a backend outage. A backend failing
// mid-reply ends the reply with FINISH_REASON_TRUNCATED. A backend that
// streams without end is cut off at Limits.MaxReplyBytes (16 KiB by
// default): the reply ends there with FINISH_REASON_LENGTH, the backend
// stream is closed, and nothing beyond is kept or stored. Cancelling a call
// (or a client disconnecting) cancels the backend request at once.
//
// A dependency the call cannot do without failing — the conversation
// store, when only it knows whose session it is, or the input moderation
// hook — fails the call with an error matching [ErrUnavailable]
// (Unavailable) and the dependency's own error. Errors from the service
// wrap their causes with %w, so errors.Is matches both the package's
// sentinel and the cause (a prompt over budget matches [ErrTooLarge] and
// [ErrPromptTooLarge]).
//
// # Events
//
// As a reply's first chunk is about to be sent, a [Started] payload goes
// to Options.OnStarted and, when Options.Events is set, onto that
// [eventbus.Bus] under [TopicStarted] ("npc.dialogue.started"): a voice
// line begins, and an audio director ducks the music under it. After every
// reply a [Completed] payload goes to Options.OnCompleted and the bus under
// [TopicCompleted] ("npc.dialogue.completed"). Both are keyed by player ID
// and carry no dialogue text.
//
// # Concurrency
//
// [Service], [Personas], [history.MemoryStore],
// [identity.TokenAuthenticator] and [Server] are safe for concurrent use.
// The service starts no goroutines of its own; a Converse stream runs a reader goroutine and one goroutine for the
// reply in progress, and both end with the stream. StreamSay and Converse
// send through a writer goroutine of their own, so that a client that
// stops reading cannot hold the handler: a reply chunk the client does not
// accept within the send timeout (HandlerOptions.SendTimeout, default
// [DefaultSendTimeout]; over HTTP, a write deadline) ends the call,
// cancels the backend request, releases its router slot and is counted in
// Stats.SlowClients ([ErrSlowClient]). [Server.Shutdown]
// lets Converse streams finish their current reply and then ends them
// with Unavailable; [Server.Close] stops at once, also during a Shutdown.
package dialogue
