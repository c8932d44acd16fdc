package batching_test

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/bodybroker/sdk/batching"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/scripted"
)

// A Limiter goes on a router replica; the router asks it before each
// request starts there and tells it how each request went.
func ExampleLimiter() {
	lim, err := batching.NewLimiter(batching.LimiterOptions{
		InitialWindow: 8,
		MaxTokens:     32_000, // the engine's KV capacity, say
	})
	if err != nil {
		panic(err)
	}
	model, err := scripted.New(scripted.Options{})
	if err != nil {
		panic(err)
	}
	r, err := router.New(router.Options{Tiers: []router.Tier{{
		Name:     router.Tier2,
		Replicas: []router.Replica{{Name: "gpu-0", Model: model, Limiter: lim}},
	}}})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	if _, err := r.Generate(context.Background(), router.Request{FairnessKey: "player-1", PromptTokens: 600, MaxTokens: 60}); err != nil {
		panic(err)
	}
	st := lim.Stats()
	fmt.Println("admitted:", st.Admitted, "in flight:", st.InFlight, "window:", st.Window)
	// Output: admitted: 1 in flight: 0 window: 8
}

// A Batcher turns single calls into batched ones; each item carries where
// its result goes.
func ExampleBatcher() {
	type item struct {
		text string
		out  *string
	}
	b, err := batching.NewBatcher(batching.BatcherOptions[item]{
		MaxSize: 8,
		Flush: func(ctx context.Context, batch []item) error {
			for _, it := range batch { // one call for the whole batch
				*it.out = strings.ToUpper(it.text)
			}
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	words := []string{"one", "two", "three"}
	out := make([]string, len(words))
	var wg sync.WaitGroup
	for i, w := range words {
		wg.Go(func() {
			if err := b.Add(context.Background(), item{text: w, out: &out[i]}); err != nil {
				panic(err)
			}
		})
	}
	wg.Wait()
	if err := b.Shutdown(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(out)
	// Output: [ONE TWO THREE]
}
