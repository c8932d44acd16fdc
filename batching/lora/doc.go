// Package lora manages LoRA adapters on vLLM replicas: it knows which
// adapters each replica has loaded, loads missing ones through vLLM's
// runtime endpoints (POST /v1/load_lora_adapter and
// /v1/unload_lora_adapter, served when vLLM runs with
// VLLM_ALLOW_RUNTIME_LORA_UPDATING=True), evicts the least recently used
// within each replica's limit, and answers the router's question "does
// this replica already hold the adapter?" ([Manager.Holds]).
//
// It replaces the original system's LoRA manager (register, load, unload,
// hot-swap, list, status, at most 20 loaded) and fixes its faults: it
// calls vLLM's real endpoints, never exceeds the limit under concurrent
// loads (a slot is reserved before the HTTP call, and an eviction's
// unload finishes before the load that replaces it starts), refuses a
// hot swap to an unregistered adapter before touching the old one, and
// makes concurrent loads of one adapter on one replica a single call
// (golang.org/x/sync/singleflight).
//
// # Usage
//
//	m, err := lora.New(lora.Options{
//		Replicas:  []lora.Replica{{Name: "gpu-0", BaseURL: "http://10.0.0.5:8000/v1"}},
//		MaxLoaded: 8, // the engine's --max-cpu-loras (or --max-loras)
//	})
//	m.Register(lora.Adapter{Name: "blacksmith", Path: "/adapters/blacksmith"})
//	release, err := m.Acquire(ctx, "gpu-0", "blacksmith") // loads if missing, pins until release
//	defer release()
//	// … send the request with model "blacksmith" …
//
// An adapter in use ([Manager.Acquire]) is never evicted; when every
// loaded adapter is in use and the replica is full, a load fails with
// [ErrFull] rather than unloading one under a running request; when the
// slots are taken by loads still in progress, it waits for one to end.
//
// # With the router
//
// Wrap each replica's model with [Manager.Model]: a request that names an
// adapter (router.Request.Adapter, filled from the tier when the request
// sets none) then has it loaded and pinned on the replica the router
// chose before it is sent, and released when the reply ends.
//
// [Manager.Holds] answers, without I/O, whether a replica holds an
// adapter now: the predicate for a replica-preference hook in the router,
// which has none yet. Until it does, give requests for an adapter an
// AffinityKey naming the adapter (or the persona that owns it), so that
// rendezvous hashing keeps each adapter on one replica while it has room.
//
// # Concurrency
//
// A Manager is safe for concurrent use. A load or unload that a caller
// abandons (its context ends) finishes in the background within
// Options.Timeout, so the manager's view stays true to the engine's;
// [Manager.Close] cancels those and waits for them.
package lora
