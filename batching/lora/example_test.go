package lora_test

import (
	"context"
	"fmt"

	"github.com/bodybroker/sdk/batching/lora"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

func ExampleManager() {
	srv := openaitest.NewServer(openaitest.Behavior{}) // stands in for vLLM
	defer srv.Close()

	m, err := lora.New(lora.Options{
		Replicas:   []lora.Replica{{Name: "gpu-0", BaseURL: srv.URL + "/v1"}},
		MaxLoaded:  2,
		HTTPClient: srv.Client(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	for _, name := range []string{"blacksmith", "queen", "guard"} {
		m.Register(lora.Adapter{Name: name, Path: "/adapters/" + name, Rank: 16})
	}

	ctx := context.Background()
	release, err := m.Acquire(ctx, "gpu-0", "blacksmith") // loaded and pinned
	if err != nil {
		fmt.Println(err)
		return
	}
	m.Load(ctx, "gpu-0", "queen")
	m.Load(ctx, "gpu-0", "guard") // full: evicts queen, not the pinned blacksmith
	release()

	fmt.Println("engine holds:", srv.Adapters())
	fmt.Println("gpu-0 holds queen:", m.Holds("gpu-0", "queen"))
	st := m.Stats()
	fmt.Println("loads", st.Loads, "evictions", st.Evictions)
	// Output:
	// engine holds: [blacksmith guard]
	// gpu-0 holds queen: false
	// loads 3 evictions 1
}
