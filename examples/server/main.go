// Command server is the Body Broker SDK assembled into one server a studio
// could deploy: NPC dialogue over gRPC and HTTP/SSE, multi-tier model
// routing, payments with signed webhooks, player settings, the world
// clock, the event bus, health, readiness and Prometheus metrics.
//
//	go run ./examples/server
//
// With no configuration it runs on loopback with in-memory backends, the
// demo payment provider and stand-in model servers (each labelled in the
// logs). Point it at real ones with the environment:
//
//	BB_REDIS_ADDR=127.0.0.1:6379 \
//	BB_OPENAI_URL=http://127.0.0.1:8000/v1 \
//	BB_PLAYER_TOKENS=player-7-secret-token=player-7 \
//	BB_ADMIN_TOKEN=$(openssl rand -hex 16) \
//	go run ./examples/server
//
// # Configuration
//
// Flags win over environment variables. Listeners bind loopback by
// default; set the address to ":50051" to listen on every interface.
//
//	-grpc-addr BB_GRPC_ADDR          gRPC listener (127.0.0.1:50051)
//	-http-addr BB_HTTP_ADDR          HTTP listener (127.0.0.1:8080)
//	-config BB_CONFIG                catalogue file: tiers, personas, plans (the built-in server.toml)
//	-redis-addr BB_REDIS_ADDR        Redis host:port; several, comma-separated, mean a cluster.
//	                                 Unset: in-memory bus, stores and clock (one process only).
//	-redis-prefix BB_REDIS_PREFIX    starts every Redis key ("bb"), so deployments can share a Redis
//	-openai-url BB_OPENAI_URL        OpenAI-compatible base URL for tiers whose catalogue entry
//	                                 lists no urls; unset: stand-in model servers
//	BB_OPENAI_API_KEY                bearer key sent to model servers
//	STRIPE_SECRET_KEY (or BB_STRIPE_SECRET_KEY)          Stripe; unset: the demo provider
//	STRIPE_WEBHOOK_SECRET (or BB_STRIPE_WEBHOOK_SECRET)  webhook signing secret; required with
//	                                 a Stripe key, random with the demo provider
//	-stripe-url BB_STRIPE_URL        Stripe API base URL (stripe-mock in tests)
//	BB_PLAYER_TOKENS                 player bearer tokens, "token=player-id,…" (≥ 16-byte tokens)
//	BB_ADMIN_TOKEN                   admin bearer token (≥ 16 bytes); unset: admin routes off
//	-reflection BB_REFLECTION        gRPC server reflection (off)
//	-shutdown-timeout BB_SHUTDOWN_TIMEOUT  drain bound on SIGINT/SIGTERM (15s)
//	-ready-interval BB_READY_INTERVAL      readiness check period (5s)
//	-log-level BB_LOG_LEVEL          debug, info, warn, error (info)
//
// The catalogue (server.toml, TOML) is validated at start; an error names
// the bad field ("config: tiers[1].ttft_target: …") and the server exits
// with status 2.
//
// # gRPC
//
// The dialogue service (bodybroker.dialogue.v1.DialogueService) with
// player bearer tokens, and the standard health service. Health Check for
// the service "" reports readiness: NOT_SERVING until Redis, every real
// model server and Stripe have answered the last readiness round.
//
// # HTTP
//
//	POST /bodybroker.dialogue.v1.DialogueService/Say        dialogue, JSON (player)
//	POST /bodybroker.dialogue.v1.DialogueService/StreamSay  dialogue, Server-Sent Events (player)
//	POST /v1/chat/completions, /v1/completions; GET /v1/models  the OpenAI-compatible gateway
//	                                                        (router/gateway; player tokens are its keys);
//	                                                        X-BB-Stand-In on /v1/models names stand-in tiers
//	GET, PATCH /settings; /settings/…                       player settings, preview (player)
//	GET  /v1/time                                           the world clock
//	GET  /v1/audio                                          the audio director's snapshot (ambience, buses,
//	                                                        voices) for a joining client; cues follow on audio.cue
//	POST /v1/checkout, /v1/checkout/complete, /v1/portal    payments (player)
//	GET  /v1/entitlement                                    the caller's entitlement (player)
//	POST /demo/checkout/pay                                 demo provider only: pay a session and get
//	                                                        the signed webhooks to deliver
//	POST /webhooks/stripe                                   the provider's signed webhooks
//	GET, POST /admin/coupons; POST /admin/ambassador-codes  (admin)
//	GET  /admin/router/stats, /admin/events/stats           (admin)
//	POST /admin/router/reload                               (admin) re-read the catalogue's tiers and
//	                                                        fallbacks and reconfigure the router
//	GET  /admin/lora; POST /admin/lora/{register,unregister,load,unload,hotswap}
//	                                                        (admin) LoRA adapters on the replicas of tiers
//	                                                        with lora = true (vLLM's runtime LoRA endpoints)
//	GET  /admin/events/history?topic=…&after=…&limit=…      (admin) oldest first, paged by event ID
//	POST /admin/time/set, /admin/time/scale, /admin/time/pause, /admin/time/resume  (admin)
//	GET  /ops, /ops/events                                  the ops page and its live stream (admin)
//	GET  /healthz, /readyz, /metrics                        liveness, readiness, Prometheus
//
// Admin routes take the admin token as a bearer token or as the password
// of HTTP Basic auth (any user name), so a browser can open /ops: tier
// time-to-first-token p50/p95/p99 and queue depth over time, fallbacks,
// dialogue counters, bus throughput, the world clock and its phase, and
// the latest webhooks and entitlement changes, updated every second.
// Responses to JSON routes use snake_case fields; errors are
// {"code": "...", "message": "..."}.
//
// Every response carries X-Request-ID (the client's, when short and
// printable, else a new one), and log lines about the request carry it
// too. Request headers must arrive within 10s and bodies are capped at
// 1 MiB (the webhook's own limit applies to webhooks).
//
// # Metrics
//
// /metrics serves Prometheus text from collectors that read each
// component's Stats() at scrape time (router tiers, dialogue, event bus,
// payments, settings, world clock, readiness) plus the Go runtime and
// process collectors; metric names start with bodybroker_.
//
// # Shutdown
//
// SIGINT or SIGTERM stops accepting work, lets dialogue and gateway
// streams finish their reply and HTTP requests end (ops page streams end at
// once), then flushes the event bus, all within the shutdown timeout; the
// exit status is 0 when everything drained, 1 otherwise, 2 for a
// configuration error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bodybroker/sdk/dialogue"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		if errors.Is(err, ErrConfig) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run starts the server and blocks until ctx ends (a signal) or a listener
// fails, then shuts down within the configured bound.
func run(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer) error {
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return err
	}
	log := slog.New(requestIDHandler{slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel})})

	a, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()

	reg, err := newRegistry(a)
	if err != nil {
		return err
	}
	h, err := a.handler(reg)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// No ReadTimeout or WriteTimeout: they would cut Server-Sent Events
		// streams; the dialogue handler bounds each event's write itself,
		// and bodies are capped in bytes.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(func() { a.opsOnce.Do(func() { close(a.opsDone) }) })
	gs, err := dialogue.NewServer(a.dialogue, dialogue.ServerOptions{
		Authenticator: a.players,
		// Plaintext: terminate TLS in front (a load balancer, a mesh), or
		// pass Credentials here.
		Insecure:     true,
		Logger:       log,
		Reflection:   cfg.Reflection,
		ExtraOptions: []grpc.ServerOption{grpc.ChainUnaryInterceptor(a.healthReadiness)},
	})
	if err != nil {
		return err
	}

	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		httpLis.Close()
		return err
	}
	log.Info("listening", "http", httpLis.Addr().String(), "grpc", grpcLis.Addr().String(), "reflection", cfg.Reflection)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := gs.Serve(grpcLis); err != nil {
			return fmt.Errorf("grpc: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		a.ready.run(gctx, cfg.ReadyInterval)
		return nil
	})
	g.Go(func() error { return a.runAudio(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down", "bound", cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		// The servers drain side by side (the gateway's streams before the
		// HTTP server's wait), then the bus flushes what they published.
		var sg errgroup.Group
		sg.Go(func() error {
			gerr := a.gateway.Shutdown(sctx)
			return errors.Join(gerr, hs.Shutdown(sctx))
		})
		sg.Go(func() error { return gs.Shutdown(sctx) })
		if err := sg.Wait(); err != nil {
			errs = append(errs, err)
		}
		if err := a.bus.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("event bus: %w", err))
		}
		return errors.Join(errs...)
	})
	err = g.Wait()
	if err == nil {
		log.Info("stopped cleanly")
	}
	return err
}

// healthReadiness makes the health service's Check for the server as a
// whole ("") answer NOT_SERVING while a readiness check fails, so load
// balancers and Kubernetes gRPC probes see real readiness. The dialogue
// service's own status is left as the dialogue server sets it.
func (a *app) healthReadiness(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	resp, err := next(ctx, req)
	if info.FullMethod != healthpb.Health_Check_FullMethodName || err != nil {
		return resp, err
	}
	if r, ok := req.(*healthpb.HealthCheckRequest); ok && r.GetService() == "" {
		if ready, _ := a.ready.state(); !ready {
			return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
		}
	}
	return resp, nil
}
