package latency

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of sorted samples, the
// definition Histogram.Quantile approximates.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	if q <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[min(rank, len(sorted))-1]
}

func TestQuantileWithinBound(t *testing.T) {
	dists := map[string]func(r *rand.Rand) time.Duration{
		// uniform between 0 and 500 ms
		"uniform": func(r *rand.Rand) time.Duration {
			return time.Duration(r.Int64N(int64(500 * time.Millisecond)))
		},
		// exponential with a 20 ms mean
		"exponential": func(r *rand.Rand) time.Duration {
			return time.Duration(r.ExpFloat64() * float64(20*time.Millisecond))
		},
		// bimodal: a fast mode around 150 µs and a slow one around 80 ms
		"bimodal": func(r *rand.Rand) time.Duration {
			if r.IntN(10) < 8 {
				return time.Duration(150e3 + r.NormFloat64()*20e3)
			}
			return time.Duration(80e6 + r.NormFloat64()*10e6)
		},
		// tiny values exercise the exact linear buckets
		"nanoseconds": func(r *rand.Rand) time.Duration {
			return time.Duration(r.IntN(200))
		},
		// spread over eleven orders of magnitude
		"loguniform": func(r *rand.Rand) time.Duration {
			return time.Duration(math.Pow(10, r.Float64()*11))
		},
	}
	qs := []float64{0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1}
	var worst float64
	for name, gen := range dists {
		for seed := range uint64(5) {
			r := rand.New(rand.NewPCG(seed, 42))
			n := 1 + r.IntN(50_000)
			var h Histogram
			samples := make([]time.Duration, n)
			for i := range samples {
				d := max(gen(r), 0)
				samples[i] = d
				h.Record(d)
			}
			slices.Sort(samples)
			for _, q := range qs {
				got, want := h.Quantile(q), exactQuantile(samples, q)
				relErr := 0.0
				if want != 0 {
					relErr = math.Abs(float64(got-want)) / float64(want)
				} else if got != 0 {
					relErr = math.Inf(1)
				}
				worst = max(worst, relErr)
				if relErr > RelativeError {
					t.Errorf("%s seed %d n=%d: Quantile(%v) = %v, exact %v: relative error %.5f > bound %.5f",
						name, seed, n, q, got, want, relErr, RelativeError)
				}
			}
			if got, want := h.Count(), uint64(n); got != want {
				t.Errorf("%s: Count() = %d, want %d", name, got, want)
			}
			if got, want := h.Max(), samples[n-1]; got != want {
				t.Errorf("%s: Max() = %v, want %v", name, got, want)
			}
			if got, want := h.Min(), samples[0]; got != want {
				t.Errorf("%s: Min() = %v, want %v", name, got, want)
			}
			var sum time.Duration
			for _, s := range samples {
				sum += s
			}
			if got, want := h.Mean(), sum/time.Duration(n); got != want {
				t.Errorf("%s: Mean() = %v, want %v", name, got, want)
			}
		}
	}
	t.Logf("worst observed relative error: %.5f%% (bound %.5f%%)", worst*100, RelativeError*100)
}

func TestBucketBoundaries(t *testing.T) {
	// Every bucket's reported midpoint must lie within the bound of every
	// value that maps to it; check the edges of each bucket.
	for e := subBits; e < maxExp; e++ {
		for sub := range uint64(subCount) {
			width := uint64(1) << (e - subBits)
			lo := uint64(1)<<e + sub*width
			hi := lo + width - 1
			for _, v := range []uint64{lo, hi} {
				i := bucketOf(v)
				mid := bucketMid(i)
				if err := math.Abs(float64(mid)-float64(v)) / float64(v); err > RelativeError {
					t.Fatalf("value %d (bucket %d, mid %d): error %v > %v", v, i, mid, err, RelativeError)
				}
			}
			if bucketOf(lo) != bucketOf(hi) || (lo > 0 && bucketOf(lo-1) == bucketOf(lo)) {
				t.Fatalf("bucket edges wrong at e=%d sub=%d", e, sub)
			}
		}
	}
}

func TestEmptyAndExtremes(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("empty Quantile(0.5) = %v, want 0", got)
	}
	if got := h.Summary(); got != (Summary{}) {
		t.Errorf("empty Summary() = %+v, want zero", got)
	}
	h.Record(-5 * time.Second)
	if got := h.Max(); got != 0 {
		t.Errorf("negative recorded as %v, want 0", got)
	}
	huge := 200 * time.Hour
	h.Record(huge)
	if got := h.Quantile(1); got != huge {
		t.Errorf("Quantile(1) = %v, want %v", got, huge)
	}
	if got := h.Quantile(0.99); got > huge {
		t.Errorf("Quantile(0.99) = %v, above Max %v", got, huge)
	}
	if got := h.Quantile(math.NaN()); got != 0 {
		t.Errorf("Quantile(NaN) = %v, want Min 0", got)
	}
}

func TestMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var a, b, all Histogram
	var samples []time.Duration
	for i := range 20_000 {
		d := time.Duration(r.ExpFloat64() * 1e6)
		samples = append(samples, d)
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	a.Merge(&a) // merging itself is a no-op
	if got, want := a.Summary(), all.Summary(); got != want {
		t.Errorf("merged snapshot = %+v, want %+v", got, want)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.95, 0.99} {
		got, want := a.Quantile(q), exactQuantile(samples, q)
		if err := math.Abs(float64(got-want)) / float64(want); err > RelativeError {
			t.Errorf("merged Quantile(%v) = %v, exact %v", q, got, want)
		}
	}
	a.Reset()
	if got := a.Summary(); got != (Summary{}) {
		t.Errorf("after Reset, Summary() = %+v, want zero", got)
	}
}

func TestConcurrentRecord(t *testing.T) {
	var h Histogram
	const goroutines, per = 8, 5_000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				h.Record(time.Duration(g*per+i) * time.Microsecond)
			}
		})
	}
	// Readers run alongside the writers.
	wg.Go(func() {
		for range 100 {
			s := h.Summary()
			if s.P50 > s.Max || s.P99 > s.Max {
				t.Errorf("inconsistent snapshot %+v", s)
				return
			}
		}
	})
	wg.Wait()
	if got, want := h.Count(), uint64(goroutines*per); got != want {
		t.Fatalf("Count() = %d, want %d", got, want)
	}
	if got, want := h.Max(), time.Duration(goroutines*per-1)*time.Microsecond; got != want {
		t.Errorf("Max() = %v, want %v", got, want)
	}
	if got := h.Min(); got != 0 {
		t.Errorf("Min() = %v, want 0", got)
	}
	want := time.Duration(goroutines*per/2) * time.Microsecond
	if got := h.Quantile(0.5); math.Abs(float64(got-want))/float64(want) > 2*RelativeError {
		t.Errorf("Quantile(0.5) = %v, want about %v", got, want)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	d := time.Duration(1)
	b.ReportAllocs()
	for b.Loop() {
		d = d*7 + 13 // spread over buckets without a random source
		h.Record(d & (1<<32 - 1))
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(1)
		for pb.Next() {
			d = d*7 + 13
			h.Record(d & (1<<32 - 1))
		}
	})
}

func BenchmarkSnapshot(b *testing.B) {
	var h Histogram
	for i := range 100_000 {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Summary()
	}
}

func ExampleHistogram() {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := h.Summary()
	fmt.Println(s.Count, s.Min, s.Max)
	fmt.Println(s.P50.Round(10*time.Millisecond), s.P99.Round(10*time.Millisecond))
	// Output:
	// 1000 1ms 1s
	// 500ms 990ms
}
