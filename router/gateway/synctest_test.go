package gateway_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
)

// pipeListener is a net.Listener of in-memory connections (net.Pipe),
// whose deadlines run on synctest's fake clock.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (l *pipeListener) dial() net.Conn {
	c, s := net.Pipe()
	l.conns <- s
	return c
}

// With a fake clock: a client that never reads is cut off once it has
// taken nothing for WriteTimeout, not before, and its slot is released.
func TestWriteTimeoutOnFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 10 * time.Second
		r := newRouter(t, tierSpec{name: "tier1", m: firehose{text: "word "}, max: 1})
		g, err := gateway.New(gateway.Options{Router: r, WriteTimeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		ln := newPipeListener()
		srv := &http.Server{Handler: g}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()

		conn := ln.dial()
		body := `{"model":"tier1","max_tokens":100000,"stream":true,"messages":[{"role":"user","content":"talk"}]}`
		req := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body
		go io.WriteString(conn, req) // the pipe is synchronous; the server reads it
		start := time.Now()
		// Read nothing. Every goroutine is now blocked: the server on its
		// write, which only the deadline ends.
		synctest.Wait()
		time.Sleep(timeout - time.Millisecond)
		synctest.Wait()
		if got := g.Stats().Total.SlowClients; got != 0 {
			t.Fatalf("cut off after %v, before WriteTimeout", time.Since(start))
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if got := g.Stats().Total.SlowClients; got != 1 {
			t.Fatalf("SlowClients = %d after %v, want 1", got, time.Since(start))
		}
		if ts, _ := r.Stats().Tier("tier1"); ts.InFlight != 0 {
			t.Errorf("router in flight %d after the cut", ts.InFlight)
		}
		conn.Close()
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		g.Close()
	})
}

// paced is a Model that streams n words, one every gap.
type paced struct {
	n   int
	gap time.Duration
}

func (paced) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("paced: unary not supported")
}

func (p paced) Stream(ctx context.Context, _ router.Request) (router.Stream, error) {
	return &pacedStream{ctx: ctx, p: p}, nil
}

type pacedStream struct {
	ctx context.Context
	p   paced
	i   int
}

func (s *pacedStream) Recv() (router.Delta, error) {
	if s.i > 0 {
		select {
		case <-time.After(s.p.gap):
		case <-s.ctx.Done():
			return router.Delta{}, s.ctx.Err()
		}
	}
	if s.i == s.p.n {
		return router.Delta{}, io.EOF
	}
	s.i++
	d := router.Delta{Text: " w"}
	if s.i == s.p.n {
		d.FinishReason = router.FinishStop
	}
	return d, nil
}

func (s *pacedStream) Close() error { return nil }

// Shutdown lets a stream in progress finish, refuses new requests, and
// cancels what is left when its context ends.
func TestShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRouter(t, tierSpec{name: "tier1", m: paced{n: 10, gap: time.Second}})
		g, err := gateway.New(gateway.Options{Router: r})
		if err != nil {
			t.Fatal(err)
		}
		ln := newPipeListener()
		srv := &http.Server{Handler: g}
		go srv.Serve(ln)
		tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.dial(), nil }}
		client := &http.Client{Transport: tr}
		defer func() {
			tr.CloseIdleConnections()
			srv.Close()
		}()
		stream := func() (chan string, error) {
			resp, err := client.Post("http://gw/v1/chat/completions", "application/json", strings.NewReader(chatBody("tier1", true)))
			if err != nil {
				return nil, err
			}
			out := make(chan string, 1)
			go func() {
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				out <- string(b)
			}()
			return out, nil
		}

		// A 10-second stream finishes within a 1-minute Shutdown.
		first, err := stream()
		if err != nil {
			t.Fatal(err)
		}
		shut := make(chan error, 1)
		start := time.Now()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			shut <- g.Shutdown(ctx)
		}()
		synctest.Wait()
		resp, err := client.Post("http://gw/v1/chat/completions", "application/json", strings.NewReader(chatBody("tier1", false)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("during Shutdown: status %d, want 503", resp.StatusCode)
		}
		if body := <-first; !strings.HasSuffix(body, "data: [DONE]\n\n") {
			t.Errorf("the stream in progress did not finish: %q", body)
		}
		if err := <-shut; err != nil || time.Since(start) > 10*time.Second {
			t.Errorf("Shutdown = %v after %v", err, time.Since(start))
		}
		if err := g.Shutdown(context.Background()); !errors.Is(err, gateway.ErrClosed) {
			t.Errorf("second Shutdown: %v", err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		r := newRouter(t, tierSpec{name: "tier1", m: paced{n: 1000, gap: time.Second}})
		g, err := gateway.New(gateway.Options{Router: r})
		if err != nil {
			t.Fatal(err)
		}
		ln := newPipeListener()
		srv := &http.Server{Handler: g}
		go srv.Serve(ln)
		tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.dial(), nil }}
		defer func() {
			tr.CloseIdleConnections()
			srv.Close()
		}()
		resp, err := (&http.Client{Transport: tr}).Post("http://gw/v1/chat/completions", "application/json", strings.NewReader(chatBody("tier1", true)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(resp.Body)
			body <- string(b)
		}()
		// A 1000-second stream is cut when Shutdown's context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 5*time.Second {
			t.Errorf("Shutdown = %v after %v, want the deadline after 5s", err, time.Since(start))
		}
		if b := <-body; !strings.Contains(b, `"code":"unavailable"`) {
			t.Errorf("the cut stream ended with %q, want an unavailable error event", b[max(0, len(b)-200):])
		}
	})
}
