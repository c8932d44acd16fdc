package batching_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/batching"
	"github.com/google/go-cmp/cmp"
)

// recorder is a Flush that records its batches, and blocks each flush
// while hold is set until release is called.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
	at      []time.Duration // when each flush began, since start
	start   time.Time
	hold    bool
	gate    chan struct{}
	err     error
}

func newRecorder(hold bool) *recorder {
	return &recorder{start: time.Now(), hold: hold, gate: make(chan struct{}, 100)}
}

func (r *recorder) flush(ctx context.Context, batch []string) error {
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(batch))
	r.at = append(r.at, time.Since(r.start))
	hold := r.hold
	r.mu.Unlock()
	if hold {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return r.err
}

func (r *recorder) release(n int) {
	for range n {
		r.gate <- struct{}{}
	}
}

func (r *recorder) got() ([][]string, []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches), slices.Clone(r.at)
}

func mustBatcher(t testing.TB, o batching.BatcherOptions[string]) *batching.Batcher[string] {
	t.Helper()
	b, err := batching.NewBatcher(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addAll adds items one after another, each from its own goroutine, so
// that their order in the queue is the order given; it returns a channel
// with each Add's error, in order.
func addAll(b *batching.Batcher[string], items ...string) []chan error {
	errs := make([]chan error, len(items))
	for i, it := range items {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- b.Add(context.Background(), it) }()
		synctest.Wait()
	}
	return errs
}

func TestBatcherSizeAndDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder(false)
		b := mustBatcher(t, batching.BatcherOptions[string]{Flush: rec.flush, MaxSize: 3, MaxDelay: 50 * time.Millisecond})
		defer b.Close()
		errs := addAll(b, "a", "b", "c", "d", "e")
		synctest.Wait()
		time.Sleep(50 * time.Millisecond)
		for _, ch := range errs {
			if err := <-ch; err != nil {
				t.Error(err)
			}
		}
		batches, at := rec.got()
		if diff := cmp.Diff([][]string{{"a", "b", "c"}, {"d", "e"}}, batches); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
		// The full batch goes at once; the partial one after MaxDelay.
		if diff := cmp.Diff([]time.Duration{0, 50 * time.Millisecond}, at); diff != "" {
			t.Errorf("flush times (-want +got):\n%s", diff)
		}
		st := b.Stats()
		if st.BySize != 1 || st.ByDelay != 1 || st.Items != 5 || st.Batches != 2 || st.Queued != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestBatcherMaxBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder(false)
		b := mustBatcher(t, batching.BatcherOptions[string]{
			Flush: rec.flush, MaxSize: 100, MaxBytes: 10, Size: func(s string) int { return len(s) },
		})
		defer b.Close()
		errs := addAll(b, "aaaa", "bbbb", "cccc", "dd")
		time.Sleep(time.Second)
		for _, ch := range errs {
			if err := <-ch; err != nil {
				t.Error(err)
			}
		}
		batches, _ := rec.got()
		if diff := cmp.Diff([][]string{{"aaaa", "bbbb"}, {"cccc", "dd"}}, batches); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
		if err := b.Add(context.Background(), "eleven byte"); !errors.Is(err, batching.ErrTooLarge) {
			t.Errorf("an item over MaxBytes: %v, want ErrTooLarge", err)
		}
	})
}

// TestBatcherFullPolicies checks both policies against a flush that does
// not return: FullReject refuses at once, FullBlock waits for room (or
// its context).
func TestBatcherFullPolicies(t *testing.T) {
	for _, policy := range []batching.FullPolicy{batching.FullReject, batching.FullBlock} {
		synctest.Test(t, func(t *testing.T) {
			rec := newRecorder(true)
			b := mustBatcher(t, batching.BatcherOptions[string]{Flush: rec.flush, MaxSize: 2, MaxQueued: 2, Full: policy})
			defer b.Close()
			first := addAll(b, "a", "b") // flushing, held
			queued := addAll(b, "c", "d")
			if st := b.Stats(); st.Queued != 2 || st.Flushing != 1 {
				t.Fatalf("stats %+v, want 2 queued, 1 flushing", st)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := b.Add(ctx, "e")
			cancel()
			switch policy {
			case batching.FullReject:
				if !errors.Is(err, batching.ErrFull) || b.Stats().Rejected != 1 {
					t.Errorf("reject: %v, want ErrFull", err)
				}
			case batching.FullBlock:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("block: %v, want the context's deadline", err)
				}
				// With room made, a blocked Add goes through.
				late := addAll(b, "f")
				rec.release(1) // a, b done; c, d start
				synctest.Wait()
				if st := b.Stats(); st.Queued != 1 {
					t.Errorf("after room was made: %d queued, want 1 (f)", st.Queued)
				}
				rec.release(2)
				if err := <-late[0]; err != nil {
					t.Error(err)
				}
			}
			rec.release(2)
			for _, ch := range append(first, queued...) {
				if err := <-ch; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestBatcherShutdown checks that Shutdown flushes the open batch at once,
// waits for it, and that later calls get ErrClosed.
func TestBatcherShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder(false)
		b := mustBatcher(t, batching.BatcherOptions[string]{Flush: rec.flush, MaxSize: 10, MaxDelay: time.Hour})
		errs := addAll(b, "a", "b")
		if err := b.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, ch := range errs {
			if err := <-ch; err != nil {
				t.Error(err)
			}
		}
		batches, at := rec.got()
		if diff := cmp.Diff([][]string{{"a", "b"}}, batches); diff != "" || at[0] != 0 {
			t.Errorf("batches (-want +got):\n%s at %v", diff, at)
		}
		if err := b.Add(context.Background(), "c"); !errors.Is(err, batching.ErrClosed) {
			t.Errorf("Add after Shutdown: %v", err)
		}
		if err := b.Shutdown(context.Background()); !errors.Is(err, batching.ErrClosed) {
			t.Errorf("second Shutdown: %v", err)
		}
		if st := b.Stats(); st.ByShutdown != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestBatcherShutdownTimeout checks that Shutdown gives up at its context's
// end, cancelling a flush that does not return by itself and dropping what
// was still queued.
func TestBatcherShutdownTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder(true)
		b := mustBatcher(t, batching.BatcherOptions[string]{Flush: rec.flush, MaxSize: 1})
		errs := addAll(b, "a", "b")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown: %v, want the deadline", err)
		}
		if err := <-errs[0]; !errors.Is(err, context.Canceled) {
			t.Errorf("the flush in progress: %v, want its context cancelled", err)
		}
		if err := <-errs[1]; !errors.Is(err, batching.ErrClosed) {
			t.Errorf("the queued item: %v, want ErrClosed", err)
		}
		if st := b.Stats(); st.Dropped != 1 {
			t.Errorf("stats %+v, want 1 dropped", st)
		}
		if err := b.Close(); !errors.Is(err, batching.ErrClosed) {
			t.Errorf("Close after a Shutdown that closed: %v", err)
		}
	})
}

// TestBatcherFlushErrorAndPanic checks that Flush's error, or its panic,
// reaches every Add of the batch.
func TestBatcherFlushErrorAndPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		calls := 0
		b := mustBatcher(t, batching.BatcherOptions[string]{MaxSize: 2, Flush: func(ctx context.Context, batch []string) error {
			calls++
			if calls == 1 {
				return boom
			}
			panic("flush bug")
		}})
		defer b.Close()
		errs := addAll(b, "a", "b", "c", "d")
		for i, ch := range errs {
			err := <-ch
			want := boom
			if i >= 2 {
				want = batching.ErrFlushPanicked
			}
			if !errors.Is(err, want) {
				t.Errorf("item %d: %v, want %v", i, err, want)
			}
		}
		if st := b.Stats(); st.Failed != 2 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestNewBatcherOptions(t *testing.T) {
	flush := func(context.Context, []string) error { return nil }
	for _, tc := range []struct {
		field string
		o     batching.BatcherOptions[string]
	}{
		{"Flush", batching.BatcherOptions[string]{}},
		{"MaxSize", batching.BatcherOptions[string]{Flush: flush, MaxSize: -1}},
		{"MaxDelay", batching.BatcherOptions[string]{Flush: flush, MaxDelay: -1}},
		{"Full", batching.BatcherOptions[string]{Flush: flush, Full: 7}},
		{"Size", batching.BatcherOptions[string]{Flush: flush, MaxBytes: 100}},
		{"MaxQueued", batching.BatcherOptions[string]{Flush: flush, MaxSize: 10, MaxQueued: 5}},
	} {
		_, err := batching.NewBatcher(tc.o)
		var oe *batching.OptionsError
		if !errors.As(err, &oe) || oe.Field != tc.field {
			t.Errorf("%s: got %v, want an *OptionsError for it", tc.field, err)
		}
	}
}

// BenchmarkBatcherAdd measures items through a Batcher with a no-op
// Flush, from many goroutines: the cost the batcher adds per item.
func BenchmarkBatcherAdd(b *testing.B) {
	bt, err := batching.NewBatcher(batching.BatcherOptions[int]{
		Flush: func(context.Context, []int) error { return nil }, MaxSize: 64, MaxDelay: time.Millisecond,
		MaxConcurrentFlushes: 4,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer bt.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(64)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bt.Add(ctx, 1); err != nil {
				panic(fmt.Sprint(err))
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "items/s")
	st := bt.Stats()
	b.ReportMetric(float64(st.Items)/float64(max(st.Batches, 1)), "items/batch")
}

// TestBatcherConcurrent pushes items from many goroutines through a small
// blocking queue and several concurrent flushes: every item is flushed
// exactly once, no batch exceeds MaxSize, and the queue bound holds.
func TestBatcherConcurrent(t *testing.T) {
	var mu sync.Mutex
	seen := make(map[int]int)
	maxBatch := 0
	b, err := batching.NewBatcher(batching.BatcherOptions[int]{
		MaxSize: 16, MaxQueued: 32, MaxConcurrentFlushes: 3, MaxDelay: time.Millisecond,
		Flush: func(ctx context.Context, batch []int) error {
			mu.Lock()
			defer mu.Unlock()
			maxBatch = max(maxBatch, len(batch))
			for _, v := range batch {
				seen[v]++
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var peak int
	var peakMu sync.Mutex
	for g := range 40 {
		wg.Go(func() {
			for i := range 50 {
				if err := b.Add(context.Background(), g*1000+i); err != nil {
					t.Error(err)
					return
				}
				q := b.Stats().Queued
				peakMu.Lock()
				peak = max(peak, q)
				peakMu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2000 {
		t.Errorf("%d distinct items flushed, want 2000", len(seen))
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("item %d flushed %d times", v, n)
		}
	}
	if maxBatch > 16 || peak > 32 {
		t.Errorf("largest batch %d (max 16), queue peak %d (max 32)", maxBatch, peak)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b2 := mustBatcher(t, batching.BatcherOptions[string]{Flush: func(context.Context, []string) error { return nil }})
	defer b2.Close()
	if err := b2.Add(ctx, "x"); !errors.Is(err, context.Canceled) || b2.Stats().Added != 0 {
		t.Errorf("Add with a done context: %v, added %d; want context.Canceled and nothing queued", err, b2.Stats().Added)
	}
}
