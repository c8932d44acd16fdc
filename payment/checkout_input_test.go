package payment_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bodybroker/sdk/payment"
)

// TestCheckoutRejectsHostileInput: values a player controls are checked
// before anything reaches the provider: trials are capped per plan,
// redirect URLs must be absolute http(s) (on allowed hosts when
// configured), IDs must be printable and bounded.
func TestCheckoutRejectsHostileInput(t *testing.T) {
	e := newEnv(t, func(o *payment.Options) {
		o.RedirectHosts = []string{"game.example", "*.game.example"}
		o.Plans[2].MaxTrialDays = 14 // vip
	})
	ctx := context.Background()
	ok := payment.CheckoutRequest{PlayerID: "p1", Plan: "premium"}
	with := func(mod func(*payment.CheckoutRequest)) payment.CheckoutRequest {
		r := ok
		mod(&r)
		return r
	}
	tests := []struct {
		name string
		req  payment.CheckoutRequest
		want error
	}{
		{"trial of 100000 days", with(func(r *payment.CheckoutRequest) { r.TrialDays = 100_000 }), payment.ErrTrialTooLong},
		{"trial over the default cap", with(func(r *payment.CheckoutRequest) { r.TrialDays = payment.DefaultMaxTrialDays + 1 }), payment.ErrTrialTooLong},
		{"trial over the plan's cap", with(func(r *payment.CheckoutRequest) { r.Plan, r.TrialDays = "vip", 15 }), payment.ErrTrialTooLong},
		{"javascript success URL", with(func(r *payment.CheckoutRequest) {
			r.SuccessURL = "javascript:alert(document.cookie)//{CHECKOUT_SESSION_ID}"
		}), payment.ErrInvalidURL},
		{"javascript cancel URL", with(func(r *payment.CheckoutRequest) { r.CancelURL = "javascript:alert(1)" }), payment.ErrInvalidURL},
		{"data URL", with(func(r *payment.CheckoutRequest) { r.SuccessURL = "data:text/html,<script>x</script>" }), payment.ErrInvalidURL},
		{"relative URL", with(func(r *payment.CheckoutRequest) { r.SuccessURL = "/paid?s={CHECKOUT_SESSION_ID}" }), payment.ErrInvalidURL},
		{"scheme-relative URL", with(func(r *payment.CheckoutRequest) { r.SuccessURL = "//evil.example/paid" }), payment.ErrInvalidURL},
		{"ftp URL", with(func(r *payment.CheckoutRequest) { r.SuccessURL = "ftp://game.example/paid" }), payment.ErrInvalidURL},
		{"host not allowed", with(func(r *payment.CheckoutRequest) { r.SuccessURL = "https://evil.example/paid" }), payment.ErrInvalidURL},
		{"allowed host as user info", with(func(r *payment.CheckoutRequest) { r.SuccessURL = "https://game.example@evil.example/paid" }), payment.ErrInvalidURL},
		{"lookalike suffix", with(func(r *payment.CheckoutRequest) { r.CancelURL = "https://evilgame.example/c" }), payment.ErrInvalidURL},
		{"newline in URL", with(func(r *payment.CheckoutRequest) { r.SuccessURL = "https://game.example/paid\r\nX: y" }), payment.ErrInvalidURL},
		{"URL too long", with(func(r *payment.CheckoutRequest) {
			r.SuccessURL = "https://game.example/" + strings.Repeat("a", payment.MaxURLBytes)
		}), payment.ErrInvalidURL},
		{"player ID with newline", with(func(r *payment.CheckoutRequest) { r.PlayerID = "p1\nadmin" }), payment.ErrInvalidID},
		{"player ID with NUL", with(func(r *payment.CheckoutRequest) { r.PlayerID = "p1\x00" }), payment.ErrInvalidID},
		{"player ID not UTF-8", with(func(r *payment.CheckoutRequest) { r.PlayerID = "p\xff" }), payment.ErrInvalidID},
		{"player ID too long", with(func(r *payment.CheckoutRequest) { r.PlayerID = strings.Repeat("p", payment.MaxIDBytes+1) }), payment.ErrInvalidID},
		{"request ID with control character", with(func(r *payment.CheckoutRequest) { r.RequestID = "r\x1b[2J" }), payment.ErrInvalidID},
		{"email with newline", with(func(r *payment.CheckoutRequest) { r.Email = "a@b.example\nBcc: c@d.example" }), payment.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Checkout().Start(ctx, tt.req)
			if !errors.Is(err, tt.want) || !errors.Is(err, payment.ErrInvalidRequest) {
				t.Fatalf("Start error = %v, want %v (and ErrInvalidRequest)", err, tt.want)
			}
			var ve *payment.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Start error = %T, want *payment.ValidationError", err)
			}
		})
	}
	if got := e.fake.Calls("CreateCheckoutSession") + e.fake.Calls("CreateCustomer"); got != 0 {
		t.Fatalf("hostile requests reached the provider %d times", got)
	}

	accepted := []payment.CheckoutRequest{
		with(func(r *payment.CheckoutRequest) { r.TrialDays = payment.DefaultMaxTrialDays }),
		with(func(r *payment.CheckoutRequest) { r.Plan, r.TrialDays = "vip", 14 }),
		with(func(r *payment.CheckoutRequest) {
			r.SuccessURL = "https://shop.game.example/paid?s={CHECKOUT_SESSION_ID}"
			r.CancelURL = "http://GAME.example:8080/cancel#top"
		}),
		with(func(r *payment.CheckoutRequest) { r.PlayerID = "Spieler Ä 1" }),
	}
	for _, req := range accepted {
		if _, err := e.svc.Checkout().Start(ctx, req); err != nil {
			t.Errorf("Start(%+v) = %v, want success", req, err)
		}
	}
}

func TestPortalAndCompleteRejectHostileInput(t *testing.T) {
	e := newEnv(t, func(o *payment.Options) { o.RedirectHosts = []string{"game.example"} })
	ctx := context.Background()
	if _, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "p1", Plan: "basic"}); err != nil {
		t.Fatal(err)
	}
	portal := []struct {
		name, player, url string
		want              error
	}{
		{"javascript return URL", "p1", "javascript:alert(1)", payment.ErrInvalidURL},
		{"foreign host", "p1", "https://evil.example/account", payment.ErrInvalidURL},
		{"no return URL", "p1", "", payment.ErrInvalidURL},
		{"player with NUL", "p1\x00", "https://game.example/account", payment.ErrInvalidID},
	}
	for _, tt := range portal {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.svc.Checkout().Portal(ctx, tt.player, tt.url); !errors.Is(err, tt.want) {
				t.Fatalf("Portal error = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := e.svc.Checkout().Complete(ctx, "p1", "cs_\n1"); !errors.Is(err, payment.ErrInvalidID) {
		t.Fatalf("Complete with a newline in the session ID: %v, want ErrInvalidID", err)
	}
	if got := e.fake.Calls("CreatePortalSession") + e.fake.Calls("GetCheckoutSession"); got != 0 {
		t.Fatalf("hostile requests reached the provider %d times", got)
	}
}

func TestNewValidatesRedirectsAndTrials(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*payment.Options)
	}{
		{"javascript default success URL", func(o *payment.Options) { o.DefaultSuccessURL = "javascript:alert(1)" }},
		{"default cancel URL off the allow-list", func(o *payment.Options) {
			o.RedirectHosts = []string{"game.example"}
			o.DefaultCancelURL = "https://other.example/c"
		}},
		{"empty allowed host", func(o *payment.Options) { o.RedirectHosts = []string{""} }},
		{"URL as allowed host", func(o *payment.Options) { o.RedirectHosts = []string{"https://game.example/"} }},
		{"negative trial cap", func(o *payment.Options) { o.Plans[0].MaxTrialDays = -1 }},
		{"trial cap over Stripe's", func(o *payment.Options) { o.Plans[0].MaxTrialDays = payment.MaxTrialDays + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := payment.Options{Provider: newFake(t, nil), Plans: plans(), WebhookSecrets: []payment.Secret{"s"}}
			tt.mod(&o)
			if _, err := payment.New(o); !errors.Is(err, payment.ErrInvalidRequest) {
				t.Fatalf("New error = %v, want ErrInvalidRequest", err)
			}
		})
	}
}
