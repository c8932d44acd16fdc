package benchmarks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/latency"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
	bbopenai "github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

// The gateway's added latency: a 50-token streamed chat completion from a
// stand-in model server (router/openai/openaitest), read by the same
// minimal SSE client
//
//   - direct: client → stand-in;
//   - gateway: client → router/gateway → router → router/openai → stand-in;
//   - portkey: client → Portkey's gateway (Node) → stand-in, when
//     BB_PORTKEY_URL is set, and portkey-np, the same with its 25 ms pause
//     before the first chunk patched out, when BB_PORTKEY_NOPAUSE_URL is
//     (benchmarks/portkey/run.sh starts both and sets them).
//
// TTFT is the time from sending the request to reading the event with the
// first token; end is the time to reading [DONE]. The stand-in answers at
// once (no model delay), so what a contender adds is all there is to see.

const gwTokens = 50

// gwContender is one way to reach the stand-in.
type gwContender struct {
	name string
	url  string // chat completions URL
	hdr  http.Header
}

// gwBody is the request every contender sends.
var gwBody = []byte(`{"model":"tier1","stream":true,"stream_options":{"include_usage":true},"max_tokens":64,` +
	`"messages":[{"role":"system","content":"You are Mira, the smith of Eastwatch."},{"role":"user","content":"Any work for me?"}]}`)

// gwSetup starts the stand-in and the gateway in front of it and returns
// the contenders.
func gwSetup(tb testing.TB, b openaitest.Behavior) []gwContender {
	tb.Helper()
	sv := openaitest.NewServer(b)
	sv.DisableRecording()
	tb.Cleanup(sv.Close)
	m, err := bbopenai.New(bbopenai.Options{BaseURL: sv.URL + "/v1", Model: "npc-small", MaxConnsPerHost: 512})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	r, err := router.New(router.Options{Tiers: []router.Tier{{Name: router.Tier1, ModelName: "npc-small",
		Replicas: []router.Replica{{Name: "standin", Model: m}}}}})
	if err != nil {
		tb.Fatal(err)
	}
	g, err := gateway.New(gateway.Options{Router: r})
	if err != nil {
		tb.Fatal(err)
	}
	gs := httptest.NewServer(g)
	tb.Cleanup(func() {
		gs.CloseClientConnections()
		g.Close()
		gs.Close()
		r.Close()
	})
	cs := []gwContender{
		{name: "direct", url: sv.URL + "/v1/chat/completions", hdr: http.Header{}},
		{name: "gateway", url: gs.URL + "/v1/chat/completions", hdr: http.Header{}},
	}
	for _, pk := range []struct{ name, env string }{{"portkey", "BB_PORTKEY_URL"}, {"portkey-np", "BB_PORTKEY_NOPAUSE_URL"}} {
		if u := os.Getenv(pk.env); u != "" {
			cs = append(cs, gwContender{name: pk.name, url: strings.TrimSuffix(u, "/") + "/v1/chat/completions", hdr: http.Header{
				"X-Portkey-Provider":    {"openai"},
				"X-Portkey-Custom-Host": {sv.URL + "/v1"},
				"Authorization":         {"Bearer unused"},
			}})
		}
	}
	return cs
}

var gwClient = &http.Client{Transport: &http.Transport{
	MaxIdleConns:        10000,
	MaxIdleConnsPerHost: 10000,
	DisableCompression:  true,
	IdleConnTimeout:     time.Minute,
}}

var (
	firstMark = []byte(`w0"`)
	lastMark  = []byte(fmt.Sprintf(`w%d"`, gwTokens-1))
	doneMark  = []byte("data: [DONE]")
)

// gwStream sends one request and reads its stream to [DONE].
func gwStream(ctx context.Context, c gwContender) (ttft, end time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.url, bytes.NewReader(gwBody))
	if err != nil {
		return 0, 0, err
	}
	req.Header = c.hdr.Clone()
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := gwClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	last := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return ttft, 0, fmt.Errorf("stream ended before [DONE]: %w", err)
		}
		switch {
		case ttft == 0 && bytes.Contains(line, firstMark):
			ttft = time.Since(t0)
		case bytes.Contains(line, lastMark):
			last = true
		case bytes.HasPrefix(line, doneMark):
			end = time.Since(t0)
			if ttft == 0 || !last {
				return 0, 0, errors.New("stream without its first or last token")
			}
			io.Copy(io.Discard, br)
			return ttft, end, nil
		}
	}
}

type gwResult struct {
	ttft, end latency.Summary
	errs      int
	firstErr  error
}

// gwMeasure runs n streams, conc at a time.
func gwMeasure(c gwContender, conc, n int) gwResult {
	var ttft, end latency.Histogram
	var mu sync.Mutex
	var res gwResult
	var wg sync.WaitGroup
	per := (n + conc - 1) / conc
	for range conc {
		wg.Go(func() {
			for range per {
				t, e, err := gwStream(context.Background(), c)
				if err != nil {
					mu.Lock()
					res.errs++
					if res.firstErr == nil {
						res.firstErr = err
					}
					mu.Unlock()
					continue
				}
				ttft.Record(t)
				end.Record(e)
			}
		})
	}
	wg.Wait()
	res.ttft, res.end = ttft.Summary(), end.Summary()
	return res
}

func µs(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// BenchmarkGatewayStream: each op is one round of c concurrent 50-token
// streams; the metrics are the p50 of the rounds' streams.
//
//	go test -run '^$' -bench GatewayStream -benchtime 400x -count 6 . | tee gw.txt && benchstat -col /impl gw.txt
func BenchmarkGatewayStream(b *testing.B) {
	cs := gwSetup(b, openaitest.Behavior{Tokens: openaitest.Words(gwTokens), PromptTokens: 20})
	for _, conc := range []int{1, 50} {
		for _, c := range cs {
			b.Run(fmt.Sprintf("c=%d/impl=%s", conc, c.name), func(b *testing.B) {
				if r := gwMeasure(c, conc, 20*conc); r.errs > 0 { // warm the connections
					b.Fatalf("warm-up: %d errors, first %v", r.errs, r.firstErr)
				}
				var ttft, end latency.Histogram
				for b.Loop() {
					r := gwMeasure(c, conc, conc)
					if r.errs > 0 {
						b.Fatalf("%d errors, first %v", r.errs, r.firstErr)
					}
					ttft.Record(r.ttft.P50)
					end.Record(r.end.P50)
				}
				b.ReportMetric(µs(ttft.Quantile(0.5)), "ttft-p50-µs")
				b.ReportMetric(µs(end.Quantile(0.5)), "end-p50-µs")
			})
		}
	}
}

// gwScenario is one stand-in behaviour and how many streams to measure
// at each concurrency.
type gwScenario struct {
	name string
	b    openaitest.Behavior
	n1   int // streams at 1 concurrent
	n50  int // streams at 50 concurrent
}

func gwScenarios(n int) []gwScenario {
	return []gwScenario{
		{"stand-in answers at once", openaitest.Behavior{Tokens: openaitest.Words(gwTokens), PromptTokens: 20}, n, n},
		{"stand-in paced: TTFT 10 ms, 5 ms/token", openaitest.Behavior{Tokens: openaitest.Words(gwTokens), PromptTokens: 20,
			TTFT: 10 * time.Millisecond, TokenDelay: 5 * time.Millisecond}, max(50, n/30), max(500, n/3)},
	}
}

// TestGatewaySideBySide prints the added-latency table: every contender at
// 1 and at 50 concurrent streams, in one run, with the gateway's and
// Portkey's p50 added over direct, for a stand-in that answers at once
// (all CPU, the worst case for a proxy on a small machine) and one paced
// like a model. Set BB_BENCH=1 (BB_BENCH_N: streams per cell, default
// 3000; the paced cells run fewer).
//
//	cd benchmarks && BB_BENCH=1 go test -run GatewaySideBySide -v .
//	benchmarks/portkey/run.sh   # the same, with Portkey's gateway beside it
func TestGatewaySideBySide(t *testing.T) {
	if os.Getenv("BB_BENCH") == "" {
		t.Skip("set BB_BENCH=1 to run the gateway side-by-side benchmark")
	}
	n := 3000
	if v := os.Getenv("BB_BENCH_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GOMAXPROCS=%d, %d-token streams over loopback, one process for client, gateway and stand-in (Portkey: its own Node process)\n", runtime.GOMAXPROCS(0), gwTokens)
	for _, sc := range gwScenarios(n) {
		cs := gwSetup(t, sc.b)
		fmt.Fprintf(&b, "\n%s\n", sc.name)
		fmt.Fprintf(&b, "%-4s %-10s %6s %10s %10s %10s %10s %11s %11s %6s\n", "conc", "impl", "n", "TTFT p50", "TTFT p99", "end p50", "end p99", "+TTFT p50", "+end p50", "errors")
		for _, conc := range []int{1, 50} {
			cn := sc.n1
			if conc == 50 {
				cn = sc.n50
			}
			var direct gwResult
			for _, c := range cs {
				gwMeasure(c, conc, max(conc*4, cn/10)) // warm up
				r := gwMeasure(c, conc, cn)
				if c.name == "direct" {
					direct = r
				}
				added := func(a, d time.Duration) string {
					if c.name == "direct" {
						return "—"
					}
					return fmt.Sprintf("%.0f µs", µs(a-d))
				}
				fmt.Fprintf(&b, "%-4d %-10s %6d %10v %10v %10v %10v %11s %11s %6d\n", conc, c.name, cn,
					r.ttft.P50.Round(time.Microsecond), r.ttft.P99.Round(time.Microsecond),
					r.end.P50.Round(time.Microsecond), r.end.P99.Round(time.Microsecond),
					added(r.ttft.P50, direct.ttft.P50), added(r.end.P50, direct.end.P50), r.errs)
				if r.errs > 0 {
					t.Errorf("%s at %d: %d errors, first %v", c.name, conc, r.errs, r.firstErr)
				}
			}
		}
	}
	t.Log("\n" + b.String())
}
