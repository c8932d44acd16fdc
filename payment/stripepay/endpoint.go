package stripepay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/bodybroker/sdk/payment"
	"github.com/stripe/stripe-go/v76"
)

// WebhookEndpoint describes a Stripe webhook endpoint.
type WebhookEndpoint struct {
	ID         string
	URL        string
	APIVersion string
	Events     []string
	// Secret is the signing secret. Stripe reveals it only when the
	// endpoint is created, so it is empty for an endpoint that existed.
	Secret payment.Secret
	// Created reports that EnsureWebhookEndpoint created the endpoint.
	Created bool
}

// EnsureWebhookEndpoint makes sure Stripe sends exactly events (default:
// payment.HandledEventTypes()) to url. An existing endpoint for url gets
// its event list updated; otherwise one is created with the API version
// pinned to stripe-go's, so that events arrive in the version this package
// reads. Put the returned Secret (creation only) into
// payment.Options.WebhookSecrets.
func (p *Provider) EnsureWebhookEndpoint(ctx context.Context, url string, events []string) (WebhookEndpoint, error) {
	if url == "" {
		return WebhookEndpoint{}, &payment.ValidationError{Field: "url", Reason: "required"}
	}
	if len(events) == 0 {
		events = payment.HandledEventTypes()
	}
	lp := &stripe.WebhookEndpointListParams{}
	lp.Context = ctx
	lp.Limit = stripe.Int64(100)
	it := p.sc.WebhookEndpoints.List(lp)
	for it.Next() {
		we := it.WebhookEndpoint()
		if we.URL != url || we.Deleted {
			continue
		}
		if slices.Equal(slices.Sorted(slices.Values(we.EnabledEvents)), slices.Sorted(slices.Values(events))) && we.Status == "enabled" {
			return toEndpoint(we, false), nil
		}
		up := &stripe.WebhookEndpointParams{EnabledEvents: stripe.StringSlice(events), Disabled: stripe.Bool(false)}
		up.Context = ctx
		got, err := p.sc.WebhookEndpoints.Update(we.ID, up)
		if err != nil {
			return WebhookEndpoint{}, mapErr("webhook_endpoint.update", err)
		}
		return toEndpoint(got, false), nil
	}
	if err := it.Err(); err != nil {
		return WebhookEndpoint{}, mapErr("webhook_endpoint.list", err)
	}
	cp := &stripe.WebhookEndpointParams{
		URL: stripe.String(url), EnabledEvents: stripe.StringSlice(events), APIVersion: stripe.String(stripe.APIVersion),
		Description: stripe.String("Body Broker SDK payment webhooks"),
	}
	cp.Context = ctx
	sum := sha256.Sum256([]byte(url + "|" + strings.Join(events, ",")))
	cp.SetIdempotencyKey("bb-webhook-endpoint-" + hex.EncodeToString(sum[:16]))
	got, err := p.sc.WebhookEndpoints.New(cp)
	if err != nil {
		return WebhookEndpoint{}, mapErr("webhook_endpoint.create", err)
	}
	return toEndpoint(got, true), nil
}

func toEndpoint(we *stripe.WebhookEndpoint, created bool) WebhookEndpoint {
	return WebhookEndpoint{ID: we.ID, URL: we.URL, APIVersion: we.APIVersion, Events: we.EnabledEvents, Secret: payment.Secret(we.Secret), Created: created}
}
