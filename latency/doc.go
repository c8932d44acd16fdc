// Package latency holds the one latency summary that every Body Broker
// package reports in its Stats(), and the streaming sketch behind it.
//
// A [Summary] is a plain value (count, mean, min, max and p50 to p99.9) that
// can be copied, compared, logged and encoded as JSON; router.TierStats,
// dialogue.Stats, payment.Stats and eventbus.Stats all use it, so one
// function turns any of them into a dashboard row or a Prometheus metric.
// A [Histogram] records durations and answers a Summary at any time.
//
// The package uses only the standard library.
//
// # Error bound
//
// [Histogram] keeps log-linear buckets: every power-of-two range of
// nanoseconds is split into 64 equal buckets, and values below 64 ns are kept
// exactly. A quantile is answered with the midpoint of the bucket that holds
// the nearest-rank sample, so it is never further than [RelativeError]
// (1/128 ≈ 0.78 %) from the exact nearest-rank quantile of the recorded
// values, whatever their distribution. Count, Mean, Min and Max are exact.
// Values from 0 to 2^48 ns (about 78 hours) are tracked; larger ones fall in
// the last bucket, and Max still reports them exactly.
//
// # Concurrency
//
// Record is lock-free (a few atomic adds), does not allocate, and may be
// called from any number of goroutines while others read quantiles or take a
// [Summary]. Nothing in this package sorts a window of samples.
//
// # Merging
//
// Histograms from several shards, replicas or processes combine with
// [Histogram.Merge]; the merged quantiles keep the same error bound.
package latency
