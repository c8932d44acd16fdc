package dialogue_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
)

const (
	tokP1  = "player-one-token-0123456789"
	tokP2  = "player-two-token-0123456789"
	tokSvc = "game-server-token-0123456789"
)

func testAuth(t testing.TB) *identity.TokenAuthenticator {
	t.Helper()
	a, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
		tokP1: player1, tokP2: player2, tokSvc: server,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func as(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

type harness struct {
	srv    *dialogue.Server
	client dialoguev1.DialogueServiceClient
	conn   *grpc.ClientConn
	served chan error
}

// serve starts a dialogue gRPC server for svc on a loopback TCP listener
// (tcp) or bufconn, and a client connected to it.
func serve(t testing.TB, svc *dialogue.Service, tcp bool, edit func(*dialogue.ServerOptions)) *harness {
	t.Helper()
	opts := dialogue.ServerOptions{Authenticator: testAuth(t), Insecure: true}
	if edit != nil {
		edit(&opts)
	}
	srv, err := dialogue.NewServer(svc, opts)
	if err != nil {
		t.Fatal(err)
	}
	var (
		lis    net.Listener
		target string
		dial   []grpc.DialOption
	)
	if tcp {
		lis, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		target = lis.Addr().String()
	} else {
		bl := bufconn.Listen(1 << 20)
		lis, target = bl, "passthrough:///bufnet"
		dial = append(dial, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return bl.DialContext(ctx) }))
	}
	h := &harness{srv: srv, served: make(chan error, 1)}
	go func() { h.served <- srv.Serve(lis) }()
	// With TLS credentials the test dials its own client; this one is
	// plaintext either way.
	dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	h.conn, err = grpc.NewClient(target, dial...)
	if err != nil {
		t.Fatal(err)
	}
	h.client = dialoguev1.NewDialogueServiceClient(h.conn)
	t.Cleanup(func() {
		_ = h.conn.Close()
		_ = srv.Close()
		<-h.served
	})
	return h
}

func TestGRPCSayAndStreamSay(t *testing.T) {
	fc := &fakeCompleter{respond: replying("Aye, the tide turns at dusk. Be there.")}
	h := serve(t, newService(t, fc, nil), true, nil)
	ctx := as(t.Context(), tokP1)

	r, err := h.client.Say(ctx, &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "When?"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetText() != "Aye, the tide turns at dusk. Be there." || r.GetCompletion().GetSessionId() == "" {
		t.Fatalf("Say = %v", r)
	}
	st, err := h.client.StreamSay(ctx, &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{
		NpcId: "mara", SessionId: r.GetCompletion().GetSessionId(), Text: "Again?"}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var last *dialoguev1.Chunk
	ends := 0
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = m.GetChunk()
		b.WriteString(last.GetText())
		if last.GetSentenceEnd() && !last.GetFinal() {
			ends++
		}
	}
	if b.String() != r.GetText() || !last.GetFinal() || ends != 2 {
		t.Errorf("streamed %q (final %v, %d sentence ends), want %q in 2 sentences", b.String(), last.GetFinal(), ends, r.GetText())
	}
	if got := len(fc.requests()[1].Messages); got != 4 {
		t.Errorf("second turn prompt has %d messages, want 4 (system, history pair, new line)", got)
	}
}

// TestGRPCConverseBargeIn: a second turn while the NPC is speaking cuts the
// first reply short, cancels its backend request, and the second turn runs.
func TestGRPCConverseBargeIn(t *testing.T) {
	firstCancelled := make(chan struct{})
	var calls atomic.Int32
	fc := &fakeCompleter{respond: func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
		if calls.Add(1) == 1 {
			return &fakeStream{ctx: ctx, deltas: []router.Delta{{Text: "Long ago, in"}}, hang: true, cancelled: firstCancelled}, nil
		}
		return &fakeStream{ctx: ctx, deltas: words("Fine, ask then.")}, nil
	}}
	h := serve(t, newService(t, fc, nil), true, nil)
	st, err := h.client.Converse(as(t.Context(), tokP1))
	if err != nil {
		t.Fatal(err)
	}
	send := func(m *dialoguev1.ConverseRequest) {
		t.Helper()
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() *dialoguev1.ConverseResponse {
		t.Helper()
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	say := func(text string) *dialoguev1.ConverseRequest {
		return &dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{NpcId: "mara", Text: text}}}
	}
	send(say("Tell me a story."))
	if m := recv(); m.GetTurn() != 1 || m.GetChunk().GetText() != "Long ago, in" {
		t.Fatalf("first chunk = %v", m)
	}
	send(say("Stop. A question.")) // barge-in
	m := recv()
	if m.GetTurn() != 1 || !m.GetChunk().GetFinal() || m.GetChunk().GetCompletion().GetFinishReason() != dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED {
		t.Fatalf("after barge-in got %v, want turn 1's final chunk, interrupted", m)
	}
	session := m.GetChunk().GetCompletion().GetSessionId()
	select {
	case <-firstCancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the interrupted reply's backend request was not cancelled")
	}
	var text strings.Builder
	for {
		m := recv()
		if m.GetTurn() != 2 {
			t.Fatalf("chunk for turn %d, want 2", m.GetTurn())
		}
		text.WriteString(m.GetChunk().GetText())
		if m.GetChunk().GetFinal() {
			if got := m.GetChunk().GetCompletion().GetSessionId(); got != session {
				t.Errorf("turn 2 session %q, want turn 1's %q", got, session)
			}
			break
		}
	}
	if text.String() != "Fine, ask then." {
		t.Errorf("turn 2 = %q", text.String())
	}
	// The second turn saw the interrupted line in its history.
	if msgs := fc.requests()[1].Messages; len(msgs) != 4 || msgs[2].Content != "Long ago, in" {
		t.Errorf("turn 2 history = %+v", msgs)
	}
	// An explicit interrupt with nothing playing is harmless; closing ends.
	send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Interrupt{Interrupt: &dialoguev1.Interrupt{}}})
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != io.EOF {
		t.Errorf("after CloseSend: %v, want io.EOF", err)
	}
}

func TestGRPCConverseInterrupt(t *testing.T) {
	cancelled := make(chan struct{})
	fc := &fakeCompleter{respond: func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
		return &fakeStream{ctx: ctx, deltas: []router.Delta{{Text: "Listen."}, {Text: " Once"}}, hang: true, cancelled: cancelled}, nil
	}}
	h := serve(t, newService(t, fc, nil), false, nil)
	st, err := h.client.Converse(as(t.Context(), tokP1))
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{NpcId: "mara", Text: "Go on"}}})
	for i := 0; i < 2; i++ { // "Listen." and " Once"
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Interrupt{Interrupt: &dialoguev1.Interrupt{}}})
	m, err := st.Recv()
	if err != nil || m.GetChunk().GetCompletion().GetFinishReason() != dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED {
		t.Fatalf("after interrupt: %v, %v", m, err)
	}
	<-cancelled
	_ = st.CloseSend()
	if _, err := st.Recv(); err != io.EOF {
		t.Errorf("after CloseSend: %v, want io.EOF", err)
	}
}

func TestGRPCErrors(t *testing.T) {
	hang := func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
		return &fakeStream{ctx: ctx, hang: true}, nil
	}
	fc := &fakeCompleter{respond: func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
		if strings.Contains(req.Messages[len(req.Messages)-1].Content, "hang") {
			return hang(ctx, req)
		}
		return replying("Mm.")(ctx, req)
	}}
	svc := newService(t, fc, func(o *dialogue.Options) {
		o.RateLimit = dialogue.RateLimit{Rate: 0.001, Burst: 3}
		o.Limits.MaxMessageBytes = 4096
	})
	h := serve(t, svc, false, nil)
	bg := t.Context()
	r, err := h.client.Say(as(bg, tokP1), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	p1Session := r.GetCompletion().GetSessionId()
	utter := func(text string) *dialoguev1.SayRequest {
		return &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "guard", Text: text}}
	}
	deadline, cancel := context.WithTimeout(as(bg, tokSvc), 50*time.Millisecond)
	defer cancel()
	tests := []struct {
		name string
		ctx  context.Context
		req  *dialoguev1.SayRequest
		want codes.Code
	}{
		{"no token", bg, utter("hi"), codes.Unauthenticated},
		{"unknown token", as(bg, "not-a-real-token-at-all"), utter("hi"), codes.Unauthenticated},
		{"another player's session", as(bg, tokP2), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", SessionId: p1Session, Text: "hi"}}, codes.PermissionDenied},
		{"oversize utterance", as(bg, tokP2), utter(strings.Repeat("a", 2500)), codes.InvalidArgument},
		{"oversize message", as(bg, tokP2), utter(strings.Repeat("a", 5000)), codes.InvalidArgument},
		{"unknown NPC", as(bg, tokP2), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "nobody", Text: "hi"}}, codes.InvalidArgument},
		{"deadline exceeded", deadline, &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "guard", Text: "hang", PlayerId: "p3"}}, codes.DeadlineExceeded},
		{"rate limit 1", as(bg, tokP1), utter("hi"), codes.OK},
		{"rate limit 2", as(bg, tokP1), utter("hi"), codes.OK},
		{"rate limit 3", as(bg, tokP1), utter("hi"), codes.ResourceExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.Say(tt.ctx, tt.req)
			if got := status.Code(err); got != tt.want {
				t.Errorf("Say = %v, want code %v", err, tt.want)
			}
		})
	}
	// Streams authenticate too.
	st, err := h.client.StreamSay(bg, &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{NpcId: "guard", Text: "hi"}})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("unauthenticated StreamSay = %v", err)
	}
}

type panicky struct{}

func (panicky) Stream(context.Context, router.Request) (dialogue.CompletionStream, error) {
	panic("boom")
}

func TestGRPCPanicRecovery(t *testing.T) {
	ps, _ := dialogue.NewPersonas(testPersonas...)
	svc, err := dialogue.New(dialogue.Options{Completer: panicky{}, Personas: ps, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	h := serve(t, svc, false, func(o *dialogue.ServerOptions) { o.Logger = discardLogger() })
	for range 2 { // the server survives
		_, err := h.client.Say(as(t.Context(), tokP1), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "hi"}})
		if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "boom") {
			t.Errorf("Say with a panicking backend = %v, want Internal without details", err)
		}
	}
	for range 2 { // Converse replies run on their own goroutine
		st, err := h.client.Converse(as(t.Context(), tokP1))
		if err != nil {
			t.Fatal(err)
		}
		_ = st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{NpcId: "mara", Text: "hi"}}})
		if _, err := st.Recv(); status.Code(err) != codes.Internal {
			t.Errorf("Converse with a panicking backend = %v, want Internal", err)
		}
	}
}

func TestGRPCHealthAndReflection(t *testing.T) {
	h := serve(t, newService(t, &fakeCompleter{respond: replying("x")}, nil), true, func(o *dialogue.ServerOptions) { o.Reflection = true })
	ctx := t.Context()
	hr, err := healthpb.NewHealthClient(h.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: dialogue.ServiceName})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", hr, err)
	}
	rs, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), dialogue.ServiceName) {
		t.Errorf("reflection lists %v, want %s among them", names, dialogue.ServiceName)
	}
	_ = rs.CloseSend()
}

func TestGRPCGracefulShutdown(t *testing.T) {
	fc := &fakeCompleter{respond: func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
		if strings.Contains(req.Messages[len(req.Messages)-1].Content, "forever") {
			return &fakeStream{ctx: ctx, deltas: []router.Delta{{Text: "Once"}}, hang: true}, nil
		}
		return &fakeStream{ctx: ctx, deltas: words("One. Two. Three."), delay: 20 * time.Millisecond}, nil
	}}
	t.Run("streams finish", func(t *testing.T) {
		h := serve(t, newService(t, fc, nil), true, nil)
		st, err := h.client.StreamSay(as(t.Context(), tokP1), &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "count"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		shut := shutdownAsync(h.srv, 5*time.Second)
		var final bool
		for {
			m, err := st.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("stream cut by graceful shutdown: %v", err)
			}
			final = final || m.GetChunk().GetFinal()
		}
		if err := <-shut; err != nil || !final {
			t.Errorf("Shutdown = %v, final chunk seen %v", err, final)
		}
		if err := h.srv.Shutdown(context.Background()); !errors.Is(err, dialogue.ErrClosed) {
			t.Errorf("second Shutdown = %v, want ErrClosed", err)
		}
	})
	t.Run("deadline cancels the rest", func(t *testing.T) {
		h := serve(t, newService(t, fc, nil), true, nil)
		st, err := h.client.StreamSay(as(t.Context(), tokP1), &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "forever"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("Shutdown took %v", el)
		}
		if _, err := st.Recv(); err == nil || err == io.EOF {
			t.Errorf("hung stream after forced stop: %v, want an error", err)
		}
	})
}

func TestGRPCTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	h := serve(t, newService(t, &fakeCompleter{respond: replying("Secure.")}, nil), true, func(o *dialogue.ServerOptions) {
		o.Insecure = false
		o.Credentials = credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	})
	_ = h.conn.Close()
	target := h.conn.Target()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, err := dialoguev1.NewDialogueServiceClient(conn).Say(as(t.Context(), tokP1), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "hi"}})
	if err != nil || r.GetText() != "Secure." {
		t.Fatalf("Say over TLS = %v, %v", r, err)
	}
	plain, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(as(t.Context(), tokP1), 2*time.Second)
	defer cancel()
	if _, err := dialoguev1.NewDialogueServiceClient(plain).Say(ctx, &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "hi"}}); err == nil {
		t.Error("plaintext client reached a TLS server")
	}
}

func TestNewServerValidates(t *testing.T) {
	svc := newService(t, &fakeCompleter{respond: replying("x")}, nil)
	for _, o := range []dialogue.ServerOptions{
		{Insecure: true},
		{Authenticator: testAuth(t)},
	} {
		if _, err := dialogue.NewServer(svc, o); err == nil {
			t.Errorf("NewServer(%+v) succeeded", o)
		}
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dialogue-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestGRPCConverseTurnError: a turn the service refuses (validation, rate
// limit, another player's session) is answered with a TurnError for that
// turn and the conversation goes on; only a malformed ConverseRequest ends
// the stream. (It used to end the stream on any refused turn, which a game
// client would have to reconnect after.)
func TestGRPCConverseTurnError(t *testing.T) {
	svc := newService(t, &fakeCompleter{respond: replying("Hm.")}, func(o *dialogue.Options) {
		o.RateLimit = dialogue.RateLimit{Rate: 0.001, Burst: 3}
	})
	h := serve(t, svc, false, nil)
	st, err := h.client.Converse(as(t.Context(), tokP1))
	if err != nil {
		t.Fatal(err)
	}
	say := func(u *dialoguev1.Utterance) {
		t.Helper()
		if err := st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: u}}); err != nil {
			t.Fatal(err)
		}
	}
	// reply reads one turn's answer: its text, or its error.
	var session string // of the last answered turn
	reply := func(turn uint32) (string, *dialoguev1.TurnError) {
		t.Helper()
		var b strings.Builder
		for {
			m, err := st.Recv()
			if err != nil {
				t.Fatalf("turn %d: %v", turn, err)
			}
			if m.GetTurn() != turn {
				t.Fatalf("message for turn %d, want %d: %v", m.GetTurn(), turn, m)
			}
			if m.GetError() != nil {
				if m.GetChunk() != nil {
					t.Errorf("turn %d: both chunk and error set", turn)
				}
				return b.String(), m.GetError()
			}
			b.WriteString(m.GetChunk().GetText())
			if m.GetChunk().GetFinal() {
				session = m.GetChunk().GetCompletion().GetSessionId()
				return b.String(), nil
			}
		}
	}
	say(&dialoguev1.Utterance{NpcId: "mara", Text: "hi"})
	if text, terr := reply(1); text != "Hm." || terr != nil {
		t.Fatalf("turn 1 = %q, %v", text, terr)
	}
	first := session
	// The NPC is inherited from the first turn; the empty text is not.
	say(&dialoguev1.Utterance{})
	if _, terr := reply(2); codes.Code(terr.GetCode()) != codes.InvalidArgument || terr.GetMessage() == "" {
		t.Errorf("turn 2 (empty) error = %v, want InvalidArgument with a message", terr)
	}
	say(&dialoguev1.Utterance{NpcId: "nobody", Text: "hi"})
	if _, terr := reply(3); codes.Code(terr.GetCode()) != codes.InvalidArgument {
		t.Errorf("turn 3 (unknown NPC) error = %v, want InvalidArgument", terr)
	}
	// The conversation goes on after refused turns, with the NPC and
	// session of the last answered turn: a refused turn changes neither.
	say(&dialoguev1.Utterance{Text: "still there?"})
	if text, terr := reply(4); text != "Hm." || terr != nil {
		t.Fatalf("turn 4 = %q, %v", text, terr)
	}
	if session != first {
		t.Errorf("turn 4 session %q, want turn 1's %q", session, first)
	}
	say(&dialoguev1.Utterance{NpcId: "mara", Text: "again"}) // over the burst of 3
	if _, terr := reply(5); codes.Code(terr.GetCode()) != codes.ResourceExhausted {
		t.Errorf("turn 5 (rate limited) error = %v, want ResourceExhausted", terr)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != io.EOF {
		t.Errorf("after CloseSend: %v, want io.EOF", err)
	}
	if got := svc.Stats().Requests; got != 2 {
		t.Errorf("Stats().Requests = %d, want the 2 turns that were answered", got)
	}

	st2, err := h.client.Converse(as(t.Context(), tokP1))
	if err != nil {
		t.Fatal(err)
	}
	_ = st2.Send(&dialoguev1.ConverseRequest{})
	if _, err := st2.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty ConverseRequest: %v, want InvalidArgument", err)
	}
}

// TestGRPCConverseOtherPlayersSession: continuing another player's session
// on a Converse stream is refused for that turn, and nothing of the other
// conversation comes back.
func TestGRPCConverseOtherPlayersSession(t *testing.T) {
	fc := &fakeCompleter{respond: replying("Secret plans.")}
	h := serve(t, newService(t, fc, nil), false, nil)
	r, err := h.client.Say(as(t.Context(), tokP1), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "the plan?"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := h.client.Converse(as(t.Context(), tokP2))
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{
		NpcId: "mara", SessionId: r.GetCompletion().GetSessionId(), Text: "what did they say?"}}})
	m, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(m.GetError().GetCode()) != codes.PermissionDenied || m.GetChunk() != nil {
		t.Errorf("another player's session: %v, want a PermissionDenied turn error", m)
	}
	if n := len(fc.requests()); n != 1 {
		t.Errorf("%d backend requests, want only player one's", n)
	}
	_ = st.CloseSend()
	if _, err := st.Recv(); err != io.EOF {
		t.Errorf("after CloseSend: %v, want io.EOF", err)
	}
}

// TestGRPCConcurrentStreams: many streams at once on one connection each
// get their own reply and session, with no cross-talk.
func TestGRPCConcurrentStreams(t *testing.T) {
	fc := &fakeCompleter{respond: func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
		return replying("You said "+req.Messages[len(req.Messages)-1].Content+". Fine.")(ctx, req)
	}}
	h := serve(t, newService(t, fc, nil), true, nil)
	const n = 200
	errs := make(chan error, n)
	sessions := make(chan string, n)
	for i := range n {
		go func() {
			ctx := as(t.Context(), tokSvc)
			word := "w" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
			st, err := h.client.StreamSay(ctx, &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{
				NpcId: "guard", Text: word, PlayerId: "p" + strings.Repeat("1", i%5) + string(rune('a'+i%26))}})
			if err != nil {
				errs <- err
				return
			}
			var b strings.Builder
			for {
				m, err := st.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					errs <- err
					return
				}
				b.WriteString(m.GetChunk().GetText())
				if m.GetChunk().GetFinal() {
					sessions <- m.GetChunk().GetCompletion().GetSessionId()
				}
			}
			if want := "You said " + word + ". Fine."; b.String() != want {
				errs <- errors.New("got " + b.String() + ", want " + want)
				return
			}
			errs <- nil
		}()
	}
	seen := map[string]bool{}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(sessions)
	for s := range sessions {
		if seen[s] {
			t.Errorf("session %s handed out twice", s)
		}
		seen[s] = true
	}
	if len(seen) != n {
		t.Errorf("%d sessions, want %d", len(seen), n)
	}
}

// gatedStream sends before, waits for gate (or cancellation), then sends
// after and ends.
type gatedStream struct {
	ctx           context.Context
	before, after []router.Delta
	gate          <-chan struct{}
}

func (s *gatedStream) Recv() (router.Delta, error) {
	if len(s.before) > 0 {
		d := s.before[0]
		s.before = s.before[1:]
		return d, nil
	}
	if s.gate != nil {
		select {
		case <-s.gate:
			s.gate = nil
		case <-s.ctx.Done():
			return router.Delta{}, s.ctx.Err()
		}
	}
	if len(s.after) > 0 {
		d := s.after[0]
		s.after = s.after[1:]
		return d, nil
	}
	return router.Delta{}, io.EOF
}

func (s *gatedStream) Close() error            { return nil }
func (s *gatedStream) Receipt() router.Receipt { return router.Receipt{} }

// TestGRPCGracefulShutdownConverse: a graceful shutdown lets a Converse
// reply in progress finish, then ends that stream with Unavailable; an idle
// Converse stream ends at once, so open conversations do not hold the
// shutdown until its deadline (they used to, and were then cut off).
func TestGRPCGracefulShutdownConverse(t *testing.T) {
	release := make(chan struct{})
	fc := &fakeCompleter{respond: func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
		if strings.Contains(req.Messages[len(req.Messages)-1].Content, "count") {
			return &gatedStream{ctx: ctx, before: []router.Delta{{Text: "One. "}}, after: []router.Delta{{Text: "Two."}}, gate: release}, nil
		}
		return replying("Hm.")(ctx, req)
	}}
	h := serve(t, newService(t, fc, nil), true, nil)
	say := func(text string) *dialoguev1.ConverseRequest {
		return &dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{NpcId: "mara", Text: text}}}
	}
	idle, err := h.client.Converse(as(t.Context(), tokP1))
	if err != nil {
		t.Fatal(err)
	}
	_ = idle.Send(say("hi"))
	for {
		m, err := idle.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetChunk().GetFinal() {
			break
		}
	}
	busy, err := h.client.Converse(as(t.Context(), tokP2))
	if err != nil {
		t.Fatal(err)
	}
	_ = busy.Send(say("count"))
	if m, err := busy.Recv(); err != nil || m.GetChunk().GetText() != "One." {
		t.Fatalf("busy stream first chunk = %v, %v", m, err)
	}

	shut := shutdownAsync(h.srv, 20*time.Second)
	if _, err := idle.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("idle Converse during shutdown: %v, want Unavailable", err)
	}
	close(release)
	var text strings.Builder
	text.WriteString("One.")
	for {
		m, err := busy.Recv()
		if err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Errorf("busy Converse after its reply: %v, want Unavailable", err)
			}
			break
		}
		text.WriteString(m.GetChunk().GetText())
		if m.GetChunk().GetFinal() && m.GetChunk().GetCompletion().GetFinishReason() != dialoguev1.FinishReason_FINISH_REASON_STOP {
			t.Errorf("busy reply finished with %v, want STOP", m.GetChunk().GetCompletion().GetFinishReason())
		}
	}
	if text.String() != "One. Two." {
		t.Errorf("busy reply = %q, want it whole", text.String())
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v, want nil: every stream ended by itself", err)
	}
}

// TestGRPCCloseDuringShutdown: Close forces a graceful Shutdown that is
// still waiting for a stream, as http.Server.Close does; it used to return
// ErrClosed and do nothing, leaving Shutdown waiting for its deadline.
func TestGRPCCloseDuringShutdown(t *testing.T) {
	fc := &fakeCompleter{respond: func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
		return &fakeStream{ctx: ctx, deltas: []router.Delta{{Text: "Once"}}, hang: true}, nil
	}}
	h := serve(t, newService(t, fc, nil), true, nil)
	st, err := h.client.StreamSay(as(t.Context(), tokP1), &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "forever"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	shut := shutdownAsync(h.srv, 20*time.Second)
	// Wait until the shutdown has begun: health turns NOT_SERVING.
	hc := healthpb.NewHealthClient(h.conn)
	for {
		r, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: dialogue.ServiceName})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			break
		}
		runtime.Gosched()
	}
	if err := h.srv.Close(); err != nil {
		t.Errorf("Close during Shutdown = %v, want nil", err)
	}
	if err := <-shut; !errors.Is(err, dialogue.ErrClosed) {
		t.Errorf("Shutdown interrupted by Close = %v, want ErrClosed", err)
	}
	if _, err := st.Recv(); err == nil || err == io.EOF {
		t.Errorf("stream after Close: %v, want an error", err)
	}
	if err := h.srv.Close(); !errors.Is(err, dialogue.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

// TestGRPCConverseGoroutinesEndWithStream: however a Converse stream ends
// while the NPC is speaking, the handler's reader and reply goroutines end
// with it (and the backend request is cancelled).
func TestGRPCConverseGoroutinesEndWithStream(t *testing.T) {
	say := &dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{NpcId: "mara", Text: "talk"}}}
	tests := []struct {
		name string
		end  func(t *testing.T, st grpc.BidiStreamingClient[dialoguev1.ConverseRequest, dialoguev1.ConverseResponse], cancel context.CancelFunc)
		want codes.Code
	}{
		{"client cancels", func(t *testing.T, _ grpc.BidiStreamingClient[dialoguev1.ConverseRequest, dialoguev1.ConverseResponse], cancel context.CancelFunc) {
			cancel()
		}, codes.Canceled},
		{"malformed request", func(t *testing.T, st grpc.BidiStreamingClient[dialoguev1.ConverseRequest, dialoguev1.ConverseResponse], _ context.CancelFunc) {
			_ = st.Send(&dialoguev1.ConverseRequest{})
		}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cancelled := make(chan struct{})
			fc := &fakeCompleter{respond: func(ctx context.Context, req router.Request) (dialogue.CompletionStream, error) {
				if strings.Contains(req.Messages[len(req.Messages)-1].Content, "talk") {
					return &fakeStream{ctx: ctx, deltas: []router.Delta{{Text: "Well"}}, hang: true, cancelled: cancelled}, nil
				}
				return replying("Hm.")(ctx, req)
			}}
			h := serve(t, newService(t, fc, nil), true, nil)
			// Bring the connection up before taking the baseline.
			if _, err := h.client.Say(as(t.Context(), tokP1), &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "hi"}}); err != nil {
				t.Fatal(err)
			}
			baseline := goleak.IgnoreCurrent()
			ctx, cancel := context.WithCancel(as(t.Context(), tokP1))
			defer cancel()
			st, err := h.client.Converse(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Send(say)
			if m, err := st.Recv(); err != nil || m.GetChunk().GetText() != "Well" {
				t.Fatalf("first chunk = %v, %v", m, err)
			}
			tt.end(t, st, cancel)
			for {
				if _, err := st.Recv(); err != nil {
					if got := status.Code(err); got != tt.want {
						t.Errorf("stream ended with %v, want %v", err, tt.want)
					}
					break
				}
			}
			<-cancelled
			if err := goleak.Find(baseline); err != nil {
				t.Error(err)
			}
		})
	}
}

// slowModerator holds Input for lines containing "slow" until the request
// is cancelled, then fails with an error of its own (as a moderation
// client that ignores why its context ended would).
type slowModerator struct{ entered chan struct{} }

func (m slowModerator) Input(ctx context.Context, in dialogue.Moderation) (string, error) {
	if strings.Contains(in.Text, "slow") {
		close(m.entered)
		<-ctx.Done()
		return "", errors.New("moderation service: request aborted")
	}
	return in.Text, nil
}

func (slowModerator) Output(_ context.Context, m dialogue.Moderation) (string, error) {
	return m.Text, nil
}

// TestGRPCConverseBargeInBeforeReply: a turn interrupted before its reply
// began (here, in input moderation) still ends with a final INTERRUPTED
// chunk, so every turn ends with a final chunk or an error, and the
// conversation goes on. It used to end the whole stream with the
// moderator's error, or leave the turn without an end.
func TestGRPCConverseBargeInBeforeReply(t *testing.T) {
	mod := slowModerator{entered: make(chan struct{})}
	fc := &fakeCompleter{respond: replying("Fine.")}
	h := serve(t, newService(t, fc, func(o *dialogue.Options) { o.Moderator = mod }), false, nil)
	st, err := h.client.Converse(as(t.Context(), tokP1))
	if err != nil {
		t.Fatal(err)
	}
	say := func(text string) {
		t.Helper()
		if err := st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: &dialoguev1.Utterance{NpcId: "mara", Text: text}}}); err != nil {
			t.Fatal(err)
		}
	}
	say("a slow one")
	<-mod.entered
	say("never mind")
	m, err := st.Recv()
	if err != nil {
		t.Fatalf("after barge-in during moderation: %v", err)
	}
	if c := m.GetChunk(); m.GetTurn() != 1 || !c.GetFinal() || c.GetCompletion().GetFinishReason() != dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED {
		t.Errorf("turn 1 ended with %v, want a final INTERRUPTED chunk", m)
	}
	var text strings.Builder
	for {
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetTurn() != 2 {
			t.Fatalf("message for turn %d, want 2: %v", m.GetTurn(), m)
		}
		text.WriteString(m.GetChunk().GetText())
		if m.GetChunk().GetFinal() {
			break
		}
	}
	if text.String() != "Fine." {
		t.Errorf("turn 2 = %q, want %q", text.String(), "Fine.")
	}
	if n := len(fc.requests()); n != 1 {
		t.Errorf("%d backend requests, want 1 (turn 1 never reached the backend)", n)
	}
	_ = st.CloseSend()
	if _, err := st.Recv(); err != io.EOF {
		t.Errorf("after CloseSend: %v, want io.EOF", err)
	}
}

// shutdownAsync starts srv.Shutdown with a deadline of d and returns the
// channel its result arrives on.
func shutdownAsync(srv *dialogue.Server, d time.Duration) <-chan error {
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	return shut
}
