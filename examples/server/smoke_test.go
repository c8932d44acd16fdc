package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/payment"
)

const (
	smokePlayerToken = "smoke-player-token-0123456789"
	smokeAdminToken  = "smoke-admin-token-0123456789"
	// hangBound only bounds a hang (a server that never starts or never
	// stops); nothing here measures speed.
	hangBound = 2 * time.Minute
)

// redisForSmoke returns the Redis address the smoke test uses
// (BB_REDIS_ADDR, else 127.0.0.1:6379), skipping the test when nothing
// answers there, or failing it under BB_REQUIRE_SERVICES=1. (Examples are
// copied into studios' modules, so this test cannot use the SDK's
// internal/servicetest.)
func redisForSmoke(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("BB_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		msg := fmt.Sprintf("needs Redis at %s (set BB_REDIS_ADDR): %v", addr, err)
		if os.Getenv("BB_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c.Close()
	return addr
}

// server is a started examples/server process.
type server struct {
	cmd        *exec.Cmd
	http, grpc string // addresses
	logs       *syncBuffer
	exited     chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer builds the server, starts it on free loopback ports with env
// added to the environment, and waits for its "listening" log line.
func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "server")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &syncBuffer{}, exited: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", s.logs)
		}
	})
	listening := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			s.logs.Write(append(line, '\n'))
			var rec struct{ Msg, HTTP, GRPC string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				listening <- [2]string{rec.HTTP, rec.GRPC}
			}
		}
		s.exited <- cmd.Wait()
	}()
	select {
	case addrs := <-listening:
		s.http, s.grpc = "http://"+addrs[0], addrs[1]
	case err := <-s.exited:
		s.exited <- err
		t.Fatalf("server exited before listening: %v\n%s", err, s.logs)
	case <-time.After(hangBound):
		t.Fatalf("server did not start listening\n%s", s.logs)
	}
	return s
}

// do sends a request with a bearer token and decodes a JSON answer into
// out (when not nil); it returns the response with its body read.
func do(t *testing.T, method, url, token string, body any, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, url, err, data)
		}
	}
	if resp.StatusCode/100 != 2 {
		t.Logf("%s %s: %s %s", method, url, resp.Status, data)
	}
	return resp
}

func randomHex(t *testing.T) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestSmoke starts the server as a studio would run it, with Redis, and
// walks through every transport: health over HTTP and gRPC, a dialogue
// streamed over gRPC and over Server-Sent Events, a checkout paid at the
// demo provider whose signed webhook grants the entitlement, a settings
// write, the admin routes, /metrics, and a clean exit on SIGTERM.
//
// A second server started on the same Redis then finds the first one's
// dialogue events in the bus history: nothing published before SIGTERM
// was lost.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server; skipped under -short")
	}
	smoke(t, redisForSmoke(t))
}

// TestSmokeCluster runs the smoke test on the Redis Cluster named by
// BB_REDIS_CLUSTER_ADDRS (comma-separated; .ci/run starts one): every
// store's keys and the bus's streams must work across hash slots.
func TestSmokeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server; skipped under -short")
	}
	addrs := os.Getenv("BB_REDIS_CLUSTER_ADDRS")
	if addrs == "" {
		const msg = "needs a Redis Cluster in BB_REDIS_CLUSTER_ADDRS (bash .ci/redis-cluster start)"
		if os.Getenv("BB_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	first, _, _ := strings.Cut(addrs, ",")
	if c, err := net.DialTimeout("tcp", first, 2*time.Second); err != nil {
		t.Fatalf("BB_REDIS_CLUSTER_ADDRS is set but %s does not answer: %v", first, err)
	} else {
		c.Close()
	}
	smoke(t, addrs)
}

func smoke(t *testing.T, redisAddr string) {
	// A key prefix of its own: tests share one Redis.
	env := []string{
		"BB_REDIS_ADDR=" + redisAddr,
		"BB_REDIS_PREFIX=smoke-" + randomHex(t),
		"BB_PLAYER_TOKENS=" + smokePlayerToken + "=player-7",
		"BB_ADMIN_TOKEN=" + smokeAdminToken,
		"BB_READY_INTERVAL=100ms",
		"STRIPE_SECRET_KEY=", "BB_STRIPE_SECRET_KEY=", "BB_OPENAI_URL=", "BB_CONFIG=",
	}
	s := startServer(t, env...)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()

	t.Run("health", func(t *testing.T) {
		if resp := do(t, "GET", s.http+pathHealthz, "", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("healthz = %s", resp.Status)
		}
		// Ready once the first round of checks (Redis) has passed.
		for {
			resp := do(t, "GET", s.http+pathReadyz, "", nil, nil)
			if resp.StatusCode == 200 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("readyz = %s until the deadline", resp.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
		conn := dialGRPC(t, s.grpc)
		hc := healthpb.NewHealthClient(conn)
		for _, svc := range []string{"", dialogue.ServiceName} {
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatalf("health %q: %v", svc, err)
			}
			if got := r.GetStatus(); got != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("health %q = %v, want SERVING", svc, got)
			}
		}
	})

	t.Run("request ID", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.http+pathHealthz, nil)
		req.Header.Set(headerRequestID, "trace-abc-123")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get(headerRequestID); got != "trace-abc-123" {
			t.Errorf("X-Request-ID = %q, want the client's", got)
		}
		resp = do(t, "GET", s.http+pathTime, "", nil, nil)
		if resp.Header.Get(headerRequestID) == "" {
			t.Error("no X-Request-ID on a request without one")
		}
	})

	t.Run("dialogue over gRPC", func(t *testing.T) {
		conn := dialGRPC(t, s.grpc)
		client := dialoguev1.NewDialogueServiceClient(conn)
		cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+smokePlayerToken)
		st, err := client.StreamSay(cctx, &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{
			NpcId: "mara", Text: "When does the boat leave?", Responsibility: "quest_dialogue",
		}})
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		var final *dialoguev1.Chunk
		for {
			m, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if c := m.GetChunk(); c.GetFinal() {
				final = c
			} else {
				text.WriteString(c.GetText())
			}
		}
		if final == nil {
			t.Fatal("no final chunk")
		}
		if !strings.Contains(text.String(), "tide turns") {
			t.Errorf("reply %q, want the tier2 stand-in's line", text.String())
		}
		if tier := final.GetCompletion().GetReceipt().GetTier(); tier != "tier2" {
			t.Errorf("tier = %q, want tier2", tier)
		}

		// A call without a token is refused.
		_, err = client.Say(ctx, &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "hi"}})
		if err == nil {
			t.Error("Say without a token succeeded")
		}
	})

	t.Run("dialogue over SSE", func(t *testing.T) {
		body := `{"utterance":{"npcId":"guard","text":"Good morning.","responsibility":"greeting"}}`
		req, _ := http.NewRequestWithContext(ctx, "POST", s.http+dialogue.PathStreamSay, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+smokePlayerToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("StreamSay = %s %q: %s", resp.Status, ct, b)
		}
		var text strings.Builder
		var final bool
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data:")
			if !ok {
				continue
			}
			var ev struct {
				Chunk struct {
					Text  string
					Final bool
				}
			}
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("event %q: %v", data, err)
			}
			text.WriteString(ev.Chunk.Text)
			final = final || ev.Chunk.Final
		}
		if !final {
			t.Errorf("stream ended without a final event (%v)", sc.Err())
		}
		if !strings.Contains(text.String(), "Hail, traveller") {
			t.Errorf("reply %q, want the tier1 stand-in's line", text.String())
		}
	})

	t.Run("dialogue over the OpenAI-compatible gateway", func(t *testing.T) {
		body := `{"model":"npc/quest_dialogue","stream":true,"messages":[{"role":"user","content":"When does the boat leave?"}]}`
		req, _ := http.NewRequestWithContext(ctx, "POST", s.http+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+smokePlayerToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("chat completions = %s: %s", resp.Status, b)
		}
		var text strings.Builder
		var done bool
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if data == "[DONE]" {
				done = true
				break
			}
			var chunk struct {
				Choices []struct{ Delta struct{ Content string } }
			}
			if err := json.Unmarshal([]byte(data), &chunk); err != nil {
				t.Fatalf("chunk %q: %v", data, err)
			}
			for _, c := range chunk.Choices {
				text.WriteString(c.Delta.Content)
			}
		}
		if !done {
			t.Errorf("stream ended without [DONE] (%v)", sc.Err())
		}
		if !strings.Contains(text.String(), "tide turns") {
			t.Errorf("reply %q, want the tier2 stand-in's line", text.String())
		}
		if tier := resp.Header.Get("X-BB-Tier"); tier != "tier2" {
			t.Errorf("X-BB-Tier = %q, want tier2", tier)
		}
		models := do(t, "GET", s.http+"/v1/models", smokePlayerToken, nil, nil)
		if got := models.Header.Get(headerStandIn); models.StatusCode != 200 || got != "tier1,tier2,tier3" {
			t.Errorf("/v1/models = %s, %s %q; want 200 and the stand-in tiers", models.Status, headerStandIn, got)
		}
	})

	t.Run("checkout and signed webhook", func(t *testing.T) {
		var started checkoutStarted
		if resp := do(t, "POST", s.http+pathCheckout, smokePlayerToken, map[string]string{"plan": "premium"}, &started); resp.StatusCode != 200 {
			t.Fatalf("checkout = %s", resp.Status)
		}
		var paid struct{ Deliveries []delivery }
		if resp := do(t, "POST", s.http+pathDemoPay, smokePlayerToken, map[string]string{"session_id": started.SessionID}, &paid); resp.StatusCode != 200 {
			t.Fatalf("demo pay = %s", resp.Status)
		}
		if len(paid.Deliveries) == 0 {
			t.Fatal("the demo provider sent no webhooks")
		}
		for _, d := range paid.Deliveries {
			req, _ := http.NewRequest("POST", s.http+pathWebhook, bytes.NewReader(d.Payload))
			req.Header.Set(payment.SignatureHeader, d.Signature)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("webhook = %s", resp.Status)
			}
		}
		// A forged signature is refused.
		req, _ := http.NewRequest("POST", s.http+pathWebhook, bytes.NewReader(paid.Deliveries[0].Payload))
		req.Header.Set(payment.SignatureHeader, "t=1,v1=00")
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		} else if resp.Body.Close(); resp.StatusCode != 400 {
			t.Errorf("forged webhook = %s, want 400", resp.Status)
		}

		var e payment.Entitlement
		do(t, "GET", s.http+pathEntitlement, smokePlayerToken, nil, &e)
		if !e.Active || e.Plan != "premium" || e.PlayerID != "player-7" {
			t.Errorf("entitlement = %+v, want player-7 active on premium", e)
		}
	})

	t.Run("settings", func(t *testing.T) {
		change := map[string]any{"changes": []map[string]any{{"key": "audio.music", "value": 0.25, "rev": -1}}}
		if resp := do(t, "PATCH", s.http+"/settings", smokePlayerToken, change, nil); resp.StatusCode != 200 {
			t.Fatalf("PATCH /settings = %s", resp.Status)
		}
		var got struct{ Values map[string]any }
		do(t, "GET", s.http+"/settings", smokePlayerToken, nil, &got)
		if v := got.Values["audio.music"]; v != 0.25 {
			t.Errorf("audio.music = %v, want 0.25", v)
		}
	})

	t.Run("admin", func(t *testing.T) {
		if resp := do(t, "GET", s.http+pathAdminRouter, smokePlayerToken, nil, nil); resp.StatusCode != 401 {
			t.Errorf("router stats with a player token = %s, want 401", resp.Status)
		}
		var rs struct{ Tiers []struct{ Name string } }
		if resp := do(t, "GET", s.http+pathAdminRouter, smokeAdminToken, nil, &rs); resp.StatusCode != 200 || len(rs.Tiers) != 4 {
			t.Errorf("router stats = %s, %d tiers; want 200, 4", resp.Status, len(rs.Tiers))
		}
		var evs []struct{ Topic, Key string }
		do(t, "GET", s.http+pathAdminEvents+"?topic="+dialogue.TopicCompleted, smokeAdminToken, nil, &evs)
		if len(evs) != 2 {
			t.Errorf("%d %s events, want 2 (one per dialogue)", len(evs), dialogue.TopicCompleted)
		}
		// Paging: one at a time, after the last one seen.
		var page1, page2 []struct{ ID string }
		do(t, "GET", s.http+pathAdminEvents+"?limit=1&topic="+dialogue.TopicCompleted, smokeAdminToken, nil, &page1)
		if len(page1) != 1 {
			t.Fatalf("limit=1: %d events", len(page1))
		}
		do(t, "GET", s.http+pathAdminEvents+"?limit=5&after="+page1[0].ID+"&topic="+dialogue.TopicCompleted, smokeAdminToken, nil, &page2)
		if len(page2) != 1 || page2[0].ID == page1[0].ID {
			t.Errorf("after %s: %v, want the other event", page1[0].ID, page2)
		}
		if resp := do(t, "GET", s.http+pathAdminEvents+"?after=nope&topic="+dialogue.TopicCompleted, smokeAdminToken, nil, nil); resp.StatusCode != 400 {
			t.Errorf("after=nope: %s, want 400", resp.Status)
		}
		var now struct {
			Hour, Minute int
			Phase        string `json:"state"`
		}
		if resp := do(t, "POST", s.http+pathAdminTimeSet, smokeAdminToken, map[string]int{"day": 3, "hour": 2, "minute": 30}, &now); resp.StatusCode != 200 {
			t.Fatalf("time set = %s", resp.Status)
		}
		if now.Hour != 2 || now.Minute != 30 || now.Phase != "night" {
			t.Errorf("after set: %02d:%02d %s, want 02:30 night", now.Hour, now.Minute, now.Phase)
		}
		// The audio director follows the clock into the night, and its
		// cues go out on the bus.
		for {
			var snap struct{ State struct{ Phase string } }
			do(t, "GET", s.http+pathAudio, "", nil, &snap)
			if snap.State.Phase == "night" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("audio phase %q, want night", snap.State.Phase)
			}
			time.Sleep(20 * time.Millisecond)
		}
		var cues []struct{ Topic string }
		do(t, "GET", s.http+pathAdminEvents+"?topic=audio.cue", smokeAdminToken, nil, &cues)
		if len(cues) == 0 {
			t.Error("no audio.cue events on the bus")
		}
		if resp := do(t, "POST", s.http+pathAdminTimeSet, smokeAdminToken, map[string]int{"day": 3, "hour": 99}, nil); resp.StatusCode != 400 {
			t.Errorf("time set to hour 99 = %s, want 400", resp.Status)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get(s.http + pathMetrics)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			"bodybroker_dialogue_requests_total 2",
			`bodybroker_router_tier_requests_total{tier="tier2"} 2`,
			"bodybroker_payment_entitlement_changes_total 1",
			"bodybroker_settings_writes_total 1",
			"bodybroker_ready 1",
			"go_goroutines",
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})

	// An ops page stream open across the shutdown must not hold it up.
	req, _ := http.NewRequestWithContext(ctx, "GET", s.http+pathOpsEvents, nil)
	req.Header.Set("Authorization", "Bearer "+smokeAdminToken)
	opsResp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer opsResp.Body.Close()
	opsEvents := bufio.NewScanner(opsResp.Body)
	if !opsEvents.Scan() || !strings.HasPrefix(opsEvents.Text(), "data: {") {
		t.Fatalf("ops stream: %q, %v", opsEvents.Text(), opsEvents.Err())
	}

	// SIGTERM: a clean, bounded exit.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for opsEvents.Scan() { // until the server ends the stream
	}
	select {
	case err := <-s.exited:
		s.exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(hangBound):
		t.Fatal("server did not exit after SIGTERM")
	}
	if !strings.Contains(s.logs.String(), `"msg":"stopped cleanly"`) {
		t.Error(`no "stopped cleanly" in the logs`)
	}

	// Nothing lost: a new server on the same Redis and prefix reads the
	// dialogue events from the bus's history.
	s2 := startServer(t, env...)
	var evs []struct{ Topic, Key string }
	do(t, "GET", s2.http+pathAdminEvents+"?topic="+dialogue.TopicCompleted, smokeAdminToken, nil, &evs)
	if len(evs) != 2 {
		t.Errorf("after a restart: %d %s events, want 2", len(evs), dialogue.TopicCompleted)
	}
	for _, ev := range evs {
		if ev.Key != "player-7" {
			t.Errorf("event key %q, want player-7", ev.Key)
		}
	}
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
