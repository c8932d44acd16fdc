// Command gateway serves the Body Broker router as an OpenAI-compatible
// API, so that any OpenAI client (the Python or TypeScript SDK, curl, a
// test harness) gets tier routing and fallback by pointing its base URL at
// it. The model servers are loopback stand-ins (router/openai/openaitest):
// tier2's is down, so its lines fall back to tier1; scripted lines are the
// last resort.
//
//	go run ./examples/gateway                # serves on 127.0.0.1:8080 until Ctrl-C
//	go run ./examples/gateway -once          # streams one NPC line through itself and exits
//
// Then, for example:
//
//	curl -N http://127.0.0.1:8080/v1/chat/completions \
//	  -H 'Authorization: Bearer sk-bodybroker-demo-key' -H 'X-BB-NPC: mira' \
//	  -d '{"model":"npc/quest_dialogue","stream":true,"messages":[{"role":"user","content":"Any work?"}]}'
//
// Replace the stand-ins with openai.Options{BaseURL: "http://<vllm>:8000/v1"}
// to serve real models.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
	"github.com/bodybroker/sdk/router/scripted"
)

const demoKey = "sk-bodybroker-demo-key"

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve on")
	once := flag.Bool("once", false, "stream one line through the gateway, print it and exit")
	flag.Parse()
	if err := run(*addr, *once); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(addr string, once bool) error {
	// Stand-in model servers: tier2's answers 503, tier1's streams a line
	// at a model's pace.
	down := openaitest.NewServer(openaitest.Behavior{Status: http.StatusServiceUnavailable, ErrorMessage: "warming up"})
	defer down.Close()
	up := openaitest.NewServer(openaitest.Behavior{
		Tokens: strings.SplitAfter("The mill road floods at dusk; take the ridge path and ask for Tomas.", " "),
		TTFT:   40 * time.Millisecond, TokenDelay: 15 * time.Millisecond,
	})
	defer up.Close()
	mid, err := openai.New(openai.Options{BaseURL: down.URL + "/v1"})
	if err != nil {
		return err
	}
	defer mid.Close()
	small, err := openai.New(openai.Options{BaseURL: up.URL + "/v1"})
	if err != nil {
		return err
	}
	defer small.Close()
	lines, err := scripted.New(scripted.Options{})
	if err != nil {
		return err
	}
	r, err := router.New(router.Options{
		Tiers: []router.Tier{
			{Name: router.Tier2, ModelName: "npc-8b-elite", TTFTTarget: 300 * time.Millisecond,
				Replicas: []router.Replica{{Name: "gpu-0", Model: mid}}},
			{Name: router.Tier1, ModelName: "npc-3b", TTFTTarget: 150 * time.Millisecond,
				Replicas: []router.Replica{{Name: "gpu-1", Model: small}}},
			{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}},
		},
		Fallbacks: [][]string{{router.Tier2, router.Tier1, "scripted"}},
	})
	if err != nil {
		return err
	}
	defer r.Close()

	// One API key, for the service "demo", limited to 50 requests/s.
	demo := identity.Identity{Kind: identity.KindService, ID: "demo"}
	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{demoKey: demo})
	if err != nil {
		return err
	}
	g, err := gateway.New(gateway.Options{
		Router:        r,
		Aliases:       map[string]gateway.Route{"gpt-4o-mini": {Tier: router.Tier1}},
		Authenticator: auth,
		Keys:          map[identity.Identity]gateway.KeyPolicy{demo: {RequestsPerSecond: 50, Burst: 100}},
	})
	if err != nil {
		return err
	}
	defer g.Close()
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String() + "/v1"

	if once {
		err := streamOne(base)
		srv.Close()
		<-served
		return err
	}
	fmt.Printf("OpenAI-compatible API on %s (API key %q); Ctrl-C to stop\n", base, demoKey)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Let the lines in progress finish (new requests get 503), then stop
	// the server.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(sctx); err != nil {
		return err
	}
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	<-served
	s := g.Stats().Total
	fmt.Printf("served %d requests (%d completed, %d fell back)\n", s.Requests, s.Completed, s.Fallbacks)
	return nil
}

// streamOne sends what any OpenAI client sends and prints the line and
// the route receipt.
func streamOne(base string) error {
	req, err := http.NewRequest("POST", base+"/chat/completions", strings.NewReader(
		`{"model":"npc/quest_dialogue","stream":true,"stream_options":{"include_usage":true},`+
			`"messages":[{"role":"system","content":"You are Mira, the smith of Eastwatch."},{"role":"user","content":"Any work for me?"}]}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+demoKey)
	req.Header.Set(gateway.HeaderNPC, "mira")
	req.Header.Set(gateway.HeaderPlayer, "player-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	fmt.Printf("tier %s, replica %s, fallback %s, reasons %s\n", resp.Header.Get(gateway.HeaderTier),
		resp.Header.Get(gateway.HeaderReplica), resp.Header.Get(gateway.HeaderFallback), resp.Header.Get(gateway.HeaderReasons))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			fmt.Println(data)
		}
	}
	return sc.Err()
}
