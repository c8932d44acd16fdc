package openai_test

import (
	"log"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
)

// Two vLLM replicas serving a base model and its LoRA adapters as one tier.
// vLLM addresses an adapter by model name, so the tier's Adapter (or a
// request's) is sent as "model".
func ExampleNew() {
	var replicas []router.Replica
	for _, url := range []string{"http://vllm-0:8000/v1", "http://vllm-1:8000/v1"} {
		m, err := openai.New(openai.Options{
			BaseURL: url,
			Model:   "meta-llama/Llama-3.1-8B-Instruct",
			APIKey:  "token-abc123", // vllm serve --api-key
			// vllm serve --scheduling-policy priority: send the router's
			// importance-based priority.
			SendPriority: true,
			Timeout:      30 * time.Second,
		})
		if err != nil {
			log.Fatal(err)
		}
		defer m.Close()
		replicas = append(replicas, router.Replica{Name: url, Model: m})
	}
	r, err := router.New(router.Options{
		Tiers: []router.Tier{
			{
				Name: router.Tier2, Replicas: replicas, Adapter: "npc-elite",
				TTFTTarget: 300 * time.Millisecond, MaxConcurrent: 32, MaxQueued: 64,
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
}
