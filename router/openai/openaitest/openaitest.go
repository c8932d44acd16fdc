package openaitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is a failure injected into a response.
type Fault int

// Faults. FaultAfter in [Behavior] says after how many tokens a mid-stream
// fault happens (0: before the first).
const (
	NoFault Fault = iota
	// Drop aborts the connection without ending the chunked body or
	// sending [DONE].
	Drop
	// Stall stops sending and holds the connection open until the client
	// goes away or the server is closed.
	Stall
	// StreamError sends an OpenAI error payload as a data line, then
	// [DONE] (what vLLM does when generation fails after the 200).
	StreamError
	// Malformed sends a data line that is not valid JSON, then continues.
	Malformed
	// NoDone ends the stream with the finish chunk but without [DONE],
	// and closes the body cleanly.
	NoDone
	// Hangup closes the connection before writing any response byte (after
	// HeaderDelay); FaultAfter is ignored. Clients may retry it.
	Hangup
	// PartialHeader writes the first bytes of a response status line, then
	// closes the connection (after HeaderDelay); FaultAfter is ignored.
	// A response byte has arrived, so clients must not retry it: the
	// server may have started the work.
	PartialHeader
	// HoldAfterDone sends the whole stream, [DONE] included, then holds
	// the response open (without ending the chunked body) until the client
	// goes away or the server is closed. FaultAfter is ignored.
	HoldAfterDone
)

// Behavior is how the server answers one request. The zero value answers
// at once with "Well met, traveller." in three pieces.
type Behavior struct {
	// Tokens are the completion's pieces; nil means "Well", " met,",
	// " traveller.".
	Tokens []string
	// HeaderDelay is waited before the response headers are written.
	HeaderDelay time.Duration
	// TTFT is waited after the headers, before the first token.
	TTFT time.Duration
	// TokenDelay is waited between tokens.
	TokenDelay time.Duration
	// Status, when neither 0 nor 200, answers with that HTTP status and an
	// OpenAI error body carrying ErrorMessage. RetryAfter sets the
	// Retry-After header (whole seconds, rounded up).
	Status       int
	ErrorMessage string
	RetryAfter   time.Duration
	// Fault and FaultAfter inject a mid-stream failure.
	Fault      Fault
	FaultAfter int
	// FinishReason defaults to "stop" ("length" when max_tokens cut the
	// tokens).
	FinishReason string
	// PromptTokens is reported in usage; default: words in the prompt.
	PromptTokens int
}

func defaultTokens() []string { return []string{"Well", " met,", " traveller."} }

// Words returns n tokens: "w0", " w1", " w2", ...
func Words(n int) []string {
	out := make([]string, n)
	for i := range out {
		if i == 0 {
			out[i] = "w0"
		} else {
			out[i] = " w" + strconv.Itoa(i)
		}
	}
	return out
}

// Message is a chat message as received.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is a request as the server received it.
type Request struct {
	Path         string // "/v1/chat/completions" or "/v1/completions"
	Model        string
	Messages     []Message
	Prompt       string
	Stream       bool
	IncludeUsage bool
	MaxTokens    int
	Temperature  *float64
	Priority     *int
	Stop         []string
	Header       http.Header
}

// Stats counts what the server saw.
type Stats struct {
	Requests    int64 // requests received
	InFlight    int64 // handlers running now
	MaxInFlight int64 // most handlers running at once
	Completed   int64 // responses written to the end
	Cancelled   int64 // requests the client abandoned before the end
	Faults      int64 // responses that ended with an injected fault or error status
	Connections int64 // TCP connections accepted
	Unrecorded  int64 // requests served but not kept for Requests: recording disabled or full
	// Adapter endpoints (not counted in Requests): successful loads and
	// unloads, and the most adapters loaded at once.
	LoRALoads, LoRAUnloads, MaxAdapters int64
}

// Limits, in bytes, that keep a long-running server (a demo, an example
// left running) from growing without end.
const (
	// MaxRequestBytes is the largest request body the server reads; a
	// larger one is answered with HTTP 413 and an OpenAI error body.
	MaxRequestBytes = 4 << 20
	// MaxRecordedBytes bounds what [Server.Requests] keeps: the first
	// requests whose bodies and headers add up to at most this many bytes.
	// Later requests are served and counted (Stats.Unrecorded) but not
	// kept.
	MaxRecordedBytes = 8 << 20
)

// Server is an OpenAI-compatible stand-in model server on a loopback port.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:port), without /v1.
	URL string

	srv  *httptest.Server
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	handler func(Request) Behavior
	script  []Behavior
	reqs    []Request
	record  bool  // false after DisableRecording or once full
	kept    int64 // bytes of the requests in reqs

	maxRequest, maxRecorded int64 // MaxRequestBytes, MaxRecordedBytes; tests lower them

	lora        LoRA
	metrics     Metrics
	adapters    map[string]string // loaded adapter → path
	maxAdapters int64

	requests, inflight, maxInflight, completed, cancelled, faults, conns, unrecorded atomic.Int64
	loraLoads, loraUnloads                                                           atomic.Int64
}

// NewServer starts a server on a loopback port that answers every request
// with b. Like httptest.NewServer, it panics if it cannot listen. The
// caller must call [Server.Close].
func NewServer(b Behavior) *Server {
	s := &Server{done: make(chan struct{}), record: true, maxRequest: MaxRequestBytes, maxRecorded: MaxRecordedBytes, adapters: map[string]string{}}
	s.SetBehavior(b)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.serve)
	mux.HandleFunc("POST /v1/completions", s.serve)
	mux.HandleFunc("POST /v1/load_lora_adapter", s.serveLoRA)
	mux.HandleFunc("POST /v1/unload_lora_adapter", s.serveLoRA)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.Start()
	s.URL = s.srv.URL
	return s
}

// SetBehavior makes every later request get b.
func (s *Server) SetBehavior(b Behavior) {
	s.SetHandler(func(Request) Behavior { return b })
}

// SetHandler makes every later request get f(request). f runs on the
// request's goroutine and must be safe for concurrent use.
func (s *Server) SetHandler(f func(Request) Behavior) {
	s.mu.Lock()
	s.handler, s.script = f, nil
	s.mu.Unlock()
}

// Script makes the next requests get bs in order; once bs is used up, the
// behavior set before continues.
func (s *Server) Script(bs ...Behavior) {
	s.mu.Lock()
	s.script = append(s.script, bs...)
	s.mu.Unlock()
}

// DisableRecording stops the server from keeping requests (for
// benchmarks).
func (s *Server) DisableRecording() {
	s.mu.Lock()
	s.record = false
	s.mu.Unlock()
}

// Requests returns the requests received so far, in arrival order: the
// first ones, up to [MaxRecordedBytes], unless recording was disabled.
// Requests refused as malformed or too large are not among them.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:    s.requests.Load(),
		InFlight:    s.inflight.Load(),
		MaxInFlight: s.maxInflight.Load(),
		Completed:   s.completed.Load(),
		Cancelled:   s.cancelled.Load(),
		Faults:      s.faults.Load(),
		Connections: s.conns.Load(),
		Unrecorded:  s.unrecorded.Load(),
		LoRALoads:   s.loraLoads.Load(),
		LoRAUnloads: s.loraUnloads.Load(),
		MaxAdapters: s.maxAdaptersLoad(),
	}
}

func (s *Server) maxAdaptersLoad() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxAdapters
}

// WaitFor polls the stats every millisecond until cond holds or ctx ends.
func (s *Server) WaitFor(ctx context.Context, cond func(Stats) bool) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		if cond(s.Stats()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("openaitest: condition not met: %w (stats %+v)", ctx.Err(), s.Stats())
		case <-t.C:
		}
	}
}

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// CloseClientConnections closes the server's open connections.
func (s *Server) CloseClientConnections() { s.srv.CloseClientConnections() }

// Close unblocks stalled handlers and shuts the server down. It is
// idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		s.srv.Close()
	})
}

type wireRequest struct {
	Model         string          `json:"model"`
	Messages      []Message       `json:"messages"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens   int             `json:"max_tokens"`
	Temperature *float64        `json:"temperature"`
	Priority    *int            `json:"priority"`
	Stop        json.RawMessage `json:"stop"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		m := s.maxInflight.Load()
		if n <= m || s.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	s.mu.Lock()
	maxRequest := s.maxRequest
	s.mu.Unlock()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		s.faults.Add(1)
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit), 0)
		return
	}
	var wr wireRequest
	if err == nil {
		err = json.NewDecoder(bytes.NewReader(body)).Decode(&wr)
	}
	if err != nil {
		s.faults.Add(1)
		writeError(w, http.StatusBadRequest, "invalid JSON: "+err.Error(), 0)
		return
	}
	req := Request{
		Path: r.URL.Path, Model: wr.Model, Messages: wr.Messages, Stream: wr.Stream,
		IncludeUsage: wr.StreamOptions != nil && wr.StreamOptions.IncludeUsage,
		MaxTokens:    wr.MaxTokens, Temperature: wr.Temperature, Priority: wr.Priority,
		Header: r.Header.Clone(),
	}
	if len(wr.Prompt) > 0 {
		if err := json.Unmarshal(wr.Prompt, &req.Prompt); err != nil {
			s.faults.Add(1)
			writeError(w, http.StatusBadRequest, "prompt must be a string", 0)
			return
		}
	}
	if len(wr.Stop) > 0 {
		var one string
		if json.Unmarshal(wr.Stop, &one) == nil {
			req.Stop = []string{one}
		} else {
			_ = json.Unmarshal(wr.Stop, &req.Stop)
		}
	}
	s.mu.Lock()
	var b Behavior
	if len(s.script) > 0 {
		b, s.script = s.script[0], s.script[1:]
	} else {
		b = s.handler(req)
	}
	if cost := int64(len(body)) + headerBytes(r.Header); s.record && s.kept+cost <= s.maxRecorded {
		s.reqs = append(s.reqs, req)
		s.kept += cost
	} else {
		s.record = false // keep a prefix of the arrivals
		s.unrecorded.Add(1)
	}
	s.mu.Unlock()

	ctx := r.Context()
	if !s.sleep(ctx, b.HeaderDelay) {
		return
	}
	if b.Fault == Hangup {
		s.faults.Add(1)
		panic(http.ErrAbortHandler)
	}
	if b.Fault == PartialHeader {
		s.faults.Add(1)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Write([]byte("HTTP/1.1 2"))
			conn.Close()
			return
		}
		panic(http.ErrAbortHandler)
	}
	if b.Status != 0 && b.Status != http.StatusOK {
		s.faults.Add(1)
		msg := b.ErrorMessage
		if msg == "" {
			msg = http.StatusText(b.Status)
		}
		writeError(w, b.Status, msg, b.RetryAfter)
		return
	}
	tokens := b.Tokens
	if tokens == nil {
		tokens = defaultTokens()
	}
	finish := b.FinishReason
	if finish == "" {
		finish = "stop"
	}
	if req.MaxTokens > 0 && len(tokens) > req.MaxTokens {
		tokens = tokens[:req.MaxTokens]
		if b.FinishReason == "" {
			finish = "length"
		}
	}
	prompt := b.PromptTokens
	if prompt == 0 {
		prompt = len(strings.Fields(req.Prompt))
		for _, m := range req.Messages {
			prompt += len(strings.Fields(m.Content))
		}
	}
	chat := r.URL.Path == "/v1/chat/completions"
	if !req.Stream {
		s.unary(ctx, w, b, chat, req.Model, tokens, finish, prompt)
		return
	}
	s.stream(ctx, w, b, chat, req, tokens, finish, prompt)
}

// sleep waits d, reporting false (and counting a cancellation) if the
// client went away or the server closed first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		if ctx.Err() != nil {
			s.cancelled.Add(1)
			return false
		}
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		s.cancelled.Add(1)
		return false
	case <-s.done:
		return false
	}
}

func (s *Server) unary(ctx context.Context, w http.ResponseWriter, b Behavior, chat bool, model string, tokens []string, finish string, prompt int) {
	if !s.sleep(ctx, b.TTFT+time.Duration(max(len(tokens)-1, 0))*b.TokenDelay) {
		return
	}
	switch b.Fault {
	case Drop:
		s.faults.Add(1)
		panic(http.ErrAbortHandler)
	case Stall:
		s.faults.Add(1)
		select {
		case <-ctx.Done():
			s.cancelled.Add(1)
		case <-s.done:
		}
		return
	}
	text := strings.Join(tokens, "")
	choice := map[string]any{"index": 0, "finish_reason": finish}
	obj := "text_completion"
	if chat {
		choice["message"] = map[string]any{"role": "assistant", "content": text}
		obj = "chat.completion"
	} else {
		choice["text"] = text
	}
	body, _ := json.Marshal(map[string]any{
		"id": "cmpl-openaitest", "object": obj, "created": 0, "model": model,
		"choices": []any{choice},
		"usage":   map[string]int{"prompt_tokens": prompt, "completion_tokens": len(tokens), "total_tokens": prompt + len(tokens)},
	})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	s.completed.Add(1)
}

func (s *Server) stream(ctx context.Context, w http.ResponseWriter, b Behavior, chat bool, req Request, tokens []string, finish string, prompt int) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	model, _ := json.Marshal(req.Model)
	var prefix, mid, suffix string
	if chat {
		prefix = `data: {"id":"chatcmpl-openaitest","object":"chat.completion.chunk","created":0,"model":` + string(model) + `,"choices":[{"index":0,"delta":{"content":`
		mid = `},"finish_reason":`
		suffix = "}]}\n\n"
	} else {
		prefix = `data: {"id":"cmpl-openaitest","object":"text_completion","created":0,"model":` + string(model) + `,"choices":[{"index":0,"text":`
		mid = `,"finish_reason":`
		suffix = "}]}\n\n"
	}
	buf := make([]byte, 0, 512)
	write := func(p []byte) bool {
		if _, err := w.Write(p); err != nil {
			s.cancelled.Add(1)
			return false
		}
		fl.Flush()
		return true
	}
	if chat {
		// vLLM's first chunk carries the role and no content.
		buf = append(buf[:0], `data: {"id":"chatcmpl-openaitest","object":"chat.completion.chunk","created":0,"model":`...)
		buf = append(buf, model...)
		buf = append(buf, `,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n"...)
		if !write(buf) {
			return
		}
	}
	fault := func(i int) (stop bool) {
		if b.Fault == NoFault || b.Fault == NoDone || b.FaultAfter != i {
			return false
		}
		s.faults.Add(1)
		switch b.Fault {
		case Drop:
			panic(http.ErrAbortHandler)
		case Stall:
			select {
			case <-ctx.Done():
				s.cancelled.Add(1)
			case <-s.done:
			}
			return true
		case StreamError:
			write([]byte(`data: {"error":{"object":"error","message":"openaitest: injected generation failure","type":"InternalServerError","param":null,"code":500}}` + "\n\ndata: [DONE]\n\n"))
			return true
		case Malformed:
			return !write([]byte("data: {\"choices\": [{\"delta\": \n\n"))
		}
		return false
	}
	if !s.sleep(ctx, b.TTFT) {
		return
	}
	chunk := func(tok string, last bool) []byte {
		text, _ := json.Marshal(tok)
		buf = append(buf[:0], prefix...)
		buf = append(buf, text...)
		buf = append(buf, mid...)
		if last {
			buf = strconv.AppendQuote(buf, finish)
		} else {
			buf = append(buf, "null"...)
		}
		return append(buf, suffix...)
	}
	for i, tok := range tokens {
		if fault(i) {
			return
		}
		if i > 0 && !s.sleep(ctx, b.TokenDelay) {
			return
		}
		if !write(chunk(tok, i == len(tokens)-1)) {
			return
		}
	}
	if fault(len(tokens)) {
		return
	}
	if len(tokens) == 0 && !write(chunk("", true)) {
		return
	}
	if req.IncludeUsage {
		// vLLM's last chunk: empty choices and the usage.
		obj := "text_completion"
		if chat {
			obj = "chat.completion.chunk"
		}
		buf = fmt.Appendf(buf[:0], `data: {"id":"cmpl-openaitest","object":%q,"created":0,"model":%s,"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n",
			obj, model, prompt, len(tokens), prompt+len(tokens))
		if !write(buf) {
			return
		}
	}
	if b.Fault == NoDone {
		s.faults.Add(1)
		return
	}
	if !write([]byte("data: [DONE]\n\n")) {
		return
	}
	s.completed.Add(1)
	if b.Fault == HoldAfterDone {
		s.faults.Add(1)
		select {
		case <-ctx.Done():
		case <-s.done:
		}
	}
}

func headerBytes(h http.Header) int64 {
	var n int
	for k, vs := range h {
		n += len(k)
		for _, v := range vs {
			n += len(v)
		}
	}
	return int64(n)
}

// writeError writes an OpenAI-style error body.
func writeError(w http.ResponseWriter, status int, msg string, retryAfter time.Duration) {
	if retryAfter > 0 {
		secs := (retryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.Itoa(int(secs)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	typ := "BadRequestError"
	switch {
	case status == http.StatusTooManyRequests:
		typ = "RateLimitError"
	case status >= 500:
		typ = "InternalServerError"
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": nil, "code": status,
	}})
	_, _ = w.Write(body)
}
