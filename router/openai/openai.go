package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bodybroker/sdk/internal/backoff"
	"github.com/bodybroker/sdk/router"
)

// Endpoint is the API a Model calls.
type Endpoint int

const (
	// Chat calls /chat/completions with the request's messages (default).
	Chat Endpoint = iota
	// Completions calls /completions with a prompt built from the
	// messages by Options.Prompt.
	Completions
)

// Options configures a Model. Only BaseURL is required.
type Options struct {
	// BaseURL is the API root including the version, for example
	// "http://127.0.0.1:8000/v1".
	BaseURL string
	// Endpoint selects chat or text completions.
	Endpoint Endpoint
	// Model is sent when the request names neither a model nor an adapter.
	Model string
	// APIKey, when set, is sent as "Authorization: Bearer <key>", or as the
	// raw value of APIKeyHeader when that is set (for example "api-key").
	APIKey       string
	APIKeyHeader string

	// SendPriority sends vLLM's "priority" field (lower runs sooner). vLLM
	// rejects a non-zero priority unless it runs with
	// --scheduling-policy priority, so it is off by default.
	SendPriority bool
	// DisableStreamUsage stops asking for usage in the last chunk
	// (stream_options.include_usage), for servers that reject it.
	DisableStreamUsage bool

	// Timeout bounds each request from send to the end of the response
	// body (zero: only the caller's context).
	Timeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers on each
	// try (zero: none). Used only when HTTPClient is nil.
	ResponseHeaderTimeout time.Duration
	// MaxRetries is the number of retries of a request that provably never
	// reached a server: the connection could not be made (connection
	// refused, no route, DNS failure). Default 2; DisableRetries turns
	// retries off. Nothing else is retried, since the server may already be
	// generating: not a timeout (ResponseHeaderTimeout, a dial timeout),
	// not a connection closed or reset after the request was written, not
	// an HTTP error status (429 and 503 included): the router falls back
	// instead.
	MaxRetries     int
	DisableRetries bool
	// RetryBackoff is the first retry's delay, doubled for each further
	// retry, with full jitter, and capped at 1s. Default 25ms.
	RetryBackoff time.Duration

	// HTTPClient, when set, is used (and never closed or modified; the
	// Model works on a copy whose CheckRedirect also refuses redirects to
	// another host, see [ErrRedirect]). Otherwise the Model creates a
	// pooled keep-alive transport with MaxConnsPerHost idle connections
	// (default 256) and closes it in Close.
	HTTPClient      *http.Client
	MaxConnsPerHost int

	// Prompt turns messages into a prompt for the Completions endpoint.
	// Default: the messages' contents joined by blank lines.
	Prompt func([]router.Message) string

	// Logger receives debug logs of retries; nil means slog.Default().
	Logger *slog.Logger
}

// Model is a router.Model backed by an OpenAI-compatible server. It is safe
// for concurrent use. Close it to release its idle connections.
type Model struct {
	o       Options
	url     string
	client  *http.Client
	own     *http.Transport
	closed  atomic.Bool
	authKey string
	authVal string
}

var _ router.Model = (*Model)(nil)

// New returns a Model for the server at o.BaseURL.
func New(o Options) (*Model, error) {
	if o.BaseURL == "" {
		return nil, errors.New("openai: BaseURL is required")
	}
	if !strings.HasPrefix(o.BaseURL, "http://") && !strings.HasPrefix(o.BaseURL, "https://") {
		return nil, fmt.Errorf("openai: BaseURL %q must start with http:// or https://", o.BaseURL)
	}
	if o.Endpoint != Chat && o.Endpoint != Completions {
		return nil, fmt.Errorf("openai: invalid Endpoint %d", o.Endpoint)
	}
	if o.Timeout < 0 || o.ResponseHeaderTimeout < 0 || o.RetryBackoff < 0 || o.MaxRetries < 0 || o.MaxConnsPerHost < 0 {
		return nil, errors.New("openai: negative option")
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 2
	}
	if o.DisableRetries {
		o.MaxRetries = 0
	}
	if o.RetryBackoff == 0 {
		o.RetryBackoff = 25 * time.Millisecond
	}
	if o.MaxConnsPerHost == 0 {
		o.MaxConnsPerHost = 256
	}
	if o.Prompt == nil {
		o.Prompt = defaultPrompt
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &Model{o: o}
	base := strings.TrimRight(o.BaseURL, "/")
	if o.Endpoint == Chat {
		m.url = base + "/chat/completions"
	} else {
		m.url = base + "/completions"
	}
	if o.APIKey != "" {
		if o.APIKeyHeader == "" || strings.EqualFold(o.APIKeyHeader, "Authorization") {
			m.authKey, m.authVal = "Authorization", "Bearer "+o.APIKey
		} else {
			m.authKey, m.authVal = o.APIKeyHeader, o.APIKey
		}
	}
	if o.HTTPClient != nil {
		c := *o.HTTPClient
		m.client = &c
	} else {
		m.own = &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   5 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          o.MaxConnsPerHost,
			MaxIdleConnsPerHost:   o.MaxConnsPerHost,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: o.ResponseHeaderTimeout,
			// Token streams are small and latency-bound; gzip only adds
			// buffering.
			DisableCompression: true,
		}
		m.client = &http.Client{Transport: m.own}
	}
	m.client.CheckRedirect = sameHost(m.client.CheckRedirect)
	return m, nil
}

// sameHost returns a CheckRedirect that refuses a redirect to another
// scheme or host (port included), where the API key header would follow
// the request, and otherwise defers to next (nil: net/http's default).
func sameHost(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		from := via[0].URL
		if req.URL.Scheme != from.Scheme || req.URL.Host != from.Host {
			return fmt.Errorf("%w: from %s://%s to %s://%s", ErrRedirect, from.Scheme, from.Host, req.URL.Scheme, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// unsent reports whether err, from http.Client.Do, proves that the request
// never reached a server: the connection could not be made. A timeout
// never qualifies.
func unsent(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Close releases the Model's idle connections (when it created its own
// transport). Requests in flight continue. Close is idempotent; later
// calls return ErrClosed, and so do later requests.
func (m *Model) Close() error {
	if m.closed.Swap(true) {
		return ErrClosed
	}
	if m.own != nil {
		m.own.CloseIdleConnections()
	}
	return nil
}

// String names the endpoint; it never shows the API key.
func (m *Model) String() string { return "openai.Model(" + m.url + ")" }

// LogValue redacts the API key when Options are logged.
func (o Options) LogValue() slog.Value {
	key := ""
	if o.APIKey != "" {
		key = "REDACTED"
	}
	return slog.GroupValue(
		slog.String("base_url", o.BaseURL),
		slog.String("model", o.Model),
		slog.String("api_key", key),
		slog.Duration("timeout", o.Timeout),
		slog.Int("max_retries", o.MaxRetries),
	)
}

func defaultPrompt(msgs []router.Message) string {
	var b strings.Builder
	for i, msg := range msgs {
		if i > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(msg.Content)
	}
	return b.String()
}

type wireMessage struct {
	Role    router.Role `json:"role"`
	Content string      `json:"content"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type wireRequest struct {
	Model         string         `json:"model,omitempty"`
	Messages      []wireMessage  `json:"messages,omitempty"`
	Prompt        *string        `json:"prompt,omitempty"`
	MaxTokens     int            `json:"max_tokens,omitempty"`
	Temperature   *float64       `json:"temperature,omitempty"`
	Stop          []string       `json:"stop,omitempty"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
	Priority      *int           `json:"priority,omitempty"`
}

func (m *Model) encode(req router.Request, stream bool) ([]byte, error) {
	w := wireRequest{
		Model:       m.o.Model,
		MaxTokens:   req.MaxTokens,
		Temperature: req.Temperature,
		Stop:        req.Stop,
		Stream:      stream,
	}
	// vLLM serves a LoRA adapter under its own model name.
	switch {
	case req.Adapter != "":
		w.Model = req.Adapter
	case req.Model != "":
		w.Model = req.Model
	}
	if m.o.Endpoint == Chat {
		w.Messages = make([]wireMessage, len(req.Messages))
		for i, msg := range req.Messages {
			w.Messages[i] = wireMessage{Role: msg.Role, Content: msg.Content}
		}
	} else {
		p := m.o.Prompt(req.Messages)
		w.Prompt = &p
	}
	if stream && !m.o.DisableStreamUsage {
		w.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if m.o.SendPriority {
		p := req.Priority
		w.Priority = &p
	}
	return json.Marshal(w)
}

// do sends body, retrying failures that provably never reached a server
// (see [unsent]). It returns a 200 response or an error; the caller closes
// the body.
func (m *Model) do(ctx context.Context, body []byte, stream bool) (*http.Response, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	for try := 0; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header["Content-Type"] = []string{"application/json"}
		if stream {
			req.Header["Accept"] = []string{"text/event-stream"}
		} else {
			req.Header["Accept"] = []string{"application/json"}
		}
		if m.authKey != "" {
			req.Header.Set(m.authKey, m.authVal)
		}
		resp, err := m.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if try >= m.o.MaxRetries || !unsent(err) {
				return nil, fmt.Errorf("openai: %w", err)
			}
			wait := backoff.Policy{Initial: m.o.RetryBackoff, Max: time.Second}.Delay(try + 1)
			m.o.Logger.Debug("openai: retrying", "url", m.url, "try", try+1, "backoff", wait, "err", err)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil, httpError(resp, b)
		}
		return resp, nil
	}
}

func (m *Model) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.o.Timeout > 0 {
		return context.WithTimeout(ctx, m.o.Timeout)
	}
	return context.WithCancel(ctx)
}

type wireUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

type wireResponse struct {
	Model   string `json:"model"`
	Choices []struct {
		Message *struct {
			Content string `json:"content"`
		} `json:"message"`
		Text         *string `json:"text"`
		FinishReason string  `json:"finish_reason"`
	} `json:"choices"`
	Usage *wireUsage `json:"usage"`
}

// Generate sends a non-streaming request.
func (m *Model) Generate(ctx context.Context, req router.Request) (*router.Response, error) {
	body, err := m.encode(req, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	resp, err := m.do(ctx, body, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &StreamError{Kind: ErrIncomplete, Cause: err}
	}
	var wr wireResponse
	if err := json.Unmarshal(data, &wr); err != nil {
		return nil, malformed(data, err)
	}
	if len(wr.Choices) == 0 {
		var eb errorBody
		if json.Unmarshal(data, &eb) == nil && (eb.Error != nil || eb.Object == "error") {
			return nil, eb.apiError(0)
		}
		return nil, malformed(data, errors.New("no choices"))
	}
	c := wr.Choices[0]
	out := &router.Response{FinishReason: router.FinishReason(c.FinishReason), Model: wr.Model}
	switch {
	case c.Message != nil:
		out.Text = c.Message.Content
	case c.Text != nil:
		out.Text = *c.Text
	default:
		return nil, malformed(data, errors.New("choice has neither message nor text"))
	}
	if wr.Usage != nil {
		out.Usage = router.Usage{PromptTokens: wr.Usage.PromptTokens, CompletionTokens: wr.Usage.CompletionTokens, Reported: true}
	}
	return out, nil
}

// Stream sends a streaming request. It returns once the response headers
// have arrived; errors before that (HTTP statuses, connection failures
// after the retries) come from Stream, later ones from Recv.
func (m *Model) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	body, err := m.encode(req, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := m.withTimeout(ctx)
	resp, err := m.do(ctx, body, true)
	if err != nil {
		cancel()
		return nil, err
	}
	if err := checkEventStream(resp); err != nil {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	return &stream{ctx: ctx, cancel: cancel, body: resp.Body, sse: newSSEReader(resp.Body), usage: !m.o.DisableStreamUsage}, nil
}

// checkEventStream rejects a 200 whose Content-Type says it is not an event
// stream (a proxy's HTML page, a whole JSON response): ErrMalformed, with
// the start of the body. A response without a Content-Type is read as a
// stream; [sseReader] then tells a body without any event.
func checkEventStream(resp *http.Response) error {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && mt == "text/event-stream" {
		return nil
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	return malformed(head, fmt.Errorf("Content-Type %q is not text/event-stream", ct))
}

// drainWait bounds how long Close waits for the end of a response body
// after [DONE] (servers send it at once).
const drainWait = 20 * time.Millisecond

// stream reads one SSE response.
type stream struct {
	ctx    context.Context
	cancel context.CancelFunc
	body   io.ReadCloser
	sse    *sseReader
	usage  bool // usage chunk expected after the finish reason

	final  *router.Delta // the finish delta, held until usage or [DONE]
	usageC *router.Usage // usage that came before the finish delta
	done   bool
	closed bool
	err    error
	chunk  wireChunk
}

func (s *stream) fail(err error) (router.Delta, error) {
	if s.ctx.Err() != nil {
		err = s.ctx.Err()
	}
	s.err = err
	return router.Delta{}, err
}

// Recv returns the next delta. The delta with the finish reason carries the
// usage (when the server sends it) and is returned only after "[DONE]" has
// been read, so that a stream missing its end is reported as ErrIncomplete
// rather than as a success.
func (s *stream) Recv() (router.Delta, error) {
	if s.err != nil {
		return router.Delta{}, s.err
	}
	if s.closed {
		return router.Delta{}, ErrClosed
	}
	if s.done {
		s.err = io.EOF
		return router.Delta{}, io.EOF
	}
	for {
		data, err := s.sse.next()
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				if !s.sse.events && s.sse.foreign != nil {
					// Not one event, and lines that are no SSE field:
					// not an event stream at all.
					return s.fail(malformed(s.sse.foreign, errors.New("not an event stream")))
				}
				return s.fail(&StreamError{Kind: ErrIncomplete})
			}
			if err == errEventTooLarge {
				return s.fail(malformed(nil, err))
			}
			return s.fail(&StreamError{Kind: ErrIncomplete, Cause: err})
		}
		if string(data) == "[DONE]" {
			s.done = true
			if s.final == nil {
				// [DONE] without a finish reason: the server gave up.
				return s.fail(&StreamError{Kind: ErrIncomplete, Cause: errors.New("[DONE] before a finish reason")})
			}
			return *s.final, nil
		}
		c := &s.chunk
		if err := c.decode(data); err != nil {
			return s.fail(malformed(data, err))
		}
		if c.Error != nil || c.Object == "error" {
			eb := errorBody{Error: c.Error, Message: c.Message, Type: c.Type}
			return s.fail(eb.apiError(0))
		}
		if c.Usage != nil {
			u := &router.Usage{PromptTokens: c.Usage.PromptTokens, CompletionTokens: c.Usage.CompletionTokens, Reported: true}
			if s.final != nil {
				s.final.Usage = u
			} else {
				s.usageC = u
			}
		}
		if len(c.Choices) == 0 {
			if c.Usage == nil {
				return s.fail(malformed(data, errors.New("chunk has neither choices nor usage")))
			}
			continue
		}
		ch := &c.Choices[0]
		d := router.Delta{Text: ch.Delta.Content}
		if d.Text == "" {
			d.Text = ch.Text
		}
		if ch.FinishReason != "" {
			if s.final != nil {
				return s.fail(malformed(data, errors.New("second finish reason")))
			}
			d.FinishReason = router.FinishReason(ch.FinishReason)
			d.Usage = s.usageC // this chunk's usage, or an earlier one
			s.final = &d
			continue
		}
		if s.final != nil {
			if d.Text == "" {
				continue
			}
			return s.fail(malformed(data, errors.New("content after the finish reason")))
		}
		if d.Text == "" {
			continue // role-only or empty chunk
		}
		return d, nil
	}
}

// Close cancels the request if it is still running and releases the
// connection (back to the pool when the stream was read to its end).
func (s *stream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.done {
		// Read the chunked terminator so the connection can be reused,
		// but do not wait for it: a server that holds the body open after
		// [DONE] costs its connection, never a blocked Close.
		stop := time.AfterFunc(drainWait, s.cancel)
		_, _ = io.CopyN(io.Discard, s.body, 4<<10)
		stop.Stop()
	}
	s.cancel()
	return s.body.Close()
}
