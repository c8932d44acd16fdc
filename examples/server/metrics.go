package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bodybroker/sdk/latency"
)

// collector exports the SDK components' Stats() snapshots to Prometheus.
// Each scrape takes one snapshot per component; nothing is counted twice
// and nothing runs between scrapes.
type collector struct{ a *app }

// newRegistry returns a registry with the SDK collector and the Go runtime
// and process collectors.
func newRegistry(a *app) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collector{a},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("bodybroker_"+name, help, labels, nil)
}

var (
	tierRequests  = desc("router_tier_requests_total", "Attempts at the tier (a request that falls back counts at each tier).", "tier")
	tierSuccesses = desc("router_tier_successes_total", "Requests that finished at the tier.", "tier")
	tierFallbacks = desc("router_tier_fallbacks_total", "Requests that left the tier for the next one.", "tier")
	tierInFlight  = desc("router_tier_in_flight", "Requests in flight at the tier.", "tier")
	tierQueued    = desc("router_tier_queued", "Requests waiting for admission at the tier.", "tier")
	tierTokensOut = desc("router_tier_tokens_out_total", "Completion tokens produced by the tier.", "tier")
	tierTTFT      = desc("router_tier_ttft_seconds", "Time to first token at the tier.", "tier")

	dlgRequests  = desc("dialogue_requests_total", "Dialogue calls that passed validation, auth and rate limits.")
	dlgFallbacks = desc("dialogue_fallback_lines_total", "Replies that were fallback lines.")
	dlgFailed    = desc("dialogue_failed_total", "Dialogue calls that ended in an error.")
	dlgActive    = desc("dialogue_active", "Replies in progress.")
	dlgTTFT      = desc("dialogue_ttft_seconds", "Time from a dialogue request to its first text.")

	busPublished = desc("eventbus_published_total", "Events published, by topic.", "topic")
	busDelivered = desc("eventbus_delivered_total", "Events delivered to subscribers, by topic.", "topic")
	busDropped   = desc("eventbus_dropped_total", "Events dropped, all reasons.")
	busLatency   = desc("eventbus_delivery_seconds", "Publish to delivery latency.")

	payReceived   = desc("payment_webhooks_received_total", "Webhook requests read.")
	payProcessed  = desc("payment_webhooks_processed_total", "Webhook events synced.")
	payBadSig     = desc("payment_webhooks_bad_signature_total", "Webhooks rejected for their signature or timestamp.")
	payFailed     = desc("payment_webhooks_failed_total", "Webhook syncs that failed (the provider retries).")
	payEntChanges = desc("payment_entitlement_changes_total", "Entitlement changes reported.")

	setWrites   = desc("settings_writes_total", "Successful settings writes.")
	setRejected = desc("settings_rejected_total", "Settings writes refused by validation.")

	clockPublished = desc("worldtime_events_published_total", "World-time events published.")
	clockPaused    = desc("worldtime_paused", "1 while the world clock is paused.")
	clockMinutes   = desc("worldtime_game_minutes", "Game minutes since 00:00 on day 1.")

	ready = desc("ready", "1 when every readiness check passed.")
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		tierRequests, tierSuccesses, tierFallbacks, tierInFlight, tierQueued, tierTokensOut, tierTTFT,
		dlgRequests, dlgFallbacks, dlgFailed, dlgActive, dlgTTFT,
		busPublished, busDelivered, busDropped, busLatency,
		payReceived, payProcessed, payBadSig, payFailed, payEntChanges,
		setWrites, setRejected, clockPublished, clockPaused, clockMinutes, ready,
	} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	summary := func(d *prometheus.Desc, s latency.Summary, labels ...string) {
		ch <- prometheus.MustNewConstSummary(d, s.Count, s.Mean.Seconds()*float64(s.Count), map[float64]float64{
			0.5: s.P50.Seconds(), 0.95: s.P95.Seconds(), 0.99: s.P99.Seconds(),
		}, labels...)
	}

	for _, t := range c.a.router.Stats().Tiers {
		counter(tierRequests, t.Requests, t.Name)
		counter(tierSuccesses, t.Successes, t.Name)
		counter(tierFallbacks, t.Fallbacks, t.Name)
		gauge(tierInFlight, float64(t.InFlight), t.Name)
		gauge(tierQueued, float64(t.Queued), t.Name)
		counter(tierTokensOut, t.TokensOut, t.Name)
		summary(tierTTFT, t.TTFT, t.Name)
	}

	ds := c.a.dialogue.Stats()
	counter(dlgRequests, ds.Requests)
	counter(dlgFallbacks, ds.Fallbacks)
	counter(dlgFailed, ds.Failed)
	gauge(dlgActive, float64(ds.Active))
	summary(dlgTTFT, ds.TTFT)

	bs := c.a.bus.Stats()
	for topic, ts := range bs.Topics {
		counter(busPublished, ts.Published, topic)
		counter(busDelivered, ts.Delivered, topic)
	}
	counter(busDropped, bs.Dropped.Total())
	summary(busLatency, bs.Latency)

	ps := c.a.payments.Stats()
	counter(payReceived, ps.Received)
	counter(payProcessed, ps.Processed)
	counter(payBadSig, ps.BadSignature)
	counter(payFailed, ps.Failed)
	counter(payEntChanges, ps.EntitlementChanges)

	ss := c.a.settings.Stats()
	counter(setWrites, uint64(ss.Writes))
	counter(setRejected, uint64(ss.Rejected))

	cs := c.a.clock.Stats()
	counter(clockPublished, uint64(cs.Published))
	now := c.a.clock.Now()
	gauge(clockPaused, b2f(now.Paused))
	gauge(clockMinutes, float64(now.TotalMinutes()))

	ok, _ := c.a.ready.state()
	gauge(ready, b2f(ok))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
