package scripted_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/routertest"
	"github.com/bodybroker/sdk/router/scripted"
)

func collect(t *testing.T, s router.Stream) []router.Delta {
	t.Helper()
	defer s.Close()
	var out []router.Delta
	for {
		d, err := s.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
}

func TestChoice(t *testing.T) {
	m, err := scripted.New(scripted.Options{
		Lines:    map[router.Responsibility][]string{router.Greeting: {"Hi."}},
		NPCLines: map[string][]string{"smith": {"Need a blade?"}},
		Default:  []string{"Hm."},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		req  router.Request
		want string
	}{
		{router.Request{Responsibility: router.Greeting}, "Hi."},
		{router.Request{Responsibility: router.Greeting, NPC: "smith"}, "Need a blade?"},
		{router.Request{NPC: "baker"}, "Hm."},
		{router.Request{Responsibility: router.StoryCritical}, "Hm."},
	}
	for _, tt := range tests {
		if got := m.Line(tt.req); got != tt.want {
			t.Errorf("Line(%+v) = %q, want %q", tt.req, got, tt.want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	m, _ := scripted.New(scripted.Options{Default: []string{"a.", "b.", "c.", "d."}})
	seen := map[string]bool{}
	for i := range 50 {
		req := router.Request{NPC: fmt.Sprint("npc", i), Messages: []router.Message{{Role: router.RoleUser, Content: "hello"}}}
		first := m.Line(req)
		for range 3 {
			if got := m.Line(req); got != first {
				t.Fatalf("Line changed for the same request: %q then %q", first, got)
			}
		}
		seen[first] = true
	}
	if len(seen) < 3 {
		t.Errorf("50 NPCs used only %d of 4 lines", len(seen))
	}
}

func TestStreamWords(t *testing.T) {
	m, _ := scripted.New(scripted.Options{Default: []string{"Keep  your voice\ndown."}})
	got := collect(t, mustStream(t, m, router.Request{Messages: []router.Message{{Content: "one two"}}}))
	want := []router.Delta{
		{Text: "Keep  "}, {Text: "your "}, {Text: "voice\n"},
		{Text: "down.", FinishReason: router.FinishScripted, Usage: &router.Usage{PromptTokens: 2, CompletionTokens: 4, Reported: true}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deltas (-want +got):\n%s", diff)
	}
	got = collect(t, mustStream(t, m, router.Request{MaxTokens: 2}))
	if len(got) != 2 || got[1].FinishReason != router.FinishLength {
		t.Errorf("MaxTokens 2: %+v", got)
	}
	resp, err := m.Generate(context.Background(), router.Request{Model: "stand-in"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&router.Response{Text: "Keep  your voice\ndown.", FinishReason: router.FinishScripted, Usage: router.Usage{CompletionTokens: 4, Reported: true}, Model: "stand-in"}, resp); diff != "" {
		t.Errorf("Generate (-want +got):\n%s", diff)
	}
}

func mustStream(t *testing.T, m *scripted.Model, req router.Request) router.Stream {
	t.Helper()
	s, err := m.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDelaysAndCancel(t *testing.T) {
	m, _ := scripted.New(scripted.Options{Default: []string{"a b c"}, FirstTokenDelay: 5 * time.Millisecond, TokenDelay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := m.Stream(ctx, router.Request{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	if d, err := s.Recv(); err != nil || d.Text != "a " {
		t.Fatalf("first: %+v %v", d, err)
	}
	if time.Since(start) < 5*time.Millisecond {
		t.Error("first token came before FirstTokenDelay")
	}
	go cancel()
	if _, err := s.Recv(); !errors.Is(err, context.Canceled) {
		t.Errorf("Recv after cancel = %v", err)
	}
	if _, err := m.Stream(ctx, router.Request{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Stream with a cancelled context = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []scripted.Options{
		{Lines: map[router.Responsibility][]string{router.Greeting: {}}},
		{NPCLines: map[string][]string{"x": {"  "}}},
		{TokenDelay: -1},
	} {
		if _, err := scripted.New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func TestDefaultLinesCoverDefaultPolicy(t *testing.T) {
	lines := scripted.DefaultLines()
	for r := range router.DefaultResponsibilityTiers() {
		if len(lines[r]) == 0 {
			t.Errorf("no default line for %s", r)
		}
	}
	m, _ := scripted.New(scripted.Options{})
	if got := m.Line(router.Request{}); !strings.Contains(got, "moment") {
		t.Errorf("default line %q", got)
	}
}

func ExampleModel_Line() {
	m, _ := scripted.New(scripted.Options{NPCLines: map[string][]string{"smith": {"Need a blade sharpened?"}}})
	fmt.Println(m.Line(router.Request{NPC: "smith", Responsibility: router.Greeting}))
	fmt.Println(m.Line(router.Request{Responsibility: router.Farewell, NPC: "innkeeper"}))
	// Output:
	// Need a blade sharpened?
	// Until next time.
}

func TestConformance(t *testing.T) {
	routertest.TestModel(t, routertest.Harness{
		Features: routertest.AllFeatures(),
		New: func(t *testing.T, line string, tokenDelay time.Duration) router.Model {
			m, err := scripted.New(scripted.Options{Default: []string{line}, Lines: map[router.Responsibility][]string{}, TokenDelay: tokenDelay})
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
	})
}
