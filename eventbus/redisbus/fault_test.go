package redisbus_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/redis/go-redis/v9"
)

// ownRedis runs a private redis-server with AOF (fsync on every write) on a
// free loopback port.
type ownRedis struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

func startOwnRedis(t *testing.T) *ownRedis {
	t.Helper()
	bin := servicetest.RedisServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	r := &ownRedis{t: t, bin: bin, port: port, dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *ownRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *ownRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.Ping(context.Background()).Err(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatal("own redis-server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL: no shutdown, no final fsync.
func (r *ownRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// TestStreamsSurviveRedisKill publishes a stream of events while the Redis
// server is SIGKILLed and restarted (AOF on). Every event whose Publish
// returned nil must be handled at least once, and exactly once by a
// subscriber with a dedup window; Stats must show the outage.
func TestStreamsSurviveRedisKill(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	srv := startOwnRedis(t)
	client := redis.NewClient(&redis.Options{
		Addr: srv.addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: 2,
	})
	defer client.Close()
	opts := fastStreams("fault:")
	opts.Batch.Timeout = 2 * time.Second
	bus, err := eventbus.New(eventbus.Options{Transport: mustStreams(t, client, opts)})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()

	const n = 3000
	var onceMu, atLeastMu sync.Mutex
	once := make([]int, n)    // handler calls, dedup on
	atLeast := make([]int, n) // handler calls, dedup off
	record := func(mu *sync.Mutex, counts []int) eventbus.Handler {
		return func(ctx context.Context, ev eventbus.Event) error {
			i, err := strconv.Atoi(string(ev.Payload))
			if err != nil || i < 0 || i >= n {
				return eventbus.Permanent(fmt.Errorf("bad payload %q", ev.Payload))
			}
			mu.Lock()
			counts[i]++
			mu.Unlock()
			return nil
		}
	}
	ctx := context.Background()
	if _, err := bus.Subscribe(ctx, "fault.t", record(&onceMu, once), eventbus.SubscribeOptions{Name: "exactly-once", DedupWindow: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Subscribe(ctx, "fault.t", record(&atLeastMu, atLeast), eventbus.SubscribeOptions{Name: "at-least-once"}); err != nil {
		t.Fatal(err)
	}

	var acked [n]atomic.Bool
	var failures atomic.Int64
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 0; i < n; i++ {
			// A publisher retries a failed publish with the same ID, so a
			// retry of an XADD that did land is a duplicate, not a new event.
			ev := eventbus.Event{ID: eventbus.NewID(), Payload: []byte(strconv.Itoa(i))}
			for try := 0; try < 3; try++ {
				pctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
				err := bus.Publish(pctx, "fault.t", ev)
				cancel()
				if err == nil {
					acked[i].Store(true)
					break
				}
				failures.Add(1)
				time.Sleep(50 * time.Millisecond)
			}
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()

	// Kill mid-stream, stay down a moment, restart on the same AOF.
	for k := 0; ; k++ {
		if bus.Stats().Topics["fault.t"].Published >= n/3 {
			break
		}
		if k > 2000 {
			t.Fatal("publisher made no progress")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.kill()
	time.Sleep(1500 * time.Millisecond) // longer than go-redis's own retries
	down := bus.Stats().Transport
	srv.start()
	<-pubDone

	var want []int
	for i := range acked {
		if acked[i].Load() {
			want = append(want, i)
		}
	}
	if len(want) < n/2 {
		t.Fatalf("only %d of %d publishes succeeded", len(want), n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		onceMu.Lock()
		atLeastMu.Lock()
		for _, i := range want {
			if once[i] == 0 || atLeast[i] == 0 {
				missing++
			}
		}
		atLeastMu.Unlock()
		onceMu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged events never handled (stats %+v)", missing, bus.Stats().Transport)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let any redelivery arrive
	onceMu.Lock()
	dups := 0
	for i, c := range once {
		if c > 1 {
			t.Errorf("event %d handled %d times despite dedup", i, c)
		}
	}
	onceMu.Unlock()
	atLeastMu.Lock()
	for _, c := range atLeast {
		if c > 1 {
			dups++
		}
	}
	atLeastMu.Unlock()

	st := bus.Stats()
	if down.Connected || down.Disconnects == 0 || down.DownSince.IsZero() {
		t.Errorf("outage not visible while Redis was down: %+v", down)
	}
	if st.Transport.Disconnects == 0 || st.Transport.Reconnects == 0 || st.Transport.Downtime <= 0 || !st.Transport.Connected {
		t.Errorf("outage not in stats: %+v", st.Transport)
	}
	var suppressed uint64
	for _, s := range st.Subscriptions {
		if s.Name == "exactly-once" {
			suppressed = s.Duplicates
		}
	}
	t.Logf("published %d/%d (publish errors %d), handled once each; without dedup %d events came twice; dedup suppressed %d; transport %+v",
		len(want), n, failures.Load(), dups, suppressed, st.Transport)
}

// TestStreamsReclaimFromDeadConsumer: entries a consumer took and never
// acknowledged are taken over by another instance of the group (XAUTOCLAIM).
func TestStreamsReclaimFromDeadConsumer(t *testing.T) {
	c, prefix := testClient(t)
	ctx := context.Background()
	opts := fastStreams(prefix)
	opts.ClaimMinIdle = 300 * time.Millisecond
	dead, _ := eventbus.New(eventbus.Options{Transport: mustStreams(t, c, opts)})
	entered := make(chan struct{}, 10)
	_, err := dead.Subscribe(ctx, "claim.t", func(ctx context.Context, ev eventbus.Event) error {
		entered <- struct{}{}
		<-ctx.Done() // stuck until the instance "dies"
		return ctx.Err()
	}, eventbus.SubscribeOptions{Name: "workers"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := dead.Publish(ctx, "claim.t", eventbus.Event{Payload: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	<-entered
	for k := 0; dead.Stats().Subscriptions[0].Received < 5; k++ {
		if k > 500 {
			t.Fatal("dead consumer never read the entries")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = dead.Close() // its five entries stay pending under its consumer name

	alive, _ := eventbus.New(eventbus.Options{Transport: mustStreams(t, c, opts)})
	defer alive.Close()
	var mu sync.Mutex
	got := map[string]bool{}
	_, err = alive.Subscribe(ctx, "claim.t", func(ctx context.Context, ev eventbus.Event) error {
		mu.Lock()
		got[string(ev.Payload)] = true
		mu.Unlock()
		return nil
	}, eventbus.SubscribeOptions{Name: "workers"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reclaimed %d of 5", k)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := alive.Stats().Transport; st.Reclaimed < 5 {
		t.Fatalf("stats %+v", st)
	}
	pending, err := c.XPending(ctx, prefix+"s:claim.t", "workers").Result()
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; pending.Count != 0 && k < 200; k++ {
		time.Sleep(10 * time.Millisecond)
		pending, _ = c.XPending(ctx, prefix+"s:claim.t", "workers").Result()
	}
	if pending.Count != 0 {
		t.Fatalf("still pending after reclaim: %+v", pending)
	}
}

// TestStreamsTrimAndReplay: MAXLEN ~ bounds the stream, and replay from an
// ID works across two instances.
func TestStreamsTrimAndReplay(t *testing.T) {
	c, prefix := testClient(t)
	ctx := context.Background()
	opts := fastStreams(prefix)
	opts.MaxLen = 100
	a, _ := eventbus.New(eventbus.Options{Transport: mustStreams(t, c, opts)})
	defer a.Close()
	evs := make([]eventbus.Event, 1000)
	for i := range evs {
		evs[i] = eventbus.Event{Topic: "trim.t", Payload: []byte(strconv.Itoa(i))}
	}
	if err := a.PublishBatch(ctx, evs); err != nil {
		t.Fatal(err)
	}
	n, err := c.XLen(ctx, prefix+"s:trim.t").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 || n >= 1000 {
		t.Fatalf("XLEN %d with MAXLEN ~ 100", n)
	}
	b, _ := eventbus.New(eventbus.Options{Transport: mustStreams(t, c, opts)})
	defer b.Close()
	hist, err := b.History(ctx, "trim.t", eventbus.FromStart(), 0)
	if err != nil || int64(len(hist)) != n || string(hist[len(hist)-1].Payload) != "999" {
		t.Fatalf("history %d events, err %v", len(hist), err)
	}
	mid := hist[len(hist)-10]
	tail, err := b.History(ctx, "trim.t", eventbus.AfterID(mid.ID), 0)
	if err != nil || len(tail) != 9 || string(tail[0].Payload) != "991" {
		t.Fatalf("after %s: %d events, err %v", mid.ID, len(tail), err)
	}
	// An ID that was trimmed away: replay starts at the oldest retained.
	old, err := b.History(ctx, "trim.t", eventbus.AfterID(evs[0].ID), 0)
	if err != nil || int64(len(old)) != n {
		t.Fatalf("after trimmed ID: %d events, err %v", len(old), err)
	}
}
