package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startInProcess runs the server in this process with in-memory backends
// and returns its HTTP and gRPC addresses, and a stop function that
// cancels it and returns run's error.
func startInProcess(t *testing.T, env ...string) (httpAddr, grpcAddr string, stop func() error) {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0"}, envOf(env...), logs)
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(hangBound):
			t.Fatal("run did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() {
		_ = stop()
		if t.Failed() {
			t.Logf("server logs:\n%s", logs)
		}
	})
	deadline := time.Now().Add(hangBound)
	for time.Now().Before(deadline) {
		for line := range strings.Lines(logs.String()) {
			var rec struct{ Msg, HTTP, GRPC string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				return "http://" + rec.HTTP, rec.GRPC, stop
			}
		}
		select {
		case err := <-done:
			done <- err // for stop
			t.Fatalf("run returned before listening: %v\n%s", err, logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("not listening\n%s", logs)
	return "", "", nil
}

// TestReadinessFollowsModelServer: /readyz and the gRPC health check of
// the server as a whole report a real model server's state, both ways,
// while /healthz (liveness) stays up.
func TestReadinessFollowsModelServer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var up atomic.Bool
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" || !up.Load() {
			http.Error(w, "loading", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"object":"list","data":[]}`))
	}))
	defer model.Close()

	httpAddr, grpcAddr, stop := startInProcess(t, "BB_OPENAI_URL", model.URL+"/v1", "BB_READY_INTERVAL", "20ms")
	conn := dialGRPC(t, grpcAddr)
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()

	// waitFor polls until /readyz answers code and the health check status.
	waitFor := func(code int, status healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for {
			resp, err := http.Get(httpAddr + pathReadyz)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == code && h.GetStatus() == status {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("readyz %d, health %v; want %d, %v", resp.StatusCode, h.GetStatus(), code, status)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(http.StatusServiceUnavailable, healthpb.HealthCheckResponse_NOT_SERVING)
	if resp := do(t, "GET", httpAddr+pathHealthz, "", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("healthz while not ready = %s", resp.Status)
	}
	up.Store(true)
	waitFor(http.StatusOK, healthpb.HealthCheckResponse_SERVING)
	up.Store(false)
	waitFor(http.StatusServiceUnavailable, healthpb.HealthCheckResponse_NOT_SERVING)

	conn.Close()
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestLimits: a body over the limit is refused with 413, an admin route
// without the admin token with 401, and a bad request ID is replaced.
func TestLimits(t *testing.T) {
	httpAddr, _, _ := startInProcess(t, "BB_PLAYER_TOKENS", "limits-player-token-000=p1", "BB_ADMIN_TOKEN", "limits-admin-token-0000")
	big := strings.NewReader(`{"plan":"` + strings.Repeat("x", 2<<20) + `"}`)
	req, _ := http.NewRequest("POST", httpAddr+pathCheckout, big)
	req.Header.Set("Authorization", "Bearer limits-player-token-000")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body = %s, want 413", resp.Status)
	}
	for _, tok := range []string{"", "limits-player-token-000", "limits-admin-token-0001"} {
		if resp := do(t, "POST", httpAddr+pathAdminTimePaus, tok, nil, nil); resp.StatusCode != 401 {
			t.Errorf("pause with %q = %s, want 401", tok, resp.Status)
		}
	}
	if resp := do(t, "POST", httpAddr+pathAdminTimePaus, "limits-admin-token-0000", nil, nil); resp.StatusCode != 200 {
		t.Errorf("pause with the admin token = %s, want 200", resp.Status)
	}
	req, _ = http.NewRequest("GET", httpAddr+pathHealthz, nil)
	req.Header.Set(headerRequestID, "has space")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get(headerRequestID); got == "has space" || got == "" {
		t.Errorf("X-Request-ID = %q, want a fresh one", got)
	}
}

// TestReadinessFollowsStripe: with a Stripe key the server is ready only
// while Stripe answers (stripe-mock here), and not ready when it cannot
// reach Stripe.
func TestReadinessFollowsStripe(t *testing.T) {
	mock := os.Getenv("BB_STRIPE_MOCK_URL")
	if mock == "" {
		mock = "http://127.0.0.1:12111"
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(mock, "http://"), 2*time.Second); err != nil {
		msg := "needs stripe-mock at " + mock + " (set BB_STRIPE_MOCK_URL)"
		if os.Getenv("BB_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	} else {
		c.Close()
	}
	for _, tt := range []struct {
		name, url string
		want      int
	}{
		{"stripe-mock", mock, http.StatusOK},
		// Nothing listens on port 9 (discard) of loopback.
		{"unreachable", "http://127.0.0.1:9", http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			httpAddr, _, _ := startInProcess(t, "STRIPE_SECRET_KEY", "sk_test_123", "STRIPE_WEBHOOK_SECRET", "whsec_test",
				"BB_STRIPE_URL", tt.url, "BB_READY_INTERVAL", "20ms")
			deadline := time.Now().Add(hangBound)
			for {
				resp, err := http.Get(httpAddr + pathReadyz)
				if err != nil {
					t.Fatal(err)
				}
				var body struct{ Failed map[string]string }
				err = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				// Not ready counts only once the check has failed (before the
				// first round the server is not ready either).
				_, stripeFailed := body.Failed["stripe"]
				if resp.StatusCode == tt.want && (tt.want == http.StatusOK || stripeFailed) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("readyz = %s %v, want %d", resp.Status, body.Failed, tt.want)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestRouterReload: POST /admin/router/reload applies the catalogue
// file's new tiers; a bad file is refused naming the field, and the
// running configuration stays.
func TestRouterReload(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const admin = "reload-admin-token-000"
	path := filepath.Join(t.TempDir(), "server.toml")
	write := func(cat string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(cat), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(string(defaultCatalog))
	httpAddr, _, stop := startInProcess(t, "BB_CONFIG", path, "BB_ADMIN_TOKEN", admin)

	tiers := func() []string {
		t.Helper()
		var rs struct{ Tiers []struct{ Name string } }
		if resp := do(t, "GET", httpAddr+pathAdminRouter, admin, nil, &rs); resp.StatusCode != 200 {
			t.Fatalf("router stats = %s", resp.Status)
		}
		var names []string
		for _, tr := range rs.Tiers {
			names = append(names, tr.Name)
		}
		return names
	}
	want := []string{"tier1", "tier2", "tier3", "scripted"}
	if diff := cmp.Diff(want, tiers()); diff != "" {
		t.Fatalf("tiers at start (-want +got):\n%s", diff)
	}

	write(strings.Replace(string(defaultCatalog), "[[tiers]]", "[[tiers]]\nname = \"tier0\"\nstand_in = \"Hm.\"\n\n[[tiers]]", 1))
	if resp := do(t, "POST", httpAddr+pathAdminReload, admin, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("reload = %s", resp.Status)
	}
	want = []string{"tier0", "tier1", "tier2", "tier3", "scripted"}
	if diff := cmp.Diff(want, tiers()); diff != "" {
		t.Errorf("tiers after reload (-want +got):\n%s", diff)
	}

	write(strings.Replace(string(defaultCatalog), `max_queued = 20`, `max_queued = -1`, 1))
	resp, err := http.DefaultClient.Do(func() *http.Request {
		r, _ := http.NewRequest("POST", httpAddr+pathAdminReload, nil)
		r.Header.Set("Authorization", "Bearer "+admin)
		return r
	}())
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Code, Message string }
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(e.Message, "tiers[1].max_queued") {
		t.Errorf("bad reload = %s %q, want 400 naming tiers[1].max_queued", resp.Status, e.Message)
	}
	if diff := cmp.Diff(want, tiers()); diff != "" {
		t.Errorf("tiers after a refused reload (-want +got):\n%s", diff)
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}
