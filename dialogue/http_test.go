package dialogue_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

func httpServer(t testing.TB, svc *dialogue.Service) *httptest.Server {
	t.Helper()
	h, err := svc.HTTPHandler(dialogue.HandlerOptions{Authenticator: testAuth(t), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func post(t *testing.T, ctx context.Context, url, tok, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestHTTPSay(t *testing.T) {
	s := httpServer(t, newService(t, &fakeCompleter{respond: replying("Well met. Buy something.")}, nil))
	resp := post(t, t.Context(), s.URL+dialogue.PathSay, tokP1, `{"utterance":{"npcId":"mara","text":"Hello","context":{"timeOfDay":"dusk"}}}`)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var r dialoguev1.SayResponse
	if err := protojson.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.GetText() != "Well met. Buy something." || r.GetCompletion().GetSessionId() == "" {
		t.Errorf("Say over HTTP = %v", &r)
	}
}

// readSSE reads "data:" events until the stream ends.
func readSSE(t *testing.T, r io.Reader) (chunks []*dialoguev1.Chunk, errEvents []string) {
	t.Helper()
	sc := bufio.NewScanner(r)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := strings.TrimPrefix(line, "data: ")
			if event == "error" {
				errEvents = append(errEvents, data)
				continue
			}
			var m dialoguev1.StreamSayResponse
			if err := protojson.Unmarshal([]byte(data), &m); err != nil {
				t.Fatalf("bad event %q: %v", data, err)
			}
			chunks = append(chunks, m.GetChunk())
		case line == "":
			event = ""
		}
	}
	return chunks, errEvents
}

func TestHTTPStreamSaySSE(t *testing.T) {
	s := httpServer(t, newService(t, &fakeCompleter{respond: replying("One. Two!")}, nil))
	resp := post(t, t.Context(), s.URL+dialogue.PathStreamSay, tokP1, `{"utterance":{"npcId":"mara","text":"Count"}}`)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	chunks, errs := readSSE(t, resp.Body)
	if len(errs) > 0 {
		t.Fatalf("error events: %v", errs)
	}
	var b strings.Builder
	for i, c := range chunks {
		if c.GetIndex() != uint32(i) {
			t.Errorf("chunk %d has index %d", i, c.GetIndex())
		}
		b.WriteString(c.GetText())
	}
	last := chunks[len(chunks)-1]
	if b.String() != "One. Two!" || !last.GetFinal() || last.GetCompletion().GetFinishReason() != dialoguev1.FinishReason_FINISH_REASON_STOP {
		t.Errorf("streamed %q, last %v", b.String(), last)
	}
}

func TestHTTPErrors(t *testing.T) {
	svc := newService(t, &fakeCompleter{respond: replying("Mm.")}, func(o *dialogue.Options) {
		o.RateLimit = dialogue.RateLimit{Rate: 0.001, Burst: 2}
		o.Limits.MaxMessageBytes = 4096
	})
	s := httpServer(t, svc)
	ctx := t.Context()
	resp := post(t, ctx, s.URL+dialogue.PathSay, tokP1, `{"utterance":{"npcId":"mara","text":"hi"}}`)
	var ok dialoguev1.SayResponse
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := protojson.Unmarshal(b, &ok); err != nil {
		t.Fatal(err)
	}
	sess := ok.GetCompletion().GetSessionId()
	tests := []struct {
		name, path, tok, body string
		status                int
		code                  string
	}{
		{"no token", dialogue.PathSay, "", `{"utterance":{"npcId":"mara","text":"hi"}}`, 401, "unauthenticated"},
		{"bad token", dialogue.PathStreamSay, "nope-nope-nope-nope-nope", `{"utterance":{"npcId":"mara","text":"hi"}}`, 401, "unauthenticated"},
		{"another player's session", dialogue.PathStreamSay, tokP2, `{"utterance":{"npcId":"mara","sessionId":"` + sess + `","text":"hi"}}`, 403, "permission_denied"},
		{"oversize utterance", dialogue.PathSay, tokP2, `{"utterance":{"npcId":"mara","text":"` + strings.Repeat("a", 2100) + `"}}`, 400, "invalid_argument"},
		{"oversize body", dialogue.PathSay, tokP2, `{"utterance":{"npcId":"mara","text":"` + strings.Repeat("a", 5000) + `"}}`, 400, "invalid_argument"},
		{"bad JSON", dialogue.PathSay, tokP2, `{"utterance":`, 400, "invalid_argument"},
		{"rate limit ok", dialogue.PathSay, tokP1, `{"utterance":{"npcId":"mara","text":"hi"}}`, 200, ""},
		{"rate limited", dialogue.PathStreamSay, tokP1, `{"utterance":{"npcId":"mara","text":"hi"}}`, 429, "resource_exhausted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, ctx, s.URL+tt.path, tt.tok, tt.body)
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, tt.status)
			}
			if tt.code == "" {
				return
			}
			var e struct{ Code, Message string }
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Code != tt.code || e.Message == "" {
				t.Errorf("error body = %+v, %v; want code %q", e, err, tt.code)
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+dialogue.PathSay, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", resp.StatusCode)
	}
}

// TestHTTPDisconnectCancelsBackend: an SSE client that goes away cancels
// the backend request.
func TestHTTPDisconnectCancelsBackend(t *testing.T) {
	llm := llmServer(t, openaitest.Behavior{Tokens: openaitest.Words(500), TokenDelay: 20 * time.Millisecond})
	svc := newRouterService(t, router.Options{Tiers: []router.Tier{{Name: router.Tier1, Replicas: []router.Replica{{Name: "llm", Model: openaiModel(t, llm)}}}}})
	s := httpServer(t, svc)
	ctx, cancel := context.WithCancel(t.Context())
	resp := post(t, ctx, s.URL+dialogue.PathStreamSay, tokP1, `{"utterance":{"npcId":"guard","text":"Talk"}}`)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	resp.Body.Close()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := llm.WaitFor(wctx, func(s openaitest.Stats) bool { return s.Cancelled == 1 && s.InFlight == 0 }); err != nil {
		t.Fatal(err)
	}
}

// TestSetupRejectsBadOptions: a server wired without an authenticator, or
// with a negative send timeout, fails when it is built, with an error
// naming the field, not with a panic or a 500 or Internal on every
// request.
func TestSetupRejectsBadOptions(t *testing.T) {
	svc := newService(t, &fakeCompleter{respond: replying("x")}, nil)
	for _, tt := range []struct {
		name  string
		opts  dialogue.HandlerOptions
		field string
	}{
		{"nil Authenticator", dialogue.HandlerOptions{}, "HandlerOptions.Authenticator"},
		{"negative SendTimeout", dialogue.HandlerOptions{Authenticator: testAuth(t), SendTimeout: -time.Second}, "HandlerOptions.SendTimeout"},
	} {
		calls := map[string]func() error{
			"HTTPHandler": func() error { _, err := svc.HTTPHandler(tt.opts); return err },
			"Interceptors": func() error {
				_, _, err := dialogue.Interceptors(tt.opts)
				return err
			},
		}
		if tt.opts.Authenticator != nil { // Register authenticates nothing itself
			calls["Register"] = func() error { return svc.Register(grpc.NewServer(), tt.opts) }
		}
		for name, call := range calls {
			err := call()
			var oe *dialogue.OptionsError
			if !errors.Is(err, dialogue.ErrInvalidOptions) || !errors.As(err, &oe) || oe.Field != tt.field {
				t.Errorf("%s: %s = %v, want an *OptionsError for %s matching ErrInvalidOptions", tt.name, name, err, tt.field)
			}
		}
	}
	_, err := dialogue.NewServer(svc, dialogue.ServerOptions{Insecure: true})
	if oe := (*dialogue.OptionsError)(nil); !errors.As(err, &oe) || oe.Field != "ServerOptions.Authenticator" || !errors.Is(err, dialogue.ErrInvalidOptions) {
		t.Errorf("NewServer without an Authenticator = %v, want an *OptionsError for ServerOptions.Authenticator", err)
	}
}
