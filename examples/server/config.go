package main

import (
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/router"
)

// defaultCatalog is the catalogue used when no -config file is given: three
// tiers, three NPCs and two plans, enough to try every route.
//
//go:embed server.toml
var defaultCatalog []byte

// ErrConfig is wrapped by every configuration error: a bad flag, variable or
// catalogue field. The *ConfigError carrying it names the field.
var ErrConfig = errors.New("invalid configuration")

// ConfigError names the flag, environment variable or catalogue field that
// is wrong ("tiers[1].ttft_target", "BB_HTTP_ADDR") and why.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return "config: " + e.Field + ": " + e.Err.Error() }

// Unwrap returns ErrConfig and the cause, so errors.Is matches both.
func (e *ConfigError) Unwrap() []error { return []error{ErrConfig, e.Err} }

func fieldErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Config is everything the server reads at start: the process settings
// from flags and environment, and the catalogue (tiers, personas, plans)
// from one TOML file.
type Config struct {
	GRPCAddr    string
	HTTPAddr    string
	RedisAddr   []string // one address: a single node; several: a cluster
	RedisPrefix string   // starts every key; default "bb"

	OpenAIURL    string // model server for tiers whose catalogue entry names none
	OpenAIAPIKey secret

	StripeKey           secret
	StripeURL           string // API base URL override (stripe-mock)
	StripeWebhookSecret secret

	AdminToken   secret
	PlayerTokens map[identity.Token]identity.Identity

	Reflection      bool
	ShutdownTimeout time.Duration
	ReadyInterval   time.Duration
	MaxBodyBytes    int64
	LogLevel        slog.Level

	CatalogPath string // "" means the embedded server.toml
	Catalog     Catalog
}

// secret is a string that logs as "[redacted]" when set.
type secret string

func (s secret) LogValue() slog.Value {
	if s == "" {
		return slog.StringValue("")
	}
	return slog.StringValue("[redacted]")
}

// Catalog is the content of the configuration file.
type Catalog struct {
	Tiers     []TierConfig    `toml:"tiers"`
	Fallbacks [][]string      `toml:"fallbacks"`
	Personas  []PersonaConfig `toml:"personas"`
	Plans     []PlanConfig    `toml:"plans"`
	Checkout  CheckoutConfig  `toml:"checkout"`
	World     WorldConfig     `toml:"world"`
	LoRA      LoRAConfig      `toml:"lora"`
}

// LoRAConfig is the LoRA adapters the server may load on the model
// servers of tiers marked lora = true (vLLM with
// VLLM_ALLOW_RUNTIME_LORA_UPDATING=True). It is read at start only.
type LoRAConfig struct {
	// MaxLoaded is each replica's limit (the engine's --max-loras); 0
	// means the lora package's default.
	MaxLoaded int             `toml:"max_loaded"`
	Adapters  []AdapterConfig `toml:"adapters"`
}

// AdapterConfig registers one adapter.
type AdapterConfig struct {
	Name      string `toml:"name"`
	Path      string `toml:"path"` // where the engine reads it
	BaseModel string `toml:"base_model"`
}

// TierConfig is one model tier. URLs are OpenAI-compatible base URLs
// ("http://vllm-0:8000/v1"), one replica each; with none, the tier uses
// BB_OPENAI_URL, or else an in-process stand-in model server.
type TierConfig struct {
	Name          string        `toml:"name"`
	Model         string        `toml:"model"`
	Adapter       string        `toml:"adapter"`
	URLs          []string      `toml:"urls"`
	TTFTTarget    time.Duration `toml:"ttft_target"`
	MaxConcurrent int           `toml:"max_concurrent"`
	MaxQueued     int           `toml:"max_queued"`
	MaxTokens     int           `toml:"max_tokens"`
	// StandIn is the reply the stand-in model server streams when the tier
	// has no model server.
	StandIn string `toml:"stand_in"`
	// LoRA has the server load the tier's adapters (the tier's and the
	// personas') on its replicas on demand; it needs real model servers.
	LoRA bool `toml:"lora"`
}

// PersonaConfig is one NPC.
type PersonaConfig struct {
	ID            string   `toml:"id"`
	Name          string   `toml:"name"`
	SystemPrompt  string   `toml:"system_prompt"`
	Importance    string   `toml:"importance"` // generic, elite or major
	Adapter       string   `toml:"adapter"`
	Style         string   `toml:"style"`
	Knowledge     []string `toml:"knowledge"`
	FallbackLines []string `toml:"fallback_lines"`
}

// PlanConfig is one plan a player can buy.
type PlanConfig struct {
	ID     string        `toml:"id"`
	Name   string        `toml:"name"`
	Rank   int           `toml:"rank"`
	Prices []PriceConfig `toml:"prices"`
}

// PriceConfig maps a provider price onto a plan.
type PriceConfig struct {
	ID     string        `toml:"id"`
	Mode   string        `toml:"mode"`   // subscription (default) or payment
	Access time.Duration `toml:"access"` // payment mode: how long it grants the plan; 0 for ever
}

// CheckoutConfig holds the checkout redirect URLs.
type CheckoutConfig struct {
	SuccessURL    string   `toml:"success_url"`
	CancelURL     string   `toml:"cancel_url"`
	RedirectHosts []string `toml:"redirect_hosts"`
}

// WorldConfig configures the world clock.
type WorldConfig struct {
	Name                   string  `toml:"name"`
	RealSecondsPerGameHour float64 `toml:"real_seconds_per_game_hour"`
}

// Defaults of the process settings. Listeners bind loopback unless told
// otherwise, so a server started by accident is not reachable from the
// network.
const (
	defaultGRPCAddr        = "127.0.0.1:50051"
	defaultHTTPAddr        = "127.0.0.1:8080"
	defaultShutdownTimeout = 15 * time.Second
	defaultReadyInterval   = 5 * time.Second
	defaultMaxBodyBytes    = 1 << 20
	minAdminTokenBytes     = 16
)

// loadConfig reads flags from args and variables through getenv; a flag
// given on the command line wins over its variable. It validates
// everything and returns a *ConfigError naming the first bad field.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	env := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	var (
		grpcAddr   = fs.String("grpc-addr", or(env("BB_GRPC_ADDR"), defaultGRPCAddr), "gRPC listen address (BB_GRPC_ADDR)")
		httpAddr   = fs.String("http-addr", or(env("BB_HTTP_ADDR"), defaultHTTPAddr), "HTTP listen address (BB_HTTP_ADDR)")
		redisAddr  = fs.String("redis-addr", env("BB_REDIS_ADDR"), "Redis address; comma-separated addresses mean a cluster; empty: in-memory backends (BB_REDIS_ADDR)")
		redisPfx   = fs.String("redis-prefix", or(env("BB_REDIS_PREFIX"), "bb"), "starts every Redis key, so deployments can share a Redis (BB_REDIS_PREFIX)")
		catalog    = fs.String("config", env("BB_CONFIG"), "catalogue file (TOML): tiers, personas, plans; empty: the built-in one (BB_CONFIG)")
		openaiURL  = fs.String("openai-url", env("BB_OPENAI_URL"), "OpenAI-compatible model server base URL for tiers that name none; empty: stand-ins (BB_OPENAI_URL)")
		stripeURL  = fs.String("stripe-url", env("BB_STRIPE_URL"), "Stripe API base URL override, e.g. stripe-mock (BB_STRIPE_URL)")
		reflection = fs.Bool("reflection", false, "register gRPC server reflection (BB_REFLECTION=1)")
		logLevel   = fs.String("log-level", or(env("BB_LOG_LEVEL"), "info"), "debug, info, warn or error (BB_LOG_LEVEL)")
	)
	shutdown := fs.Duration("shutdown-timeout", 0, "how long SIGINT/SIGTERM waits for streams to drain (BB_SHUTDOWN_TIMEOUT, default 15s)")
	ready := fs.Duration("ready-interval", 0, "how often readiness is checked (BB_READY_INTERVAL, default 5s)")
	if err := fs.Parse(args); err != nil {
		return Config{}, &ConfigError{Field: "flags", Err: err}
	}
	if fs.NArg() > 0 {
		return Config{}, fieldErr("flags", "unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	c := Config{
		GRPCAddr: *grpcAddr, HTTPAddr: *httpAddr, CatalogPath: *catalog,
		OpenAIURL: strings.TrimSpace(*openaiURL), OpenAIAPIKey: secret(env("BB_OPENAI_API_KEY")),
		StripeKey: secret(env("BB_STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY")), StripeURL: *stripeURL,
		StripeWebhookSecret: secret(env("BB_STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET")),
		AdminToken:          secret(env("BB_ADMIN_TOKEN")),
		RedisPrefix:         *redisPfx,
		Reflection:          *reflection,
		ShutdownTimeout:     defaultShutdownTimeout, ReadyInterval: defaultReadyInterval,
		MaxBodyBytes: defaultMaxBodyBytes,
	}
	for _, a := range strings.Split(*redisAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return Config{}, fieldErr("BB_REDIS_ADDR", "%q: %v", a, err)
			}
			c.RedisAddr = append(c.RedisAddr, a)
		}
	}
	if !validPrefix(c.RedisPrefix) {
		return Config{}, fieldErr("BB_REDIS_PREFIX", "%q: want 1 to 64 letters, digits, '-' or '_'", c.RedisPrefix)
	}
	for _, a := range []struct{ field, addr string }{{"BB_GRPC_ADDR", c.GRPCAddr}, {"BB_HTTP_ADDR", c.HTTPAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return Config{}, fieldErr(a.field, "%q: %v", a.addr, err)
		}
	}
	if !set["reflection"] {
		if v := env("BB_REFLECTION"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fieldErr("BB_REFLECTION", "%q is not a boolean", v)
			}
			c.Reflection = b
		}
	}
	durations := []struct {
		field string
		flag  *time.Duration
		name  string
		dst   *time.Duration
	}{
		{"BB_SHUTDOWN_TIMEOUT", shutdown, "shutdown-timeout", &c.ShutdownTimeout},
		{"BB_READY_INTERVAL", ready, "ready-interval", &c.ReadyInterval},
	}
	for _, d := range durations {
		v := *d.flag
		if !set[d.name] {
			s := env(d.field)
			if s == "" {
				continue
			}
			var err error
			if v, err = time.ParseDuration(s); err != nil {
				return Config{}, fieldErr(d.field, "%v", err)
			}
		}
		if v <= 0 {
			return Config{}, fieldErr(d.field, "must be positive, got %v", v)
		}
		*d.dst = v
	}
	if err := c.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return Config{}, fieldErr("BB_LOG_LEVEL", "%q: want debug, info, warn or error", *logLevel)
	}
	if c.OpenAIURL != "" {
		if err := checkURL(c.OpenAIURL); err != nil {
			return Config{}, fieldErr("BB_OPENAI_URL", "%v", err)
		}
	}
	if c.StripeURL != "" {
		if err := checkURL(c.StripeURL); err != nil {
			return Config{}, fieldErr("BB_STRIPE_URL", "%v", err)
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < minAdminTokenBytes {
		return Config{}, fieldErr("BB_ADMIN_TOKEN", "must be at least %d bytes", minAdminTokenBytes)
	}
	if c.StripeKey != "" && c.StripeWebhookSecret == "" {
		return Config{}, fieldErr("STRIPE_WEBHOOK_SECRET", "required with STRIPE_SECRET_KEY: webhooks must be verified")
	}
	var err error
	if c.PlayerTokens, err = parseTokens(env("BB_PLAYER_TOKENS"), c.AdminToken); err != nil {
		return Config{}, err
	}

	data := defaultCatalog
	if c.CatalogPath != "" {
		if data, err = os.ReadFile(c.CatalogPath); err != nil {
			return Config{}, fieldErr("BB_CONFIG", "%v", err)
		}
	}
	if c.Catalog, err = parseCatalog(data); err != nil {
		return Config{}, err
	}
	return c, nil
}

// parseTokens reads BB_PLAYER_TOKENS: "token=player-id" pairs separated by
// commas. Tokens must be at least 16 bytes and differ from the admin token.
func parseTokens(s string, admin secret) (map[identity.Token]identity.Identity, error) {
	out := map[identity.Token]identity.Identity{}
	for i, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		tok, id, ok := strings.Cut(pair, "=")
		field := fmt.Sprintf("BB_PLAYER_TOKENS[%d]", i)
		switch {
		case !ok || id == "":
			return nil, fieldErr(field, "want token=player-id")
		case len(tok) < minAdminTokenBytes:
			return nil, fieldErr(field, "token must be at least %d bytes", minAdminTokenBytes)
		case secret(tok) == admin:
			return nil, fieldErr(field, "token is the admin token")
		}
		if _, dup := out[identity.Token(tok)]; dup {
			return nil, fieldErr(field, "token given twice")
		}
		out[identity.Token(tok)] = identity.Identity{Kind: identity.KindPlayer, ID: id}
	}
	return out, nil
}

func validPrefix(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want an absolute http(s) URL", s)
	}
	return nil
}

// parseCatalog decodes and validates a catalogue. Unknown keys are errors
// (a misspelt key would otherwise be silently ignored).
func parseCatalog(data []byte) (Catalog, error) {
	var c Catalog
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if pe.LastKey != "" { // a value of the wrong type or form
				return Catalog{}, fieldErr(pe.LastKey, "%s", pe.Message)
			}
			return Catalog{}, fieldErr("catalogue", "line %d: %s", pe.Position.Line, pe.Message)
		}
		return Catalog{}, &ConfigError{Field: "catalogue", Err: err}
	}
	if un := md.Undecoded(); len(un) > 0 {
		return Catalog{}, fieldErr(un[0].String(), "unknown key")
	}
	return c, c.validate()
}

func (c *Catalog) validate() error {
	if len(c.Tiers) == 0 {
		return fieldErr("tiers", "at least one tier is required")
	}
	names := map[string]bool{scriptedTier: true}
	for i, t := range c.Tiers {
		f := fmt.Sprintf("tiers[%d]", i)
		switch {
		case t.Name == "":
			return fieldErr(f+".name", "required")
		case names[t.Name]:
			return fieldErr(f+".name", "%q is used twice (or is the built-in %q)", t.Name, scriptedTier)
		case t.TTFTTarget < 0:
			return fieldErr(f+".ttft_target", "negative")
		case t.MaxConcurrent < 0:
			return fieldErr(f+".max_concurrent", "negative")
		case t.MaxQueued < 0:
			return fieldErr(f+".max_queued", "negative")
		case t.MaxTokens < 0:
			return fieldErr(f+".max_tokens", "negative")
		}
		for j, u := range t.URLs {
			if err := checkURL(u); err != nil {
				return fieldErr(fmt.Sprintf("%s.urls[%d]", f, j), "%v", err)
			}
		}
		names[t.Name] = true
	}
	for i, chain := range c.Fallbacks {
		if len(chain) < 2 {
			return fieldErr(fmt.Sprintf("fallbacks[%d]", i), "a chain names at least two tiers")
		}
		for j, n := range chain {
			if !names[n] {
				return fieldErr(fmt.Sprintf("fallbacks[%d][%d]", i, j), "no tier named %q", n)
			}
		}
	}
	if len(c.Personas) == 0 {
		return fieldErr("personas", "at least one persona is required")
	}
	ids := map[string]bool{}
	for i, p := range c.Personas {
		f := fmt.Sprintf("personas[%d]", i)
		switch {
		case p.ID == "":
			return fieldErr(f+".id", "required")
		case ids[p.ID]:
			return fieldErr(f+".id", "%q is used twice", p.ID)
		case p.Name == "":
			return fieldErr(f+".name", "required")
		case p.SystemPrompt == "":
			return fieldErr(f+".system_prompt", "required")
		case len(p.FallbackLines) == 0:
			return fieldErr(f+".fallback_lines", "at least one line is required")
		}
		if _, err := parseImportance(p.Importance); err != nil {
			return fieldErr(f+".importance", "%v", err)
		}
		ids[p.ID] = true
	}
	if len(c.Plans) == 0 {
		return fieldErr("plans", "at least one plan is required")
	}
	planIDs, priceIDs := map[string]bool{}, map[string]bool{}
	for i, p := range c.Plans {
		f := fmt.Sprintf("plans[%d]", i)
		switch {
		case p.ID == "":
			return fieldErr(f+".id", "required")
		case planIDs[p.ID]:
			return fieldErr(f+".id", "%q is used twice", p.ID)
		case len(p.Prices) == 0:
			return fieldErr(f+".prices", "at least one price is required")
		}
		planIDs[p.ID] = true
		for j, pr := range p.Prices {
			pf := fmt.Sprintf("%s.prices[%d]", f, j)
			switch {
			case pr.ID == "":
				return fieldErr(pf+".id", "required")
			case priceIDs[pr.ID]:
				return fieldErr(pf+".id", "%q is used twice", pr.ID)
			case pr.Mode != "" && pr.Mode != string(payment.ModeSubscription) && pr.Mode != string(payment.ModePayment):
				return fieldErr(pf+".mode", "%q: want %q or %q", pr.Mode, payment.ModeSubscription, payment.ModePayment)
			case pr.Access < 0:
				return fieldErr(pf+".access", "negative")
			}
			priceIDs[pr.ID] = true
		}
	}
	for _, u := range []struct{ f, v string }{{"checkout.success_url", c.Checkout.SuccessURL}, {"checkout.cancel_url", c.Checkout.CancelURL}} {
		if u.v == "" {
			return fieldErr(u.f, "required")
		}
		if err := checkURL(u.v); err != nil {
			return fieldErr(u.f, "%v", err)
		}
	}
	if c.LoRA.MaxLoaded < 0 {
		return fieldErr("lora.max_loaded", "negative")
	}
	adapters := map[string]bool{}
	for i, ad := range c.LoRA.Adapters {
		f := fmt.Sprintf("lora.adapters[%d]", i)
		switch {
		case ad.Name == "":
			return fieldErr(f+".name", "required")
		case adapters[ad.Name]:
			return fieldErr(f+".name", "%q is used twice", ad.Name)
		case ad.Path == "":
			return fieldErr(f+".path", "required")
		}
		adapters[ad.Name] = true
	}
	if c.World.RealSecondsPerGameHour < 0 {
		return fieldErr("world.real_seconds_per_game_hour", "negative")
	}
	return nil
}

// scriptedTier is the built-in last-resort tier of canned lines, always
// present; fallback chains may end with it.
const scriptedTier = "scripted"

func parseImportance(s string) (router.Importance, error) {
	switch s {
	case "generic", "":
		return router.Generic, nil
	case "elite":
		return router.Elite, nil
	case "major":
		return router.Major, nil
	}
	return 0, fmt.Errorf("%q: want generic, elite or major", s)
}

// personas builds the dialogue personas of the catalogue.
func (c *Catalog) personas() (*dialogue.Personas, error) {
	ps := make([]dialogue.Persona, 0, len(c.Personas))
	for _, p := range c.Personas {
		imp, _ := parseImportance(p.Importance) // validated
		ps = append(ps, dialogue.Persona{
			ID: p.ID, Name: p.Name, SystemPrompt: p.SystemPrompt, Importance: imp, Adapter: p.Adapter,
			Style: p.Style, Knowledge: p.Knowledge, FallbackLines: p.FallbackLines,
		})
	}
	return dialogue.NewPersonas(ps...)
}

// plans builds the payment plans of the catalogue.
func (c *Catalog) plans() []payment.Plan {
	out := make([]payment.Plan, 0, len(c.Plans))
	for _, p := range c.Plans {
		pl := payment.Plan{ID: p.ID, Name: p.Name, Rank: p.Rank}
		for _, pr := range p.Prices {
			mode := payment.ModeSubscription
			if pr.Mode != "" {
				mode = payment.Mode(pr.Mode)
			}
			pl.Prices = append(pl.Prices, payment.Price{ID: pr.ID, Mode: mode, Access: pr.Access})
		}
		out = append(out, pl)
	}
	return out
}
