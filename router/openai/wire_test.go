package openai_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

// fixedServer answers every request with status, Content-Type ct (none
// when empty: no sniffing either) and body, and counts requests.
type fixedServer struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	headers  []http.Header
}

func newFixedServer(t testing.TB, status int, ct string, header http.Header, body string) *fixedServer {
	t.Helper()
	s := &fixedServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		s.headers = append(s.headers, r.Header.Clone())
		s.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		for k, v := range header {
			w.Header()[k] = v
		}
		if ct == "" {
			w.Header()["Content-Type"] = nil
		} else {
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func newModelAt(t testing.TB, url string, o openai.Options) *openai.Model {
	t.Helper()
	o.BaseURL = url + "/v1"
	m, err := openai.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestNoRetryOnHeaderTimeout: a backend slow to send its headers gets the
// request once: a timeout is never retried (the server may be working on
// it).
func TestNoRetryOnHeaderTimeout(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{HeaderDelay: time.Minute})
	m := newModel(t, srv, openai.Options{ResponseHeaderTimeout: 50 * time.Millisecond, MaxRetries: 3, RetryBackoff: time.Millisecond})
	for _, call := range []string{"Stream", "Generate"} {
		var err error
		if call == "Stream" {
			_, err = m.Stream(context.Background(), router.Request{})
		} else {
			_, err = m.Generate(context.Background(), router.Request{})
		}
		if err == nil {
			t.Fatalf("%s: no error from a server that never answers", call)
		}
	}
	wctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.WaitFor(wctx, func(st openaitest.Stats) bool { return st.InFlight == 0 }); err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().Requests; n != 2 {
		t.Errorf("server saw %d requests for one Stream and one Generate, want 2 (no retry after a timeout)", n)
	}
}

// refusedAddr returns a loopback address that refuses connections.
func refusedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestRetryConnectionRefused: a connection that could not be made is
// retried (the request provably never reached a server), up to
// MaxRetries times.
func TestRetryConnectionRefused(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{})
	refused := refusedAddr(t)
	var dials atomic.Int64
	refuseFirst := func(n int64) *http.Client {
		dials.Store(0)
		var d net.Dialer
		return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) <= n {
				addr = refused
			}
			return d.DialContext(ctx, network, addr)
		}}}
	}
	c := refuseFirst(2)
	m := newModel(t, srv, openai.Options{HTTPClient: c, RetryBackoff: time.Millisecond})
	s, err := m.Stream(context.Background(), router.Request{})
	if err != nil {
		t.Fatalf("two refusals, two retries: %v", err)
	}
	if _, _, err := readAll(s); err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	if n, reqs := dials.Load(), srv.Stats().Requests; n != 3 || reqs != 1 {
		t.Errorf("%d dials and %d requests, want 3 and 1", n, reqs)
	}

	c = refuseFirst(100)
	m = newModel(t, srv, openai.Options{HTTPClient: c, RetryBackoff: time.Millisecond, MaxRetries: 2})
	if _, err := m.Stream(context.Background(), router.Request{}); err == nil {
		t.Fatal("no error when every dial is refused")
	}
	if n := dials.Load(); n != 3 {
		t.Errorf("%d dials with MaxRetries 2, want 3", n)
	}
}

// TestRefuseCrossHostRedirect: a redirect to another host is refused, so
// that no credential header reaches it, with the Model's own client and
// with one the caller passes.
func TestRefuseCrossHostRedirect(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header string
		own    bool
	}{
		{"Authorization", "", true},
		{"api-key", "api-key", true},
		{"api-key with a caller's client", "api-key", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			other := newFixedServer(t, 200, "text/event-stream", nil, "data: [DONE]\n\n")
			redirect := newFixedServer(t, http.StatusTemporaryRedirect, "text/plain", http.Header{"Location": {other.URL + "/v1/chat/completions"}}, "")
			o := openai.Options{APIKey: "sk-secret", APIKeyHeader: tt.header}
			if !tt.own {
				o.HTTPClient = &http.Client{}
				defer o.HTTPClient.CloseIdleConnections()
			}
			m := newModelAt(t, redirect.URL, o)
			_, err := m.Stream(context.Background(), router.Request{})
			if !errors.Is(err, openai.ErrRedirect) {
				t.Errorf("err = %v, want ErrRedirect", err)
			}
			if n := other.requests.Load(); n != 0 {
				t.Errorf("the other host got %d requests (headers %v)", n, other.headers)
			}
			if n := redirect.requests.Load(); n != 1 {
				t.Errorf("redirecting server saw %d requests, want 1", n)
			}
			if o.HTTPClient != nil && o.HTTPClient.CheckRedirect != nil {
				t.Error("the caller's client was modified")
			}
		})
	}
}

// TestRetryAfterClamped: a huge Retry-After (seconds or a far date) is
// clamped to MaxRetryAfter instead of overflowing.
func TestRetryAfterClamped(t *testing.T) {
	for _, v := range []string{"99999999999999", "9223372036854775807", "99999999999999999999999", time.Now().AddDate(500, 0, 0).UTC().Format(http.TimeFormat)} {
		t.Run(v, func(t *testing.T) {
			srv := newFixedServer(t, 429, "application/json", http.Header{"Retry-After": {v}}, `{"error":{"message":"slow down"}}`)
			m := newModelAt(t, srv.URL, openai.Options{})
			_, err := m.Stream(context.Background(), router.Request{})
			var se *router.SaturatedError
			if !errors.As(err, &se) || se.RetryAfter != openai.MaxRetryAfter {
				t.Errorf("Retry-After %s: err = %v (RetryAfter %v), want %v", v, err, retryAfterOf(se), openai.MaxRetryAfter)
			}
		})
	}
}

func retryAfterOf(se *router.SaturatedError) time.Duration {
	if se == nil {
		return -1
	}
	return se.RetryAfter
}

// TestHTMLBodyIsMalformed: a 200 that is not an event stream (a proxy's
// HTML page) is ErrMalformed, not ErrIncomplete, with or without a
// Content-Type.
func TestHTMLBodyIsMalformed(t *testing.T) {
	const page = "<!DOCTYPE html>\n<html><body>Welcome to nginx!</body></html>\n"
	for _, ct := range []string{"text/html; charset=utf-8", ""} {
		t.Run(fmt.Sprintf("Content-Type %q", ct), func(t *testing.T) {
			srv := newFixedServer(t, 200, ct, nil, page)
			m := newModelAt(t, srv.URL, openai.Options{})
			s, err := m.Stream(context.Background(), router.Request{})
			if err == nil {
				_, _, err = readAll(s)
			}
			if !errors.Is(err, openai.ErrMalformed) || errors.Is(err, openai.ErrIncomplete) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
			if _, err := m.Generate(context.Background(), router.Request{}); !errors.Is(err, openai.ErrMalformed) {
				t.Errorf("Generate: err = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestUsageReported: Usage says whether the backend reported it; a
// reported zero is not an absent one.
func TestUsageReported(t *testing.T) {
	const (
		content = `data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}` + "\n\n"
		finish  = `data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"
		usage   = `data: {"choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0}}` + "\n\n"
		usage35 = `data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}` + "\n\n"
		done    = "data: [DONE]\n\n"
	)
	for _, tt := range []struct {
		name string
		body string
		want *router.Usage
	}{
		{"absent", content + finish + done, nil},
		{"zero", content + finish + usage + done, &router.Usage{Reported: true}},
		{"before the finish chunk", content + usage35 + finish + done, &router.Usage{PromptTokens: 3, CompletionTokens: 5, Reported: true}},
		{"after the finish chunk", content + finish + usage35 + done, &router.Usage{PromptTokens: 3, CompletionTokens: 5, Reported: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFixedServer(t, 200, "text/event-stream", nil, tt.body)
			m := newModelAt(t, srv.URL, openai.Options{})
			s, err := m.Stream(context.Background(), router.Request{})
			if err != nil {
				t.Fatal(err)
			}
			_, last, err := readAll(s)
			if err != nil {
				t.Fatal(err)
			}
			if (last.Usage == nil) != (tt.want == nil) || (last.Usage != nil && *last.Usage != *tt.want) {
				t.Errorf("usage %+v, want %+v", last.Usage, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		name string
		body string
		want router.Usage
	}{
		{"absent", `{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}]}`, router.Usage{}},
		{"zero", `{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":0,"completion_tokens":0}}`, router.Usage{Reported: true}},
	} {
		t.Run("Generate "+tt.name, func(t *testing.T) {
			srv := newFixedServer(t, 200, "application/json", nil, tt.body)
			m := newModelAt(t, srv.URL, openai.Options{})
			res, err := m.Generate(context.Background(), router.Request{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Usage != tt.want {
				t.Errorf("usage %+v, want %+v", res.Usage, tt.want)
			}
		})
	}
}
