package dialogue_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
	"github.com/bodybroker/sdk/router/scripted"
)

// llmServer starts an OpenAI-compatible test server.
func llmServer(t testing.TB, b openaitest.Behavior) *openaitest.Server {
	t.Helper()
	s := openaitest.NewServer(b)
	t.Cleanup(s.Close)
	return s
}

func openaiModel(t testing.TB, s *openaitest.Server) *openai.Model {
	t.Helper()
	m, err := openai.New(openai.Options{BaseURL: s.URL + "/v1", Model: "npc-7b", DisableRetries: true, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// newRouterService builds a Service over a real router with the options
// given.
func newRouterService(t testing.TB, opts router.Options) *dialogue.Service {
	t.Helper()
	svc, _ := newRouterServiceAnd(t, opts)
	return svc
}

// newRouterServiceAnd is newRouterService that also returns the router,
// closed when the test ends.
func newRouterServiceAnd(t testing.TB, opts router.Options) (*dialogue.Service, *router.Router) {
	t.Helper()
	opts.Logger = discardLogger()
	r, err := router.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	ps, err := dialogue.NewPersonas(testPersonas...)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := dialogue.New(dialogue.Options{
		Completer: dialogue.RouterCompleter(r), Personas: ps,
		RateLimit: dialogue.RateLimit{Disable: true}, Logger: discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc, r
}

// TestCancellationReachesBackend: a client that cancels its stream over a
// real TCP connection makes the router cancel the HTTP request to the
// OpenAI-compatible server, which observes it.
func TestCancellationReachesBackend(t *testing.T) {
	llm := llmServer(t, openaitest.Behavior{Tokens: openaitest.Words(500), TokenDelay: 20 * time.Millisecond})
	svc := newRouterService(t, router.Options{Tiers: []router.Tier{{Name: router.Tier1, Replicas: []router.Replica{{Name: "llm", Model: openaiModel(t, llm)}}}}})
	h := serve(t, svc, true, nil)

	ctx, cancel := context.WithCancel(as(t.Context(), tokP1))
	defer cancel()
	st, err := h.client.StreamSay(ctx, &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{NpcId: "guard", Text: "Talk to me."}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil || m.GetChunk().GetText() == "" {
		t.Fatalf("first chunk = %v, %v", m, err)
	}
	cancel()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	start := time.Now()
	if err := llm.WaitFor(wctx, func(s openaitest.Stats) bool { return s.Cancelled == 1 && s.InFlight == 0 }); err != nil {
		t.Fatal(err)
	}
	t.Logf("backend saw the cancellation %v after the client cancelled", time.Since(start))
	if st := llm.Stats(); st.Completed != 0 {
		t.Errorf("backend completed %d requests, want 0", st.Completed)
	}
}

// TestAllTiersDownFallbackLine: every tier answers 503, so the router gives
// up, and the NPC says one of its own fallback lines; the reply says so
// and the player sees no error.
func TestAllTiersDownFallbackLine(t *testing.T) {
	down := llmServer(t, openaitest.Behavior{Status: 503, ErrorMessage: "overloaded"})
	m := openaiModel(t, down)
	svc := newRouterService(t, router.Options{
		Tiers: []router.Tier{
			{Name: router.Tier2, Replicas: []router.Replica{{Name: "mid", Model: m}}},
			{Name: router.Tier1, Replicas: []router.Replica{{Name: "small", Model: m}}},
		},
		Fallbacks: [][]string{{router.Tier2, router.Tier1}},
	})
	h := serve(t, svc, true, nil)
	st, err := h.client.StreamSay(as(t.Context(), tokP1), &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{
		NpcId: "mara", Text: "Anyone there?", Responsibility: "quest_dialogue"}})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	var comp *dialoguev1.Completion
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("player saw an error for a backend outage: %v", err)
		}
		text.WriteString(m.GetChunk().GetText())
		if m.GetChunk().GetFinal() {
			comp = m.GetChunk().GetCompletion()
		}
	}
	if !slices.Contains(testPersonas[0].FallbackLines, text.String()) {
		t.Errorf("reply %q is not one of Mara's fallback lines", text.String())
	}
	if !comp.GetFallback() || comp.GetFinishReason() != dialoguev1.FinishReason_FINISH_REASON_FALLBACK {
		t.Errorf("completion = %v, want fallback", comp)
	}
	// 503 is saturation to the router, so it records a downgrade.
	if r := comp.GetReceipt(); r.GetAttempts() != 2 || r.GetTier() != router.Tier1 || len(r.GetReasons()) < 2 {
		t.Errorf("receipt = %v, want 2 attempts ending on tier1 with the reasons", r)
	}
	if n := down.Stats().Requests; n != 2 {
		t.Errorf("backend saw %d requests, want 2 (one per tier)", n)
	}
}

// TestScriptedLastTier: with router/scripted as the last tier, an outage
// of the model tiers gives a scripted line, reported as such.
func TestScriptedLastTier(t *testing.T) {
	down := llmServer(t, openaitest.Behavior{Status: 503})
	lines, err := scripted.New(scripted.Options{NPCLines: map[string][]string{"mara": {"The tide waits for no one."}}})
	if err != nil {
		t.Fatal(err)
	}
	svc := newRouterService(t, router.Options{
		Tiers: []router.Tier{
			{Name: router.Tier1, Replicas: []router.Replica{{Name: "small", Model: openaiModel(t, down)}}},
			{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}},
		},
		Fallbacks: [][]string{{router.Tier1, "scripted"}},
	})
	h := serve(t, svc, false, nil)
	r, err := h.client.Say(as(t.Context(), tokP1), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	c := r.GetCompletion()
	if r.GetText() != "The tide waits for no one." || c.GetFinishReason() != dialoguev1.FinishReason_FINISH_REASON_SCRIPTED ||
		c.GetFallback() || c.GetTier() != "scripted" {
		t.Errorf("Say = %q, %v", r.GetText(), c)
	}
}

// TestRealRouterStreams: tokens from an OpenAI-compatible server reach the
// client as they are generated, with the model's name and usage.
func TestRealRouterStreams(t *testing.T) {
	llm := llmServer(t, openaitest.Behavior{Tokens: []string{"Aye", ".", " Ask", " away", "."}, PromptTokens: 77})
	svc := newRouterService(t, router.Options{
		Tiers: []router.Tier{
			{Name: router.Tier1, Adapter: "guard-lora",
				Replicas: []router.Replica{{Name: "llm", Model: openaiModel(t, llm)}}},
		},
	})
	h := serve(t, svc, true, nil)
	r, err := h.client.Say(as(t.Context(), tokSvc), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{
		NpcId: "guard", Text: "Can I ask?", PlayerId: "p9", Adapter: "special-lora"}})
	if err != nil {
		t.Fatal(err)
	}
	c := r.GetCompletion()
	if r.GetText() != "Aye. Ask away." || c.GetUsage().GetPromptTokens() != 77 || c.GetTier() != router.Tier1 {
		t.Errorf("Say = %q, %v", r.GetText(), c)
	}
	reqs := llm.Requests()
	if len(reqs) != 1 || reqs[0].Model != "special-lora" || !reqs[0].Stream {
		t.Fatalf("backend requests = %+v", reqs)
	}
	for _, m := range reqs[0].Messages {
		if m.Role == "system" && strings.Contains(m.Content, "Can I ask?") {
			t.Errorf("player text in the system role: %q", m.Content)
		}
	}
}

// TestCancellationReachesBackendEveryPath: however the client stops a reply
// over gRPC — cancelling a unary Say, cancelling or dropping a Converse
// stream, or barging in — the OpenAI-compatible server sees its request
// cancelled and nothing runs on.
func TestCancellationReachesBackendEveryPath(t *testing.T) {
	say := func(text string) *dialoguev1.ConverseRequest {
		return &dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{NpcId: "guard", Text: text}}}
	}
	tests := []struct {
		name string
		// run starts a reply, waits for the backend to be busy with
		// it (busy), then stops it.
		run func(t *testing.T, h *harness, busy func())
	}{
		{"unary Say cancelled", func(t *testing.T, h *harness, busy func()) {
			ctx, cancel := context.WithCancel(as(t.Context(), tokP1))
			errc := make(chan error, 1)
			go func() {
				_, err := h.client.Say(ctx, &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "guard", Text: "Talk."}})
				errc <- err
			}()
			busy()
			cancel()
			if err := <-errc; status.Code(err) != codes.Canceled {
				t.Errorf("Say = %v, want Canceled", err)
			}
		}},
		{"Converse stream cancelled", func(t *testing.T, h *harness, busy func()) {
			ctx, cancel := context.WithCancel(as(t.Context(), tokP1))
			st, err := h.client.Converse(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Send(say("Talk."))
			busy()
			cancel()
			for { // chunks already received may come first
				if _, err := st.Recv(); err != nil {
					if status.Code(err) != codes.Canceled {
						t.Errorf("Converse after cancel = %v, want Canceled", err)
					}
					break
				}
			}
		}},
		{"Converse connection dropped", func(t *testing.T, h *harness, busy func()) {
			st, err := h.client.Converse(as(t.Context(), tokP1))
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Send(say("Talk."))
			busy()
			_ = h.conn.Close()
		}},
		{"Converse barge-in", func(t *testing.T, h *harness, busy func()) {
			st, err := h.client.Converse(as(t.Context(), tokP1))
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Send(say("Talk."))
			busy()
			_ = st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Interrupt{Interrupt: &dialoguev1.Interrupt{}}})
			for {
				m, err := st.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if m.GetChunk().GetFinal() {
					if got := m.GetChunk().GetCompletion().GetFinishReason(); got != dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED {
						t.Errorf("finish reason %v, want INTERRUPTED", got)
					}
					break
				}
			}
			_ = st.CloseSend()
			if _, err := st.Recv(); err != io.EOF {
				t.Errorf("after CloseSend: %v, want io.EOF", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			llm := llmServer(t, openaitest.Behavior{Tokens: openaitest.Words(2000), TokenDelay: 20 * time.Millisecond})
			svc := newRouterService(t, router.Options{Tiers: []router.Tier{{Name: router.Tier1, Replicas: []router.Replica{{Name: "llm", Model: openaiModel(t, llm)}}}}})
			h := serve(t, svc, true, nil)
			wait := func(what string, cond func(openaitest.Stats) bool) {
				t.Helper()
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				if err := llm.WaitFor(ctx, cond); err != nil {
					t.Fatalf("waiting for the backend to %s: %v (stats %+v)", what, err, llm.Stats())
				}
			}
			tt.run(t, h, func() { wait("start", func(s openaitest.Stats) bool { return s.InFlight == 1 }) })
			wait("see the cancellation", func(s openaitest.Stats) bool { return s.Cancelled == 1 && s.InFlight == 0 })
			if s := llm.Stats(); s.Completed != 0 || s.Requests != 1 {
				t.Errorf("backend stats %+v, want one request, not completed", s)
			}
		})
	}
}
