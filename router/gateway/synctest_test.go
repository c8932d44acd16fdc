package gateway_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

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
