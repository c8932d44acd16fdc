package vllmmetrics_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/batching/vllmmetrics"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseRecordedPages(t *testing.T) {
	tests := []struct {
		file string
		want vllmmetrics.Snapshot
	}{
		{"vllm.txt", vllmmetrics.Snapshot{
			Engine: vllmmetrics.VLLM, Running: 37, Waiting: 4, KVCacheUsage: 0.6214, HasKVCacheUsage: true,
			Preemptions: 12, PromptTokens: 2153482, GenerationTokens: 184211, Requests: 1286,
			PrefixCacheQueries: 1843200, PrefixCacheHits: 1204224,
			TTFT:            vllmmetrics.Histogram{Count: 1286, Sum: 77160 * time.Millisecond},
			ITL:             vllmmetrics.Histogram{Count: 182925, Sum: 3658500 * time.Millisecond},
			RunningAdapters: []string{"blacksmith", "queen"}, WaitingAdapters: []string{"guard"}, MaxLoRAs: 4,
		}},
		{"vllm-v0.txt", vllmmetrics.Snapshot{
			Engine: vllmmetrics.VLLM, Running: 5, KVCacheUsage: 0.125, HasKVCacheUsage: true,
			ITL: vllmmetrics.Histogram{Count: 1000, Sum: 20 * time.Second},
		}},
		{"llamacpp.txt", vllmmetrics.Snapshot{
			Engine: vllmmetrics.LlamaCpp, Running: 4, Waiting: 2, KVCacheUsage: 0.42, HasKVCacheUsage: true,
			PromptTokens: 77690, GenerationTokens: 28499,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := vllmmetrics.Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			// Sums of float seconds: compare to the microsecond.
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b time.Duration) bool {
				return (a - b).Abs() < time.Microsecond
			})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSumsSeriesAndTakesFullestCache(t *testing.T) {
	page := `vllm:num_requests_running{engine="0"} 3
vllm:num_requests_running{engine="1"} 4
vllm:kv_cache_usage_perc{engine="0"} 0.2
vllm:kv_cache_usage_perc{engine="1"} 0.9
vllm:num_preemptions_total{engine="0"} 2
vllm:num_preemptions_total{engine="1"} 5
`
	got, err := vllmmetrics.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if got.Running != 7 || got.KVCacheUsage != 0.9 || got.Preemptions != 7 {
		t.Errorf("got running %d, kv %v, preemptions %d; want 7, 0.9, 7", got.Running, got.KVCacheUsage, got.Preemptions)
	}
	// A newer llama.cpp without the KV gauge: usage unknown, not zero.
	got, err = vllmmetrics.Parse(strings.NewReader("llamacpp:requests_processing 1\nllamacpp:requests_deferred 0\n"))
	if err != nil || got.HasKVCacheUsage {
		t.Errorf("llama.cpp without kv_cache_usage_ratio: %+v, %v; want HasKVCacheUsage false", got, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		page string
		want error
	}{
		{"", vllmmetrics.ErrNoEngineMetrics},
		{"process_resident_memory_bytes 1e9\n", vllmmetrics.ErrNoEngineMetrics},
		{"vllm:num_requests_running{engine=\"0\" 3\n", vllmmetrics.ErrParse},
		{"vllm:num_requests_running many\n", vllmmetrics.ErrParse},
		{"# TYPE vllm:num_requests_running gauge\n# TYPE vllm:num_requests_running counter\n", vllmmetrics.ErrParse},
	} {
		if _, err := vllmmetrics.Parse(strings.NewReader(tt.page)); !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) = %v, want %v", tt.page, err, tt.want)
		}
	}
}

func TestSnapshotSub(t *testing.T) {
	prev := vllmmetrics.Snapshot{Preemptions: 10, Requests: 100, TTFT: vllmmetrics.Histogram{Count: 100, Sum: 5 * time.Second}}
	now := vllmmetrics.Snapshot{Running: 3, Preemptions: 12, Requests: 150, TTFT: vllmmetrics.Histogram{Count: 150, Sum: 10 * time.Second}}
	d := now.Sub(prev)
	if d.Preemptions != 2 || d.Requests != 50 || d.TTFT.Mean() != 100*time.Millisecond || d.Running != 3 {
		t.Errorf("Sub = %+v; want 2 preemptions, 50 requests, mean TTFT 100ms, running 3", d)
	}
	// The engine restarted: counters start again from zero.
	restarted := vllmmetrics.Snapshot{Preemptions: 1, Requests: 4}
	if d := restarted.Sub(now); d.Preemptions != 1 || d.Requests != 4 {
		t.Errorf("Sub after restart = %+v, want the new counts", d)
	}
	if (vllmmetrics.Histogram{}).Mean() != 0 {
		t.Error("empty histogram mean not 0")
	}
}

func TestScrapeStandInServer(t *testing.T) {
	srv := openaitest.NewServer(openaitest.Behavior{})
	defer srv.Close()
	srv.SetMetrics(openaitest.Metrics{Waiting: 5, KVCacheUsage: 0.5, Preemptions: 3})
	srv.SetLoRA(openaitest.LoRA{MaxLoaded: 2})
	resp, err := srv.Client().Post(srv.URL+"/v1/load_lora_adapter", "application/json", strings.NewReader(`{"lora_name":"smith","lora_path":"/p"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	now := time.Unix(1_700_000_000, 0)
	sc, err := vllmmetrics.New(vllmmetrics.Options{URL: srv.URL + "/metrics", HTTPClient: srv.Client(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := sc.Scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := vllmmetrics.Snapshot{
		Engine: vllmmetrics.VLLM, Time: now, Waiting: 5, KVCacheUsage: 0.5, HasKVCacheUsage: true, Preemptions: 3,
		RunningAdapters: []string{"smith"}, MaxLoRAs: 2,
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if st := sc.Stats(); st.Scrapes != 1 || st.Failures != 0 || st.Latency.Count != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}

func TestScrapeErrors(t *testing.T) {
	srv := openaitest.NewServer(openaitest.Behavior{})
	defer srv.Close()
	ctx := context.Background()

	sc, _ := vllmmetrics.New(vllmmetrics.Options{URL: srv.URL + "/nothing", HTTPClient: srv.Client()})
	var se *vllmmetrics.StatusError
	if _, err := sc.Scrape(ctx); !errors.As(err, &se) || !errors.Is(err, vllmmetrics.ErrStatus) {
		t.Errorf("Scrape(404) = %v, want a *StatusError", err)
	}
	sc, _ = vllmmetrics.New(vllmmetrics.Options{URL: srv.URL + "/metrics", HTTPClient: srv.Client(), MaxBytes: 100})
	if _, err := sc.Scrape(ctx); !errors.Is(err, vllmmetrics.ErrTooLarge) {
		t.Errorf("Scrape(page over 100 B) = %v, want ErrTooLarge", err)
	}
	if st := sc.Stats(); st.Failures != 1 {
		t.Errorf("Stats().Failures = %d, want 1", st.Failures)
	}
	for _, o := range []vllmmetrics.Options{{URL: "localhost:8000/metrics"}, {URL: "http://x", Timeout: -1}, {URL: "http://x", MaxBytes: -1}} {
		var oe *vllmmetrics.OptionsError
		if _, err := vllmmetrics.New(o); !errors.As(err, &oe) {
			t.Errorf("New(%+v) = %v, want an *OptionsError", o, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"vllm.txt", "vllm-v0.txt", "llamacpp.txt"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, page string) {
		s, err := vllmmetrics.Parse(strings.NewReader(page))
		if err != nil {
			return
		}
		if s.Running < 0 || s.Waiting < 0 || s.KVCacheUsage < 0 || s.KVCacheUsage > 1 || s.TTFT.Sum < 0 {
			t.Fatalf("out-of-range snapshot %+v", s)
		}
	})
}

func TestParseSaturates(t *testing.T) {
	got, err := vllmmetrics.Parse(strings.NewReader("vllm:num_requests_running 1e300\nvllm:num_requests_waiting -5\nvllm:kv_cache_usage_perc 7\nvllm:num_preemptions_total +Inf\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Running <= 0 || got.Waiting != 0 || got.KVCacheUsage != 1 || got.Preemptions != 0 {
		t.Errorf("got %+v; want a large positive Running, Waiting 0, usage clamped to 1, an infinite counter ignored", got)
	}
}
