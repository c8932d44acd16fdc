package lora_test

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/bodybroker/sdk/batching/lora"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
	"github.com/bodybroker/sdk/router/routertest"
)

func wrapped(t *testing.T, m *lora.Manager, srv *openaitest.Server) *lora.Model {
	t.Helper()
	inner, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1", HTTPClient: srv.Client(), Model: "base"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	w, err := m.Model("r0", inner)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Through the router: a request for an adapter finds it loaded on the
// replica the router chose, is sent with the adapter as its model, and the
// adapter stays pinned only while the reply streams.
func TestModelLoadsAdapterThroughRouter(t *testing.T) {
	m, srv := setup(t, 1, "smith", "queen")
	rt, err := router.New(router.Options{Tiers: []router.Tier{{
		Name:     "t",
		Replicas: []router.Replica{{Name: "r0", Model: wrapped(t, m, srv)}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx := hangCtx(t)
	for _, adapter := range []string{"smith", "queen", "smith"} {
		res, err := rt.Generate(ctx, router.Request{
			Tier: "t", Adapter: adapter,
			Messages: []router.Message{{Role: router.RoleUser, Content: "hello"}},
		})
		if err != nil {
			t.Fatalf("Generate(%s): %v", adapter, err)
		}
		if res.Text == "" {
			t.Fatalf("Generate(%s): empty reply", adapter)
		}
		if got := srv.Adapters(); !slices.Equal(got, []string{adapter}) {
			t.Errorf("after a %s request the engine holds %q", adapter, got)
		}
	}
	var models []string
	for _, r := range srv.Requests() {
		models = append(models, r.Model)
	}
	if want := []string{"smith", "queen", "smith"}; !slices.Equal(models, want) {
		t.Errorf("requests named models %q, want %q", models, want)
	}
	if st, _ := m.Status("smith"); st.InUse != 0 {
		t.Errorf("smith still pinned %d times after the replies", st.InUse)
	}
}

func TestModelStreamPinsUntilEnd(t *testing.T) {
	m, srv := setup(t, 1, "smith", "queen")
	w := wrapped(t, m, srv)
	ctx := hangCtx(t)
	s, err := w.Stream(ctx, router.Request{Adapter: "smith", Messages: []router.Message{{Role: router.RoleUser, Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status("smith"); st.InUse != 1 {
		t.Fatalf("smith pinned %d times while streaming, want 1", st.InUse)
	}
	// The only slot is pinned: another adapter cannot evict it.
	if _, err := w.Generate(ctx, router.Request{Adapter: "queen"}); !errors.Is(err, lora.ErrFull) {
		t.Errorf("Generate(queen) while smith streams = %v, want ErrFull", err)
	}
	for {
		if _, err := s.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := m.Status("smith"); st.InUse != 0 {
		t.Errorf("smith pinned %d times after the stream ended", st.InUse)
	}
	s.Close()
	if st, _ := m.Status("smith"); st.InUse != 0 {
		t.Errorf("Close after the end released twice: InUse %d", st.InUse)
	}
}

func TestModelPassThrough(t *testing.T) {
	m, srv := setup(t, 2, "smith")
	w := wrapped(t, m, srv)
	ctx := hangCtx(t)
	// No adapter, or one the manager does not manage (loaded statically):
	// sent as is, nothing loaded.
	for _, adapter := range []string{"", "static-adapter"} {
		if _, err := w.Generate(ctx, router.Request{Adapter: adapter}); err != nil {
			t.Errorf("Generate(adapter %q): %v", adapter, err)
		}
	}
	if st := srv.Stats(); st.LoRALoads != 0 || st.Requests != 2 {
		t.Errorf("stats %+v, want 2 requests and no loads", st)
	}
	// A load the engine refuses fails the request before it is sent.
	srv.SetLoRA(openaitest.LoRA{Status: http.StatusServiceUnavailable})
	if _, err := w.Stream(ctx, router.Request{Adapter: "smith"}); !errors.Is(err, lora.ErrEngine) {
		t.Errorf("Stream with a refused load = %v, want ErrEngine", err)
	}
	if srv.Stats().Requests != 2 {
		t.Error("request sent although its adapter did not load")
	}
	if _, err := m.Model("nope", w); !errors.Is(err, lora.ErrUnknownReplica) {
		t.Errorf("Model(unknown replica) = %v, want ErrUnknownReplica", err)
	}
}

// The wrapper is a router.Model like any other.
func TestModelConformance(t *testing.T) {
	routertest.TestModel(t, routertest.Harness{
		Features: routertest.AllFeatures(),
		New: func(t *testing.T, line string, tokenDelay time.Duration) router.Model {
			m, srv := setup(t, 2)
			srv.SetBehavior(openaitest.Behavior{Tokens: routertest.Words(line), TokenDelay: tokenDelay})
			return wrapped(t, m, srv)
		},
	})
}
