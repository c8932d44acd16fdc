package router_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
)

// readCapped reads s to its end, failing after limit deltas (a runaway
// stream the router did not end). It returns the text and the last delta.
func readCapped(t *testing.T, s *router.RoutedStream, limit int) (string, router.Delta) {
	t.Helper()
	defer s.Close()
	var b strings.Builder
	var last router.Delta
	for range limit {
		d, err := s.Recv()
		if err == io.EOF {
			return b.String(), last
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", b.Len(), err)
		}
		b.WriteString(d.Text)
		last = d
	}
	t.Fatalf("stream still going after %d deltas (%d bytes)", limit, b.Len())
	return "", last
}

// TestRunawayBackendCapped: a backend that ignores max_tokens and streams
// forever is cut at the request's limit (or the tier's, or the default):
// the stream ends with FinishLength, the backend request is cancelled and
// the slot released.
func TestRunawayBackendCapped(t *testing.T) {
	tests := []struct {
		name      string
		req, tier int
		want      int
	}{
		{"request", 50, 0, 50},
		{"tier ceiling", 500, 20, 20},
		{"tier default", 0, 30, 30},
		{"router default", 0, 0, router.DefaultMaxTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := &paced{Gap: time.Millisecond} // endless
				r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "a", Model: m}}, MaxTokens: tt.tier, MaxConcurrent: 1}}})
				s, err := r.Stream(context.Background(), router.Request{MaxTokens: tt.req})
				if err != nil {
					t.Fatal(err)
				}
				text, last := readCapped(t, s, 100_000)
				if got := len(strings.Fields(text)); got != tt.want || last.FinishReason != router.FinishLength {
					t.Errorf("got %d tokens ending with %q, want %d ending with %q", got, last.FinishReason, tt.want, router.FinishLength)
				}
				synctest.Wait()
				if n, inFlight := m.cancelled.Load(), m.inFlight.Load(); n != 1 || inFlight != 0 {
					t.Errorf("backend: %d cancelled, %d in flight; want 1, 0", n, inFlight)
				}
				if n := m.sent.Load(); n > int64(tt.want)+1 {
					t.Errorf("backend sent %d deltas for a limit of %d", n, tt.want)
				}
				st, _ := r.Stats().Tier("t")
				if st.InFlight != 0 || st.Successes != 1 || st.LengthCapped != 1 || st.Replicas[0].LengthCapped != 1 {
					t.Errorf("stats: %d in flight, %d successes, %d capped (replica %d); want 0, 1, 1 (1)", st.InFlight, st.Successes, st.LengthCapped, st.Replicas[0].LengthCapped)
				}
			})
		})
	}
}

// fat streams deltas of Size bytes forever.
type fat struct{ Size int }

func (fat) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("fat: Generate not used")
}

func (m fat) Stream(context.Context, router.Request) (router.Stream, error) {
	return fatStream{strings.Repeat("é", m.Size/2)}, nil
}

type fatStream struct{ text string }

func (s fatStream) Recv() (router.Delta, error) { return router.Delta{Text: s.text}, nil }
func (fatStream) Close() error                  { return nil }

// TestReplyBytesCapped: a backend that sends few but huge deltas is cut at
// MaxTokens × ReplyBytesPerToken bytes, on a UTF-8 boundary.
func TestReplyBytesCapped(t *testing.T) {
	for _, size := range []int{1 << 10, 64 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "a", Model: fat{Size: size}}}}}})
			const maxTokens = 100
			s, err := r.Stream(context.Background(), router.Request{MaxTokens: maxTokens})
			if err != nil {
				t.Fatal(err)
			}
			text, last := readCapped(t, s, 200)
			limit := maxTokens * router.ReplyBytesPerToken
			if len(text) > limit || len(text) < limit-1 || last.FinishReason != router.FinishLength {
				t.Errorf("got %d bytes ending with %q, want %d ending with %q", len(text), last.FinishReason, limit, router.FinishLength)
			}
			if !strings.HasSuffix(text, "é") {
				t.Errorf("cut inside a rune: ...%q", text[len(text)-3:])
			}
		})
	}
}

// runawayServer is an OpenAI-compatible server that ignores max_tokens and
// streams chunks until the client goes away.
type runawayServer struct {
	*httptest.Server
	chunks, cancelled atomic.Int64
	gone              chan struct{} // a handler saw its request cancelled
}

func newRunawayServer(t testing.TB) *runawayServer {
	s := &runawayServer{gone: make(chan struct{}, 1)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		chunk := []byte(`data: {"choices":[{"index":0,"delta":{"content":" w"}}]}` + "\n\n")
		for {
			if _, err := w.Write(chunk); err != nil {
				break
			}
			w.(http.Flusher).Flush()
			s.chunks.Add(1)
			if r.Context().Err() != nil {
				break
			}
		}
		s.cancelled.Add(1)
		select {
		case s.gone <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestRunawayHTTPBackendCapped: through router/openai, a server that
// ignores max_tokens is cut at the limit and sees its request cancelled.
func TestRunawayHTTPBackendCapped(t *testing.T) {
	srv := newRunawayServer(t)
	m, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "a", Model: m}}, MaxConcurrent: 1}}})
	s, err := r.Stream(context.Background(), router.Request{MaxTokens: 64})
	if err != nil {
		t.Fatal(err)
	}
	text, last := readCapped(t, s, 1_000_000)
	if got := len(strings.Fields(text)); got != 64 || last.FinishReason != router.FinishLength {
		t.Errorf("got %d tokens ending with %q, want 64 ending with %q", got, last.FinishReason, router.FinishLength)
	}
	select {
	case <-srv.gone:
	case <-time.After(time.Minute): // a hang guard, not a timing check
		t.Fatal("the server's request was not cancelled")
	}
	if n := srv.cancelled.Load(); n != 1 {
		t.Errorf("server saw %d requests cancelled, want 1", n)
	}
	if st, _ := r.Stats().Tier("t"); st.InFlight != 0 {
		t.Errorf("%d in flight after the cut", st.InFlight)
	}
	t.Logf("server wrote %d chunks before it saw the cancel; the caller got %d", srv.chunks.Load(), len(strings.Fields(text)))
}

// TestLimitKeepsHonestReplies: a backend that stops at the limit keeps its
// own finish reason and every delta; a negative limit is an error.
func TestLimitKeepsHonestReplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &paced{Tokens: []string{"a", " b", " c"}}
		r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "a", Model: m}}}}})
		res, err := r.Generate(context.Background(), router.Request{MaxTokens: 3})
		if err != nil || res.Text != "a b c" || res.FinishReason != router.FinishStop {
			t.Errorf("got %q %q, %v; want %q %q", res.Text, res.FinishReason, err, "a b c", router.FinishStop)
		}
		if st, _ := r.Stats().Tier("t"); st.LengthCapped != 0 {
			t.Errorf("an honest reply counted as capped")
		}
		if _, err := r.Stream(context.Background(), router.Request{MaxTokens: -1}); !errors.Is(err, router.ErrInvalidRequest) {
			t.Errorf("MaxTokens -1: err = %v, want ErrInvalidRequest", err)
		}
	})
}

// BenchmarkRunawayBackend streams from a server that ignores max_tokens,
// through router/openai, with MaxTokens 256: it reports the deltas the
// caller received and the chunks the server wrote per stream, and the
// bytes allocated. Without the router's limit the stream never ended.
func BenchmarkRunawayBackend(b *testing.B) {
	srv := newRunawayServer(b)
	m, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1"})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	r, err := router.New(router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "a", Model: m}}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var deltas int
	b.ReportAllocs()
	for b.Loop() {
		s, err := r.Stream(context.Background(), router.Request{MaxTokens: 256})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			deltas++
		}
		s.Close()
	}
	b.ReportMetric(float64(deltas)/float64(b.N), "deltas/stream")
	b.ReportMetric(float64(srv.chunks.Load())/float64(b.N), "server-chunks/stream")
}
