package vllmmetrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bodybroker/sdk/latency"
)

// Engines a page can come from.
const (
	VLLM     = "vllm"
	LlamaCpp = "llama.cpp"
)

// Errors.
var (
	// ErrParse: the page is not valid Prometheus text format.
	ErrParse = errors.New("vllmmetrics: malformed metrics page")
	// ErrNoEngineMetrics: the page parsed but has neither vLLM's nor
	// llama.cpp's metrics.
	ErrNoEngineMetrics = errors.New("vllmmetrics: no vLLM or llama.cpp metrics on the page")
	// ErrTooLarge: the page is larger than Options.MaxBytes.
	ErrTooLarge = errors.New("vllmmetrics: metrics page too large")
	// ErrStatus: the server answered with a status other than 200; the
	// error is a *StatusError.
	ErrStatus = errors.New("vllmmetrics: unexpected HTTP status")
)

// StatusError is a non-200 answer.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return fmt.Sprintf("vllmmetrics: HTTP %d", e.Status) }

// Unwrap returns ErrStatus.
func (e *StatusError) Unwrap() error { return ErrStatus }

// Histogram is a latency histogram's cumulative count and sum.
type Histogram struct {
	Count uint64
	Sum   time.Duration
}

// Mean returns Sum/Count, or 0 when Count is 0.
func (h Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / time.Duration(h.Count)
}

// Snapshot is one reading of an engine's metrics. Gauges are summed over
// the page's series (several engines or models behind one server), except
// KVCacheUsage, which is the largest (the fullest engine limits). Counters
// are cumulative since the engine started.
type Snapshot struct {
	Engine string // VLLM or LlamaCpp
	Time   time.Time

	// Running counts requests in the engine's batch (llama.cpp:
	// requests_processing); Waiting, those queued in the engine
	// (llama.cpp: requests_deferred).
	Running, Waiting int
	// KVCacheUsage is the fraction of the KV cache in use, 0..1, when
	// HasKVCacheUsage (newer llama.cpp builds do not report it).
	KVCacheUsage    float64
	HasKVCacheUsage bool

	Preemptions      uint64 // vLLM only
	PromptTokens     uint64
	GenerationTokens uint64
	// Requests counts finished requests (vLLM's request_success_total,
	// every finished_reason).
	Requests uint64
	// PrefixCacheQueries and PrefixCacheHits count prompt tokens looked up
	// in and found in the prefix cache (vLLM V1).
	PrefixCacheQueries, PrefixCacheHits uint64

	TTFT, ITL Histogram // vLLM only

	// LoRA adapters running and waiting (vLLM's lora_requests_info), and
	// the engine's --max-loras.
	RunningAdapters, WaitingAdapters []string
	MaxLoRAs                         int
}

// Sub returns the counters' increase from prev to s (gauges are s's).
// A counter that went down (the engine restarted) counts from zero.
func (s Snapshot) Sub(prev Snapshot) Snapshot {
	d := s
	inc := func(now, before uint64) uint64 {
		if now < before {
			return now
		}
		return now - before
	}
	d.Preemptions = inc(s.Preemptions, prev.Preemptions)
	d.PromptTokens = inc(s.PromptTokens, prev.PromptTokens)
	d.GenerationTokens = inc(s.GenerationTokens, prev.GenerationTokens)
	d.Requests = inc(s.Requests, prev.Requests)
	d.PrefixCacheQueries = inc(s.PrefixCacheQueries, prev.PrefixCacheQueries)
	d.PrefixCacheHits = inc(s.PrefixCacheHits, prev.PrefixCacheHits)
	hist := func(now, before Histogram) Histogram {
		if now.Count < before.Count {
			return now
		}
		return Histogram{Count: now.Count - before.Count, Sum: now.Sum - before.Sum}
	}
	d.TTFT = hist(s.TTFT, prev.TTFT)
	d.ITL = hist(s.ITL, prev.ITL)
	return d
}

// Parse reads a metrics page in Prometheus text format.
func Parse(r io.Reader) (Snapshot, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Snapshot{}, fmt.Errorf("%w: %w", ErrParse, err)
	}
	var s Snapshot
	has := func(names ...string) bool {
		for _, n := range names {
			if fams[n] != nil {
				return true
			}
		}
		return false
	}
	switch {
	case has("vllm:num_requests_running", "vllm:num_requests_waiting"):
		s.Engine = VLLM
		s.Running = gauge(sum(fams["vllm:num_requests_running"]))
		s.Waiting = gauge(sum(fams["vllm:num_requests_waiting"]))
		for _, n := range []string{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"} {
			if f := fams[n]; f != nil {
				s.KVCacheUsage, s.HasKVCacheUsage = largest(f), true
				break
			}
		}
		s.Preemptions = count(fams["vllm:num_preemptions_total"])
		s.PromptTokens = count(fams["vllm:prompt_tokens_total"])
		s.GenerationTokens = count(fams["vllm:generation_tokens_total"])
		s.Requests = count(fams["vllm:request_success_total"])
		s.PrefixCacheQueries = count(fams["vllm:prefix_cache_queries_total"])
		s.PrefixCacheHits = count(fams["vllm:prefix_cache_hits_total"])
		s.TTFT = histogram(fams["vllm:time_to_first_token_seconds"])
		s.ITL = histogram(fams["vllm:inter_token_latency_seconds"])
		if s.ITL.Count == 0 {
			s.ITL = histogram(fams["vllm:time_per_output_token_seconds"])
		}
		if f := fams["vllm:lora_requests_info"]; f != nil {
			// One series per change; the latest (largest value, a
			// timestamp) is the current state.
			var latest *dto.Metric
			for _, m := range f.GetMetric() {
				if latest == nil || value(m) > value(latest) {
					latest = m
				}
			}
			for _, l := range latest.GetLabel() {
				switch l.GetName() {
				case "running_lora_adapters":
					s.RunningAdapters = list(l.GetValue())
				case "waiting_lora_adapters":
					s.WaitingAdapters = list(l.GetValue())
				case "max_lora":
					fmt.Sscan(l.GetValue(), &s.MaxLoRAs)
				}
			}
		}
	case has("llamacpp:requests_processing", "llamacpp:requests_deferred"):
		s.Engine = LlamaCpp
		s.Running = gauge(sum(fams["llamacpp:requests_processing"]))
		s.Waiting = gauge(sum(fams["llamacpp:requests_deferred"]))
		if f := fams["llamacpp:kv_cache_usage_ratio"]; f != nil {
			s.KVCacheUsage, s.HasKVCacheUsage = largest(f), true
		}
		s.PromptTokens = count(fams["llamacpp:prompt_tokens_total"])
		s.GenerationTokens = count(fams["llamacpp:tokens_predicted_total"])
	default:
		return Snapshot{}, ErrNoEngineMetrics
	}
	return s, nil
}

func value(m *dto.Metric) float64 {
	var v float64
	switch {
	case m.GetGauge() != nil:
		v = m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		v = m.GetCounter().GetValue()
	case m.GetUntyped() != nil:
		v = m.GetUntyped().GetValue()
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func sum(f *dto.MetricFamily) float64 {
	var t float64
	for _, m := range f.GetMetric() {
		t += max(value(m), 0)
	}
	return t
}

// gauge converts a non-negative sum to int, saturating.
func gauge(v float64) int { return int(min(v, math.MaxInt32)) }

func largest(f *dto.MetricFamily) float64 {
	var t float64
	for _, m := range f.GetMetric() {
		t = max(t, value(m))
	}
	return min(t, 1)
}

func count(f *dto.MetricFamily) uint64 { return uint64(min(sum(f), math.MaxInt64)) }

func histogram(f *dto.MetricFamily) Histogram {
	var h Histogram
	var secs float64
	for _, m := range f.GetMetric() {
		if hg := m.GetHistogram(); hg != nil {
			h.Count += hg.GetSampleCount()
			if s := hg.GetSampleSum(); s > 0 && !math.IsInf(s, 0) {
				secs += s
			}
		}
	}
	h.Sum = time.Duration(min(secs, float64(math.MaxInt64)/1e9) * 1e9)
	return h
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// Defaults.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultMaxBytes = 4 << 20
)

// Options configure a [Scraper].
type Options struct {
	// URL is the metrics page, "http://host:8000/metrics".
	URL string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds one scrape; default DefaultTimeout.
	Timeout time.Duration
	// MaxBytes bounds the page; default DefaultMaxBytes.
	MaxBytes int64
	// Now stamps snapshots; nil means time.Now.
	Now func() time.Time
}

// OptionsError names a bad Options field.
type OptionsError struct{ Field, Reason string }

func (e *OptionsError) Error() string { return "vllmmetrics: Options." + e.Field + ": " + e.Reason }

// Stats counts a Scraper's work.
type Stats struct {
	Scrapes, Failures uint64
	Latency           latency.Summary
}

// Scraper reads one engine's metrics page.
type Scraper struct {
	o                 Options
	client            *http.Client
	now               func() time.Time
	scrapes, failures atomic.Uint64
	lat               latency.Histogram
}

// New validates o and returns a Scraper.
func New(o Options) (*Scraper, error) {
	switch {
	case !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://"):
		return nil, &OptionsError{"URL", fmt.Sprintf("%q is not an http(s) URL", o.URL)}
	case o.Timeout < 0:
		return nil, &OptionsError{"Timeout", "negative"}
	case o.MaxBytes < 0:
		return nil, &OptionsError{"MaxBytes", "negative"}
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	s := &Scraper{o: o, client: o.HTTPClient, now: o.Now}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Scrape fetches and parses the page.
func (s *Scraper) Scrape(ctx context.Context) (Snapshot, error) {
	start := s.now()
	snap, err := s.scrape(ctx)
	s.scrapes.Add(1)
	if err != nil {
		s.failures.Add(1)
		return Snapshot{}, err
	}
	s.lat.Record(s.now().Sub(start))
	snap.Time = start
	return snap, nil
}

func (s *Scraper) scrape(ctx context.Context) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.o.URL, nil)
	if err != nil {
		return Snapshot{}, fmt.Errorf("vllmmetrics: %w", err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.client.Do(req)
	if err != nil {
		return Snapshot{}, fmt.Errorf("vllmmetrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Snapshot{}, &StatusError{Status: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.o.MaxBytes+1))
	if err != nil {
		return Snapshot{}, fmt.Errorf("vllmmetrics: reading the page: %w", err)
	}
	if int64(len(body)) > s.o.MaxBytes {
		return Snapshot{}, fmt.Errorf("%w: over %d bytes", ErrTooLarge, s.o.MaxBytes)
	}
	return Parse(bytes.NewReader(body))
}

// Stats returns the scraper's counters and scrape latency.
func (s *Scraper) Stats() Stats {
	return Stats{Scrapes: s.scrapes.Load(), Failures: s.failures.Load(), Latency: s.lat.Summary()}
}
