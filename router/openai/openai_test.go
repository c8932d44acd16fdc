package openai_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
	"github.com/bodybroker/sdk/router/routertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newModel(t testing.TB, srv *openaitest.Server, o openai.Options) *openai.Model {
	t.Helper()
	o.BaseURL = srv.URL + "/v1"
	m, err := openai.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newServer(t testing.TB, b openaitest.Behavior) *openaitest.Server {
	t.Helper()
	srv := openaitest.NewServer(b)
	t.Cleanup(srv.Close)
	return srv
}

// readAll reads a stream to its end and returns the texts, the last delta
// and the error that ended it (nil for io.EOF).
func readAll(s router.Stream) (texts []string, last router.Delta, err error) {
	defer s.Close()
	for {
		d, err := s.Recv()
		if err == io.EOF {
			return texts, last, nil
		}
		if err != nil {
			return texts, last, err
		}
		texts = append(texts, d.Text)
		last = d
	}
}

func ptr[T any](v T) *T { return &v }

func TestStreamChat(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{Tokens: []string{"Well", " met", ", \"traveller\"."}})
	m := newModel(t, srv, openai.Options{Model: "base", APIKey: "sk-test", SendPriority: true})
	req := router.Request{
		Messages:    []router.Message{{Role: router.RoleSystem, Content: "You are a guard."}, {Role: router.RoleUser, Content: "Hello there"}},
		MaxTokens:   64,
		Temperature: ptr(0.5),
		Stop:        []string{"\n"},
		Adapter:     "guard-lora",
		Priority:    -1,
	}
	s, err := m.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	texts, last, err := readAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Well", " met", ", \"traveller\"."}, texts); diff != "" {
		t.Errorf("texts (-want +got):\n%s", diff)
	}
	want := router.Delta{Text: ", \"traveller\".", FinishReason: router.FinishStop, Usage: &router.Usage{PromptTokens: 6, CompletionTokens: 3, Reported: true}}
	if diff := cmp.Diff(want, last); diff != "" {
		t.Errorf("last delta (-want +got):\n%s", diff)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if got.Path != "/v1/chat/completions" || got.Model != "guard-lora" || !got.Stream || !got.IncludeUsage ||
		got.MaxTokens != 64 || *got.Temperature != 0.5 || got.Priority == nil || *got.Priority != -1 {
		t.Errorf("request = %+v", got)
	}
	if diff := cmp.Diff([]string{"\n"}, got.Stop); diff != "" {
		t.Errorf("stop (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]openaitest.Message{{Role: "system", Content: "You are a guard."}, {Role: "user", Content: "Hello there"}}, got.Messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if h := got.Header.Get("Authorization"); h != "Bearer sk-test" {
		t.Errorf("Authorization = %q", h)
	}
}

func TestOptionsOnTheWire(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{})
	tests := []struct {
		name       string
		o          openai.Options
		req        router.Request
		wantModel  string
		wantHeader [2]string
		wantPrio   bool
		wantUsage  bool
	}{
		{"default model", openai.Options{Model: "m"}, router.Request{}, "m", [2]string{"Authorization", ""}, false, true},
		{"request model", openai.Options{Model: "m"}, router.Request{Model: "x"}, "x", [2]string{"Authorization", ""}, false, true},
		{"adapter wins", openai.Options{Model: "m"}, router.Request{Model: "x", Adapter: "lora"}, "lora", [2]string{"Authorization", ""}, false, true},
		{"custom key header", openai.Options{APIKey: "k", APIKeyHeader: "api-key"}, router.Request{}, "", [2]string{"Api-Key", "k"}, false, true},
		{"no usage", openai.Options{DisableStreamUsage: true}, router.Request{}, "", [2]string{"Authorization", ""}, false, false},
		{"priority zero sent", openai.Options{SendPriority: true}, router.Request{}, "", [2]string{"Authorization", ""}, true, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(t, srv, tt.o)
			s, err := m.Stream(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := readAll(s); err != nil {
				t.Fatal(err)
			}
			got := srv.Requests()[i]
			if got.Model != tt.wantModel {
				t.Errorf("model = %q, want %q", got.Model, tt.wantModel)
			}
			if h := got.Header.Get(tt.wantHeader[0]); h != tt.wantHeader[1] {
				t.Errorf("%s = %q, want %q", tt.wantHeader[0], h, tt.wantHeader[1])
			}
			if (got.Priority != nil) != tt.wantPrio {
				t.Errorf("priority sent = %v, want %v", got.Priority != nil, tt.wantPrio)
			}
			if got.IncludeUsage != tt.wantUsage {
				t.Errorf("include_usage = %v, want %v", got.IncludeUsage, tt.wantUsage)
			}
		})
	}
}

func TestCompletions(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{Tokens: []string{"a", "b", "c"}})
	m := newModel(t, srv, openai.Options{Endpoint: openai.Completions, Model: "m"})
	req := router.Request{Messages: []router.Message{{Role: router.RoleSystem, Content: "sys"}, {Role: router.RoleUser, Content: "hi"}}}
	s, err := m.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	texts, last, err := readAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(texts, "") != "abc" || last.FinishReason != router.FinishStop || last.Usage == nil || last.Usage.CompletionTokens != 3 {
		t.Errorf("texts %q, last %+v", texts, last)
	}
	resp, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&router.Response{Text: "abc", FinishReason: router.FinishStop, Usage: router.Usage{PromptTokens: 2, CompletionTokens: 3, Reported: true}, Model: "m"}, resp); diff != "" {
		t.Errorf("Generate (-want +got):\n%s", diff)
	}
	for _, r := range srv.Requests() {
		if r.Path != "/v1/completions" || r.Prompt != "sys\n\nhi" {
			t.Errorf("request path %q prompt %q", r.Path, r.Prompt)
		}
	}
}

func TestGenerateChat(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{Tokens: []string{"x", "y"}})
	m := newModel(t, srv, openai.Options{Model: "m"})
	resp, err := m.Generate(context.Background(), router.Request{MaxTokens: 1, Messages: []router.Message{{Role: router.RoleUser, Content: "q"}}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&router.Response{Text: "x", FinishReason: router.FinishLength, Usage: router.Usage{PromptTokens: 1, CompletionTokens: 1, Reported: true}, Model: "m"}, resp); diff != "" {
		t.Errorf("Generate (-want +got):\n%s", diff)
	}
	if srv.Requests()[0].Stream {
		t.Error("Generate sent stream=true")
	}
}

func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		name          string
		b             openaitest.Behavior
		wantSaturated bool
		wantStatus    int
		wantRetry     time.Duration
	}{
		{"429", openaitest.Behavior{Status: 429, ErrorMessage: "slow down", RetryAfter: 2 * time.Second}, true, 429, 2 * time.Second},
		{"503", openaitest.Behavior{Status: 503}, true, 503, 0},
		{"500", openaitest.Behavior{Status: 500, ErrorMessage: "boom"}, false, 500, 0},
		{"404 unknown adapter", openaitest.Behavior{Status: 404, ErrorMessage: "The model `x` does not exist."}, false, 404, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.b)
			m := newModel(t, srv, openai.Options{})
			for _, call := range []string{"Stream", "Generate"} {
				var err error
				if call == "Stream" {
					_, err = m.Stream(context.Background(), router.Request{})
				} else {
					_, err = m.Generate(context.Background(), router.Request{})
				}
				if got := errors.Is(err, router.ErrSaturated); got != tt.wantSaturated {
					t.Errorf("%s: errors.Is(%v, ErrSaturated) = %v, want %v", call, err, got, tt.wantSaturated)
				}
				var ae *openai.APIError
				if !errors.As(err, &ae) {
					t.Fatalf("%s: error %v is not an *APIError", call, err)
				}
				if ae.StatusCode != tt.wantStatus || ae.RetryAfter != tt.wantRetry || (tt.b.ErrorMessage != "" && ae.Message != tt.b.ErrorMessage) {
					t.Errorf("%s: APIError = %+v", call, ae)
				}
			}
			if n := srv.Stats().Requests; n != 2 {
				t.Errorf("server saw %d requests, want 2 (HTTP errors are not retried)", n)
			}
		})
	}
}

func TestStreamFaults(t *testing.T) {
	tests := []struct {
		name      string
		b         openaitest.Behavior
		wantTexts int
		wantIs    error
		wantAPI   bool
	}{
		{"drop mid-stream", openaitest.Behavior{Tokens: openaitest.Words(5), Fault: openaitest.Drop, FaultAfter: 2}, 2, openai.ErrIncomplete, false},
		{"drop before first", openaitest.Behavior{Tokens: openaitest.Words(5), Fault: openaitest.Drop}, 0, openai.ErrIncomplete, false},
		{"no [DONE]", openaitest.Behavior{Tokens: openaitest.Words(3), Fault: openaitest.NoDone}, 2, openai.ErrIncomplete, false},
		{"malformed chunk", openaitest.Behavior{Tokens: openaitest.Words(5), Fault: openaitest.Malformed, FaultAfter: 1}, 1, openai.ErrMalformed, false},
		{"error payload", openaitest.Behavior{Tokens: openaitest.Words(5), Fault: openaitest.StreamError, FaultAfter: 3}, 3, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.b)
			m := newModel(t, srv, openai.Options{})
			s, err := m.Stream(context.Background(), router.Request{})
			if err != nil {
				t.Fatal(err)
			}
			texts, _, err := readAll(s)
			if len(texts) != tt.wantTexts {
				t.Errorf("got %d deltas before the error, want %d", len(texts), tt.wantTexts)
			}
			if err == nil {
				t.Fatal("stream ended without error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v, want %v", err, tt.wantIs)
			}
			var ae *openai.APIError
			if tt.wantAPI && (!errors.As(err, &ae) || !strings.Contains(ae.Message, "injected")) {
				t.Errorf("error %v, want an *APIError from the payload", err)
			}
			if n := srv.Stats().Requests; n != 1 {
				t.Errorf("server saw %d requests, want 1 (no retry after a response byte)", n)
			}
		})
	}
}

// TestIncompleteThroughRouter: a stream the server cut is
// openai.ErrIncomplete wherever it happens; the router calls it
// router.ErrTruncated (a *router.TruncatedError with the backend's error
// as its cause) only once tokens have reached the caller. Before the first
// token it is a failed attempt the router may fall back from.
func TestIncompleteThroughRouter(t *testing.T) {
	tests := []struct {
		name          string
		faultAfter    int
		wantTokens    int
		wantTruncated bool
	}{
		{"after two tokens", 2, 2, true},
		{"before the first", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, openaitest.Behavior{Tokens: openaitest.Words(5), Fault: openaitest.Drop, FaultAfter: tt.faultAfter})
			m := newModel(t, srv, openai.Options{})
			r, err := router.New(router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "r", Model: m}}}}})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var texts []string
			s, err := r.Stream(context.Background(), router.Request{Tier: "t"})
			if err == nil {
				texts, _, err = readAll(s)
			}
			if len(texts) != tt.wantTokens {
				t.Errorf("got %d tokens before the error, want %d", len(texts), tt.wantTokens)
			}
			if !errors.Is(err, openai.ErrIncomplete) {
				t.Errorf("err = %v, want openai.ErrIncomplete", err)
			}
			if got := errors.Is(err, router.ErrTruncated); got != tt.wantTruncated {
				t.Errorf("errors.Is(%v, router.ErrTruncated) = %v, want %v", err, got, tt.wantTruncated)
			}
		})
	}
}

// TestNoRetryAfterRequestSent: a connection closed before any response
// byte, but after the server read the request, is not retried: the
// request reached the server, which may be generating. (Retries of
// connections that could not be made: TestRetryConnectionRefused.)
func TestNoRetryAfterRequestSent(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{})
	srv.Script(openaitest.Behavior{Fault: openaitest.Hangup}, openaitest.Behavior{Fault: openaitest.Hangup})
	m := newModel(t, srv, openai.Options{RetryBackoff: time.Millisecond})
	if _, err := m.Stream(context.Background(), router.Request{}); err == nil || errors.Is(err, router.ErrSaturated) {
		t.Errorf("err = %v, want a transport error", err)
	}
	if n := srv.Stats().Requests; n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}

	srv.Script(openaitest.Behavior{Fault: openaitest.Hangup})
	m2 := newModel(t, srv, openai.Options{DisableRetries: true})
	if _, err := m2.Stream(context.Background(), router.Request{}); err == nil || errors.Is(err, router.ErrSaturated) {
		t.Errorf("with retries disabled: err = %v, want a transport error", err)
	}
}

// TestNoRetryAfterResponseByte: a connection that breaks inside the
// response headers is not retried (a response byte has arrived, so the
// server may be generating already), for Stream and Generate.
func TestNoRetryAfterResponseByte(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{Fault: openaitest.PartialHeader})
	m := newModel(t, srv, openai.Options{RetryBackoff: time.Millisecond, MaxRetries: 3})
	if _, err := m.Stream(context.Background(), router.Request{}); err == nil || errors.Is(err, router.ErrSaturated) {
		t.Errorf("Stream: err = %v, want a transport error", err)
	}
	if n := srv.Stats().Requests; n != 1 {
		t.Errorf("Stream: server saw %d requests, want 1 (no retry after a response byte)", n)
	}
	if _, err := m.Generate(context.Background(), router.Request{}); err == nil {
		t.Error("Generate: no error")
	}
	if n := srv.Stats().Requests; n != 2 {
		t.Errorf("Generate: server saw %d requests in all, want 2", n)
	}
}

// TestCloseAfterDoneDoesNotHang: a server that sends [DONE] but never ends
// the response body cannot make Close block.
func TestCloseAfterDoneDoesNotHang(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{Tokens: []string{"ok"}, Fault: openaitest.HoldAfterDone})
	m := newModel(t, srv, openai.Options{})
	s, err := m.Stream(context.Background(), router.Request{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := s.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second): // a hang guard, not a timing check
		t.Fatal("Close blocked on a response body that never ends")
	}
}

func TestCancelReachesServer(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{Tokens: openaitest.Words(5), Fault: openaitest.Stall, FaultAfter: 1})
	m := newModel(t, srv, openai.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := m.Stream(ctx, router.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Recv()
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Recv after cancel = %v, want context.Canceled", err)
	}
	s.Close()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := srv.WaitFor(wctx, func(st openaitest.Stats) bool { return st.Cancelled == 1 && st.InFlight == 0 }); err != nil {
		t.Error(err)
	}
}

func TestTimeout(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{HeaderDelay: time.Minute})
	m := newModel(t, srv, openai.Options{Timeout: 20 * time.Millisecond})
	start := time.Now()
	_, err := m.Stream(context.Background(), router.Request{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 30*time.Second { // only bounds a hang
		t.Errorf("timeout took %v", d)
	}
}

func TestKeepAlive(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{Tokens: openaitest.Words(10)})
	m := newModel(t, srv, openai.Options{})
	for range 20 {
		s, err := m.Stream(context.Background(), router.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := readAll(s); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Generate(context.Background(), router.Request{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Stats().Connections; n != 1 {
		t.Errorf("40 sequential requests used %d connections, want 1", n)
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []openai.Options{
		{},
		{BaseURL: "localhost:8000"},
		{BaseURL: "http://x", Endpoint: 7},
		{BaseURL: "http://x", Timeout: -1},
	} {
		if _, err := openai.New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func TestClosed(t *testing.T) {
	srv := newServer(t, openaitest.Behavior{})
	m := newModel(t, srv, openai.Options{})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); !errors.Is(err, openai.ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	if _, err := m.Stream(context.Background(), router.Request{}); !errors.Is(err, openai.ErrClosed) {
		t.Errorf("Stream after Close = %v", err)
	}
}

func TestConformance(t *testing.T) {
	for _, ep := range []struct {
		name string
		e    openai.Endpoint
	}{{"chat", openai.Chat}, {"completions", openai.Completions}} {
		t.Run(ep.name, func(t *testing.T) {
			routertest.TestModel(t, routertest.Harness{
				Features: routertest.AllFeatures(),
				New: func(t *testing.T, line string, tokenDelay time.Duration) router.Model {
					srv := newServer(t, openaitest.Behavior{Tokens: routertest.Words(line), TokenDelay: tokenDelay})
					return newModel(t, srv, openai.Options{Endpoint: ep.e, Model: "m"})
				},
			})
		})
	}
}
