// Package router decides, per NPC line, which model tier and which replica
// serve it, keeps every tier inside its limits, and makes sure the player
// always gets a line.
//
// # Usage
//
// Tiers are configuration: a name, replicas (each a [Model]), the model and
// LoRA adapter names to send, token and temperature defaults, a TTFT
// target, a concurrency bound and a bounded queue. A fallback chain says
// where a request goes when a tier cannot give it a first token:
//
//	r, err := router.New(router.Options{
//		Tiers: []router.Tier{
//			{Name: router.Tier1, Replicas: small, TTFTTarget: 150 * time.Millisecond, MaxConcurrent: 20, MaxTokens: 256},
//			{Name: router.Tier2, Replicas: mid, Adapter: "npc-elite", TTFTTarget: 300 * time.Millisecond, MaxConcurrent: 10, MaxQueued: 20},
//			{Name: router.Tier3, Replicas: mid, Adapter: "npc-major", TTFTTarget: 500 * time.Millisecond, MaxConcurrent: 5, MaxQueued: 10},
//			{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}},
//		},
//		Fallbacks: [][]string{{router.Tier3, router.Tier2, router.Tier1, "scripted"}},
//	})
//	s, err := r.Stream(ctx, router.Request{Messages: msgs, Responsibility: router.QuestDialogue})
//	defer s.Close()
//	for { d, err := s.Recv(); ... }
//
// [Options] is the whole configuration, a plain value: Tiers (required),
// Fallbacks, Policy, Logger, Hooks and Now, each zero field meaning its
// documented default. [New] validates it once and copies it; an invalid
// field gives an [*OptionsError] that names it, and errors.Is(err,
// ErrInvalidOptions) holds.
//
// [Router.Stream] returns once the first token has arrived; [Router.Generate]
// returns the whole line. Every result carries a [Receipt]: the tier and
// replica that served it, the reasons for each decision, and the predicted
// and actual time to first token.
//
// # Policy
//
// A request's tier is, in order: Request.Tier when set; the tier its
// Responsibility maps to; the tier its NPC Importance maps to; the default
// tier. [DefaultPolicy] holds the documented default map (greeting,
// farewell, generic, simple → tier1; elite dialogue, quest dialogue,
// complex question, story progression → tier2; major NPC, personalized,
// character development, story critical → tier3; generic/elite/major NPCs →
// tier1/2/3; otherwise tier2). Keys are typed; nothing matches substrings.
//
// # Admission
//
// Each tier bounds its requests in flight (MaxConcurrent) and each replica
// its own (Replica.MaxConcurrent). A request that finds no room waits in the
// tier's bounded queue, ordered by NPC importance, then fair round, then
// earliest deadline, then arrival, for at most QueueTimeout and never past
// its context's deadline. A full queue or an expired wait is an overflow:
// the request is downgraded to the next tier of the fallback chain
// (OverflowDowngrade), or fails with a [*SaturatedError] matching
// [ErrSaturated] (OverflowFail, or at the end of the chain).
//
// Fair rounds share one importance level between players: queued requests
// with a [Request.FairnessKey] are served round-robin across keys (each
// key's first queued request joins the round being served, each further
// one the round after its previous one), so a player with ten requests
// queued gets one per round while others wait for one.
//
// A replica's [Limiter] (Replica.Limiter; package
// github.com/bodybroker/sdk/batching has an adaptive one that counts
// requests and tokens) must also admit a request before it starts there.
// It is a gate, not a second queue: the tier's queue order still decides
// who goes next, and the head waits while every replica's limiter refuses
// it. Waiting for a limiter is queueing: it counts toward QueueTimeout and
// Timing.Queued, never toward the stall guard or the TTFT statistics.
// With a downgrade to go to, a queued request leaves early enough for the
// next tier's predicted TTFT to fit before its deadline, so that waiting
// here never costs the player the fallback's line.
//
// Admission is per tier and per replica: a request needs a tier slot and a
// slot on one replica. The queue, though, is the tier's, and its head takes
// the first replica slot that frees up (subject to affinity, see Replicas).
// Replicas have no queues of their own on purpose: one queue feeding every
// replica serves requests in importance and deadline order across the
// whole tier and never leaves a request waiting behind a slow replica while
// another one idles, which per-replica queues would (a request could only
// wait where it was first placed).
//
// Queued requests follow the breakers: when every replica's breaker is
// open they fail with [ErrCircuitOpen] at once and fall back, as a new
// request would; when the healthy replicas are full and another replica is
// cooling down, the head of the queue is admitted as that replica's
// half-open probe as soon as its cooldown ends.
//
// # Fallback and the first token
//
// A request moves down its fallback chain (for example tier3 → tier2 →
// tier1 → scripted) when a tier is saturated, when every replica's circuit
// breaker is open, when the replica fails before its first token (HTTP
// errors, 429/503, a stall before the first token), or when the tier is
// predicted to miss the deadline: its estimated queue wait plus its recent
// TTFT p95 exceeds the time the context has left. Once a token has been
// returned to the caller the request never moves: a stall guard
// (StallTimeout between tokens, MinTokensPerSecond) ends a stalled stream
// with a [*TruncatedError], never with a silent io.EOF. Errors are values:
// a failed request is an error, never an empty success.
//
// With HedgeAfter set, a tier that has no first token after that delay
// also starts the request on the next tier; the first token wins and the
// loser is cancelled.
//
// # Reply limits
//
// Every reply is bounded on the client side, whatever the backend does with
// max_tokens: Request.MaxTokens, else the tier's MaxTokens, else
// [DefaultMaxTokens] (1024) is sent to the backend and enforced by the
// router, in text deltas and in bytes (MaxTokens × [ReplyBytesPerToken]).
// A backend that goes past it has its stream ended there with
// [FinishLength], as a well-behaved backend would, and its request
// cancelled; the caller handles it like any reply cut by its length.
// TierStats.LengthCapped and ReplicaStats.LengthCapped count such replies,
// which point at a backend that ignores max_tokens.
//
// # Replicas
//
// A replica is chosen among those with room and a closed (or probing)
// breaker by power-of-two choices on outstanding requests. A request with an
// AffinityKey (a conversation or persona ID) goes to the replica that
// rendezvous hashing gives its key, so that requests sharing a long persona
// or lore prefix find it warm in the engine's prefix cache; when that
// replica is full or its breaker open, the request spills to the least
// loaded other replica (ReasonSpill) instead of herding onto one.
//
// Several tiers may share one server (tier 2 and tier 3 on the same vLLM
// with different adapters): list it as a replica of each. Limits, breakers
// and stats are then kept per tier, so give each tier's replica a bound
// that leaves room for the other.
//
// Each replica has a circuit breaker (also in single-replica tiers): it
// opens after ConsecutiveFailures failures in a row or a FailureRate over a
// window, stays open for Cooldown, then lets one probe through (half-open);
// the probe's success closes it. Saturation (429/503) and caller
// cancellations do not count as failures.
//
// # Reconfiguration
//
// [Router.Reconfigure] swaps the whole configuration atomically. Requests
// already admitted finish on the configuration they started with, and so
// do requests queued on it; stats, affinity and breakers carry over for
// tiers and replicas that keep their names. Concurrency limits count the
// requests each configuration admitted, so until the old configuration's
// requests finish a backend may see up to both limits together. A
// configuration that Reconfigure rejects changes nothing. Reconfigure takes
// the same [Options] as New and changes everything but Now.
//
// # Time
//
// Options.Now (nil means time.Now) is the router's only clock: breaker
// cooldowns and failure-rate windows, queue waits and deadline
// predictions, receipts' timings, latency stats and the TTFT predictor's
// refresh all read it. Waiting (queue timeouts, stall guards, hedges, a
// breaker's half-open wake-up) uses the standard library's timers, so tests
// run inside testing/synctest and see a fake clock.
//
// # Stats
//
// [Router.Stats] returns per-tier and per-replica counts (requests,
// successes, errors by kind, in flight, queued, fallbacks, tokens in and
// out, refusals by each replica's Limiter) and TTFT, inter-token and total latency as [latency.Summary] values
// from one streaming sketch.
//
// # Concurrency
//
// A Router is safe for concurrent use. A [RoutedStream] belongs to one
// goroutine; cancel its context to abort it from another. Routing,
// admission and stats recording take one short per-tier lock and do not
// allocate.
//
// A Model that panics before its first token gives its slots back, and the
// panic reaches the caller of [Router.Stream] or [Router.Generate], also
// when it happened on a hedged branch. After the first token the caller's
// Close gives the slots back.
//
// # Backends
//
// router/openai talks to OpenAI-compatible servers (vLLM, llama.cpp server,
// Ollama). router/scripted returns canned lines: use it as the last tier.
// Neither is imported by this package.
package router
