package vllmmetrics_test

import (
	"fmt"
	"os"
	"time"

	"github.com/bodybroker/sdk/batching/vllmmetrics"
)

func ExampleParse() {
	f, err := os.Open("testdata/vllm.txt")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	s, err := vllmmetrics.Parse(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: %d running, %d waiting, KV cache %.0f%% used, %d preemptions\n",
		s.Engine, s.Running, s.Waiting, s.KVCacheUsage*100, s.Preemptions)
	fmt.Printf("mean TTFT %v, mean ITL %v, prefix-cache hit rate %.0f%%\n",
		s.TTFT.Mean().Round(time.Millisecond), s.ITL.Mean().Round(100*time.Microsecond), 100*float64(s.PrefixCacheHits)/float64(s.PrefixCacheQueries))
	fmt.Println("adapters:", s.RunningAdapters, "of at most", s.MaxLoRAs)
	// Output:
	// vllm: 37 running, 4 waiting, KV cache 62% used, 12 preemptions
	// mean TTFT 60ms, mean ITL 20ms, prefix-cache hit rate 65%
	// adapters: [blacksmith queen] of at most 4
}
