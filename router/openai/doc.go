// Package openai is a [router.Model] for OpenAI-compatible servers: vLLM,
// llama.cpp server, Ollama and the OpenAI API itself.
//
// # Usage
//
//	m, err := openai.New(openai.Options{BaseURL: "http://10.0.0.5:8000/v1", Model: "meta-llama/Llama-3.1-8B-Instruct"})
//	defer m.Close()
//	r, err := router.New(router.Options{Tiers: []router.Tier{
//		{Name: router.Tier2, Adapter: "npc-elite", Replicas: []router.Replica{{Name: "gpu-0", Model: m}}},
//	}})
//
// # Wire format
//
// Requests go to /chat/completions (messages) or /completions (a prompt
// built by Options.Prompt). A LoRA adapter is addressed the way vLLM serves
// it: its name is sent as "model" (Request.Adapter wins over Request.Model,
// which wins over Options.Model). With Options.SendPriority the request's
// Priority is sent as vLLM's "priority" field (lower runs sooner; the
// server must run with --scheduling-policy priority). Streams ask for
// usage in the last chunk (stream_options.include_usage) unless
// DisableStreamUsage is set.
//
// Streams are Server-Sent Events: "data:" lines, ending with
// "data: [DONE]". The delta carrying the finish reason is returned with
// the usage, after [DONE] has been read, so a stream that loses its end is
// never mistaken for a complete one. Usage says whether the server reported
// it (router.Usage.Reported; a nil Delta.Usage is not reported), so a
// reported zero is never confused with an absent count; a usage chunk is
// accepted before or after the finish chunk. Each chunk is decoded with
// encoding/json into one value reused for the whole stream; a chunk that is
// not valid JSON, or whose fields have the wrong types, is [ErrMalformed].
// Decoding costs a few microseconds a chunk, against the 10–30 ms a model
// spends producing one token.
//
// # Errors
//
// Every failure is an error value, never an empty success:
//
//   - An HTTP error status is an [*APIError] with the body's message; 429
//     and 503 are wrapped in a *router.SaturatedError (errors.Is(err,
//     router.ErrSaturated)), with the Retry-After hint (clamped to
//     [MaxRetryAfter], one hour), so the router falls back without blaming
//     the replica's circuit breaker.
//   - An error payload inside a stream ({"error": {...}}, or vLLM's older
//     {"object": "error", ...}) is an [*APIError] with StatusCode 0.
//   - A stream cut before [DONE] is a [*StreamError] matching
//     [ErrIncomplete]; a chunk that is not the expected JSON one matching
//     [ErrMalformed]. So is a 200 that is no event stream at all (an HTML
//     page from a proxy): a Content-Type other than text/event-stream, or
//     a body without a single event.
//   - A redirect to another host or scheme is refused ([ErrRedirect]), so
//     the API key (whatever its header) never leaves the configured
//     server; redirects on the same host are followed.
//   - Cancelling the context returns the context's error and closes the
//     connection, which the server sees as a client disconnect (vLLM then
//     aborts the generation).
//
// # Connections and retries
//
// A Model keeps a pool of keep-alive connections (Options.MaxConnsPerHost
// idle ones per host, compression off). A request that provably never
// reached a server (the connection could not be made: refused, no route,
// DNS) is retried up to MaxRetries times with jittered exponential
// backoff, within the context's deadline. Nothing else is retried: not a
// timeout (a slow server would get each request again), not a connection
// closed after the request was written; the router falls back instead.
// Options.Timeout bounds each request as a whole.
//
// # Concurrency
//
// A Model is safe for concurrent use; a stream belongs to one goroutine.
package openai
