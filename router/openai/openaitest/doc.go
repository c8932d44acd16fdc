// Package openaitest provides a stand-in model server: an
// OpenAI-compatible HTTP server on a loopback port, with controllable
// latency and faults, for tests, demos and examples. It is to
// [github.com/bodybroker/sdk/router/openai] what net/http/httptest is to
// net/http: point a client at it where a real vLLM, llama.cpp or Ollama
// server would be.
//
// It depends on the standard library only and does not link package
// testing, so example programs and demo servers can run it too.
//
// # Usage
//
//	srv := openaitest.NewServer(openaitest.Behavior{TTFT: 20 * time.Millisecond, Tokens: openaitest.Words(50)})
//	defer srv.Close()
//	m, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1"})
//
// The server serves POST /v1/chat/completions and POST /v1/completions,
// streaming (SSE "data:" lines ending with "data: [DONE]", usage in a last
// chunk with empty choices when stream_options.include_usage is set) or
// not, the way vLLM does. What it does for each request is a [Behavior]:
// set one for all requests with [Server.SetBehavior], a sequence with
// [Server.Script], or a function of the request with [Server.SetHandler]
// (to answer in character, say). Faults: HTTP errors with an OpenAI error
// body (429 and 503 with Retry-After), connection drops mid-stream, stalls,
// error payloads and malformed chunks mid-stream, a delay before the
// response headers.
//
// Beside completions it serves vLLM's runtime LoRA endpoints (POST
// /v1/load_lora_adapter and /v1/unload_lora_adapter; see [LoRA]) and a
// GET /metrics page in Prometheus text format with vLLM's metric names
// (see [Metrics]), so that adapter managers and telemetry scrapers are
// tested against the same stand-in.
//
// Every request is recorded ([Server.Requests]; [Server.DisableRecording]
// for long runs), and [Server.Stats] counts requests in flight and the
// ones the client abandoned (client cancellation is observed through the
// request context), so tests can assert that a cancelled or losing request
// really was cancelled on the wire. [Server.WaitFor] polls a condition on
// the stats.
//
// # Limits
//
// A server can be left running (a demo, an example): it reads request
// bodies up to [MaxRequestBytes] (4 MiB; larger ones get HTTP 413) and
// records the first requests up to [MaxRecordedBytes] (8 MiB of bodies and
// headers), then only counts them (Stats.Unrecorded).
//
// # Concurrency
//
// All methods are safe for concurrent use. The caller must call
// [Server.Close], which unblocks stalled handlers and waits for them.
package openaitest
