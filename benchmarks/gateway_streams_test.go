package benchmarks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/gateway"
	bbopenai "github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

// Many concurrent streams through one gateway. The gateway runs in a child
// process (this test binary, re-run as TestGatewayChild) so that its memory
// is measured apart from the clients' and the stand-in's.

// childMem is what the child reports at /mem.
type childMem struct {
	HeapInuse  uint64 // after a GC
	StackInuse uint64
	RSS        uint64 // VmRSS, bytes
	Goroutines int
	InFlight   int64 // gateway requests in progress
}

func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestGatewayChild serves a gateway in front of the stand-in at
// $BB_GATEWAY_CHILD until its stdin closes. It is the child process of
// BenchmarkGatewayStreams and skips otherwise.
func TestGatewayChild(t *testing.T) {
	upstream := os.Getenv("BB_GATEWAY_CHILD")
	if upstream == "" {
		t.Skip("child process of BenchmarkGatewayStreams")
	}
	m, err := bbopenai.New(bbopenai.Options{BaseURL: upstream + "/v1", MaxConnsPerHost: 10000})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := router.New(router.Options{Tiers: []router.Tier{{Name: router.Tier1, ModelName: "npc-small",
		Replicas: []router.Replica{{Name: "standin", Model: m}}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	g, err := gateway.New(gateway.Options{Router: r})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", g)
	mux.HandleFunc("/mem", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(childMem{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, RSS: rss(),
			Goroutines: runtime.NumGoroutine(), InFlight: g.Stats().Total.InFlight})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("ADDR %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin) // until the parent closes it
	g.Close()
	srv.Close()
}

func getMem(addr string) (childMem, error) {
	var m childMem
	resp, err := http.Get("http://" + addr + "/mem")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

// BenchmarkGatewayStreams holds $BB_STREAMS (default 5,000) streams open at
// once through one gateway process and reports its memory per stream (Go
// heap + stacks after a GC, and resident set) and the streams that failed
// (want 0). Each stream is 50 tokens 200 ms apart, so all are open
// together for several seconds.
//
//	cd benchmarks && go test -run '^$' -bench GatewayStreams -benchtime 1x .
func BenchmarkGatewayStreams(b *testing.B) {
	n := 5000
	if v := os.Getenv("BB_STREAMS"); v != "" {
		fmt.Sscan(v, &n)
	}
	sv := openaitest.NewServer(openaitest.Behavior{Tokens: openaitest.Words(gwTokens), TokenDelay: 200 * time.Millisecond})
	sv.DisableRecording()
	defer sv.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGatewayChild$")
	cmd.Env = append(os.Environ(), "BB_GATEWAY_CHILD="+sv.URL)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("gateway child: %v", err)
		}
	}()
	var addr string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		b.Fatal("the gateway child did not start")
	}
	go io.Copy(io.Discard, stdout)
	c := gwContender{name: "gateway", url: "http://" + addr + "/v1/chat/completions", hdr: http.Header{}}
	fast := openaitest.Behavior{Tokens: openaitest.Words(gwTokens)}
	slow := openaitest.Behavior{Tokens: openaitest.Words(gwTokens), TokenDelay: 200 * time.Millisecond}
	for b.Loop() {
		sv.SetBehavior(fast)
		if r := gwMeasure(c, 4, 40); r.errs > 0 { // warm up
			b.Fatalf("warm-up: %v", r.firstErr)
		}
		sv.SetBehavior(slow)
		gwClient.CloseIdleConnections()
		base, err := getMem(addr)
		if err != nil {
			b.Fatal(err)
		}
		var errs atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, _, err := gwStream(context.Background(), c); err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err)
					}
				}
			})
		}
		var peak childMem
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			m, err := getMem(addr)
			if err != nil {
				b.Fatal(err)
			}
			if m.InFlight > peak.InFlight {
				peak = m
			}
			if m.InFlight >= int64(n) || m.InFlight == 0 && errs.Load() > 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		wg.Wait()
		if e := errs.Load(); e > 0 {
			b.Errorf("%d of %d streams failed; first: %v", e, n, firstErr.Load())
		}
		if peak.InFlight < int64(n) {
			b.Errorf("at most %d of %d streams were open at once", peak.InFlight, n)
		}
		open := float64(peak.InFlight)
		b.ReportMetric(float64(int64(peak.HeapInuse+peak.StackInuse)-int64(base.HeapInuse+base.StackInuse))/open, "heap+stack-B/stream")
		b.ReportMetric(float64(int64(peak.RSS)-int64(base.RSS))/open, "rss-B/stream")
		b.ReportMetric(float64(peak.Goroutines-base.Goroutines)/open, "goroutines/stream")
		b.ReportMetric(open, "streams-open")
		b.ReportMetric(float64(errs.Load()), "errors")
	}
}
