package redisbus_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/eventbus/redisbus"
	"github.com/redis/go-redis/v9"
)

// loadingRedis is a loopback server speaking just enough RESP2 for the
// transports' Publish: it answers the first `loading` write commands (SADD,
// XADD, PUBLISH) with the LOADING error of a Redis that is replaying its AOF,
// and the rest as Redis would.
type loadingRedis struct {
	l       net.Listener
	mu      sync.Mutex
	loading int            // write commands still to refuse; < 0: refuse all
	calls   map[string]int // command → times received
	wg      sync.WaitGroup
	conns   []net.Conn
}

func startLoadingRedis(t *testing.T, loading int) *loadingRedis {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &loadingRedis{l: l, loading: loading, calls: map[string]int{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *loadingRedis) addr() string { return s.l.Addr().String() }

func (s *loadingRedis) count(cmd string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[cmd]
}

func (s *loadingRedis) close() {
	_ = s.l.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *loadingRedis) accept() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *loadingRedis) serve(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	r := bufio.NewReader(c)
	seq := 0
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		cmd := strings.ToUpper(args[0])
		s.mu.Lock()
		s.calls[cmd]++
		refuse := false
		switch cmd {
		case "SADD", "XADD", "PUBLISH":
			if s.loading != 0 {
				refuse = true
				if s.loading > 0 {
					s.loading--
				}
			}
		}
		s.mu.Unlock()
		var reply string
		switch {
		case refuse:
			reply = "-LOADING Redis is loading the dataset in memory\r\n"
		case cmd == "PING":
			reply = "+PONG\r\n"
		case cmd == "SADD":
			reply = ":" + strconv.Itoa(len(args)-2) + "\r\n"
		case cmd == "PUBLISH":
			reply = ":0\r\n"
		case cmd == "XADD":
			seq++
			id := "1700000000000-" + strconv.Itoa(seq)
			reply = "$" + strconv.Itoa(len(id)) + "\r\n" + id + "\r\n"
		default: // HELLO, CLIENT SETINFO, ...: the client falls back to RESP2
			reply = "-ERR unknown command '" + args[0] + "'\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[0] != '*' {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 || n > 1<<16 {
		return nil, fmt.Errorf("bad array length %q", line)
	}
	args := make([]string, n)
	for i := range args {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if len(line) < 3 || line[0] != '$' {
			return nil, fmt.Errorf("not a bulk string: %q", line)
		}
		size, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil || size < 0 || size > 64<<20 {
			return nil, fmt.Errorf("bad bulk length %q", line)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

type transportCase struct {
	name  string
	write string // the command that carries an event
	open  func(t testing.TB, c redis.UniversalClient) eventbus.Transport
}

func loadingTransports() []transportCase {
	quiet := func(error) {}
	return []transportCase{
		{"streams", "XADD", func(t testing.TB, c redis.UniversalClient) eventbus.Transport {
			return mustStreams(t, c, redisbus.StreamsOptions{Prefix: "loading:", ReconnectMin: 5 * time.Millisecond, ReconnectMax: 20 * time.Millisecond, OnError: quiet})
		}},
		{"pubsub", "PUBLISH", func(t testing.TB, c redis.UniversalClient) eventbus.Transport {
			return mustPubSub(t, c, redisbus.PubSubOptions{Prefix: "loading:", ReconnectMin: 5 * time.Millisecond, ReconnectMax: 20 * time.Millisecond, OnError: quiet})
		}},
	}
}

// loadingClient does not retry on its own (MaxRetries -1), so that the
// transport's retries are what the test sees.
func loadingClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A Redis that is loading its AOF after a restart answers LOADING for a
// while: Publish retries (with backoff) while its deadline has time left,
// and succeeds once Redis has loaded.
func TestPublishRetriesWhileRedisLoads(t *testing.T) {
	for _, tc := range loadingTransports() {
		t.Run(tc.name, func(t *testing.T) {
			const refusals = 4
			srv := startLoadingRedis(t, refusals)
			tr := tc.open(t, loadingClient(t, srv.addr()))
			bus, err := eventbus.New(eventbus.Options{Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			defer bus.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // bounds a hang only
			defer cancel()
			if err := bus.Publish(ctx, "loading.t", eventbus.Event{Payload: []byte("x")}); err != nil {
				t.Fatalf("Publish while Redis loads = %v, want nil once it has loaded", err)
			}
			writes := srv.count(tc.write) + srv.count("SADD")
			if writes != refusals+1+btoi(tc.write == "XADD") {
				t.Fatalf("Redis received %d write commands (%s, SADD), want %d refused and the rest once", writes, tc.write, refusals)
			}
			if err := bus.PublishBatch(ctx, []eventbus.Event{{Topic: "loading.t"}, {Topic: "loading.u"}}); err != nil {
				t.Fatalf("PublishBatch after loading = %v", err)
			}
		})
	}
}

// Publish gives up when its deadline leaves no time for another try, with
// the LOADING error (joined with the ctx's error when the deadline struck
// during a try).
func TestPublishLoadingPastDeadline(t *testing.T) {
	for _, tc := range loadingTransports() {
		t.Run(tc.name, func(t *testing.T) {
			srv := startLoadingRedis(t, -1)
			tr := tc.open(t, loadingClient(t, srv.addr()))
			bus, err := eventbus.New(eventbus.Options{Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			defer bus.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err = bus.Publish(ctx, "loading.t", eventbus.Event{Payload: []byte("x")})
			var rerr redis.Error
			if !errors.As(err, &rerr) || !strings.HasPrefix(rerr.Error(), "LOADING") {
				t.Fatalf("Publish to a Redis that keeps loading = %v, want the LOADING error", err)
			}
			if n := srv.count(tc.write) + srv.count("SADD"); n < 2 {
				t.Fatalf("Redis received %d write commands, want retries within the deadline", n)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A batch of which Redis executed part is not sent again (that would
// duplicate and reorder events): PublishBatch returns the LOADING error.
func TestPublishBatchPartlyExecutedNotResent(t *testing.T) {
	srv := startLoadingRedis(t, 1) // the first PUBLISH is refused, the second executed
	tr := loadingTransports()[1].open(t, loadingClient(t, srv.addr()))
	bus, err := eventbus.New(eventbus.Options{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = bus.PublishBatch(ctx, []eventbus.Event{{Topic: "loading.t"}, {Topic: "loading.t"}})
	if !strings.HasPrefix(fmt.Sprint(err), "LOADING") {
		t.Fatalf("PublishBatch = %v, want the LOADING error", err)
	}
	if n := srv.count("PUBLISH"); n != 2 {
		t.Fatalf("Redis received %d PUBLISH commands, want 2 (the batch once)", n)
	}
}
