package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
)

// openAIGateway serves the same router as an OpenAI-compatible HTTP API
// (router/gateway) and streams one chat completion from it the way any
// OpenAI client would (curl here, in Go): the model names a route
// ("npc/greeting"), the reply arrives as Server-Sent Events and the
// route receipt in X-BB-* headers. Tools in any language get the router's
// tiers, fallback and receipts this way.
func openAIGateway(ctx context.Context, w io.Writer, r *router.Router, log *slog.Logger) error {
	g, err := gateway.New(gateway.Options{Router: r, Logger: log}) // no Authenticator: loopback only
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: g, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(lis) }()
	defer func() {
		_ = g.Close()
		_ = hs.Close()
		<-served
	}()

	base := "http://" + lis.Addr().String() + "/v1"
	body := `{"model": "npc/greeting", "stream": true, "messages": [{"role": "user", "content": "Good evening."}]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/chat/completions", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(gateway.HeaderNPC, "guard")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	fmt.Fprintf(w, "OpenAI-compatible gateway at %s: POST /chat/completions, model npc/greeting, stream\n  guard: ", base)
	var events int
	sc := bufio.NewScanner(resp.Body) // SSE lines, each well under bufio's 64 KiB
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok || string(data) == "[DONE]" {
			continue
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(data, &chunk); err != nil {
			return fmt.Errorf("SSE event %q: %w", data, err)
		}
		events++
		for _, c := range chunk.Choices {
			fmt.Fprint(w, c.Delta.Content)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n  └ %d SSE events; %s: %s, %s: %s, %s: %s\n\n", events,
		gateway.HeaderTier, resp.Header.Get(gateway.HeaderTier),
		gateway.HeaderReplica, resp.Header.Get(gateway.HeaderReplica),
		gateway.HeaderReasons, resp.Header.Get(gateway.HeaderReasons))
	return nil
}
