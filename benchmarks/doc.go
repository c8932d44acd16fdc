// Package benchmarks measures the eventbus side by side with other
// implementations. It is a separate module so that its comparison
// dependencies (Watermill) stay out of the SDK's go.mod.
//
//	cd benchmarks && go test -run '^$' -bench InMemory -count 10 . | tee new.txt && benchstat -col /impl new.txt
//	cd benchmarks && BB_BENCH=1 go test -run SideBySide -v .
//
// The Redis Streams end-to-end benchmarks live beside the transport, in
// eventbus/redisbus (BenchmarkStreamsEndToEnd*).
package benchmarks
