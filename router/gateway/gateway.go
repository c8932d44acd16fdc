package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/internal/ratelimit"
	"github.com/bodybroker/sdk/router"
)

// Defaults applied by [New] to zero [Options] fields.
const (
	// DefaultMaxRequestBytes bounds a request body: 1 MiB.
	DefaultMaxRequestBytes = 1 << 20
	// DefaultWriteTimeout bounds each write to a client: a client that
	// has not taken a chunk within it is cut off.
	DefaultWriteTimeout = 10 * time.Second
	// MaxHeaderValueBytes bounds each routing header's value.
	MaxHeaderValueBytes = 256
)

// Request headers that carry what the OpenAI API has no field for. All
// are optional.
const (
	// HeaderNPC names the speaking NPC (router.Request.NPC).
	HeaderNPC = "X-BB-NPC"
	// HeaderPlayer names the player the line is for (default: the body's
	// "user" field). With HeaderNPC it makes the default affinity key, so
	// a conversation stays on the replica that has its prefix cached. A
	// player's own key always speaks for that player: for an
	// identity.KindPlayer caller this header and "user" are ignored.
	HeaderPlayer = "X-BB-Player"
	// HeaderImportance is the NPC's importance: generic, elite or major.
	// It raises or lowers the tier, so only trusted callers may send it:
	// identity.Identity.Trusted (service keys), or every caller of a
	// gateway without an Authenticator (loopback and tests). Anyone
	// else's is ignored, and the model name alone decides.
	HeaderImportance = "X-BB-Importance"
	// HeaderAffinityKey overrides the affinity key (router.Request.AffinityKey).
	HeaderAffinityKey = "X-BB-Affinity-Key"
)

// Response headers carrying the route receipt. They are sent with the
// first token (streams) or with the whole body.
const (
	HeaderTier     = "X-BB-Tier"     // the tier that served the request
	HeaderReplica  = "X-BB-Replica"  // its replica
	HeaderReasons  = "X-BB-Reasons"  // the receipt's reasons, comma-separated, in order
	HeaderAttempts = "X-BB-Attempts" // how many tiers were tried (a hedge counts)
	// HeaderFallback is "true" when the request left its first tier before
	// the first token (the reasons list a downgrade or a fallback); a
	// hedge shows in HeaderReasons and HeaderAttempts.
	HeaderFallback = "X-BB-Fallback"
)

// ResponsibilityPrefix is how a model name names a responsibility:
// "npc/quest_dialogue" routes as router.QuestDialogue.
const ResponsibilityPrefix = "npc/"

// Route is what a model name routes to: an explicit tier, or a
// responsibility and importance for the router's policy. The zero Route
// routes to the policy's default tier.
type Route struct {
	Tier           string
	Responsibility router.Responsibility
	Importance     router.Importance
}

// KeyPolicy limits one caller. The zero KeyPolicy limits nothing.
type KeyPolicy struct {
	// Models lists the model names (tier, npc/<responsibility> or alias,
	// as the caller writes them) the key may use; empty means all. A
	// model the key may not use is answered like an unknown one (404).
	Models []string
	// RequestsPerSecond bounds the key's request rate with a token bucket
	// that holds Burst requests; zero means no bound. Requests over it
	// get HTTP 429 with Retry-After.
	RequestsPerSecond float64
	// Burst is the bucket's size; zero means max(1, RequestsPerSecond),
	// rounded down.
	Burst int
}

// Options configure a [Gateway]. Only Router is required; every other
// zero field means its documented default. New copies what it keeps, so
// changing Options afterwards changes nothing.
type Options struct {
	// Router serves every request. The gateway does not close it.
	Router *router.Router
	// Aliases maps extra model names to routes ("gpt-4o-mini" → tier1,
	// say). An alias wins over a tier or responsibility of the same name.
	Aliases map[string]Route
	// Responsibilities are those a model name may name after
	// ResponsibilityPrefix; nil means the keys of
	// router.DefaultResponsibilityTiers.
	Responsibilities []router.Responsibility

	// Authenticator checks API keys (the bearer token of the
	// Authorization header, as OpenAI's clients send it) and says whose
	// they are: identity.TokenAuthenticator is a table of them. Nil
	// accepts every request, with or without a key, as the zero
	// identity.Identity (for loopback and tests).
	Authenticator identity.Authenticator
	// Keys limits callers by identity; callers without an entry get
	// DefaultKeyPolicy, whose rate bound applies to each such caller on
	// its own (a bucket per caller, forgotten once it has refilled).
	// Player and service identities are callers alike.
	Keys             map[identity.Identity]KeyPolicy
	DefaultKeyPolicy KeyPolicy

	// MaxRequestBytes bounds a request body; larger ones get HTTP 413.
	// Zero means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// WriteTimeout bounds every write to the client: a client that stops
	// reading is cut off once it has not taken a chunk for that long, and
	// its router slot released. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration

	// Now is the clock for rate limits, the "created" field and the TTFT
	// in Stats; nil means time.Now.
	Now func() time.Time
	// Logger logs requests that failed on the gateway's side; nil means
	// slog.Default().
	Logger *slog.Logger
	// OnError, when set, sees every error the gateway answers (before or
	// after the first token), with the caller and the model name (empty
	// when the model did not route). It runs on the request's goroutine
	// and must be fast.
	OnError func(caller identity.Identity, model string, err error)
}

// Gateway is an http.Handler serving the OpenAI API through a
// [router.Router]. Create it with [New]; the zero Gateway is not usable.
// It is safe for concurrent use. Close it before closing its router.
type Gateway struct {
	opts   Options
	r      *router.Router
	resp   map[router.Responsibility]bool
	keys   map[identity.Identity]*keyState
	defKey *keyState
	logger *slog.Logger
	mux    *http.ServeMux
	stats  statsRegistry

	mu     sync.RWMutex // orders wg.Add against Close
	closed bool
	wg     sync.WaitGroup
	base   context.Context
	cancel context.CancelFunc
}

var _ http.Handler = (*Gateway)(nil)

// New returns a Gateway serving through opts.Router.
func New(opts Options) (*Gateway, error) {
	if opts.Router == nil {
		return nil, errors.New("gateway: Options.Router is required")
	}
	if opts.MaxRequestBytes < 0 || opts.WriteTimeout < 0 {
		return nil, errors.New("gateway: negative MaxRequestBytes or WriteTimeout")
	}
	if opts.MaxRequestBytes == 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Aliases = maps.Clone(opts.Aliases)
	keys := opts.Keys
	opts.Keys = nil // kept as keyStates
	g := &Gateway{opts: opts, r: opts.Router, logger: opts.Logger, resp: make(map[router.Responsibility]bool)}
	if g.logger == nil {
		g.logger = slog.Default()
	}
	if opts.Responsibilities == nil {
		for r := range router.DefaultResponsibilityTiers() {
			g.resp[r] = true
		}
	}
	for _, r := range opts.Responsibilities {
		if r == router.ResponsibilityUnknown {
			return nil, errors.New("gateway: empty responsibility")
		}
		g.resp[r] = true
	}
	for name, rt := range opts.Aliases {
		if name == "" {
			return nil, errors.New("gateway: empty alias")
		}
		if rt.Importance < router.ImportanceUnset || rt.Importance > router.Major {
			return nil, fmt.Errorf("gateway: alias %q: invalid importance %d", name, rt.Importance)
		}
	}
	var err error
	if g.defKey, err = newKeyState(opts.DefaultKeyPolicy, true); err != nil {
		return nil, fmt.Errorf("gateway: DefaultKeyPolicy: %w", err)
	}
	g.keys = make(map[identity.Identity]*keyState, len(keys))
	for id, p := range keys {
		if g.keys[id], err = newKeyState(p, false); err != nil {
			return nil, fmt.Errorf("gateway: key of %v %q: %w", id.Kind, id.ID, err)
		}
	}
	g.base, g.cancel = context.WithCancel(context.Background())
	g.mux = http.NewServeMux()
	g.mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { g.serveCompletion(w, r, true) })
	g.mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { g.serveCompletion(w, r, false) })
	g.mux.HandleFunc("GET /v1/models", g.serveModels)
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		allow := ""
		switch r.URL.Path {
		case "/v1/chat/completions", "/v1/completions":
			allow = http.MethodPost
		case "/v1/models":
			allow = http.MethodGet
		}
		if allow != "" {
			w.Header().Set("Allow", allow)
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, typ: typeInvalid, code: "method_not_allowed",
				message: fmt.Sprintf("%s %s is not supported; use %s", r.Method, r.URL.Path, allow)})
			return
		}
		writeError(w, &apiError{status: http.StatusNotFound, typ: typeInvalid, code: "unknown_url",
			message: fmt.Sprintf("unknown request URL: %s %s", r.Method, r.URL.Path)})
	})
	return g, nil
}

// ServeHTTP serves POST /v1/chat/completions, POST /v1/completions and
// GET /v1/models; anything else is a 404 (or 405) in OpenAI's error shape.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		writeError(w, errorFor(ErrClosed))
		return
	}
	g.wg.Add(1)
	g.mu.RUnlock()
	defer g.wg.Done()
	g.mux.ServeHTTP(w, r)
}

// Close cancels the requests in progress (their streams end with an error
// event), waits for their handlers to return, and answers later requests
// with HTTP 503. It does not close the router. Close and Shutdown are
// idempotent; after the first of them, both return ErrClosed.
func (g *Gateway) Close() error {
	if !g.stop() {
		return ErrClosed
	}
	g.cancel()
	g.wg.Wait()
	return nil
}

// Shutdown answers new requests with HTTP 503 and waits for the requests
// in progress to finish. When ctx ends first, it cancels them as Close
// does, waits for their handlers, and returns ctx's error. Call it before
// http.Server.Shutdown, whose wait it shortens: long streams finish here
// while new requests are refused.
func (g *Gateway) Shutdown(ctx context.Context) error {
	if !g.stop() {
		return ErrClosed
	}
	drained := make(chan struct{})
	go func() { // ends once the handlers have, which the cancel below forces
		g.wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
		g.cancel()
		return nil
	case <-ctx.Done():
		g.cancel()
		<-drained
		return ctx.Err()
	}
}

// stop refuses new requests; it reports false when already stopped.
func (g *Gateway) stop() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	return true
}

// authenticate returns the caller and its policy.
func (g *Gateway) authenticate(r *http.Request) (identity.Identity, *keyState, error) {
	if g.opts.Authenticator == nil {
		return identity.Identity{}, g.policyOf(identity.Identity{}), nil
	}
	id, err := identity.FromHeader(r.Context(), g.opts.Authenticator, r.Header.Get("Authorization"))
	if err != nil {
		return identity.Identity{}, nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return id, g.policyOf(id), nil
}

// statsKey is the Stats().Keys entry a caller counts in: its own for a
// service key or a key listed in Options.Keys, and the zero identity for
// every other player, so that stats stay bounded however many player
// identities an Authenticator issues.
func (g *Gateway) statsKey(id identity.Identity) identity.Identity {
	if _, ok := g.keys[id]; ok || id.Kind == identity.KindService {
		return id
	}
	return identity.Identity{}
}

func (g *Gateway) policyOf(id identity.Identity) *keyState {
	if k, ok := g.keys[id]; ok {
		return k
	}
	return g.defKey
}

// resolve maps a model name to a route. A name that is neither an alias
// nor a responsibility is taken as a tier name; the router says whether it
// has that tier.
func (g *Gateway) resolve(model string) (Route, error) {
	if rt, ok := g.opts.Aliases[model]; ok {
		return rt, nil
	}
	if rest, ok := strings.CutPrefix(model, ResponsibilityPrefix); ok {
		if !g.resp[router.Responsibility(rest)] {
			return Route{}, ErrModelNotFound
		}
		return Route{Responsibility: router.Responsibility(rest)}, nil
	}
	return Route{Tier: model}, nil
}

func parseImportance(s string) (router.Importance, error) {
	switch strings.ToLower(s) {
	case "":
		return router.ImportanceUnset, nil
	case "generic":
		return router.Generic, nil
	case "elite":
		return router.Elite, nil
	case "major":
		return router.Major, nil
	}
	return 0, invalid(HeaderImportance, "importance must be generic, elite or major, not %q", s)
}

// routingHeaders reads the optional routing headers into req; user is the
// body's "user" field, the player when HeaderPlayer is absent. Only a
// trusted caller's HeaderImportance counts, and a player speaks only for
// themselves.
func routingHeaders(h http.Header, user string, caller identity.Identity, trusted bool, req *router.Request) error {
	npc, player, aff := h.Get(HeaderNPC), h.Get(HeaderPlayer), h.Get(HeaderAffinityKey)
	if player == "" {
		player = user
	}
	if caller.Kind == identity.KindPlayer {
		player = caller.ID
	}
	for _, v := range [...]struct{ name, val string }{{HeaderNPC, npc}, {HeaderPlayer, player}, {HeaderAffinityKey, aff}} {
		if len(v.val) > MaxHeaderValueBytes {
			return invalid(v.name, "at most %d bytes", MaxHeaderValueBytes)
		}
	}
	imp, err := parseImportance(h.Get(HeaderImportance))
	if err != nil {
		return err
	}
	if imp != router.ImportanceUnset && trusted {
		req.Importance = imp
	}
	req.NPC = npc
	switch {
	case aff != "":
		req.AffinityKey = aff
	case player != "":
		req.AffinityKey = player + "\x00" + npc
	}
	return nil
}

// readBody reads at most limit bytes of the body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: limit %d bytes", ErrTooLarge, limit)
		}
		return nil, invalid("", "reading the body: %v", err)
	}
	return body, nil
}

// call is one completion request in progress.
type call struct {
	g      *Gateway
	w      http.ResponseWriter
	rc     *http.ResponseController
	key    *counters
	model  *counters
	caller identity.Identity
	name   string
	start  time.Time
	buf    []byte
}

func (g *Gateway) serveCompletion(w http.ResponseWriter, r *http.Request, chat bool) {
	c := &call{g: g, w: w, rc: http.NewResponseController(w), start: g.opts.Now()}
	g.stats.total.requests.Add(1)
	g.stats.total.inflight.Add(1)
	defer g.stats.total.inflight.Add(-1)
	caller, ks, err := g.authenticate(r)
	if err != nil {
		c.fail(err)
		return
	}
	c.caller = caller
	c.key = g.stats.key(g.statsKey(caller))
	c.key.requests.Add(1)
	c.key.inflight.Add(1)
	defer c.key.inflight.Add(-1)
	if wait, ok := ks.allow(caller, g.opts.Now()); !ok {
		c.failAPI(&apiError{status: http.StatusTooManyRequests, typ: typeRate, code: "rate_limit_exceeded",
			message: "rate limit reached for this API key", retryAfter: wait, err: ErrRateLimited})
		return
	}
	body, err := readBody(w, r, g.opts.MaxRequestBytes)
	if err != nil {
		c.fail(err)
		return
	}
	in, err := decodeRequest(body, chat)
	if err != nil {
		c.fail(err)
		return
	}
	if !ks.permits(in.Model) {
		c.fail(ErrModelNotFound)
		return
	}
	rt, err := g.resolve(in.Model)
	if err != nil {
		c.fail(err)
		return
	}
	req := router.Request{
		Messages:       in.Messages,
		Tier:           rt.Tier,
		Responsibility: rt.Responsibility,
		Importance:     rt.Importance,
		MaxTokens:      in.MaxTokens,
		Temperature:    in.Temperature,
		Stop:           in.Stop,
	}
	trusted := caller.Trusted() || g.opts.Authenticator == nil
	if err := routingHeaders(r.Header, in.User, caller, trusted, &req); err != nil {
		c.fail(err)
		return
	}
	ctx, cancel := context.WithCancel(identity.NewContext(r.Context(), caller))
	defer cancel()
	stop := context.AfterFunc(g.base, cancel)
	defer stop()
	res := &response{id: newID(chat), created: g.opts.Now().Unix(), chat: chat}
	if in.Stream {
		c.stream(ctx, req, in, res)
	} else {
		c.generate(ctx, req, in, res)
	}
}

func newID(chat bool) string {
	b := make([]byte, 0, 32)
	if chat {
		b = append(b, "chatcmpl-"...)
	} else {
		b = append(b, "cmpl-"...)
	}
	return string(strconv.AppendUint(b, rand.Uint64(), 36))
}

// routed records that the router accepted the model name (it was not an
// unknown tier) and starts counting under it.
func (c *call) routed(name string) {
	c.name = name
	c.model = c.g.stats.model(name)
	c.model.requests.Add(1)
	c.model.inflight.Add(1)
}

func (c *call) done() {
	if c.model != nil {
		c.model.inflight.Add(-1)
	}
}

// each runs f on every counter set the call counts under.
func (c *call) each(f func(*counters)) {
	f(&c.g.stats.total)
	if c.key != nil {
		f(c.key)
	}
	if c.model != nil {
		f(c.model)
	}
}

func (c *call) fail(err error) { c.failAPI(errorFor(err)) }

// failAPI answers e before anything was written.
func (c *call) failAPI(e *apiError) {
	c.count(e)
	c.report(e.err)
	c.setDeadline()
	writeError(c.w, e)
	c.clearDeadline()
}

func (c *call) count(e *apiError) {
	c.each(func(s *counters) {
		switch {
		case e.status == http.StatusTooManyRequests:
			s.rateLimited.Add(1)
		case e.status >= 500:
			s.serverErrors.Add(1)
		default:
			s.clientErrors.Add(1)
		}
	})
}

func (c *call) report(err error) {
	if c.g.opts.OnError != nil && err != nil {
		c.g.opts.OnError(c.caller, c.name, err)
	}
}

func (c *call) setDeadline() {
	c.rc.SetWriteDeadline(time.Now().Add(c.g.opts.WriteTimeout))
}

// clearDeadline leaves the connection as it found it, for keep-alive.
func (c *call) clearDeadline() {
	c.rc.SetWriteDeadline(time.Time{})
}

// routeFailed handles an error from the router before anything was
// written: the client went away, or it gets the error.
func (c *call) routeFailed(ctx context.Context, name string, err error) {
	if !errors.Is(err, router.ErrUnknownTier) {
		c.routed(name)
		defer c.done()
	}
	if ctx.Err() != nil && c.g.base.Err() == nil {
		// The client went away; nobody reads an answer.
		c.each(func(s *counters) { s.cancelled.Add(1) })
		return
	}
	if c.g.base.Err() != nil {
		err = ErrClosed
	}
	c.fail(err)
}

func (c *call) receiptHeaders(rc router.Receipt) {
	h := c.w.Header()
	h.Set(HeaderTier, rc.Tier)
	h.Set(HeaderReplica, rc.Replica)
	var b strings.Builder
	for i, r := range rc.Reasons {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(r))
	}
	h.Set(HeaderReasons, b.String())
	h.Set(HeaderAttempts, strconv.Itoa(rc.Attempts))
	fellBack := slices.Contains(rc.Reasons, router.ReasonDowngrade) || slices.Contains(rc.Reasons, router.ReasonFallback)
	h.Set(HeaderFallback, strconv.FormatBool(fellBack))
	if fellBack {
		c.each(func(s *counters) { s.fallbacks.Add(1) })
	}
}

func modelOf(rc router.Receipt) string {
	if rc.Model != "" {
		return rc.Model
	}
	return rc.Tier
}

func (c *call) generate(ctx context.Context, req router.Request, in completionRequest, res *response) {
	out, err := c.g.r.Generate(ctx, req)
	if err != nil && out == nil {
		c.routeFailed(ctx, in.Model, err)
		return
	}
	c.routed(in.Model)
	defer c.done()
	if err != nil {
		// Cut after the first token: no whole line to return.
		if ctx.Err() != nil && c.g.base.Err() == nil {
			c.each(func(s *counters) { s.cancelled.Add(1) })
			return
		}
		c.fail(err)
		return
	}
	c.each(func(s *counters) { s.ttft.Record(c.g.opts.Now().Sub(c.start)) })
	c.receiptHeaders(out.Receipt)
	res.model = modelOf(out.Receipt)
	c.tokens(out.Usage)
	c.buf = res.appendBody(c.buf[:0], out)
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(c.buf)))
	c.setDeadline()
	_, werr := c.w.Write(c.buf)
	c.clearDeadline()
	c.wrote(werr)
}

func (c *call) tokens(u router.Usage) {
	if !u.Reported {
		return
	}
	c.each(func(s *counters) {
		s.tokensIn.Add(uint64(u.PromptTokens))
		s.tokensOut.Add(uint64(u.CompletionTokens))
	})
}

// wrote counts the end of a response whose last write returned err.
func (c *call) wrote(err error) {
	switch {
	case err == nil:
		c.each(func(s *counters) { s.completed.Add(1) })
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.each(func(s *counters) { s.slowClients.Add(1) })
	default:
		c.each(func(s *counters) { s.cancelled.Add(1) })
	}
}

// send writes c.buf and flushes it within the write timeout.
func (c *call) send() error {
	c.setDeadline()
	if _, err := c.w.Write(c.buf); err != nil {
		return err
	}
	return c.rc.Flush()
}

func (c *call) stream(ctx context.Context, req router.Request, in completionRequest, res *response) {
	s, err := c.g.r.Stream(ctx, req)
	if err != nil {
		c.routeFailed(ctx, in.Model, err)
		return
	}
	defer s.Close()
	c.routed(in.Model)
	defer c.done()
	defer c.clearDeadline()
	rc := s.Receipt()
	c.receiptHeaders(rc)
	res.model = modelOf(rc)
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	var usage *router.Usage
	first := true
	for {
		d, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.streamFailed(ctx, err)
			return
		}
		if d.Usage != nil {
			usage = d.Usage
		}
		if d.Text == "" && d.FinishReason == "" {
			continue
		}
		c.buf = res.appendChunk(c.buf[:0], d.Text, d.FinishReason, first)
		if d.FinishReason != "" {
			if in.IncludeUsage && usage != nil {
				c.buf = res.appendUsageChunk(c.buf, *usage)
			}
			c.buf = append(c.buf, "data: [DONE]\n\n"...)
		}
		if first {
			c.each(func(s *counters) { s.ttft.Record(c.g.opts.Now().Sub(c.start)) })
			first = false
		}
		if err := c.send(); err != nil {
			c.wrote(err)
			return
		}
		if d.FinishReason != "" {
			if usage != nil {
				c.tokens(*usage)
			}
			c.wrote(nil)
			return
		}
	}
	// The router returns io.EOF only after a delta with a finish reason.
	c.streamFailed(ctx, io.ErrUnexpectedEOF)
}

// streamFailed ends a stream whose headers may be out with an error event,
// never a silent close, unless the client is gone.
func (c *call) streamFailed(ctx context.Context, err error) {
	if ctx.Err() != nil && c.g.base.Err() == nil {
		c.each(func(s *counters) { s.cancelled.Add(1) })
		return
	}
	if c.g.base.Err() != nil {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	e := errorFor(err)
	if c.g.base.Err() != nil {
		e = &apiError{status: http.StatusServiceUnavailable, typ: typeServer, code: "unavailable", message: "the gateway is shutting down", err: err}
	}
	c.each(func(s *counters) { s.streamErrors.Add(1) })
	c.report(e.err)
	c.buf = append(c.buf[:0], "data: "...)
	c.buf = appendErrorObject(c.buf, e)
	c.buf = append(c.buf, "\n\n"...)
	if werr := c.send(); werr != nil && errors.Is(werr, os.ErrDeadlineExceeded) {
		c.each(func(s *counters) { s.slowClients.Add(1) })
	}
}

// serveModels lists the models a caller may name: the router's tiers, the
// responsibilities and the aliases, filtered by the key's policy.
func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request) {
	_, ks, err := g.authenticate(r)
	if err != nil {
		writeError(w, errorFor(err))
		return
	}
	var names []string
	for _, t := range g.r.Stats().Tiers {
		names = append(names, t.Name)
	}
	for resp := range g.resp {
		names = append(names, ResponsibilityPrefix+string(resp))
	}
	for a := range g.opts.Aliases {
		names = append(names, a)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	b := []byte(`{"object":"list","data":[`)
	n := 0
	for _, name := range names {
		if !ks.permits(name) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"id":`...)
		b = appendString(b, name)
		b = append(b, `,"object":"model","created":0,"owned_by":"bodybroker"}`...)
	}
	b = append(b, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// keyState is a key's policy and its rate limiter: one bucket for a key
// listed in Options.Keys, one per caller for DefaultKeyPolicy.
type keyState struct {
	models    map[string]bool   // nil: all
	bucket    *ratelimit.Bucket // listed key; nil: no rate bound
	perCaller *ratelimit.Keyed  // DefaultKeyPolicy; nil: no rate bound
}

func newKeyState(p KeyPolicy, perCaller bool) (*keyState, error) {
	if p.RequestsPerSecond < 0 || p.Burst < 0 {
		return nil, errors.New("negative RequestsPerSecond or Burst")
	}
	k := &keyState{}
	if p.RequestsPerSecond > 0 {
		burst := p.Burst
		if burst == 0 {
			burst = max(1, int(p.RequestsPerSecond))
		}
		every := max(time.Duration(float64(time.Second)/p.RequestsPerSecond), 1)
		if perCaller {
			k.perCaller = ratelimit.NewKeyed(burst, every)
		} else {
			k.bucket = ratelimit.NewBucket(burst, every)
		}
	}
	if len(p.Models) > 0 {
		k.models = make(map[string]bool, len(p.Models))
		for _, m := range p.Models {
			k.models[m] = true
		}
	}
	return k, nil
}

func (k *keyState) permits(model string) bool { return k.models == nil || k.models[model] }

// allow takes a token from caller's bucket; when it is empty it returns
// how long until one is due.
func (k *keyState) allow(caller identity.Identity, now time.Time) (time.Duration, bool) {
	var ok bool
	var wait time.Duration
	switch {
	case k.bucket != nil:
		ok, wait = k.bucket.Take(now)
	case k.perCaller != nil:
		ok, wait = k.perCaller.Take(caller.Kind.String()+"\x00"+caller.ID, now)
	default:
		return 0, true
	}
	return wait, ok
}

// counters are the live counts behind one [Counts].
type counters struct {
	requests, completed, clientErrors, rateLimited, serverErrors atomic.Uint64
	streamErrors, cancelled, slowClients, fallbacks              atomic.Uint64
	tokensIn, tokensOut                                          atomic.Uint64
	inflight                                                     atomic.Int64
	ttft                                                         histogram
}
