package latency

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	// subBits is the number of significant bits kept below the leading one.
	// Each power-of-two range [2^e, 2^(e+1)) is split into 2^subBits
	// equal-width buckets.
	subBits  = 6
	subCount = 1 << subBits // 64 buckets per power of two
	// maxExp is the highest power of two tracked exactly. Values at or above
	// 2^maxExp nanoseconds (about 78 hours) land in the last bucket; Max still
	// reports them exactly.
	maxExp = 48
	// numBuckets: values below subCount get one bucket each (exact), then
	// subCount buckets for every exponent from subBits to maxExp-1.
	numBuckets = subCount + (maxExp-subBits)*subCount

	// RelativeError is the worst-case relative error of any quantile the
	// Histogram reports, against the exact nearest-rank quantile of the
	// recorded values: 1/128 = 0.78125 %.
	//
	// A value v ≥ 64 ns with leading bit 2^e falls in a bucket of width
	// 2^(e-6) ≤ v/64; the Histogram answers with the bucket's midpoint, at
	// most half a bucket width, v/128, from any value in it. Values below
	// 64 ns are kept exactly.
	RelativeError = 1.0 / (2 * subCount)
)

// Histogram is a streaming latency sketch: log-linear buckets (64 per power
// of two) over non-negative durations with nanosecond resolution, like
// HdrHistogram with two significant decimal digits. It never stores or sorts
// samples; memory is fixed at about 22 KiB.
//
// Quantiles are within [RelativeError] of the exact nearest-rank quantile.
//
// The zero value is an empty histogram ready for use. All methods are safe
// for concurrent use; Record is lock-free and does not allocate. A Histogram
// must not be copied after first use.
type Histogram struct {
	count   atomic.Uint64
	sum     atomic.Uint64 // nanoseconds; wraps after ~584 years of total latency
	min     atomic.Uint64 // stored as value+1 so that 0 means "unset"
	max     atomic.Uint64
	buckets [numBuckets]atomic.Uint64
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - 1 // v in [2^e, 2^(e+1)), e ≥ subBits
	if e >= maxExp {
		return numBuckets - 1
	}
	sub := (v >> (e - subBits)) & (subCount - 1)
	return subCount + (e-subBits)*subCount + int(sub)
}

// bucketMid returns the value the histogram reports for bucket i: the
// midpoint of the values it holds (exact for the linear buckets).
func bucketMid(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	j := i - subCount
	e := j/subCount + subBits
	sub := uint64(j % subCount)
	width := uint64(1) << (e - subBits)
	lo := (uint64(1) << e) + sub*width
	return lo + width/2
}

// Record adds one observation. Negative durations are recorded as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	// Extremes and sum are published before the bucket, and readers load
	// buckets first, so a reader never sees a bucket its Max does not cover.
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
	for {
		cur := h.min.Load()
		if (cur != 0 && v+1 >= cur) || h.min.CompareAndSwap(cur, v+1) {
			break
		}
	}
	h.sum.Add(v)
	h.buckets[bucketOf(v)].Add(1)
	h.count.Add(1)
}

// Count returns the number of recorded observations.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Mean returns the arithmetic mean of the recorded observations, or 0 when
// there are none. It is exact (not bucketed).
func (h *Histogram) Mean() time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Max returns the largest recorded observation, exactly, or 0.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min returns the smallest recorded observation, exactly, or 0.
func (h *Histogram) Min() time.Duration {
	m := h.min.Load()
	if m == 0 {
		return 0
	}
	return time.Duration(m - 1)
}

// Quantile returns the nearest-rank q-quantile (0 ≤ q ≤ 1) of the recorded
// observations within [RelativeError], or 0 for an empty histogram.
// Quantile(0) is Min and Quantile(1) is Max, both exact.
func (h *Histogram) Quantile(q float64) time.Duration {
	var counts [numBuckets]uint64
	total := h.load(&counts)
	return quantile(&counts, total, h.Min(), h.Max(), q)
}

func (h *Histogram) load(counts *[numBuckets]uint64) uint64 {
	var total uint64
	for i := range h.buckets {
		c := h.buckets[i].Load()
		counts[i] = c
		total += c
	}
	return total
}

// quantile finds the q-quantile in bucket counts loaded before lo and hi.
func quantile(counts *[numBuckets]uint64, total uint64, lo, hi time.Duration, q float64) time.Duration {
	if total == 0 {
		return 0
	}
	switch {
	case math.IsNaN(q) || q <= 0:
		return lo
	case q >= 1:
		return hi
	}
	rank := uint64(math.Ceil(q * float64(total)))
	if rank == 0 {
		rank = 1
	}
	var cum uint64
	for i, c := range counts {
		cum += c
		if cum >= rank {
			// Clamping to the exact extremes can only move the answer
			// closer to the true value, which lies within [Min, Max].
			return min(max(time.Duration(bucketMid(i)), lo), hi)
		}
	}
	return hi
}

// Merge adds every observation of other into h. other may be updated
// concurrently; observations it records during the merge may or may not be
// included.
func (h *Histogram) Merge(other *Histogram) {
	if other == h {
		return
	}
	for i := range other.buckets {
		if c := other.buckets[i].Load(); c != 0 {
			h.buckets[i].Add(c)
		}
	}
	h.count.Add(other.count.Load())
	h.sum.Add(other.sum.Load())
	if m := other.max.Load(); m != 0 {
		for {
			cur := h.max.Load()
			if m <= cur || h.max.CompareAndSwap(cur, m) {
				break
			}
		}
	}
	if m := other.min.Load(); m != 0 {
		for {
			cur := h.min.Load()
			if (cur != 0 && m >= cur) || h.min.CompareAndSwap(cur, m) {
				break
			}
		}
	}
}

// Reset discards all observations. Observations recorded concurrently with
// Reset may be partly kept (a count without its bucket, say); call it only
// when recording has stopped or such skew is acceptable.
func (h *Histogram) Reset() {
	for i := range h.buckets {
		h.buckets[i].Store(0)
	}
	h.count.Store(0)
	h.sum.Store(0)
	h.min.Store(0)
	h.max.Store(0)
}

// Summary describes a latency distribution at one point in time: a plain
// value that can be copied, compared and encoded. Quantiles carry the
// Histogram's [RelativeError]; Count, Mean, Min and Max are exact. The zero
// value means nothing was recorded.
type Summary struct {
	Count uint64        `json:"count"`
	Mean  time.Duration `json:"mean"`
	Min   time.Duration `json:"min"`
	Max   time.Duration `json:"max"`
	P50   time.Duration `json:"p50"`
	P90   time.Duration `json:"p90"`
	P95   time.Duration `json:"p95"`
	P99   time.Duration `json:"p99"`
	P999  time.Duration `json:"p999"`
}

// Summary returns a summary of the observations recorded so far. It reads
// the buckets once, so all quantiles describe the same set of observations.
func (h *Histogram) Summary() Summary {
	var counts [numBuckets]uint64
	total := h.load(&counts)
	if total == 0 {
		return Summary{}
	}
	lo, hi := h.Min(), h.Max()
	return Summary{
		Count: total,
		Mean:  min(max(time.Duration(h.sum.Load()/total), lo), hi),
		Min:   lo,
		Max:   hi,
		P50:   quantile(&counts, total, lo, hi, 0.50),
		P90:   quantile(&counts, total, lo, hi, 0.90),
		P95:   quantile(&counts, total, lo, hi, 0.95),
		P99:   quantile(&counts, total, lo, hi, 0.99),
		P999:  quantile(&counts, total, lo, hi, 0.999),
	}
}
