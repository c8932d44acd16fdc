package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(nil, envOf())
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.GRPCAddr, c.HTTPAddr, c.RedisAddr, c.RedisPrefix, c.ShutdownTimeout, c.ReadyInterval, c.Reflection,
		c.AdminToken, len(c.PlayerTokens), c.LogLevel, len(c.Catalog.Tiers), len(c.Catalog.Personas), len(c.Catalog.Plans)}
	want := []any{"127.0.0.1:50051", "127.0.0.1:8080", []string(nil), "bb", 15 * time.Second, 5 * time.Second, false,
		secret(""), 0, slog.LevelInfo, 3, 3, 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestLoadConfigEnvAndFlags(t *testing.T) {
	env := envOf(
		"BB_HTTP_ADDR", "127.0.0.1:9000", "BB_GRPC_ADDR", "127.0.0.1:9001",
		"BB_REDIS_ADDR", "10.0.0.1:7000, 10.0.0.2:7000",
		"STRIPE_SECRET_KEY", "sk_test_x", "STRIPE_WEBHOOK_SECRET", "whsec_x",
		"BB_STRIPE_WEBHOOK_SECRET", "whsec_bb", // the BB_ name wins
		"BB_SHUTDOWN_TIMEOUT", "3s", "BB_REFLECTION", "true",
		"BB_PLAYER_TOKENS", "aaaaaaaaaaaaaaaa1=p1,bbbbbbbbbbbbbbbb2=p2",
	)
	c, err := loadConfig([]string{"-http-addr", "127.0.0.1:9100", "-shutdown-timeout", "7s", "-reflection=false"}, env)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.HTTPAddr, c.GRPCAddr, c.RedisAddr, c.StripeKey, c.StripeWebhookSecret, c.ShutdownTimeout, c.Reflection, len(c.PlayerTokens)}
	want := []any{"127.0.0.1:9100", "127.0.0.1:9001", []string{"10.0.0.1:7000", "10.0.0.2:7000"}, secret("sk_test_x"),
		secret("whsec_bb"), 7 * time.Second, false, 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if s := slog.AnyValue(c.StripeKey).Resolve().String(); s != "[redacted]" {
		t.Errorf("the Stripe key logs as %q", s)
	}
}

func TestLoadConfigErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   []string
		field string
	}{
		{"bad http addr", nil, []string{"BB_HTTP_ADDR", "8080"}, "BB_HTTP_ADDR"},
		{"bad redis addr", nil, []string{"BB_REDIS_ADDR", "redis"}, "BB_REDIS_ADDR"},
		{"bad prefix", nil, []string{"BB_REDIS_PREFIX", "a:b"}, "BB_REDIS_PREFIX"},
		{"bad duration", nil, []string{"BB_SHUTDOWN_TIMEOUT", "soon"}, "BB_SHUTDOWN_TIMEOUT"},
		{"zero duration flag", []string{"-ready-interval", "0s"}, nil, "BB_READY_INTERVAL"},
		{"bad bool", nil, []string{"BB_REFLECTION", "maybe"}, "BB_REFLECTION"},
		{"bad level", nil, []string{"BB_LOG_LEVEL", "loud"}, "BB_LOG_LEVEL"},
		{"bad model url", nil, []string{"BB_OPENAI_URL", "localhost:8000"}, "BB_OPENAI_URL"},
		{"short admin token", nil, []string{"BB_ADMIN_TOKEN", "short"}, "BB_ADMIN_TOKEN"},
		{"key without webhook secret", nil, []string{"STRIPE_SECRET_KEY", "sk_test_x"}, "STRIPE_WEBHOOK_SECRET"},
		{"token without id", nil, []string{"BB_PLAYER_TOKENS", "aaaaaaaaaaaaaaaa"}, "BB_PLAYER_TOKENS[0]"},
		{"short token", nil, []string{"BB_PLAYER_TOKENS", "aaaaaaaaaaaaaaaa=p1,short=p2"}, "BB_PLAYER_TOKENS[1]"},
		{"admin token as player", nil, []string{"BB_ADMIN_TOKEN", "aaaaaaaaaaaaaaaa", "BB_PLAYER_TOKENS", "aaaaaaaaaaaaaaaa=p1"}, "BB_PLAYER_TOKENS[0]"},
		{"missing file", nil, []string{"BB_CONFIG", filepath.Join(t.TempDir(), "nope.toml")}, "BB_CONFIG"},
		{"stray argument", []string{"extra"}, nil, "flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.args, envOf(tt.env...))
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", ce.Field, tt.field, err)
			}
		})
	}
}

func TestCatalogErrorsNameTheField(t *testing.T) {
	base := string(defaultCatalog)
	tests := []struct {
		name, old, new, field string
	}{
		{"unknown key", `stand_in = "Hail`, `standin = "Hail`, "tiers.standin"},
		{"bad duration", `ttft_target = "300ms"`, `ttft_target = "fast"`, "tiers.ttft_target"},
		{"negative", `max_queued = 20`, `max_queued = -1`, "tiers[1].max_queued"},
		{"duplicate tier", `name = "tier2"`, `name = "tier1"`, "tiers[1].name"},
		{"scripted tier", `name = "tier2"`, `name = "scripted"`, "tiers[1].name"},
		{"bad fallback", `"tier3", "tier2"`, `"tier3", "tier9"`, "fallbacks[0][1]"},
		{"bad importance", `importance = "elite"`, `importance = "vip"`, "personas[1].importance"},
		{"no fallback lines", `fallback_lines = ["Move along."]`, `fallback_lines = []`, "personas[0].fallback_lines"},
		{"duplicate price", `id = "price_vip_monthly"`, `id = "price_premium_monthly"`, "plans[1].prices[0].id"},
		{"bad mode", `mode = "payment"`, `mode = "once"`, "plans[1].prices[1].mode"},
		{"bad url", `success_url = "http://localhost`, `success_url = "localhost`, "checkout.success_url"},
		{"bad tier url", `stand_in = "Hail, traveller. Mind the gate."`, `urls = ["ftp://x"]`, "tiers[0].urls[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.old) {
				t.Fatalf("server.toml lacks %q", tt.old)
			}
			_, err := parseCatalog([]byte(strings.Replace(base, tt.old, tt.new, 1)))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", ce.Field, tt.field, err)
			}
		})
	}
}

func TestCatalogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.toml")
	cat := strings.Replace(string(defaultCatalog), `name = "Gate guard"`, `name = "Night watch"`, 1)
	if err := os.WriteFile(path, []byte(cat), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig([]string{"-config", path}, envOf())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Catalog.Personas[0].Name; got != "Night watch" {
		t.Errorf("persona name = %q, want the file's", got)
	}
}

// FuzzParseCatalog: any input is a catalogue or a *ConfigError, never a
// panic.
func FuzzParseCatalog(f *testing.F) {
	f.Add(defaultCatalog)
	f.Add([]byte(`[[tiers]]` + "\n" + `name = "a"`))
	f.Add([]byte(`fallbacks = [["a"]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCatalog(data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want a *ConfigError", err, err)
			}
			return
		}
		if _, err := c.personas(); err != nil {
			t.Fatalf("a valid catalogue's personas: %v", err)
		}
	})
}
