package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is a stand-in model server and the openai.Model talking to it.
type backend struct {
	srv   *openaitest.Server
	model *openai.Model
}

func newBackend(t testing.TB, b openaitest.Behavior) *backend {
	t.Helper()
	srv := openaitest.NewServer(b)
	m, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1", Model: "base", DisableRetries: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		srv.Close()
	})
	return &backend{srv: srv, model: m}
}

// tierSpec is one tier of a test router.
type tierSpec struct {
	name  string
	model string // ModelName sent to the backend
	b     *backend
	m     router.Model // instead of b
	max   int          // MaxConcurrent, 0: none
}

// newRouter is the one place tests build a router: tiers in order, each
// falling back to the next.
func newRouter(t testing.TB, tiers ...tierSpec) *router.Router {
	t.Helper()
	var opts router.Options
	var chain []string
	for _, ts := range tiers {
		m := ts.m
		if m == nil {
			m = ts.b.model
		}
		opts.Tiers = append(opts.Tiers, router.Tier{
			Name:          ts.name,
			ModelName:     ts.model,
			MaxConcurrent: ts.max,
			Replicas:      []router.Replica{{Name: ts.name + "-0", Model: m}},
		})
		chain = append(chain, ts.name)
	}
	if len(chain) > 1 {
		opts.Fallbacks = [][]string{chain}
	}
	r, err := router.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// serve starts the gateway on a loopback server.
func serve(t testing.TB, opts gateway.Options) (*gateway.Gateway, *httptest.Server) {
	t.Helper()
	g, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		g.Close()
		srv.Close()
	})
	return g, srv
}

// post sends body to path with the given headers.
func post(t testing.TB, url, path, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// events reads an SSE body's data lines to its end.
func events(t testing.TB, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func readAll(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond; the deadline only bounds a hang.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func chatBody(model string, stream bool) string {
	s := `{"model":"` + model + `","messages":[{"role":"system","content":"You are Mira."},{"role":"user","content":"Hello"}]`
	if stream {
		s += `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return s + "}"
}

func newServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }
