package gateway_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

// An OpenAI client pointed at the gateway streams an NPC line. tier2's
// server is down, so tier1 serves it, and the receipt headers say so.
func Example() {
	down := openaitest.NewServer(openaitest.Behavior{Status: 500})
	defer down.Close()
	up := openaitest.NewServer(openaitest.Behavior{Tokens: []string{"Well", " met,", " traveller."}})
	defer up.Close()
	mid, _ := openai.New(openai.Options{BaseURL: down.URL + "/v1"})
	defer mid.Close()
	small, _ := openai.New(openai.Options{BaseURL: up.URL + "/v1"})
	defer small.Close()

	r, err := router.New(router.Options{
		Tiers: []router.Tier{
			{Name: router.Tier2, ModelName: "npc-mid", Replicas: []router.Replica{{Name: "gpu-0", Model: mid}}},
			{Name: router.Tier1, ModelName: "npc-small", Replicas: []router.Replica{{Name: "gpu-1", Model: small}}},
		},
		Fallbacks: [][]string{{router.Tier2, router.Tier1}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	g, err := gateway.New(gateway.Options{Router: r})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	defer g.Close()

	// What any OpenAI SDK sends; the model names a responsibility.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(
		`{"model":"npc/quest_dialogue","stream":true,"messages":[{"role":"user","content":"Any work?"}]}`))
	req.Header.Set(gateway.HeaderNPC, "mira")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println("served by", resp.Header.Get(gateway.HeaderTier), "fallback", resp.Header.Get(gateway.HeaderFallback))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Model   string
			Choices []struct{ Delta struct{ Content string } }
		}
		json.Unmarshal([]byte(data), &c)
		for _, ch := range c.Choices {
			fmt.Printf("%s: %q\n", c.Model, ch.Delta.Content)
		}
	}
	// Output:
	// served by tier1 fallback true
	// npc-small: "Well"
	// npc-small: " met,"
	// npc-small: " traveller."
}
