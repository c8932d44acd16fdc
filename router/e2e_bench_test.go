package router_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/latency"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

// handStream is a minimal hand-written client for the same stream: POST,
// read lines, decode each chunk's content, stop at [DONE].
func handStream(client *http.Client, url string, body []byte) (string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var text []byte
	var chunk struct {
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
		} `json:"choices"`
	}
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		if string(data) == "[DONE]" {
			for sc.Scan() {
			}
			return string(text), nil
		}
		chunk.Choices = chunk.Choices[:0]
		if err := json.Unmarshal(data, &chunk); err != nil {
			return "", err
		}
		if len(chunk.Choices) > 0 {
			text = append(text, chunk.Choices[0].Delta.Content...)
		}
	}
	return "", errors.New("stream ended before [DONE]")
}

// BenchmarkAddedLatency streams a 50-token completion from the loopback
// test server, in turn through a minimal hand-written client (bufio lines +
// encoding/json per chunk), through router/openai's Model alone, and
// through router + router/openai, and reports the three p50 latencies and
// the differences (the budget: router + openai ≤ 50 µs p50 over
// the hand-written client). added-vs-model isolates the router core's own
// cost; router/openai's chunk decoder is faster than encoding/json, which
// can make added-vs-hand negative.
func BenchmarkAddedLatency(b *testing.B) {
	srv := openaitest.NewServer(openaitest.Behavior{Tokens: openaitest.Words(50)})
	srv.DisableRecording()
	defer srv.Close()
	m, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1", Model: "m"})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	r, err := router.New(router.Options{Tiers: []router.Tier{{Name: router.Tier2, Replicas: []router.Replica{{Name: "a", Model: m}}, MaxConcurrent: 10}}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	hand := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}
	defer hand.CloseIdleConnections()
	msgs := []router.Message{{Role: router.RoleUser, Content: "Tell me about the old mine."}}
	body, _ := json.Marshal(map[string]any{"model": "m", "messages": msgs, "stream": true, "stream_options": map[string]bool{"include_usage": true}})
	ctx := context.Background()
	req := router.Request{Messages: msgs, Responsibility: router.QuestDialogue}
	direct := func() (string, error) {
		s, err := m.Stream(ctx, router.Request{Messages: msgs, Model: "m"})
		if err != nil {
			return "", err
		}
		defer s.Close()
		var text []byte
		for {
			d, err := s.Recv()
			if err == io.EOF {
				return string(text), nil
			}
			if err != nil {
				return "", err
			}
			text = append(text, d.Text...)
		}
	}
	var hh, mh, rh latency.Histogram
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		text, err := handStream(hand, srv.URL+"/v1/chat/completions", body)
		if err != nil || len(text) == 0 {
			b.Fatalf("hand-written client: %q %v", text, err)
		}
		t1 := time.Now()
		mtext, err := direct()
		if err != nil || mtext != text {
			b.Fatalf("openai.Model: %v (%q vs %q)", err, mtext, text)
		}
		t2 := time.Now()
		res, err := r.Generate(ctx, req)
		if err != nil || res.Text != text {
			b.Fatalf("router: %v (%q vs %q)", err, res.Text, text)
		}
		t3 := time.Now()
		hh.Record(t1.Sub(t0))
		mh.Record(t2.Sub(t1))
		rh.Record(t3.Sub(t2))
	}
	hp, mp, rp := hh.Quantile(0.5), mh.Quantile(0.5), rh.Quantile(0.5)
	b.ReportMetric(float64(hp.Microseconds()), "hand-p50-µs")
	b.ReportMetric(float64(mp.Microseconds()), "model-p50-µs")
	b.ReportMetric(float64(rp.Microseconds()), "router-p50-µs")
	b.ReportMetric(float64((rp - hp).Microseconds()), "added-vs-hand-p50-µs")
	b.ReportMetric(float64((rp - mp).Microseconds()), "added-vs-model-p50-µs")
}

// concurrentResult is what runConcurrent saw.
type concurrentResult struct {
	failed   int
	firstErr error // the first failure, of whatever type
	elapsed  time.Duration
	maxSeen  int64 // most streams the server had in flight at once
}

// runConcurrent runs n concurrent 20-token streams through one router and
// one openai.Model against the loopback server. tune adjusts the tier's
// configuration (nil: as given). The router's stats must agree with the
// streams' results.
func runConcurrent(tb testing.TB, n int, tune func(*router.Tier)) concurrentResult {
	srv := openaitest.NewServer(openaitest.Behavior{Tokens: openaitest.Words(20), TTFT: 20 * time.Millisecond, TokenDelay: 2 * time.Millisecond})
	srv.DisableRecording()
	defer srv.Close()
	m, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1", Model: "m", MaxConnsPerHost: n})
	if err != nil {
		tb.Fatal(err)
	}
	defer m.Close()
	t1 := router.Tier{Name: router.Tier1, Replicas: []router.Replica{{Name: "a", Model: m}}, MaxConcurrent: n}
	if tune != nil {
		tune(&t1)
	}
	r, err := router.New(router.Options{Tiers: []router.Tier{t1}})
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		res concurrentResult
	)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := r.Stream(context.Background(), router.Request{AffinityKey: fmt.Sprint(i)})
			if err == nil {
				var text string
				text, err = drain(s)
				if err == nil && len(text) == 0 {
					err = errors.New("empty text")
				}
			}
			if err != nil {
				mu.Lock()
				res.failed++
				if res.firstErr == nil {
					res.firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if st, _ := r.Stats().Tier(router.Tier1); st.Successes != uint64(n-res.failed) || st.InFlight != 0 {
		tb.Errorf("stats: %d successes, %d in flight; want %d, 0", st.Successes, st.InFlight, n-res.failed)
	}
	res.maxSeen = srv.Stats().MaxInFlight
	return res
}

// TestThousandConcurrentStreams: 1,000 concurrent streams through one
// router, each with a 20ms TTFT and 2ms between its 20 tokens, all succeed,
// all are in flight at once (the router serializes nothing), and the
// router's stats agree. It runs on a fake clock (testing/synctest) with an
// in-memory Model, so a loaded machine changes nothing; the loopback figure
// is BenchmarkConcurrentStreams.
func TestThousandConcurrentStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, tokens = 1000, 20
		const ttft, gap = 20 * time.Millisecond, 2 * time.Millisecond
		m := &paced{TTFT: ttft, Gap: gap, Tokens: openaitest.Words(tokens)}
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: router.Tier1, Replicas: []router.Replica{{Name: "a", Model: m}}, MaxConcurrent: n}}})
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			failed   int
			firstErr error
		)
		start := time.Now()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := r.Stream(context.Background(), router.Request{AffinityKey: fmt.Sprint(i)})
				var text string
				if err == nil {
					text, err = drain(s)
				}
				if err == nil && text != strings.Join(m.Tokens, "") {
					err = fmt.Errorf("text %q", text)
				}
				if err != nil {
					mu.Lock()
					if failed++; firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if failed != 0 {
			t.Errorf("%d of %d streams failed; first: %v", failed, n, firstErr)
		}
		// On the fake clock every stream takes exactly TTFT + 19 gaps; any
		// serialization in the router would show as a longer run.
		if got, want := time.Since(start), ttft+(tokens-1)*gap; got != want {
			t.Errorf("%d streams took %v, want %v (all concurrent)", n, got, want)
		}
		if got := m.maxInFlight.Load(); got != n {
			t.Errorf("model saw at most %d streams at once, want %d", got, n)
		}
		st, _ := r.Stats().Tier(router.Tier1)
		if st.Successes != n || st.InFlight != 0 || st.TokensOut != n*tokens || st.TTFT.Count != n {
			t.Errorf("stats: %d successes, %d in flight, %d tokens out, %d TTFTs; want %d, 0, %d, %d",
				st.Successes, st.InFlight, st.TokensOut, st.TTFT.Count, n, n*tokens, n)
		}
	})
}

// TestConcurrentStreamsLoopback: concurrent streams through router/openai
// and a loopback server all succeed, and errors of every type are
// collected. The timeouts only bound a hang: on a loaded 2-core machine a
// token may be seconds late, which must not fail the test.
func TestConcurrentStreamsLoopback(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	res := runConcurrent(t, n, func(t *router.Tier) {
		t.StallTimeout = 2 * time.Minute
		t.Breaker.Disabled = true
	})
	if res.failed != 0 {
		t.Errorf("%d of %d streams failed; first: %v", res.failed, n, res.firstErr)
	}
	t.Logf("%d concurrent streams in %v on GOMAXPROCS=%d; server saw at most %d at once", n, res.elapsed, runtime.GOMAXPROCS(0), res.maxSeen)
}

// BenchmarkConcurrentStreams runs 1,000 concurrent 20-token streams per
// iteration (run with -cpu 2 for the 2-core figure).
func BenchmarkConcurrentStreams(b *testing.B) {
	var total time.Duration
	for b.Loop() {
		res := runConcurrent(b, 1000, nil)
		if res.failed != 0 {
			b.Fatalf("%d of 1000 streams failed; first: %v", res.failed, res.firstErr)
		}
		total += res.elapsed
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/1000-streams")
	b.ReportMetric(1000*float64(b.N)/total.Seconds(), "streams/s")
}
