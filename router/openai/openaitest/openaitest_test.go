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
