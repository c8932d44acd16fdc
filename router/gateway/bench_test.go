package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bodybroker/sdk/latency"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
)

// words is an in-process Model that streams n one-word deltas at once.
type words struct{ n int }

func (words) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, fmt.Errorf("words: unary not supported")
}

func (w words) Stream(ctx context.Context, _ router.Request) (router.Stream, error) {
	return &wordStream{ctx: ctx, n: w.n}, nil
}

type wordStream struct {
	ctx  context.Context
	i, n int
}

var wordText = func() []string {
	out := make([]string, 64)
	for i := range out {
		out[i] = fmt.Sprintf(" w%d", i)
	}
	return out
}()

func (s *wordStream) Recv() (router.Delta, error) {
	if err := s.ctx.Err(); err != nil {
		return router.Delta{}, err
	}
	if s.i == s.n {
		return router.Delta{}, io.EOF
	}
	d := router.Delta{Text: wordText[s.i%len(wordText)]}
	s.i++
	if s.i == s.n {
		d.FinishReason = router.FinishStop
		d.Usage = &router.Usage{PromptTokens: 20, CompletionTokens: s.n, Reported: true}
	}
	return d, nil
}

func (s *wordStream) Close() error { return nil }

// BenchmarkStream is the gateway's own cost: a 50-token stream from an
// in-process model, through the router and the gateway, to a client over
// loopback, beside a handler that writes the same 50 chunks with no router
// and no gateway ("baseline"). The difference is what the gateway and the
// router add on top of serving HTTP; the extra hop to a model server is
// not in it (benchmarks/ measures that).
//
//	go test -run '^$' -bench Stream -benchtime 3000x -count 6 ./router/gateway | tee gw.txt && benchstat -col /impl gw.txt
func BenchmarkStream(b *testing.B) {
	const n = 50
	r := newRouter(b, tierSpec{name: "tier1", m: words{n: n}})
	g, err := gateway.New(gateway.Options{Router: r})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	var canned bytes.Buffer
	for i := range n {
		fin := "null"
		if i == n-1 {
			fin = `"stop"`
		}
		fmt.Fprintf(&canned, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"tier1","choices":[{"index":0,"delta":{"content":%q},"finish_reason":%s}]}`+"\n\n", wordText[i], fin)
	}
	canned.WriteString("data: [DONE]\n\n")
	chunks := bytes.SplitAfter(canned.Bytes(), []byte("\n\n"))
	baseline := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, c := range chunks {
			if len(c) == 0 {
				continue
			}
			w.Write(c)
			rc.Flush()
		}
	})
	body := chatBody("tier1", true)
	for _, impl := range []struct {
		name string
		h    http.Handler
	}{{"baseline", baseline}, {"gateway", g}} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			srv := httptest.NewServer(impl.h)
			defer srv.Close()
			client := srv.Client()
			stream := func() (time.Duration, time.Duration) {
				t0 := time.Now()
				resp, err := client.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				defer resp.Body.Close()
				br := bufio.NewReader(resp.Body)
				var ttft time.Duration
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						b.Fatalf("stream ended before [DONE]: %v", err)
					}
					if ttft == 0 && bytes.HasPrefix(line, []byte("data: {")) {
						ttft = time.Since(t0)
					}
					if bytes.HasPrefix(line, []byte("data: [DONE]")) {
						return ttft, time.Since(t0)
					}
				}
			}
			for range 50 {
				stream()
			}
			var ttft, end latency.Histogram
			b.ReportAllocs()
			for b.Loop() {
				t, e := stream()
				ttft.Record(t)
				end.Record(e)
			}
			b.ReportMetric(float64(ttft.Quantile(0.5).Nanoseconds())/1e3, "ttft-p50-µs")
			b.ReportMetric(float64(end.Quantile(0.5).Nanoseconds())/1e3, "end-p50-µs")
		})
	}
}
