package benchmarks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3"
	oaiopt "github.com/openai/openai-go/v3/option"
	gopenai "github.com/sashabaranov/go-openai"

	"github.com/bodybroker/sdk/router"
	bbopenai "github.com/bodybroker/sdk/router/openai"
)

// llmTokens is the number of content chunks in every streamed completion.
const llmTokens = 50

// chatStreamBody is a vLLM-shaped streamed chat completion: a role chunk,
// llmTokens content chunks (the last with finish_reason "stop"), a usage
// chunk and [DONE].
func chatStreamBody() []byte {
	var b bytes.Buffer
	const head = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m",`
	b.WriteString(head + `"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	for i := range llmTokens {
		fin := "null"
		if i == llmTokens-1 {
			fin = `"stop"`
		}
		fmt.Fprintf(&b, head+`"choices":[{"index":0,"delta":{"content":" w%d"},"logprobs":null,"finish_reason":%s}]}`+"\n\n", i, fin)
	}
	b.WriteString(head + `"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":50,"total_tokens":55}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// llmServer serves chatStreamBody at /v1/chat/completions, all at once, so
// that what a stream costs beyond the loopback round trip is the client's
// own work: reading, splitting and decoding the events.
func llmServer(tb testing.TB) string {
	body := chatStreamBody()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(body)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// llmClient streams one completion and returns the number of content
// deltas it received.
type llmClient struct {
	name string
	new  func(tb testing.TB, baseURL string) func(ctx context.Context) (int, error)
}

func llmClients() []llmClient {
	return []llmClient{
		{"bodybroker", func(tb testing.TB, baseURL string) func(context.Context) (int, error) {
			m, err := bbopenai.New(bbopenai.Options{BaseURL: baseURL, Model: "m", APIKey: "k"})
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { _ = m.Close() })
			req := router.Request{Messages: []router.Message{{Role: router.RoleUser, Content: "Hello there"}}, MaxTokens: 64}
			return func(ctx context.Context) (int, error) {
				s, err := m.Stream(ctx, req)
				if err != nil {
					return 0, err
				}
				defer s.Close()
				n := 0
				for {
					d, err := s.Recv()
					if err == io.EOF {
						return n, nil
					}
					if err != nil {
						return n, err
					}
					if d.Text != "" {
						n++
					}
				}
			}
		}},
		{"openai-go", func(tb testing.TB, baseURL string) func(context.Context) (int, error) {
			c := oai.NewClient(oaiopt.WithBaseURL(baseURL), oaiopt.WithAPIKey("k"), oaiopt.WithMaxRetries(0))
			params := oai.ChatCompletionNewParams{
				Model:     "m",
				Messages:  []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Hello there")},
				MaxTokens: oai.Int(64),
				StreamOptions: oai.ChatCompletionStreamOptionsParam{
					IncludeUsage: oai.Bool(true),
				},
			}
			return func(ctx context.Context) (int, error) {
				s := c.Chat.Completions.NewStreaming(ctx, params)
				defer s.Close()
				n := 0
				for s.Next() {
					if ch := s.Current(); len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
						n++
					}
				}
				return n, s.Err()
			}
		}},
		{"go-openai", func(tb testing.TB, baseURL string) func(context.Context) (int, error) {
			cfg := gopenai.DefaultConfig("k")
			cfg.BaseURL = baseURL
			c := gopenai.NewClientWithConfig(cfg)
			req := gopenai.ChatCompletionRequest{
				Model:               "m",
				Messages:            []gopenai.ChatCompletionMessage{{Role: gopenai.ChatMessageRoleUser, Content: "Hello there"}},
				MaxCompletionTokens: 64,
				Stream:              true,
				StreamOptions:       &gopenai.StreamOptions{IncludeUsage: true},
			}
			return func(ctx context.Context) (int, error) {
				s, err := c.CreateChatCompletionStream(ctx, req)
				if err != nil {
					return 0, err
				}
				defer s.Close()
				n := 0
				for {
					r, err := s.Recv()
					if errors.Is(err, io.EOF) {
						return n, nil
					}
					if err != nil {
						return n, err
					}
					if len(r.Choices) > 0 && r.Choices[0].Delta.Content != "" {
						n++
					}
				}
			}
		}},
	}
}

// BenchmarkLLMStream streams a 50-token chat completion from one loopback
// server through router/openai ("bodybroker"), the official
// github.com/openai/openai-go/v3 client and github.com/sashabaranov/go-openai,
// one stream at a time, in one run:
//
//	go test -run '^$' -bench LLMStream -benchtime 2000x -count 5 . | tee llm.txt
//	benchstat -col /impl llm.txt
//
// The server writes the whole body at once, so a stream's time is the
// loopback round trip plus the client's work. ns/op is ns per stream;
// p50-µs is the median time from the call to the end of the stream (io.EOF
// read); allocs/op counts every allocation in the process per stream, the
// server's included (the same server for every client).
func BenchmarkLLMStream(b *testing.B) {
	url := llmServer(b)
	for _, c := range llmClients() {
		b.Run("impl="+c.name, func(b *testing.B) {
			stream := c.new(b, url)
			ctx := context.Background()
			for range 20 { // warm the connection pool and the clients' caches
				if _, err := stream(ctx); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			var lat []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				n, err := stream(ctx)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				if n != llmTokens {
					b.Fatalf("%d content deltas, want %d", n, llmTokens)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		})
	}
}
