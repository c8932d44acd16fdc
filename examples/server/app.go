package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/batching/lora"
	"github.com/bodybroker/sdk/dialogue"
	dialoguestore "github.com/bodybroker/sdk/dialogue/redisstore"
	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/eventbus/redisbus"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
	paymentstore "github.com/bodybroker/sdk/payment/redisstore"
	"github.com/bodybroker/sdk/payment/stripepay"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
	"github.com/bodybroker/sdk/router/scripted"
	"github.com/bodybroker/sdk/settings"
	settingsstore "github.com/bodybroker/sdk/settings/redisstore"
	"github.com/bodybroker/sdk/worldtime"
	worldtimestore "github.com/bodybroker/sdk/worldtime/redisstore"
)

// app holds the assembled SDK components. build creates it; close releases
// what build created, in reverse order.
type app struct {
	cfg Config
	log *slog.Logger

	rdb      redis.UniversalClient // nil without BB_REDIS_ADDR
	bus      *eventbus.Bus
	router   *router.Router
	dialogue *dialogue.Service
	payments *payment.Service
	provider payment.Provider
	fake     *fakepay.Provider // the demo provider; nil with Stripe
	webhook  secret            // the secret webhooks are signed with
	settings *settings.Manager
	clock    *worldtime.Clock
	audio    *audio.Director
	players  identity.Authenticator
	gateway  *gateway.Gateway // set by handler
	ops      *opsLog
	opsDone  chan struct{} // closed when the HTTP server shuts down: ends /ops/events streams
	opsOnce  sync.Once

	// routerMu guards what routerOptions keeps between reloads.
	routerMu     sync.Mutex
	models       []string // base URLs of real model servers, for readiness
	standIns     []string // tiers served by stand-in model servers
	modelClients map[string]*openai.Model
	standInURLs  map[string]string
	scripted     *scripted.Model
	lora         *lora.Manager     // nil when no tier has lora = true
	loraURLs     map[string]string // lora replica name → base URL

	readyTransport *http.Transport
	ready          *readiness

	closers []func() error
}

// build assembles the components cfg describes.
func build(ctx context.Context, cfg Config, log *slog.Logger) (_ *app, err error) {
	a := &app{
		cfg: cfg, log: log, ops: &opsLog{}, opsDone: make(chan struct{}),
		modelClients: map[string]*openai.Model{}, standInURLs: map[string]string{},
	}
	defer func() {
		if err != nil {
			a.close()
		}
	}()

	// Backends: Redis when configured, memory otherwise.
	transport := "memory"
	if len(cfg.RedisAddr) > 0 {
		// UniversalClient: one address is a single node, several a cluster.
		a.rdb = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cfg.RedisAddr})
		a.closers = append(a.closers, a.rdb.Close)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("redis %v: %w", cfg.RedisAddr, err)
		}
		transport = "redis-streams"
	}
	busOpts := eventbus.Options{TopicLatency: true, Logger: log}
	if a.rdb != nil {
		// "{bb}:" keeps every stream in one hash slot, so that one
		// XREADGROUP can read several topics on Redis Cluster.
		tr, err := redisbus.NewStreams(a.rdb, redisbus.StreamsOptions{Prefix: "{" + cfg.RedisPrefix + "}:"})
		if err != nil {
			return nil, err
		}
		busOpts.Transport = tr
	}
	if a.bus, err = eventbus.New(busOpts); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.bus.Close)
	log.Info("event bus", "transport", transport)

	if err := a.buildRouter(); err != nil {
		return nil, err
	}
	if err := a.buildDialogue(); err != nil {
		return nil, err
	}
	if err := a.buildPayments(); err != nil {
		return nil, err
	}

	so := settings.Options{Bus: a.bus, Logger: log}
	if a.rdb != nil {
		if so.Store, err = settingsstore.New(a.rdb, settingsstore.Options{Prefix: a.cfg.RedisPrefix + ":settings:"}); err != nil {
			return nil, err
		}
	}
	if a.settings, err = settings.New(so); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.settings.Close)

	wo := worldtime.Options{World: cfg.Catalog.World.Name, Bus: a.bus, Logger: log}
	if s := cfg.Catalog.World.RealSecondsPerGameHour; s > 0 {
		if wo.Scale, err = worldtime.RealSecondsPerGameHour(s); err != nil {
			return nil, fieldErr("world.real_seconds_per_game_hour", "%v", err)
		}
	}
	if a.rdb != nil {
		if wo.Store, err = worldtimestore.New(a.rdb, worldtimestore.Options{Prefix: a.cfg.RedisPrefix + ":worldtime:"}); err != nil {
			return nil, err
		}
	}
	if a.clock, err = worldtime.New(ctx, wo); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.clock.Close)

	// The audio director: ambience follows the clock's phases, music ducks
	// under NPC voice lines, players' volume settings apply; cues go out
	// on the bus as audio.cue (see runAudio).
	if a.audio, err = audio.New(audio.Options{World: a.clock.World(), Events: a.bus, Logger: log}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.audio.Close)

	a.readyTransport = &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 1}
	a.closers = append(a.closers, func() error { a.readyTransport.CloseIdleConnections(); return nil })
	a.ready = newReadiness(a.checks)
	return a, nil
}

func (a *app) buildRouter() error {
	if err := a.buildLoRA(); err != nil {
		return err
	}
	opts, err := a.routerOptions(a.cfg.Catalog)
	if err != nil {
		return err
	}
	if a.router, err = router.New(opts); err != nil {
		return err
	}
	a.closers = append(a.closers, a.router.Close)
	return nil
}

// buildLoRA creates the LoRA manager when a tier has lora = true: one
// manager replica per replica of those tiers, named as the router names
// it, with the catalogue's adapters registered.
func (a *app) buildLoRA() error {
	var replicas []lora.Replica
	a.loraURLs = map[string]string{}
	for i, tc := range a.cfg.Catalog.Tiers {
		if !tc.LoRA {
			continue
		}
		urls := a.tierURLs(tc)
		if len(urls) == 0 {
			return fieldErr(fmt.Sprintf("tiers[%d].lora", i), "needs a model server (urls or BB_OPENAI_URL): stand-ins cannot load adapters")
		}
		for j, u := range urls {
			name := replicaName(tc.Name, j)
			replicas = append(replicas, lora.Replica{Name: name, BaseURL: u})
			a.loraURLs[name] = u
		}
	}
	if len(replicas) == 0 {
		return nil
	}
	m, err := lora.New(lora.Options{Replicas: replicas, MaxLoaded: a.cfg.Catalog.LoRA.MaxLoaded, APIKey: string(a.cfg.OpenAIAPIKey)})
	if err != nil {
		return &ConfigError{Field: "lora", Err: err}
	}
	a.lora = m
	a.closers = append(a.closers, m.Close)
	for i, ad := range a.cfg.Catalog.LoRA.Adapters {
		if err := m.Register(lora.Adapter{Name: ad.Name, Path: ad.Path, BaseModel: ad.BaseModel}); err != nil {
			return fieldErr(fmt.Sprintf("lora.adapters[%d]", i), "%v", err)
		}
	}
	a.log.Info("LoRA adapters managed", "replicas", len(replicas), "adapters", len(a.cfg.Catalog.LoRA.Adapters))
	return nil
}

// tierURLs is the model servers of a tier: its own, or BB_OPENAI_URL.
func (a *app) tierURLs(tc TierConfig) []string {
	if len(tc.URLs) == 0 && a.cfg.OpenAIURL != "" {
		return []string{a.cfg.OpenAIURL}
	}
	return tc.URLs
}

func replicaName(tier string, i int) string { return fmt.Sprintf("%s-%d", tier, i) }

// routerOptions builds the router's tiers from a catalogue. Model clients
// and stand-ins are kept by URL and model (stand-ins by tier and line) and
// reused by later reloads, so a reload creates only what is new and
// requests in flight on the old configuration keep their clients; all are
// closed with the server. The caller holds routerMu, or is build.
func (a *app) routerOptions(cat Catalog) (router.Options, error) {
	var (
		tiers            []router.Tier
		models, standIns []string
	)
	for _, tc := range cat.Tiers {
		t := router.Tier{
			Name: tc.Name, ModelName: tc.Model, Adapter: tc.Adapter, TTFTTarget: tc.TTFTTarget,
			MaxConcurrent: tc.MaxConcurrent, MaxQueued: tc.MaxQueued, MaxTokens: tc.MaxTokens,
		}
		urls := a.tierURLs(tc)
		if len(urls) == 0 {
			// A stand-in that streams the tier's line like vLLM would.
			line := tc.StandIn
			if line == "" {
				line = "Well met, traveller."
			}
			key := tc.Name + "\x00" + line
			u, ok := a.standInURLs[key]
			if !ok {
				srv := openaitest.NewServer(openaitest.Behavior{
					TTFT: 20 * time.Millisecond, TokenDelay: 5 * time.Millisecond, Tokens: strings.SplitAfter(line, " "),
				})
				srv.DisableRecording()
				a.closers = append(a.closers, func() error { srv.Close(); return nil })
				u = srv.URL + "/v1"
				a.standInURLs[key] = u
				a.log.Warn("model tier uses a STAND-IN model server, not a real model; set urls in the catalogue or BB_OPENAI_URL",
					"tier", tc.Name, "url", srv.URL)
			}
			urls = []string{u}
			standIns = append(standIns, tc.Name)
		} else {
			models = append(models, urls...)
			a.log.Info("model tier", "tier", tc.Name, "urls", urls)
		}
		for i, u := range urls {
			key := u + "\x00" + tc.Model
			m, ok := a.modelClients[key]
			if !ok {
				var err error
				m, err = openai.New(openai.Options{BaseURL: u, Model: tc.Model, APIKey: string(a.cfg.OpenAIAPIKey), Logger: a.log})
				if err != nil {
					return router.Options{}, fieldErr(fmt.Sprintf("tiers[%s].urls[%d]", tc.Name, i), "%v", err)
				}
				a.closers = append(a.closers, m.Close)
				a.modelClients[key] = m
			}
			name := replicaName(tc.Name, i)
			var model router.Model = m
			// Adapters are loaded on demand on replicas the LoRA manager
			// knows (from the start-up catalogue, at the same URL).
			if tc.LoRA && a.lora != nil && a.loraURLs[name] == u {
				lm, err := a.lora.Model(name, m)
				if err != nil {
					return router.Options{}, err
				}
				model = lm
			} else if tc.LoRA {
				a.log.Warn("LoRA is configured at start only; this replica's adapters are not managed", "replica", name)
			}
			t.Replicas = append(t.Replicas, router.Replica{Name: name, Model: model})
		}
		tiers = append(tiers, t)
	}
	if a.scripted == nil {
		var err error
		if a.scripted, err = scripted.New(scripted.Options{}); err != nil {
			return router.Options{}, err
		}
	}
	tiers = append(tiers, router.Tier{Name: scriptedTier, Replicas: []router.Replica{{Name: "lines", Model: a.scripted}}})
	slices.Sort(models)
	a.models, a.standIns = slices.Compact(models), standIns
	return router.Options{
		Tiers: tiers, Fallbacks: cat.Fallbacks, Logger: a.log,
		Hooks: router.Hooks{OnFallback: func(from, to string, cause error) {
			a.log.Warn("router fallback", "from", from, "to", to, "cause", cause)
		}},
	}, nil
}

// reloadRouter reads the catalogue again (the -config file, or the
// built-in one) and reconfigures the router's tiers and fallbacks from it.
// Personas and plans are read at start only. On any error the running
// configuration stays.
func (a *app) reloadRouter() error {
	data := defaultCatalog
	if a.cfg.CatalogPath != "" {
		var err error
		if data, err = os.ReadFile(a.cfg.CatalogPath); err != nil {
			return fieldErr("BB_CONFIG", "%v", err)
		}
	}
	cat, err := parseCatalog(data)
	if err != nil {
		return err
	}
	a.routerMu.Lock()
	defer a.routerMu.Unlock()
	prevModels, prevStandIns := a.models, a.standIns
	opts, err := a.routerOptions(cat)
	if err == nil {
		if err = a.router.Reconfigure(opts); err != nil {
			err = &ConfigError{Field: "catalogue", Err: err}
		}
	}
	if err != nil {
		a.models, a.standIns = prevModels, prevStandIns
		return err
	}
	a.log.Info("router reconfigured", "tiers", len(opts.Tiers))
	return nil
}

func (a *app) buildDialogue() error {
	personas, err := a.cfg.Catalog.personas()
	if err != nil {
		return &ConfigError{Field: "personas", Err: err}
	}
	opts := dialogue.Options{
		Completer: dialogue.RouterCompleter(a.router), Personas: personas, Events: a.bus, Logger: a.log,
		TimeOfDay: worldtime.DialogueTimeOfDay(func(string) *worldtime.Clock { return a.clock }),
	}
	if a.rdb != nil {
		if opts.Store, err = dialoguestore.New(a.rdb, dialoguestore.Options{Prefix: a.cfg.RedisPrefix + ":dialogue:"}); err != nil {
			return err
		}
	}
	if a.dialogue, err = dialogue.New(opts); err != nil {
		return err
	}
	if len(a.cfg.PlayerTokens) == 0 {
		a.log.Warn("no player tokens (BB_PLAYER_TOKENS): every player call is refused")
		a.players = identity.AuthenticatorFunc(func(context.Context, string) (identity.Identity, error) {
			return identity.Identity{}, identity.ErrUnauthenticated
		})
		return nil
	}
	a.players, err = identity.NewTokenAuthenticator(a.cfg.PlayerTokens)
	return err
}

func (a *app) buildPayments() error {
	var err error
	a.webhook = a.cfg.StripeWebhookSecret
	if a.cfg.StripeKey != "" {
		a.provider, err = stripepay.New(stripepay.Options{
			APIKey: payment.Secret(a.cfg.StripeKey), URL: a.cfg.StripeURL, Logger: a.log,
		})
		if err != nil {
			return &ConfigError{Field: "STRIPE_SECRET_KEY", Err: err}
		}
		a.log.Info("payments: Stripe", "url", a.cfg.StripeURL)
	} else {
		if a.fake, err = fakepay.New(fakepay.Options{}); err != nil {
			return err
		}
		a.provider = a.fake
		if a.webhook == "" {
			a.webhook = secret("whsec_demo_" + randomToken())
		}
		a.log.Warn("payments: DEMO provider (no money moves); set STRIPE_SECRET_KEY for Stripe")
	}
	opts := payment.Options{
		Provider: a.provider, Plans: a.cfg.Catalog.plans(), WebhookSecrets: []payment.Secret{payment.Secret(a.webhook)},
		DefaultSuccessURL: a.cfg.Catalog.Checkout.SuccessURL, DefaultCancelURL: a.cfg.Catalog.Checkout.CancelURL,
		RedirectHosts: a.cfg.Catalog.Checkout.RedirectHosts, Events: a.bus, Logger: a.log,
		OnEntitlementChange: a.ops.entitlementChanged,
	}
	if a.rdb != nil {
		if opts.Store, err = paymentstore.New(a.rdb, paymentstore.Options{Prefix: a.cfg.RedisPrefix + ":payment:"}); err != nil {
			return err
		}
	}
	a.payments, err = payment.New(opts)
	return err
}

// checks lists the readiness checks: Redis, each real model server (of
// the router's current configuration) and Stripe. In-memory backends,
// stand-ins and the demo provider are always ready.
func (a *app) checks() map[string]func(context.Context) error {
	c := map[string]func(context.Context) error{}
	if a.rdb != nil {
		c["redis"] = func(ctx context.Context) error { return a.rdb.Ping(ctx).Err() }
	}
	client := &http.Client{Transport: a.readyTransport}
	a.routerMu.Lock()
	models := a.models
	a.routerMu.Unlock()
	for _, u := range models {
		c["model "+u] = func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u, "/")+"/models", nil)
			if err != nil {
				return err
			}
			if k := a.cfg.OpenAIAPIKey; k != "" {
				req.Header.Set("Authorization", "Bearer "+string(k))
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("GET /models: %s", resp.Status)
			}
			return nil
		}
	}
	if a.fake == nil {
		c["stripe"] = func(ctx context.Context) error {
			// One page of coupons: a cheap authenticated call.
			err := a.provider.ListCoupons(ctx, func(payment.Coupon) error { return errStop })
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
	return c
}

var errStop = errors.New("stop")

// close releases everything build created, newest first.
func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil && !isClosed(err) {
			a.log.Warn("close", "err", err)
		}
	}
	a.closers = nil
}

func isClosed(err error) bool {
	return errors.Is(err, eventbus.ErrClosed) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, audio.ErrClosed) || errors.Is(err, lora.ErrClosed) || errors.Is(err, router.ErrClosed) || errors.Is(err, gateway.ErrClosed) || errors.Is(err, settings.ErrClosed) || errors.Is(err, worldtime.ErrClosed)
}

// readiness runs the checks and keeps their latest results.
type readiness struct {
	checks func() map[string]func(context.Context) error // asked each round

	mu      sync.Mutex
	checked bool
	failed  map[string]string // check name → error
}

func newReadiness(checks func() map[string]func(context.Context) error) *readiness {
	return &readiness{checks: checks}
}

// checkTimeout bounds each readiness check.
const checkTimeout = 5 * time.Second

// run checks every interval until ctx ends; a round that takes longer
// than interval delays the next one.
func (r *readiness) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r.checkOnce(ctx, checkTimeout)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *readiness) checkOnce(ctx context.Context, timeout time.Duration) {
	failed := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range r.checks() {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := check(cctx); err != nil {
				mu.Lock()
				failed[name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	r.checked, r.failed = true, failed
	r.mu.Unlock()
}

// state reports whether every check passed at the last round (false before
// the first), and the failures.
func (r *readiness) state() (bool, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checked && len(r.failed) == 0, r.failed
}

// audioTick is how often the audio director advances (voices end, thunder
// strikes).
const audioTick = 100 * time.Millisecond

// runAudio makes the director follow the clock, dialogue and settings,
// and advances it every audioTick until ctx ends; then it stops following.
func (a *app) runAudio(ctx context.Context) error {
	stopClock, err := a.audio.FollowClock(ctx, a.clock)
	if err != nil {
		return fmt.Errorf("audio: %w", err)
	}
	defer stopClock()
	dsub, err := a.audio.FollowDialogue(ctx, a.bus, "", eventbus.SubscribeOptions{})
	if err != nil {
		return fmt.Errorf("audio: %w", err)
	}
	defer dsub.Close()
	ssub, err := a.audio.FollowSettings(ctx, a.bus, eventbus.SubscribeOptions{})
	if err != nil {
		return fmt.Errorf("audio: %w", err)
	}
	defer ssub.Close()
	t := time.NewTicker(audioTick)
	defer t.Stop()
	var f audio.Frame
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := a.audio.Update(ctx, &f); err != nil && ctx.Err() == nil {
				a.log.Warn("audio update", "err", err)
			}
		}
	}
}
