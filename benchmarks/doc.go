// Package benchmarks measures the eventbus side by side with other
// implementations. It is a separate module so that its comparison
// dependencies (Watermill) stay out of the SDK's go.mod.
//
//	cd benchmarks && BB_BENCH=1 go test -run SideBySide -v .
//	cd benchmarks && BB_REDIS_ADDR=127.0.0.1:6379 BB_BENCH=1 go test -run Redis -v .
package benchmarks
