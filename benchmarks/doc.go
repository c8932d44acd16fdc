// Package benchmarks measures the SDK side by side with the libraries
// studios use today. It is a separate module so that its comparison
// dependencies (Watermill, watermill-redisstream, openai-go, go-openai)
// stay out of the SDK's go.mod.
//
// In-memory eventbus against Watermill's gochannel and a Go channel:
//
//	cd benchmarks && go test -run '^$' -bench InMemory -count 10 . | tee new.txt && benchstat -col /impl new.txt
//	cd benchmarks && BB_BENCH=1 go test -run SideBySide -v .
//
// A 50-token streamed chat completion from one loopback server through
// router/openai, github.com/openai/openai-go/v3 and
// github.com/sashabaranov/go-openai (BenchmarkLLMStream):
//
//	cd benchmarks && go test -run '^$' -bench LLMStream -benchtime 2000x -count 6 . | tee llm.txt && benchstat -col /impl llm.txt
//
// eventbus Redis Streams (eventbus/redisbus) against watermill-redisstream
// on the same Redis, end to end and acknowledged (BenchmarkRedisStreams;
// skipped without Redis, see internal/servicetest):
//
//	cd benchmarks && BB_REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench RedisStreams -benchtime 1x -count 5 .
//
// The router's OpenAI-compatible gateway (router/gateway): its added
// latency over a direct client, TTFT and end of a 50-token stream at 1 and
// 50 streams (TestGatewaySideBySide, BenchmarkGatewayStream); the same
// beside Portkey's gateway on Node (benchmarks/portkey/run.sh, which
// installs it and skips without node); 5,000 concurrent streams through
// one gateway process, memory per stream and errors
// (BenchmarkGatewayStreams); and the official openai-go client against it
// (TestOpenAIGo*):
//
//	cd benchmarks && BB_BENCH=1 go test -run GatewaySideBySide -v .
//	benchmarks/portkey/run.sh
//	cd benchmarks && go test -run '^$' -bench GatewayStreams -benchtime 1x .
//
// CI runs every benchmark once: go test -run '^$' -bench . -benchtime 1x ./...
// More Redis Streams benchmarks of the transport alone live beside it, in
// eventbus/redisbus (BenchmarkStreamsEndToEnd*).
package benchmarks
