package gateway_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
)

// firehose is a Model that streams 1 KiB deltas until its context ends.
type firehose struct{ text string }

func (firehose) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("firehose: unary not supported")
}

func (f firehose) Stream(ctx context.Context, _ router.Request) (router.Stream, error) {
	return &hose{ctx: ctx, text: f.text}, nil
}

type hose struct {
	ctx  context.Context
	text string
}

func (h *hose) Recv() (router.Delta, error) {
	if err := h.ctx.Err(); err != nil {
		return router.Delta{}, err
	}
	return router.Delta{Text: h.text}, nil
}

func (h *hose) Close() error { return nil }

// smallBuffers shrinks the send buffer of every accepted connection, so
// that a client that does not read blocks the server's writes soon.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// A client that sends its request and never reads is cut off after
// WriteTimeout, and its router slot released.
func TestClientThatNeverReadsIsCutOff(t *testing.T) {
	r := newRouter(t, tierSpec{name: "tier1", m: firehose{text: strings.Repeat("x", 1024)}, max: 1})
	g, err := gateway.New(gateway.Options{Router: r, WriteTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	defer srv.Close()
	defer g.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	body := `{"model":"tier1","max_tokens":100000,"stream":true,"messages":[{"role":"user","content":"talk"}]}`
	if _, err := conn.Write([]byte("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)); err != nil {
		t.Fatal(err)
	}
	// Never read.
	waitFor(t, "the slow client to be cut off", func() bool { return g.Stats().Total.SlowClients == 1 })
	waitFor(t, "the router slot to be released", func() bool {
		ts, _ := r.Stats().Tier("tier1")
		return ts.InFlight == 0
	})
	if got := g.Stats().Total; got.InFlight != 0 || got.Completed != 0 {
		t.Errorf("stats %+v", got)
	}
}

// whoami answers with the caller's identity as the router's model sees it.
type whoami struct{}

func (whoami) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("whoami: unary not supported")
}

func (whoami) Stream(ctx context.Context, _ router.Request) (router.Stream, error) {
	id, ok := identity.FromContext(ctx)
	text := "nobody"
	if ok {
		text = id.Kind.String() + ":" + id.ID
	}
	return &once{d: router.Delta{Text: text, FinishReason: router.FinishStop}}, nil
}

type once struct {
	d    router.Delta
	sent bool
}

func (o *once) Recv() (router.Delta, error) {
	if o.sent {
		return router.Delta{}, io.EOF
	}
	o.sent = true
	return o.d, nil
}

func (o *once) Close() error { return nil }

func TestCallerIdentityReachesTheModel(t *testing.T) {
	r := newRouter(t, tierSpec{name: "tier1", m: whoami{}})
	_, srv := serve(t, gateway.Options{Router: r, Authenticator: tokenAuth(t, keyTable{"sk-tools-0123456789": "tools"})})
	resp := post(t, srv.URL, "/v1/chat/completions", chatBody("tier1", false), "Authorization", "Bearer sk-tools-0123456789")
	if body := readAll(t, resp.Body); !strings.Contains(body, `"content":"service:tools"`) {
		t.Errorf("body %s, want the model to see service:tools", body)
	}
}
