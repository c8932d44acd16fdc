package dialogue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/router"
)

// studioServer runs svc on a studio's own *grpc.Server (Register and
// Interceptors, as a studio embeds the service) on a loopback TCP port,
// and returns it with its address. The caller stops it.
func studioServer(t testing.TB, svc *dialogue.Service, sendTimeout time.Duration) (*grpc.Server, string, <-chan error) {
	t.Helper()
	opts := dialogue.HandlerOptions{Authenticator: testAuth(t), Logger: discardLogger(), SendTimeout: sendTimeout}
	unary, stream, err := dialogue.Interceptors(opts)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream),
		grpc.MaxRecvMsgSize(svc.MaxRecvMsgSize()))
	if err := svc.Register(gs, opts); err != nil {
		t.Fatal(err)
	}
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
			gs, target, served := studioServer(t, svc, 0)
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

//
//

// slowLoadStore holds Load of session gated until the caller's context
// ends; then it returns what the store holds (finish) or the context's
// error.
type slowLoadStore struct {
	history.Store
	gated   string
	entered chan struct{}
	finish  bool
}

func (s *slowLoadStore) Load(ctx context.Context, id string) (history.Conversation, error) {
	if id != s.gated {
		return s.Store.Load(ctx, id)
	}
	close(s.entered)
	<-ctx.Done()
	if s.finish {
		return s.Store.Load(context.WithoutCancel(ctx), id)
	}
	return history.Conversation{}, ctx.Err()
}

// TestGRPCConverseForeignSessionInterrupted: a turn on another player's
// session that the player interrupts while the service is still checking
// it never comes back as an INTERRUPTED reply carrying that session's ID.
// When the check completes, the turn is refused with PermissionDenied; when
// it was cut short, the interrupted turn names no session.
func TestGRPCConverseForeignSessionInterrupted(t *testing.T) {
	for _, finish := range []bool{true, false} {
		name := map[bool]string{true: "check completes", false: "check cut short"}[finish]
		t.Run(name, func(t *testing.T) {
			store := &slowLoadStore{Store: newMemoryStore(t), entered: make(chan struct{}), finish: finish}
			h := serve(t, newService(t, &fakeCompleter{respond: replying("Secret plans.")}, func(o *dialogue.Options) { o.Store = store }), false, nil)
			r, err := h.client.Say(as(t.Context(), tokP1), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "the plan?"}})
			if err != nil {
				t.Fatal(err)
			}
			foreign := r.GetCompletion().GetSessionId()
			store.gated = foreign

			st, err := h.client.Converse(as(t.Context(), tokP2))
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{
				NpcId: "mara", SessionId: foreign, Text: "what did they say?"}}})
			<-store.entered
			_ = st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Interrupt{Interrupt: &dialoguev1.Interrupt{}}})
			m, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(m.String(), foreign) {
				t.Errorf("turn on another player's session answered %v, which carries their session ID", m)
			}
			if finish && (codes.Code(m.GetError().GetCode()) != codes.PermissionDenied || m.GetChunk() != nil) {
				t.Errorf("turn on another player's session: %v, want a PermissionDenied turn error", m)
			}
			if !finish && m.GetError() == nil && !m.GetChunk().GetFinal() {
				t.Errorf("interrupted turn: %v, want a final chunk or a turn error", m)
			}
			_ = st.CloseSend()
			if _, err := st.Recv(); err != io.EOF {
				t.Errorf("after CloseSend: %v, want io.EOF", err)
			}
		})
	}
}

// endlessStream is a backend that never stops talking: it answers 1 KiB
// deltas until its context is cancelled or it is closed (or the service's
// reply bound, where there is one, cuts it), and reports Close on closed
// (a router stream releases its slot there).
type endlessStream struct {
	ctx    context.Context
	closed chan struct{}
	once   sync.Once
}

var endlessDelta = strings.Repeat("Word after word. ", 60)

func (s *endlessStream) Recv() (router.Delta, error) {
	if err := s.ctx.Err(); err != nil {
		return router.Delta{}, err
	}
	return router.Delta{Text: endlessDelta}, nil
}

func (s *endlessStream) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (s *endlessStream) Receipt() router.Receipt { return router.Receipt{} }

// endlessBackend answers every request with an endless stream and hands
// each on started.
func endlessBackend() (*fakeCompleter, <-chan *endlessStream) {
	started := make(chan *endlessStream, 1024)
	return &fakeCompleter{respond: func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
		s := &endlessStream{ctx: ctx, closed: make(chan struct{})}
		started <- s
		return s, nil
	}}, started
}

// waitSlowClient waits, with a deadline that only bounds a hang, until the
// service has counted a slow client and has no reply in progress, and
// checks that every backend stream started was closed and its context
// cancelled.
func waitSlowClient(t *testing.T, svc *dialogue.Service, started <-chan *endlessStream) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for svc.Stats().SlowClients == 0 || svc.Stats().Active != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a client that never reads: Stats() = %+v, want SlowClients 1 and Active 0", svc.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := svc.Stats().SlowClients; got != 1 {
		t.Errorf("Stats().SlowClients = %d, want 1", got)
	}
	for {
		select {
		case s := <-started:
			select {
			case <-s.closed:
			case <-time.After(30 * time.Second):
				t.Fatal("a backend stream of a client that never reads was not closed")
			}
			select {
			case <-s.ctx.Done():
			case <-time.After(30 * time.Second):
				t.Fatal("a backend request of a client that never reads was not cancelled")
			}
		default:
			return
		}
	}
}

// neverRead opens a Converse stream on conn and says turn after turn
// without ever reading a reply, each once the last has ended (a new turn
// would cut it short), until svc counts a slow client or maxTurns: enough
// unread replies to fill any flow-control window, even where the service
// bounds each reply's length.
func neverRead(t *testing.T, svc *dialogue.Service, conn *grpc.ClientConn, maxTurns int) {
	t.Helper()
	st, err := dialoguev1.NewDialogueServiceClient(conn).Converse(as(t.Context(), tokP1))
	if err != nil {
		t.Fatal(err)
	}
	say := &dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{NpcId: "mara", Text: "Talk."}}}
	deadline := time.Now().Add(30 * time.Second)
	for turn := range maxTurns {
		if err := st.Send(say); err != nil {
			return // the server ended the stream
		}
		for {
			s := svc.Stats()
			if s.SlowClients > 0 {
				return
			}
			if s.Requests > uint64(turn) && s.Active == 0 {
				break // the reply ended, unread
			}
			if time.Now().After(deadline) {
				t.Fatalf("turn %d of a client that never reads neither ended nor was cut off: Stats() = %+v", turn+1, s)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// smallWindows make a client's flow-control windows fill fast.
var smallWindows = []grpc.DialOption{grpc.WithInitialWindowSize(64 << 10), grpc.WithInitialConnWindowSize(64 << 10)}

// TestGRPCClientNeverReads: a gRPC client that talks on a Converse stream
// and never reads fills its flow-control window; the reply chunk that then
// waits longer than the send timeout ends the stream, cancels the backend
// request, releases its slot and is counted. They used to be held for as
// long as the stream stayed open.
func TestGRPCClientNeverReads(t *testing.T) {
	const timeout = 50 * time.Millisecond
	tests := []struct {
		name   string
		target func(t *testing.T, svc *dialogue.Service) string
	}{
		{"Server", func(t *testing.T, svc *dialogue.Service) string {
			return serve(t, svc, true, func(o *dialogue.ServerOptions) { o.SendTimeout = timeout }).conn.Target()
		}},
		{"studio server", func(t *testing.T, svc *dialogue.Service) string {
			gs, target, served := studioServer(t, svc, timeout)
			t.Cleanup(func() { gs.Stop(); <-served })
			return target
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc, started := endlessBackend()
			svc := newService(t, fc, nil)
			conn := dial(t, tt.target(t, svc), smallWindows...)
			defer conn.Close()
			neverRead(t, svc, conn, 200)
			waitSlowClient(t, svc, started)
		})
	}
}

// smallBufferListener is a listener whose connections have small send
// buffers.
type smallBufferListener struct{ net.Listener }

// Accept shrinks each connection's send buffer, so that a client that
// never reads fills it fast.
func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

// TestHTTPClientNeverReads: an HTTP client that sends StreamSay requests,
// pipelined on one connection, and never reads the answers has its stream
// ended by the write deadline: the backend request is cancelled, the slot
// released, the client counted.
func TestHTTPClientNeverReads(t *testing.T) {
	fc, started := endlessBackend()
	svc := newService(t, fc, nil)
	h, err := svc.HTTPHandler(dialogue.HandlerOptions{Authenticator: testAuth(t), Logger: discardLogger(), SendTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(h)
	hs.Listener = smallBufferListener{hs.Listener}
	hs.Start()
	defer hs.Close()
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	body := `{"utterance":{"npcId":"mara","text":"Talk."}}`
	req := "POST " + dialogue.PathStreamSay + " HTTP/1.1\r\nHost: npc\r\nAuthorization: Bearer " + tokP1 +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	if _, err := io.WriteString(conn, strings.Repeat(req, 32)); err != nil { // pipelined
		t.Fatal(err)
	}
	waitSlowClient(t, svc, started)
}

// TestGRPCOversizeInvalidArgument: a request over Limits.MaxMessageBytes is
// InvalidArgument on every method, as over HTTP (400), on the ready-made
// Server and on a studio's own server set up as Register's documentation
// says; unauthenticated, it is Unauthenticated. grpc-go's own
// MaxRecvMsgSize used to refuse it first with ResourceExhausted, which the
// API reserves for rate limits.
func TestGRPCOversizeInvalidArgument(t *testing.T) {
	const limit = 4096
	newSvc := func(t *testing.T) *dialogue.Service {
		return newService(t, &fakeCompleter{respond: replying("Mm.")}, func(o *dialogue.Options) { o.Limits.MaxMessageBytes = limit })
	}
	servers := map[string]func(t *testing.T) dialoguev1.DialogueServiceClient{
		"Server": func(t *testing.T) dialoguev1.DialogueServiceClient {
			return serve(t, newSvc(t), true, nil).client
		},
		"studio server": func(t *testing.T) dialoguev1.DialogueServiceClient {
			gs, target, served := studioServer(t, newSvc(t), 0)
			t.Cleanup(func() { gs.Stop(); <-served })
			conn := dial(t, target)
			t.Cleanup(func() { _ = conn.Close() })
			return dialoguev1.NewDialogueServiceClient(conn)
		},
	}
	// The service's field checks would refuse this too, once grpc-go lets
	// it reach them.
	big := &dialoguev1.Utterance{NpcId: "mara", Text: "hi", Context: &dialoguev1.GameContext{Region: strings.Repeat("r", limit+100)}}
	calls := map[string]func(ctx context.Context, c dialoguev1.DialogueServiceClient) error{
		"Say": func(ctx context.Context, c dialoguev1.DialogueServiceClient) error {
			_, err := c.Say(ctx, &dialoguev1.SayRequest{Utterance: big})
			return err
		},
		"StreamSay": func(ctx context.Context, c dialoguev1.DialogueServiceClient) error {
			st, err := c.StreamSay(ctx, &dialoguev1.StreamSayRequest{Utterance: big})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		},
		"Converse": func(ctx context.Context, c dialoguev1.DialogueServiceClient) error {
			st, err := c.Converse(ctx)
			if err != nil {
				return err
			}
			if err := st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: big}}); err != nil && err != io.EOF {
				return err
			}
			for {
				m, err := st.Recv()
				if err != nil {
					return err
				}
				if m.GetError() != nil {
					return status.Error(codes.Code(m.GetError().GetCode()), m.GetError().GetMessage())
				}
			}
		},
	}
	for sname, newClient := range servers {
		t.Run(sname, func(t *testing.T) {
			c := newClient(t)
			for cname, call := range calls {
				for _, authed := range []bool{true, false} {
					want, ctx := codes.InvalidArgument, as(t.Context(), tokP1)
					if !authed {
						want, ctx = codes.Unauthenticated, t.Context()
					}
					if err := call(ctx, c); status.Code(err) != want {
						t.Errorf("%s (authenticated %v) with a %d-byte region over a %d-byte limit: %v, want %v", cname, authed, limit+100, limit, err, want)
					}
				}
			}
		})
	}
}

// TestHTTPRoutingErrorsJSON: an unknown path (404) and a method other than
// POST (405, with Allow) answer the same JSON error object as every other
// HTTP error; they used to be net/http's plain text.
func TestHTTPRoutingErrorsJSON(t *testing.T) {
	s := httpServer(t, newService(t, &fakeCompleter{respond: replying("x")}, nil))
	tests := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, dialogue.PathSay, http.StatusMethodNotAllowed, "unimplemented", http.MethodPost},
		{http.MethodPut, dialogue.PathStreamSay, http.StatusMethodNotAllowed, "unimplemented", http.MethodPost},
		{http.MethodPost, "/" + dialogue.ServiceName + "/Nope", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/", http.StatusNotFound, "not_found", ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(t.Context(), tt.method, s.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Code, Message string }
		if err := json.Unmarshal(body, &e); err != nil || e.Code != tt.code || e.Message == "" {
			t.Errorf("%s %s: body %q, want a JSON error with code %q and a message", tt.method, tt.path, body, tt.code)
		}
		if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d, Content-Type %q, Allow %q; want %d, application/json, Allow %q",
				tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), tt.status, tt.allow)
		}
	}
}

// TestGRPCReflectionOptional: server reflection is off unless
// ServerOptions.Reflection turns it on (TestGRPCHealthAndReflection has
// it on).
func TestGRPCReflectionOptional(t *testing.T) {
	h := serve(t, newService(t, &fakeCompleter{respond: replying("x")}, nil), false, nil)
	rs, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(t.Context())
	if err == nil {
		err = rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	}
	if err == nil {
		_, err = rs.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("reflection on a default Server: %v, want Unimplemented", err)
	}
}

// TestGRPCClientNeverReadsFreesRouterSlot: through a real router whose
// tier has one slot, a player who never reads holds the slot only until
// the send timeout; then the next player gets a real reply, not a
// fallback line. The slot used to stay taken for as long as the stream
// stayed open.
func TestGRPCClientNeverReadsFreesRouterSlot(t *testing.T) {
	svc := newRouterService(t, router.Options{Tiers: []router.Tier{{Name: router.Tier1, MaxConcurrent: 1,
		Replicas: []router.Replica{{Name: "endless", Model: endlessModel{}}}}}})
	h := serve(t, svc, true, func(o *dialogue.ServerOptions) { o.SendTimeout = 100 * time.Millisecond })
	slow := dial(t, h.conn.Target(), smallWindows...)
	defer slow.Close()
	neverRead(t, svc, slow, 200)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for svc.Stats().SlowClients == 0 {
		if ctx.Err() != nil {
			t.Fatal("a client that never reads was not cut off")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		r, err := h.client.Say(as(ctx, tokP2), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "guard", Text: "Me now?", MaxTokens: 8}})
		if err != nil {
			t.Fatalf("the slot of a client that never reads was not released: %v", err)
		}
		if !r.GetCompletion().GetFallback() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// endlessModel is a router.Model whose streams answer 1 KiB tokens until
// cancelled, or until the request's MaxTokens.
type endlessModel struct{}

func (endlessModel) Generate(context.Context, router.Request) (*router.Response, error) {
	return nil, errors.New("endlessModel: streaming only")
}

func (endlessModel) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	return &endlessModelStream{ctx: ctx, left: req.MaxTokens}, nil
}

type endlessModelStream struct {
	ctx  context.Context
	left int
}

func (s *endlessModelStream) Recv() (router.Delta, error) {
	if err := s.ctx.Err(); err != nil {
		return router.Delta{}, err
	}
	if s.left <= 0 {
		return router.Delta{}, io.EOF
	}
	s.left--
	return router.Delta{Text: endlessDelta}, nil
}

func (s *endlessModelStream) Close() error { return nil }
