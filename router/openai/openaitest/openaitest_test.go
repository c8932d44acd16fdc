package openaitest_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/router/openai/openaitest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func post(t *testing.T, srv *openaitest.Server, body string) (*http.Response, []string) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			lines = append(lines, l)
		}
	}
	return resp, lines
}

func TestStreamShape(t *testing.T) {
	srv := openaitest.NewServer(openaitest.Behavior{Tokens: []string{"a", "b"}})
	defer srv.Close()
	_, lines := post(t, srv, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x y"}]}`)
	if len(lines) != 5 {
		t.Fatalf("got %d data lines, want role, 2 tokens, usage, [DONE]:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[1], `"content":"a"`) || !strings.Contains(lines[2], `"finish_reason":"stop"`) ||
		!strings.Contains(lines[3], `"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":2`) || lines[4] != "data: [DONE]" {
		t.Errorf("stream:\n%s", strings.Join(lines, "\n"))
	}
	if st := srv.Stats(); st.Requests != 1 || st.Completed != 1 || st.InFlight != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestScriptAndErrors(t *testing.T) {
	srv := openaitest.NewServer(openaitest.Behavior{})
	defer srv.Close()
	srv.Script(openaitest.Behavior{Status: 429, RetryAfter: 1500 * time.Millisecond})
	resp, lines := post(t, srv, `{"stream":true}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || !strings.Contains(lines[0], `"type":"RateLimitError"`) {
		t.Errorf("429: %d %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), lines)
	}
	resp, _ = post(t, srv, `{"stream":true}`)
	if resp.StatusCode != 200 {
		t.Errorf("after the script: %d", resp.StatusCode)
	}
	resp, _ = post(t, srv, `not json`)
	if resp.StatusCode != 400 {
		t.Errorf("bad JSON: %d", resp.StatusCode)
	}
}

func TestObservesCancel(t *testing.T) {
	srv := openaitest.NewServer(openaitest.Behavior{TTFT: time.Hour})
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/completions", strings.NewReader(`{"stream":true,"prompt":"hi"}`))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := srv.WaitFor(wctx, func(s openaitest.Stats) bool { return s.Cancelled == 1 && s.InFlight == 0 }); err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests()[0]; got.Path != "/v1/completions" || got.Prompt != "hi" {
		t.Errorf("recorded %+v", got)
	}
}

func TestCloseUnblocksStall(t *testing.T) {
	srv := openaitest.NewServer(openaitest.Behavior{Fault: openaitest.Stall})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body) // blocks until the server lets go
			resp.Body.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.WaitFor(ctx, func(s openaitest.Stats) bool { return s.InFlight == 1 }); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	srv.Close()
	<-done
}

// chatBody returns a chat request body of exactly n bytes.
func chatBody(t *testing.T, n int) string {
	t.Helper()
	const head, tail = `{"model":"m","messages":[{"role":"user","content":"`, `"}]}`
	if n < len(head)+len(tail) {
		t.Fatalf("body of %d bytes is too small", n)
	}
	return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
}

// TestRequestBodyLimit: a body over the limit (MaxRequestBytes) is
// refused with 413 and an OpenAI error body, without being read to its end
// or recorded.
func TestRequestBodyLimit(t *testing.T) {
	srv := openaitest.NewServer(openaitest.Behavior{})
	defer srv.Close()
	const limit = 4 << 10
	openaitest.SetLimits(srv, limit, openaitest.MaxRecordedBytes)
	resp, lines := post(t, srv, chatBody(t, limit+1))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || len(lines) != 1 || !strings.Contains(lines[0], `"error"`) {
		t.Errorf("got %d %q, want 413 with an error body", resp.StatusCode, lines)
	}
	if resp, _ := post(t, srv, chatBody(t, limit)); resp.StatusCode != http.StatusOK {
		t.Errorf("a body of exactly the limit: got %d, want 200", resp.StatusCode)
	}
	if st := srv.Stats(); st.Requests != 2 || st.Faults != 1 || len(srv.Requests()) != 1 {
		t.Errorf("stats %+v, %d recorded; want 2 requests, 1 fault, 1 recorded", st, len(srv.Requests()))
	}
}

// TestRecordingBoundedInBytes: the server keeps requests until their bodies
// and headers add up to the limit (MaxRecordedBytes), then only counts
// them, so a long-running demo server does not grow without end.
func TestRecordingBoundedInBytes(t *testing.T) {
	srv := openaitest.NewServer(openaitest.Behavior{})
	defer srv.Close()
	const limit, keep = 64 << 10, 8
	openaitest.SetLimits(srv, openaitest.MaxRequestBytes, limit)
	// Headers add under 512 bytes each: 8 requests fit, a 9th does not.
	const size = limit/keep - 512
	for range keep + 2 {
		if resp, _ := post(t, srv, chatBody(t, size)); resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d, want 200", resp.StatusCode)
		}
	}
	if got := len(srv.Requests()); got != keep {
		t.Errorf("recorded %d requests, want %d", got, keep)
	}
	if st := srv.Stats(); st.Requests != keep+2 || st.Unrecorded != 2 {
		t.Errorf("stats %+v, want %d requests, 2 unrecorded", st, keep+2)
	}

	srv.DisableRecording()
	post(t, srv, `{"stream":true}`)
	if st := srv.Stats(); st.Unrecorded != 3 {
		t.Errorf("after DisableRecording: %d unrecorded, want 3", st.Unrecorded)
	}
}
