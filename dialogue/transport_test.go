package dialogue_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
)

// studioServer runs svc on a studio's own *grpc.Server (Register and
// Interceptors, as a studio embeds the service) on a loopback TCP port,
// and returns it with its address. The caller stops it.
func studioServer(t testing.TB, svc *dialogue.Service) (*grpc.Server, string, <-chan error) {
	t.Helper()
	unary, stream := dialogue.Interceptors(testAuth(t), discardLogger())
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream),
		grpc.MaxRecvMsgSize(svc.Limits().MaxMessageBytes))
	svc.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	return gs, lis.Addr().String(), served
}

func dial(t testing.TB, target string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(target, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// converseHandlers counts the Converse handlers running in this process.
func converseHandlers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("dialogue.(*grpcHandler).Converse("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitHandlers waits until no Converse handler runs, or a deadline that
// only bounds a hang passes, and returns how many are left.
func waitHandlers() int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := converseHandlers()
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGRPCConverseIdleEndHandlerLeak: an idle Converse stream whose client
// cancels it or whose connection drops ends its handler, on a studio's own
// *grpc.Server, so that GracefulStop returns. The handler's reader used to
// take ctx.Done() instead of delivering the Recv error about half the time,
// and the handler then waited forever.
func TestGRPCConverseIdleEndHandlerLeak(t *testing.T) {
	say := &dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{NpcId: "mara", Text: "hi"}}}
	// talk has one turn answered, so the handler is surely running and
	// idle, then ends the stream with end.
	talk := func(t *testing.T, conn *grpc.ClientConn, end func(cancel context.CancelFunc)) {
		ctx, cancel := context.WithCancel(as(t.Context(), tokP1))
		defer cancel()
		st, err := dialoguev1.NewDialogueServiceClient(conn).Converse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(say); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if m.GetChunk().GetFinal() {
				break
			}
		}
		end(cancel)
		for {
			if _, err := st.Recv(); err != nil {
				break
			}
		}
	}
	tests := []struct {
		name string
		n    int
		run  func(t *testing.T, target string, n int)
	}{
		{"client cancels", 200, func(t *testing.T, target string, n int) {
			conn := dial(t, target)
			defer conn.Close()
			for range n {
				talk(t, conn, func(cancel context.CancelFunc) { cancel() })
			}
		}},
		{"connection drops", 20, func(t *testing.T, target string, n int) {
			for range n {
				conn := dial(t, target)
				talk(t, conn, func(context.CancelFunc) { _ = conn.Close() })
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			baseline := goleak.IgnoreCurrent()
			svc := newService(t, &fakeCompleter{respond: replying("Hm.")}, nil)
			gs, target, served := studioServer(t, svc)
			tt.run(t, target, tt.n)
			left := waitHandlers()
			t.Logf("%d Converse handlers left after %d idle streams ended", left, tt.n)
			if left != 0 {
				t.Errorf("%d of %d Converse handlers still running after their streams ended", left, tt.n)
			}
			stopped := make(chan struct{})
			go func() { gs.GracefulStop(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(10 * time.Second):
				t.Error("GracefulStop did not return: Converse handlers outlived their streams")
				gs.Stop()
				select {
				case <-stopped:
				case <-time.After(5 * time.Second):
					t.Fatal("GracefulStop did not return even after Stop")
				}
			}
			if err := <-served; err != nil {
				t.Error(err)
			}
			if err := goleak.Find(baseline); err != nil {
				t.Error(err)
			}
		})
	}
}

var _ = io.EOF
var _ = strings.Repeat
