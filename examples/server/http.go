package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bodybroker/sdk/batching/lora"
	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
	"github.com/bodybroker/sdk/router/gateway"
	"github.com/bodybroker/sdk/settings"
	"github.com/bodybroker/sdk/worldtime"
)

// HTTP routes besides the dialogue and settings handlers' own.
const (
	pathHealthz       = "/healthz"
	pathReadyz        = "/readyz"
	pathMetrics       = "/metrics"
	pathTime          = "/v1/time"
	pathAudio         = "/v1/audio"
	pathCheckout      = "/v1/checkout"
	pathComplete      = "/v1/checkout/complete"
	pathPortal        = "/v1/portal"
	pathEntitlement   = "/v1/entitlement"
	pathWebhook       = "/webhooks/stripe"
	pathDemoPay       = "/demo/checkout/pay"
	pathAdminCoupons  = "/admin/coupons"
	pathAdminCodes    = "/admin/ambassador-codes"
	pathAdminRouter   = "/admin/router/stats"
	pathAdminReload   = "/admin/router/reload"
	pathAdminLoRA     = "/admin/lora"
	pathAdminEvents   = "/admin/events/history"
	pathAdminEvStats  = "/admin/events/stats"
	pathAdminTimeSet  = "/admin/time/set"
	pathAdminTimeScl  = "/admin/time/scale"
	pathAdminTimePaus = "/admin/time/pause"
	pathAdminTimeRes  = "/admin/time/resume"
	headerRequestID   = "X-Request-ID"
	headerStandIn     = "X-BB-Stand-In" // on /v1/models: the tiers served by stand-in model servers
	maxRequestIDBytes = 64
	maxHistoryLimit   = 1000
)

// handler builds the server's HTTP handler: every route, behind the request
// ID, logging and body-limit middleware.
func (a *app) handler(reg *prometheus.Registry) (http.Handler, error) {
	mux := http.NewServeMux()
	dh, err := a.dialogue.HTTPHandler(dialogue.HandlerOptions{Authenticator: a.players, Logger: a.log})
	if err != nil {
		return nil, err
	}
	mux.Handle(dialogue.PathSay, dh)
	mux.Handle(dialogue.PathStreamSay, dh)
	sh := a.settings.Handler(settings.HandlerOptions{Authenticator: a.players, Logger: a.log})
	mux.Handle(settings.PathSettings, sh)
	mux.Handle(settings.PathSettings+"/", sh)

	// The OpenAI-compatible gateway, for tools in any language; player
	// tokens are its API keys.
	gw, err := gateway.New(gateway.Options{Router: a.router, Authenticator: a.players, Logger: a.log})
	if err != nil {
		return nil, err
	}
	a.gateway = gw
	a.closers = append(a.closers, gw.Close)
	for _, p := range []string{"POST /v1/chat/completions", "POST /v1/completions"} {
		mux.Handle(p, gw)
	}
	// The model list says which tiers are stand-ins, in a header (the
	// body is OpenAI's shape).
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		a.routerMu.Lock()
		standIns := strings.Join(a.standIns, ",")
		a.routerMu.Unlock()
		if standIns != "" {
			w.Header().Set(headerStandIn, standIns)
		}
		gw.ServeHTTP(w, r)
	})

	mux.HandleFunc("GET "+pathHealthz, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET "+pathReadyz, func(w http.ResponseWriter, r *http.Request) {
		ok, failed := a.ready.state()
		code, status := http.StatusOK, "ready"
		if !ok {
			code, status = http.StatusServiceUnavailable, "not ready"
		}
		writeJSON(w, code, map[string]any{"status": status, "failed": failed})
	})
	mux.Handle("GET "+pathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+pathTime, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.clock.Now())
	})
	mux.HandleFunc("GET "+pathAudio, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.audio.Snapshot())
	})

	// Players.
	mux.HandleFunc("POST "+pathCheckout, a.player(a.checkout))
	mux.HandleFunc("POST "+pathComplete, a.player(a.complete))
	mux.HandleFunc("POST "+pathPortal, a.player(a.portal))
	mux.HandleFunc("GET "+pathEntitlement, a.player(func(w http.ResponseWriter, r *http.Request, id identity.Identity) {
		e, err := a.payments.Entitlements().Get(r.Context(), id.ID)
		if err != nil {
			a.writeErr(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, e)
	}))
	if a.fake != nil {
		mux.HandleFunc("POST "+pathDemoPay, a.player(a.demoPay))
	}

	// The payment provider.
	mux.Handle("POST "+pathWebhook, a.recordWebhooks(a.payments.Webhooks()))

	// Operators.
	if a.cfg.AdminToken != "" {
		mux.HandleFunc("GET "+pathAdminCoupons, a.admin(a.listCoupons))
		mux.HandleFunc("POST "+pathAdminCoupons, a.admin(a.createCoupon))
		mux.HandleFunc("POST "+pathAdminCodes, a.admin(a.createAmbassadorCode))
		mux.HandleFunc("GET "+pathAdminRouter, a.admin(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, a.router.Stats())
		}))
		mux.HandleFunc("POST "+pathAdminReload, a.admin(func(w http.ResponseWriter, r *http.Request) {
			if err := a.reloadRouter(); err != nil {
				var ce *ConfigError
				if errors.As(err, &ce) {
					writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
					return
				}
				a.writeErr(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, a.router.Stats())
		}))
		if a.lora != nil {
			mux.HandleFunc("GET "+pathAdminLoRA, a.admin(func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, loraList(a.lora.List(false)))
			}))
			mux.HandleFunc("POST "+pathAdminLoRA+"/{op}", a.admin(a.loraOp))
		}
		mux.HandleFunc("GET "+pathAdminEvents, a.admin(a.eventHistory))
		mux.HandleFunc("GET "+pathAdminEvStats, a.admin(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, a.bus.Stats())
		}))
		mux.HandleFunc("POST "+pathAdminTimeSet, a.admin(a.timeSet))
		mux.HandleFunc("POST "+pathAdminTimeScl, a.admin(a.timeScale))
		mux.HandleFunc("POST "+pathAdminTimePaus, a.admin(func(w http.ResponseWriter, r *http.Request) {
			a.timeResult(w, r, a.clock.Pause(r.Context()))
		}))
		mux.HandleFunc("GET "+pathOps, a.admin(a.opsPage))
		mux.HandleFunc("GET "+pathOpsEvents, a.admin(a.opsEvents))
		mux.HandleFunc("POST "+pathAdminTimeRes, a.admin(func(w http.ResponseWriter, r *http.Request) {
			a.timeResult(w, r, a.clock.Resume(r.Context()))
		}))
	} else {
		a.log.Warn("no admin token (BB_ADMIN_TOKEN): admin endpoints are off")
	}
	return a.middleware(mux), nil
}

// middleware gives every request an ID (the client's X-Request-ID when it
// is short and printable, else a new one), echoes it, puts it in the
// request's context for the logs, caps the body at MaxBodyBytes and logs
// the request when it ends.
func (a *app) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(headerRequestID)
		if !validRequestID(id) {
			id = randomToken()
		}
		w.Header().Set(headerRequestID, id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		r = r.WithContext(ctx)
		if r.Body != nil && r.URL.Path != pathWebhook { // the webhook handler has its own limit
			r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(sw, r)
		if r.URL.Path == pathHealthz || r.URL.Path == pathReadyz || r.URL.Path == pathMetrics {
			return
		}
		a.log.LogAttrs(ctx, slog.LevelInfo, "http", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDBytes {
		return false
	}
	for i := range len(id) {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

type requestIDKey struct{}

// requestIDHandler adds the request ID from the context to every record
// logged with one.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}
func (h requestIDHandler) WithGroup(n string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(n)}
}

// statusWriter records the status for the access log. It passes flushes
// and SetWriteDeadline through (Server-Sent Events need both): FlushError
// and Unwrap serve http.ResponseController, which then sees a flush's
// error (a write deadline cutting off a slow client), and Flush serves
// plain http.Flusher users.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Flush()               { _ = w.FlushError() }
func (w *statusWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}
func (w *statusWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

// player authenticates a player's bearer token.
func (a *app) player(h func(http.ResponseWriter, *http.Request, identity.Identity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := identity.FromHeader(r.Context(), a.players, r.Header.Get("Authorization"))
		if err != nil || id.Kind != identity.KindPlayer {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "a player's bearer token is required")
			return
		}
		h(w, r, id)
	}
}

// admin checks the admin token in constant time: a bearer token, or the
// password of HTTP Basic auth (any user name), so that a browser can open
// /ops.
func (a *app) admin(h http.HandlerFunc) http.HandlerFunc {
	want := []byte(a.cfg.AdminToken)
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := identity.BearerToken(r.Header.Get("Authorization"))
		if !ok {
			_, tok, ok = r.BasicAuth()
		}
		if !ok || subtle.ConstantTimeCompare([]byte(tok), want) != 1 {
			w.Header().Add("WWW-Authenticate", `Bearer realm="admin"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="admin", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "unauthenticated", "the admin bearer token is required")
			return
		}
		h(w, r)
	}
}

func (a *app) checkout(w http.ResponseWriter, r *http.Request, id identity.Identity) {
	var in struct {
		Plan      string `json:"plan"`
		PriceID   string `json:"price_id"`
		Code      string `json:"code"`
		RequestID string `json:"request_id"`
		TrialDays int64  `json:"trial_days"`
	}
	if !a.readJSON(w, r, &in) {
		return
	}
	res, err := a.payments.Checkout().Start(r.Context(), payment.CheckoutRequest{
		PlayerID: id.ID, Plan: in.Plan, PriceID: in.PriceID, Code: in.Code, RequestID: in.RequestID, TrialDays: in.TrialDays,
	})
	if err != nil {
		a.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, checkoutStarted{
		SessionID: res.SessionID, URL: res.URL, ExpiresAt: res.ExpiresAt,
		PromotionCodeID: res.PromotionCodeID, AmbassadorID: res.AmbassadorID,
	})
}

// checkoutStarted is the answer to POST /v1/checkout: send the player to URL.
type checkoutStarted struct {
	SessionID       string    `json:"session_id"`
	URL             string    `json:"url"`
	ExpiresAt       time.Time `json:"expires_at"`
	PromotionCodeID string    `json:"promotion_code_id,omitempty"`
	AmbassadorID    string    `json:"ambassador_id,omitempty"`
}

func (a *app) complete(w http.ResponseWriter, r *http.Request, id identity.Identity) {
	var in struct {
		SessionID string `json:"session_id"`
	}
	if !a.readJSON(w, r, &in) {
		return
	}
	e, err := a.payments.Checkout().Complete(r.Context(), id.ID, in.SessionID)
	if err != nil {
		a.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (a *app) portal(w http.ResponseWriter, r *http.Request, id identity.Identity) {
	var in struct {
		ReturnURL string `json:"return_url"`
	}
	if !a.readJSON(w, r, &in) {
		return
	}
	p, err := a.payments.Checkout().Portal(r.Context(), id.ID, in.ReturnURL)
	if err != nil {
		a.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": p.ID, "url": p.URL})
}

// delivery is a signed webhook as the demo provider would send it.
type delivery struct {
	Payload   json.RawMessage `json:"payload"`
	Signature string          `json:"signature"`
}

// demoPay stands in for the provider's checkout page: it pays the caller's
// open session at the demo provider and answers the webhooks the provider
// would send, signed with the webhook secret, for the client to deliver
// to /webhooks/stripe. Only with the demo provider.
func (a *app) demoPay(w http.ResponseWriter, r *http.Request, id identity.Identity) {
	var in struct {
		SessionID string `json:"session_id"`
		Code      string `json:"code"`
	}
	if !a.readJSON(w, r, &in) {
		return
	}
	cs, ok := a.fake.Session(in.SessionID)
	if !ok || cs.Metadata[payment.MetaPlayerID] != id.ID {
		writeError(w, http.StatusNotFound, "not_found", "no such checkout session for this player")
		return
	}
	before := len(a.fake.Events())
	if _, err := a.fake.CompleteCheckout(in.SessionID, fakepay.CompleteOptions{Code: in.Code}); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	}
	var out []delivery
	for _, ev := range a.fake.Events()[before:] {
		p := a.fake.Payload(ev)
		out = append(out, delivery{Payload: p, Signature: fakepay.Sign(p, time.Now(), string(a.webhook))})
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

func (a *app) listCoupons(w http.ResponseWriter, r *http.Request) {
	cs, err := a.payments.Admin().Coupons(r.Context())
	if err != nil {
		a.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cs)
}

func (a *app) createCoupon(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ID                string            `json:"id"`
		Name              string            `json:"name"`
		PercentOff        float64           `json:"percent_off"`
		AmountOff         int64             `json:"amount_off"`
		Currency          string            `json:"currency"`
		Duration          payment.Duration  `json:"duration"`
		DurationInMonths  int64             `json:"duration_in_months"`
		MaxRedemptions    int64             `json:"max_redemptions"`
		RedeemBy          time.Time         `json:"redeem_by"`
		AppliesToProducts []string          `json:"applies_to_products"`
		Metadata          map[string]string `json:"metadata"`
		IdempotencyKey    string            `json:"idempotency_key"`
	}
	if !a.readJSON(w, r, &in) {
		return
	}
	c, err := a.payments.Admin().CreateCoupon(r.Context(), payment.CouponParams{
		ID: in.ID, Name: in.Name, PercentOff: in.PercentOff, AmountOff: in.AmountOff, Currency: in.Currency,
		Duration: in.Duration, DurationInMonths: in.DurationInMonths, MaxRedemptions: in.MaxRedemptions,
		RedeemBy: in.RedeemBy, AppliesToProducts: in.AppliesToProducts, Metadata: in.Metadata,
		IdempotencyKey: in.IdempotencyKey,
	})
	if err != nil {
		a.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (a *app) createAmbassadorCode(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AmbassadorID   string    `json:"ambassador_id"`
		CouponID       string    `json:"coupon_id"`
		Code           string    `json:"code"`
		MaxRedemptions int64     `json:"max_redemptions"`
		ExpiresAt      time.Time `json:"expires_at"`
		FirstTimeOnly  bool      `json:"first_time_only"`
	}
	if !a.readJSON(w, r, &in) {
		return
	}
	pc, err := a.payments.Admin().CreateAmbassadorCode(r.Context(), payment.AmbassadorCodeParams{
		AmbassadorID: in.AmbassadorID, CouponID: in.CouponID, Code: in.Code, MaxRedemptions: in.MaxRedemptions,
		ExpiresAt: in.ExpiresAt, FirstTimeOnly: in.FirstTimeOnly,
	})
	if err != nil {
		a.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, pc)
}

// loraStatus is one adapter in GET /admin/lora.
type loraStatus struct {
	Name      string    `json:"name"`
	Path      string    `json:"path"`
	BaseModel string    `json:"base_model,omitempty"`
	LoadedOn  []string  `json:"loaded_on"`
	InUse     int       `json:"in_use"`
	LastUsed  time.Time `json:"last_used,omitzero"`
}

func loraList(ss []lora.Status) []loraStatus {
	out := make([]loraStatus, 0, len(ss))
	for _, st := range ss {
		out = append(out, loraStatus{
			Name: st.Adapter.Name, Path: st.Adapter.Path, BaseModel: st.Adapter.BaseModel,
			LoadedOn: st.LoadedOn, InUse: st.InUse, LastUsed: st.LastUsed,
		})
	}
	return out
}

// loraOp answers POST /admin/lora/{register,unregister,load,unload,hotswap}
// with a JSON body {"name", "path", "base_model"} (register),
// {"name"} (unregister), {"replica", "adapter"} (load, unload) or
// {"replica", "old", "new"} (hotswap).
func (a *app) loraOp(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name      string `json:"name"`
		Path      string `json:"path"`
		BaseModel string `json:"base_model"`
		Replica   string `json:"replica"`
		Adapter   string `json:"adapter"`
		Old       string `json:"old"`
		New       string `json:"new"`
	}
	if !a.readJSON(w, r, &in) {
		return
	}
	ctx := r.Context()
	var err error
	switch r.PathValue("op") {
	case "register":
		if in.Name == "" || in.Path == "" {
			writeError(w, http.StatusBadRequest, "invalid_argument", "register needs a name and a path")
			return
		}
		err = a.lora.Register(lora.Adapter{Name: in.Name, Path: in.Path, BaseModel: in.BaseModel})
	case "unregister":
		err = a.lora.Unregister(ctx, in.Name)
	case "load":
		err = a.lora.Load(ctx, in.Replica, in.Adapter)
	case "unload":
		err = a.lora.Unload(ctx, in.Replica, in.Adapter)
	case "hotswap":
		err = a.lora.HotSwap(ctx, in.Replica, in.Old, in.New)
	default:
		writeError(w, http.StatusNotFound, "not_found", "unknown LoRA operation")
		return
	}
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, loraList(a.lora.List(false)))
	case errors.Is(err, lora.ErrUnknownAdapter), errors.Is(err, lora.ErrUnknownReplica):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, lora.ErrDuplicate), errors.Is(err, lora.ErrInUse), errors.Is(err, lora.ErrFull):
		writeError(w, http.StatusConflict, "failed_precondition", err.Error())
	case errors.Is(err, lora.ErrEngine):
		writeError(w, http.StatusBadGateway, "unavailable", err.Error())
	default:
		a.writeErr(w, r, err)
	}
}

// eventHistory answers GET /admin/events/history?topic=T&after=ID&limit=N:
// the topic's events oldest first, after the event ID when given, at most
// N (1 to 1000, default 100), payloads as JSON. Page with after= the last
// ID of the previous page; each page reads only what it returns.
func (a *app) eventHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	topic := q.Get("topic")
	if err := eventbus.ValidateTopic(topic); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxHistoryLimit {
			writeError(w, http.StatusBadRequest, "invalid_argument", "limit: want 1 to 1000")
			return
		}
		limit = n
	}
	from := eventbus.FromStart()
	if s := q.Get("after"); s != "" {
		id, err := eventbus.ParseID(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_argument", "after: "+err.Error())
			return
		}
		from = eventbus.AfterID(id)
	}
	evs, err := a.bus.History(r.Context(), topic, from, limit)
	if err != nil {
		a.writeErr(w, r, err)
		return
	}
	type event struct {
		ID      string          `json:"id"`
		Topic   string          `json:"topic"`
		Type    string          `json:"type"`
		Key     string          `json:"key,omitempty"`
		Time    time.Time       `json:"time"`
		Payload json.RawMessage `json:"payload"`
	}
	out := make([]event, 0, len(evs))
	for _, ev := range evs {
		p := json.RawMessage(ev.Payload)
		if !json.Valid(p) {
			p, _ = json.Marshal(ev.Payload) // base64
		}
		out = append(out, event{ID: ev.ID.String(), Topic: ev.Topic, Type: ev.Type, Key: ev.Key, Time: ev.Time, Payload: p})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *app) timeSet(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Day    int `json:"day"`
		Hour   int `json:"hour"`
		Minute int `json:"minute"`
	}
	if !a.readJSON(w, r, &in) {
		return
	}
	a.timeResult(w, r, a.clock.Set(r.Context(), in.Day, in.Hour, in.Minute))
}

func (a *app) timeScale(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RealSecondsPerGameHour float64 `json:"real_seconds_per_game_hour"`
	}
	if !a.readJSON(w, r, &in) {
		return
	}
	a.timeResult(w, r, a.clock.SetRealSecondsPerGameHour(r.Context(), in.RealSecondsPerGameHour))
}

func (a *app) timeResult(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		a.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.clock.Now())
}

// readJSON decodes the body into v, refusing unknown fields; on failure it
// answers 400 (413 for a body over the limit) and returns false.
func (a *app) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil || errors.Is(err, io.EOF) && r.ContentLength == 0 {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "request body over "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
		return false
	}
	writeError(w, http.StatusBadRequest, "invalid_argument", "body: "+err.Error())
	return false
}

// writeErr maps the SDK's errors to HTTP statuses; anything unexpected is
// logged and answered 500 without detail.
func (a *app) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ve  *payment.ValidationError
		ice *payment.InvalidCodeError
		rle *payment.CodeRateLimitError
		wve *worldtime.ValueError
	)
	switch {
	case errors.As(err, &ve), errors.As(err, &wve), errors.Is(err, worldtime.ErrInvalid), errors.Is(err, eventbus.ErrInvalidID):
		writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
	case errors.As(err, &ice), errors.Is(err, payment.ErrInvalidCode):
		writeError(w, http.StatusBadRequest, "invalid_code", "the code cannot be redeemed")
	case errors.As(err, &rle):
		writeError(w, http.StatusTooManyRequests, "resource_exhausted", err.Error())
	case errors.Is(err, payment.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, eventbus.ErrNotSupported):
		writeError(w, http.StatusNotImplemented, "unimplemented", err.Error())
	default:
		a.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// randomToken returns 16 random bytes in hex.
func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
