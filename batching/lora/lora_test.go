package lora_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/batching/lora"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock advances one second at each read, so every load and use has
// its own time and LRU order is the order of calls.
type fakeClock struct{ n atomic.Int64 }

func (c *fakeClock) Now() time.Time { return time.Unix(1_000_000+c.n.Add(1), 0) }

// hangCtx bounds a test's waits; it only ends a hang.
func hangCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func setup(t *testing.T, maxLoaded int, names ...string) (*lora.Manager, *openaitest.Server) {
	t.Helper()
	srv := openaitest.NewServer(openaitest.Behavior{})
	t.Cleanup(srv.Close)
	srv.SetLoRA(openaitest.LoRA{MaxLoaded: maxLoaded})
	var clock fakeClock
	m, err := lora.New(lora.Options{
		Replicas:   []lora.Replica{{Name: "r0", BaseURL: srv.URL + "/v1"}},
		MaxLoaded:  maxLoaded,
		HTTPClient: srv.Client(),
		Now:        clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	for _, n := range names {
		if err := m.Register(lora.Adapter{Name: n, Path: "/adapters/" + n, Rank: 16}); err != nil {
			t.Fatal(err)
		}
	}
	return m, srv
}

func TestLoadHoldsListStatus(t *testing.T) {
	m, srv := setup(t, 4, "smith", "queen", "guard")
	ctx := hangCtx(t)
	if m.Holds("r0", "smith") {
		t.Fatal("Holds before any load")
	}
	for _, n := range []string{"smith", "queen", "smith"} {
		if err := m.Load(ctx, "r0", n); err != nil {
			t.Fatalf("Load(%s): %v", n, err)
		}
	}
	if !m.Holds("r0", "smith") || m.Holds("r0", "guard") || m.Holds("r1", "smith") {
		t.Error("Holds: want smith on r0 only")
	}
	if got, want := srv.Adapters(), []string{"queen", "smith"}; !slices.Equal(got, want) {
		t.Errorf("engine holds %q, want %q", got, want)
	}
	var names []string
	for _, st := range m.List(true) {
		names = append(names, st.Adapter.Name)
	}
	if want := []string{"queen", "smith"}; !slices.Equal(names, want) {
		t.Errorf("List(true) = %q, want %q", names, want)
	}
	if all := m.List(false); len(all) != 3 {
		t.Errorf("List(false) has %d adapters, want 3", len(all))
	}
	st, err := m.Status("smith")
	if err != nil || !slices.Equal(st.LoadedOn, []string{"r0"}) || st.Adapter.Path != "/adapters/smith" || st.LastUsed.IsZero() {
		t.Errorf("Status(smith) = %+v, %v", st, err)
	}
	if _, err := m.Status("nobody"); !errors.Is(err, lora.ErrUnknownAdapter) {
		t.Errorf("Status(nobody) = %v, want ErrUnknownAdapter", err)
	}
	s := m.Stats()
	if s.Loads != 2 || s.LoadTime.Count != 2 || len(s.Replicas) != 1 || !slices.Equal(s.Replicas[0].Loaded, []string{"queen", "smith"}) {
		t.Errorf("Stats() = %+v, want 2 loads on r0", s)
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	m, srv := setup(t, 2, "a", "b", "c", "d")
	ctx := hangCtx(t)
	for _, n := range []string{"a", "b", "a", "c"} { // a used after b: b is evicted for c
		if err := m.Load(ctx, "r0", n); err != nil {
			t.Fatalf("Load(%s): %v", n, err)
		}
	}
	if got, want := srv.Adapters(), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Errorf("engine holds %q, want %q (b least recently used)", got, want)
	}
	// A pinned adapter is never the victim, even when least recently used.
	release, err := m.Acquire(ctx, "r0", "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(ctx, "r0", "c"); err != nil { // c now most recent
		t.Fatal(err)
	}
	if err := m.Load(ctx, "r0", "a"); err != nil { // a most recent, but c is the only unpinned one anyway
		t.Fatal(err)
	}
	if err := m.Load(ctx, "r0", "d"); err != nil {
		t.Fatal(err)
	}
	if got, want := srv.Adapters(), []string{"a", "d"}; !slices.Equal(got, want) {
		t.Errorf("engine holds %q, want %q", got, want)
	}
	release2, err := m.Acquire(ctx, "r0", "d")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(ctx, "r0", "b"); !errors.Is(err, lora.ErrFull) {
		t.Errorf("Load with every slot pinned = %v, want ErrFull", err)
	}
	if err := m.Unload(ctx, "r0", "a"); !errors.Is(err, lora.ErrInUse) {
		t.Errorf("Unload(pinned) = %v, want ErrInUse", err)
	}
	release()
	release() // idempotent
	release2()
	if err := m.Load(ctx, "r0", "b"); err != nil {
		t.Errorf("Load after release: %v", err)
	}
	if s := m.Stats(); s.Evictions != 3 || srv.Stats().MaxAdapters != 2 {
		t.Errorf("evictions %d, engine max %d; want 3, 2", s.Evictions, srv.Stats().MaxAdapters)
	}
}

// Concurrent loads of one adapter on one replica are one engine call.
func TestConcurrentLoadsOfOneAdapterAreOneCall(t *testing.T) {
	m, srv := setup(t, 4, "smith")
	srv.SetLoRA(openaitest.LoRA{LoadDelay: 50 * time.Millisecond})
	ctx := hangCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() { errs <- m.Load(ctx, "r0", "smith") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.Stats().LoRALoads; got != 1 {
		t.Errorf("engine saw %d loads, want 1", got)
	}
	if s := m.Stats(); s.Loads != 1 {
		t.Errorf("Stats().Loads = %d, want 1", s.Loads)
	}
}

// The seed's race: count loaded adapters, then await the load. Many
// concurrent loads of different adapters must never hold more than
// MaxLoaded on the engine (which refuses loads beyond it).
func TestConcurrentLoadsNeverExceedLimit(t *testing.T) {
	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("npc%d", i))
	}
	m, srv := setup(t, 3, names...)
	srv.SetLoRA(openaitest.LoRA{MaxLoaded: 3, LoadDelay: 2 * time.Millisecond})
	ctx := hangCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			release, err := m.Acquire(ctx, "r0", names[i%len(names)])
			if err == nil {
				release()
			}
			if err != nil && !errors.Is(err, lora.ErrFull) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := srv.Stats().MaxAdapters; got > 3 {
		t.Errorf("engine held %d adapters at once, want ≤ 3", got)
	}
	if got := len(srv.Adapters()); got != len(m.Stats().Replicas[0].Loaded) {
		t.Errorf("engine holds %d, manager thinks %d", got, len(m.Stats().Replicas[0].Loaded))
	}
}

func TestHotSwap(t *testing.T) {
	m, srv := setup(t, 4, "old", "new")
	ctx := hangCtx(t)
	if err := m.Load(ctx, "r0", "old"); err != nil {
		t.Fatal(err)
	}
	// The seed unloaded the old adapter even when the new one was not
	// registered.
	if err := m.HotSwap(ctx, "r0", "old", "unregistered"); !errors.Is(err, lora.ErrUnknownAdapter) {
		t.Fatalf("HotSwap to unregistered = %v, want ErrUnknownAdapter", err)
	}
	if !m.Holds("r0", "old") {
		t.Fatal("old unloaded by a failed hot swap")
	}
	srv.SetLoRA(openaitest.LoRA{Status: http.StatusInternalServerError})
	if err := m.HotSwap(ctx, "r0", "old", "new"); !errors.Is(err, lora.ErrEngine) {
		t.Fatalf("HotSwap with failing load = %v, want ErrEngine", err)
	}
	if !m.Holds("r0", "old") || m.Holds("r0", "new") {
		t.Fatal("failed load changed what is held")
	}
	srv.SetLoRA(openaitest.LoRA{})
	if err := m.HotSwap(ctx, "r0", "old", "new"); err != nil {
		t.Fatal(err)
	}
	if got, want := srv.Adapters(), []string{"new"}; !slices.Equal(got, want) {
		t.Errorf("engine holds %q, want %q", got, want)
	}
}

func TestEngineErrors(t *testing.T) {
	m, srv := setup(t, 4, "a")
	ctx := hangCtx(t)
	srv.SetLoRA(openaitest.LoRA{Status: http.StatusServiceUnavailable})
	err := m.Load(ctx, "r0", "a")
	var ee *lora.EngineError
	if !errors.As(err, &ee) || ee.Status != 503 || ee.Op != "load" || !errors.Is(err, lora.ErrEngine) {
		t.Fatalf("Load = %v, want an *EngineError with 503", err)
	}
	if m.Holds("r0", "a") || m.Stats().Failures != 1 {
		t.Errorf("after a failed load: holds %v, stats %+v", m.Holds("r0", "a"), m.Stats())
	}
	for _, tt := range []struct {
		replica, adapter string
		want             error
	}{{"r9", "a", lora.ErrUnknownReplica}, {"r0", "zz", lora.ErrUnknownAdapter}} {
		if err := m.Load(ctx, tt.replica, tt.adapter); !errors.Is(err, tt.want) {
			t.Errorf("Load(%s, %s) = %v, want %v", tt.replica, tt.adapter, err, tt.want)
		}
	}
	if err := m.Register(lora.Adapter{Name: "a", Path: "/x"}); !errors.Is(err, lora.ErrDuplicate) {
		t.Errorf("Register twice = %v, want ErrDuplicate", err)
	}
}

// After a manager restart the engine may already hold an adapter, or have
// lost one: vLLM's "already loaded" and "not found" answers leave the
// state the caller asked for, so they are successes.
func TestEngineAlreadyInState(t *testing.T) {
	m, srv := setup(t, 4, "a", "b")
	ctx := hangCtx(t)
	resp, err := srv.Client().Post(srv.URL+"/v1/load_lora_adapter", "application/json", strings.NewReader(`{"lora_name":"a","lora_path":"/p"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := m.Load(ctx, "r0", "a"); err != nil {
		t.Errorf("Load of an adapter the engine already holds: %v", err)
	}
	if err := m.Load(ctx, "r0", "b"); err != nil {
		t.Fatal(err)
	}
	resp, err = srv.Client().Post(srv.URL+"/v1/unload_lora_adapter", "application/json", strings.NewReader(`{"lora_name":"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := m.Unload(ctx, "r0", "b"); err != nil || m.Holds("r0", "b") {
		t.Errorf("Unload of an adapter the engine lost: %v (holds %v)", err, m.Holds("r0", "b"))
	}
	if err := m.Unregister(ctx, "a"); err != nil || m.Holds("r0", "a") || len(srv.Adapters()) != 0 {
		t.Errorf("Unregister: %v; engine holds %q", err, srv.Adapters())
	}
}

// A caller that gives up does not leave the manager out of step with the
// engine: the load it started finishes, and is recorded.
func TestAbandonedLoadCompletes(t *testing.T) {
	m, srv := setup(t, 4, "a")
	srv.SetLoRA(openaitest.LoRA{LoadDelay: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Load(ctx, "r0", "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load(cancelled) = %v, want context.Canceled", err)
	}
	wait := hangCtx(t)
	for !m.Holds("r0", "a") {
		select {
		case <-wait.Done():
			t.Fatalf("abandoned load never recorded; engine holds %q", srv.Adapters())
		case <-time.After(time.Millisecond):
		}
	}
	if got := srv.Adapters(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("engine holds %q, want [a]", got)
	}
}

func TestCloseCancelsAndIsIdempotent(t *testing.T) {
	m, srv := setup(t, 4, "a", "b")
	srv.SetLoRA(openaitest.LoRA{LoadDelay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Load(ctx, "r0", "a") }()
	if err := srv.WaitFor(hangCtx(t), func(openaitest.Stats) bool { return m.Stats().Replicas[0].Busy == 1 }); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	m.Close() // cancels the hour-long call and waits for it
	m.Close()
	if err := m.Load(context.Background(), "r0", "b"); !errors.Is(err, lora.ErrClosed) {
		t.Errorf("Load after Close = %v, want ErrClosed", err)
	}
	if err := m.Register(lora.Adapter{Name: "c", Path: "/c"}); !errors.Is(err, lora.ErrClosed) {
		t.Errorf("Register after Close = %v, want ErrClosed", err)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, tt := range []struct {
		o     lora.Options
		field string
	}{
		{lora.Options{MaxLoaded: -1}, "MaxLoaded"},
		{lora.Options{Timeout: -time.Second}, "Timeout"},
		{lora.Options{Replicas: []lora.Replica{{BaseURL: "http://x"}}}, "Replicas[0].Name"},
		{lora.Options{Replicas: []lora.Replica{{Name: "a", BaseURL: "http://x"}, {Name: "a", BaseURL: "http://y"}}}, "Replicas[1].Name"},
		{lora.Options{Replicas: []lora.Replica{{Name: "a", BaseURL: "x:8000"}}}, "Replicas[0].BaseURL"},
	} {
		_, err := lora.New(tt.o)
		var oe *lora.OptionsError
		if !errors.As(err, &oe) || oe.Field != tt.field {
			t.Errorf("New(%+v) = %v, want an *OptionsError for %s", tt.o, err, tt.field)
		}
	}
	m, err := lora.New(lora.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if diff := cmp.Diff(lora.Stats{}, m.Stats()); diff != "" {
		t.Errorf("zero manager stats (-want +got):\n%s", diff)
	}
}
