package dialogue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/proto"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/identity"
)

// ServiceName is the full gRPC name of the dialogue service.
const ServiceName = "bodybroker.dialogue.v1.DialogueService"

// Register registers the dialogue service on a gRPC server (a studio's own
// *grpc.Server, say). The service needs an [identity.Identity] on every call's
// context: install [Interceptors] on that server, or your own interceptors
// that call [identity.NewContext]; calls without one fail with Unauthenticated.
// Bound request sizes on that server with
// grpc.MaxRecvMsgSize(s.MaxRecvMsgSize()) (see [Service.MaxRecvMsgSize]);
// the service refuses messages over Limits.MaxMessageBytes itself, with
// InvalidArgument, as over HTTP. Converse streams on such a server are
// not drained by its GracefulStop; they end when their clients close them
// or when the server stops.
//
// A reply chunk the client does not accept within opts.SendTimeout
// (default [DefaultSendTimeout]) ends the call: see [ErrSlowClient].
// Register uses only that field of opts (authentication is the
// interceptors' job), and returns an [*OptionsError] if it is negative.
func (s *Service) Register(r grpc.ServiceRegistrar, opts HandlerOptions) error {
	if err := opts.validate(false); err != nil {
		return err
	}
	dialoguev1.RegisterDialogueServiceServer(r, &grpcHandler{s: s, sendTimeout: opts.SendTimeout})
	return nil
}

// MaxRecvMsgSize is the grpc.MaxRecvMsgSize to give a *grpc.Server that
// hosts the service: Limits.MaxMessageBytes plus as much again, at least
// 64 KiB, of headroom. The service checks Limits.MaxMessageBytes itself,
// after authentication, and answers InvalidArgument (Unauthenticated
// first for a caller without credentials). grpc-go answers a message over
// its own bound with ResourceExhausted before any interceptor or handler
// runs, so that bound must sit above the service's, yet close enough that
// a stream cannot make the server buffer much more than the limit.
// Messages over MaxRecvMsgSize, far beyond any a correct client sends,
// still get grpc-go's ResourceExhausted.
func (s *Service) MaxRecvMsgSize() int {
	l := s.opts.Limits.MaxMessageBytes
	return l + max(l, 64<<10)
}

// checkSize refuses a request message over Limits.MaxMessageBytes.
func (s *Service) checkSize(m proto.Message) error {
	if n, limit := proto.Size(m), s.opts.Limits.MaxMessageBytes; n > limit {
		return &FieldError{Field: "message", Reason: fmt.Sprintf("%d bytes, over the %d-byte limit", n, limit), TooLarge: true}
	}
	return nil
}

// DefaultSendTimeout is how long a reply chunk may wait for the client to
// accept it unless HandlerOptions.SendTimeout or ServerOptions.SendTimeout
// says otherwise.
const DefaultSendTimeout = 10 * time.Second

// HandlerOptions configures the transports a studio hosts on its own
// servers: [Interceptors], [Service.Register] and [Service.HTTPHandler].
// ([NewServer] takes the same fields in [ServerOptions].) The zero value
// means the defaults, except that Interceptors and HTTPHandler need an
// Authenticator.
type HandlerOptions struct {
	// Authenticator turns bearer tokens into identities, normally an
	// [identity.TokenAuthenticator]. Interceptors and HTTPHandler require
	// it; Register ignores it.
	Authenticator identity.Authenticator
	// Logger receives recovered panics; nil means slog.Default().
	Logger *slog.Logger
	// SendTimeout bounds how long one reply chunk may wait for the client
	// to accept it: for gRPC, until the client's flow-control window has
	// room for it; for HTTP, until the connection has taken it (a write
	// deadline). A client that does not read for that long has its call
	// ended, its backend request cancelled and its router slot released,
	// and is counted in Stats.SlowClients (see [ErrSlowClient]). 0 means
	// [DefaultSendTimeout]; negative is refused.
	SendTimeout time.Duration
}

// validate checks o, requiring an Authenticator if needAuth, and fills in
// the defaults.
func (o *HandlerOptions) validate(needAuth bool) error {
	if needAuth && o.Authenticator == nil {
		return &OptionsError{Field: "HandlerOptions.Authenticator", Reason: "required"}
	}
	if o.SendTimeout < 0 {
		return &OptionsError{Field: "HandlerOptions.SendTimeout", Reason: "must not be negative (0 means DefaultSendTimeout)"}
	}
	if o.SendTimeout == 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// outbox sends a stream's messages from a goroutine of its own, so that a
// client that stops reading cannot hold the handler: grpc-go's Send blocks
// while the client's flow-control window is full, and nothing but the
// handler returning ends the stream and unblocks it. send gives up after
// the timeout; the writer goroutine then stays in Send until the handler
// has returned and grpc has ended the stream. The handler owns the outbox
// and closes it when it returns, after its last send; sends never overlap.
type outbox[T any] struct {
	svc     *Service
	timeout time.Duration
	in      chan *T
	out     chan error // buffered: a writer that was given up on never blocks
	timer   *time.Timer
	stalled atomic.Bool
}

func newOutbox[T any](svc *Service, timeout time.Duration, send func(*T) error) *outbox[T] {
	o := &outbox[T]{svc: svc, timeout: timeout, in: make(chan *T), out: make(chan error, 1)}
	go func() {
		for m := range o.in {
			o.out <- send(m)
		}
	}()
	return o
}

// send sends m, or returns an error matching [ErrSlowClient] if the client
// has not accepted it within the timeout; after that, every send fails.
func (o *outbox[T]) send(m *T) error {
	if o.stalled.Load() {
		return ErrSlowClient
	}
	if o.timer == nil {
		o.timer = time.NewTimer(o.timeout)
	} else {
		o.timer.Reset(o.timeout)
	}
	defer o.timer.Stop()
	o.in <- m // the writer is idle: sends never overlap, and the last one returned
	select {
	case err := <-o.out:
		return err
	case <-o.timer.C:
	}
	o.stalled.Store(true)
	o.svc.slowClients.Add(1)
	return fmt.Errorf("%w: a reply chunk waited %v", ErrSlowClient, o.timeout)
}

// close ends the writer once its send in progress, if any, returns.
func (o *outbox[T]) close() { close(o.in) }

// Interceptors returns unary and stream server interceptors that, for the
// dialogue service's methods only, recover panics (as Internal) and
// authenticate the "authorization: Bearer <token>" metadata with a. Other
// services on the same server (health, reflection, the studio's own) pass
// through untouched. opts.Authenticator is required: without one,
// Interceptors returns an [*OptionsError] rather than failing every call.
// opts.SendTimeout plays no part here.
func Interceptors(opts HandlerOptions) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor, error) {
	if err := opts.validate(true); err != nil {
		return nil, nil, err
	}
	unary, stream := interceptors(opts)
	return unary, stream, nil
}

// interceptors builds the interceptors for validated opts.
func interceptors(opts HandlerOptions) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	a, log := opts.Authenticator, opts.Logger
	ours := func(method string) bool { return strings.HasPrefix(method, "/"+ServiceName+"/") }
	authCtx := func(ctx context.Context) (context.Context, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		var h string
		if v := md.Get("authorization"); len(v) > 0 {
			h = v[0]
		}
		id, err := identity.FromHeader(ctx, a, h)
		if err != nil {
			return nil, toStatus(err)
		}
		return identity.NewContext(ctx, id), nil
	}
	recovered := func(method string, err *error) {
		if r := recover(); r != nil {
			log.Error("dialogue: panic in handler", "method", method, "panic", r, "stack", string(debug.Stack()))
			*err = toStatus(errPanic)
		}
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (resp any, err error) {
		if !ours(info.FullMethod) {
			return next(ctx, req)
		}
		defer recovered(info.FullMethod, &err)
		ctx, err = authCtx(ctx)
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) (err error) {
		if !ours(info.FullMethod) {
			return next(srv, ss)
		}
		defer recovered(info.FullMethod, &err)
		ctx, err := authCtx(ss.Context())
		if err != nil {
			return err
		}
		return next(srv, &identityStream{ServerStream: ss, ctx: ctx})
	}
	return unary, stream
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

// grpcHandler adapts a Service to the generated server interface.
type grpcHandler struct {
	dialoguev1.UnimplementedDialogueServiceServer
	s *Service
	// drain is closed when a [Server] begins a graceful shutdown; nil for
	// a handler registered on a studio's own server.
	drain <-chan struct{}
	// sendTimeout bounds each Send (see HandlerOptions.SendTimeout).
	sendTimeout time.Duration
}

func (h *grpcHandler) Say(ctx context.Context, req *dialoguev1.SayRequest) (*dialoguev1.SayResponse, error) {
	if err := h.s.checkSize(req); err != nil {
		return nil, toStatus(err)
	}
	resp, err := h.s.Say(ctx, req.GetUtterance())
	return resp, toStatus(err)
}

func (h *grpcHandler) StreamSay(req *dialoguev1.StreamSayRequest, stream grpc.ServerStreamingServer[dialoguev1.StreamSayResponse]) error {
	if err := h.s.checkSize(req); err != nil {
		return toStatus(err)
	}
	out := newOutbox(h.s, h.sendTimeout, stream.Send)
	defer out.close()
	err := h.s.StreamSay(stream.Context(), req.GetUtterance(), func(c *dialoguev1.Chunk) error {
		return out.send(&dialoguev1.StreamSayResponse{Chunk: c})
	})
	return toStatus(err)
}

// errNoAction is a ConverseRequest with neither say nor interrupt.
var errNoAction = &FieldError{Field: "action", Reason: "a ConverseRequest needs say or interrupt"}

// Converse runs one reply at a time; a new turn or an Interrupt cancels the
// reply in progress (its last chunk says FINISH_REASON_INTERRUPTED) before
// the next starts, so only one reply ever sends. A turn the service
// refuses is answered with a TurnError and the stream goes on; a
// ConverseRequest over Limits.MaxMessageBytes ends the stream with
// InvalidArgument, like a malformed one. When the server drains, the
// stream ends with Unavailable once the reply in progress is done.
//
// Goroutines: the reply in progress is owned by Converse, which cancels
// it and waits for it before returning; the reader (readRequests) and the
// outbox's writer are owned by the stream: they end when grpc ends it,
// which it does as soon as Converse returns. Converse itself returns as
// soon as the stream's context ends, whatever it was waiting for.
func (h *grpcHandler) Converse(stream grpc.BidiStreamingServer[dialoguev1.ConverseRequest, dialoguev1.ConverseResponse]) error {
	ctx := stream.Context()
	// Replies are sent through out, closed after the last reply has
	// ended (the deferred stop below runs first).
	out := newOutbox(h.s, h.sendTimeout, stream.Send)
	defer out.close()
	// The reader is the one goroutine that calls stream.Recv. It delivers
	// every result, the final error included, until Converse returns
	// (quit): it must never drop the error that says the stream has ended,
	// or the loop below would wait for a message that cannot come. When
	// Converse returns first, the reader is left in Recv only until grpc
	// ends the stream, which it does as soon as Converse returns.
	recv := make(chan recvd)
	quit := make(chan struct{})
	defer close(quit)
	go h.readRequests(stream, recv, quit)

	// result ends a turn; session and npc are set when it was answered.
	type result struct {
		err          error
		session, npc string
	}
	var (
		in      = recv
		drain   = h.drain
		closing bool
		cancel  context.CancelCauseFunc
		done    chan result
		turnNo  uint32
		npc     string // of the last answered turn, inherited by the next
		session string // likewise
	)
	answered := func(r result) {
		if r.session != "" {
			session, npc = r.session, r.npc
		}
	}
	// stop interrupts the reply in progress and waits for it.
	stop := func(cause error) error {
		if done == nil {
			return nil
		}
		cancel(cause)
		r := <-done
		done, cancel = nil, nil
		answered(r)
		if r.err != nil && !(cause == errInterrupted && errors.Is(r.err, context.Canceled)) {
			return r.err
		}
		return nil
	}
	defer func() { _ = stop(context.Canceled) }()

	for {
		select {
		case <-ctx.Done():
			// The stream has ended (client cancelled, connection lost,
			// server stopped); the deferred stop ends the reply.
			return toStatus(ctx.Err())
		case r := <-done:
			done, cancel = nil, nil
			answered(r)
			if r.err != nil {
				return toStatus(r.err)
			}
			if closing {
				return toStatus(fmt.Errorf("%w: the server is shutting down", ErrClosed))
			}
		case <-drain:
			// Finish the reply in progress, take no more turns.
			drain, in, closing = nil, nil, true
			if done == nil {
				return toStatus(fmt.Errorf("%w: the server is shutting down", ErrClosed))
			}
		case m := <-in:
			if m.err == io.EOF {
				// The client is done talking; let the NPC finish.
				if done != nil {
					r := <-done
					done, cancel = nil, nil
					return toStatus(r.err)
				}
				return nil
			}
			if m.err != nil {
				return toStatus(m.err)
			}
			switch a := m.m.GetAction().(type) {
			case *dialoguev1.ConverseRequest_Interrupt:
				if err := stop(errInterrupted); err != nil {
					return toStatus(err)
				}
			case *dialoguev1.ConverseRequest_Say:
				if err := stop(errInterrupted); err != nil {
					return toStatus(err)
				}
				u := a.Say
				if u == nil {
					u = &dialoguev1.Utterance{} // refused by validation, as a turn
				}
				if u.GetNpcId() == "" {
					u.NpcId = npc
				}
				if u.GetSessionId() == "" && u.GetNpcId() == npc {
					u.SessionId = session
				}
				turnNo++
				n, owned := turnNo, session
				var tctx context.Context
				tctx, cancel = context.WithCancelCause(ctx)
				done = make(chan result, 1)
				go func(done chan<- result, cancel context.CancelCauseFunc) {
					defer cancel(context.Canceled)
					var (
						sess string
						sent bool
					)
					defer func() {
						// This goroutine is outside the interceptor's
						// recovery: recover here, or a panic kills the
						// process.
						if v := recover(); v != nil {
							h.s.log.Error("dialogue: panic in Converse", "panic", v, "stack", string(debug.Stack()))
							done <- result{errPanic, "", ""}
						}
					}()
					err := h.s.StreamSay(tctx, u, func(c *dialoguev1.Chunk) error {
						sent = true
						if c.GetFinal() {
							sess = c.GetCompletion().GetSessionId()
						}
						return out.send(&dialoguev1.ConverseResponse{Turn: n, Chunk: c})
					})
					if err != nil && !sent {
						refused := turnError(err)
						switch {
						case refused != nil && (tctx.Err() == nil || codes.Code(refused.GetCode()) != codes.Unavailable):
							// The service refused the turn (another
							// player's session, say): that is the
							// answer, even if the player interrupted
							// meanwhile. Only Unavailable may be the
							// interruption's doing.
							err = out.send(&dialoguev1.ConverseResponse{Turn: n, Error: refused})
						case context.Cause(tctx) == errInterrupted:
							// Interrupted before the reply began (in
							// moderation, say): whatever that step
							// returned, the turn ends like any other
							// interrupted one. It names its session
							// only if this stream already had it
							// answered: the ID the client sent may be
							// another player's, not yet checked.
							c := &dialoguev1.Completion{FinishReason: dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED}
							if u.GetSessionId() == owned {
								c.SessionId = owned
							}
							err = out.send(&dialoguev1.ConverseResponse{Turn: n, Chunk: &dialoguev1.Chunk{
								SentenceEnd: true, Final: true, Completion: c,
							}})
						}
					}
					done <- result{err, sess, u.GetNpcId()}
				}(done, cancel)
			default:
				return toStatus(errNoAction)
			}
		}
	}
}

// recvd is one result of a Converse stream's Recv.
type recvd struct {
	m   *dialoguev1.ConverseRequest
	err error
}

// readRequests receives from stream until Recv fails or a message is
// over the size limit, handing every result to recv, until quit is
// closed.
func (h *grpcHandler) readRequests(stream grpc.BidiStreamingServer[dialoguev1.ConverseRequest, dialoguev1.ConverseResponse], recv chan<- recvd, quit <-chan struct{}) {
	for {
		m, err := stream.Recv()
		if err == nil {
			if err = h.s.checkSize(m); err != nil {
				m = nil
			}
		}
		select {
		case recv <- recvd{m, err}:
		case <-quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// ServerOptions configures a [Server]. Authenticator is required, and so is
// Credentials unless Insecure is set.
type ServerOptions struct {
	// Authenticator turns bearer tokens into identities, normally a
	// [identity.TokenAuthenticator].
	Authenticator identity.Authenticator
	// Credentials secure the transport, normally
	// credentials.NewTLS(&tls.Config{...}).
	Credentials credentials.TransportCredentials
	// Insecure allows plaintext when Credentials is nil: for loopback
	// tests, or behind a TLS-terminating proxy on a private network.
	Insecure bool
	// MaxConcurrentStreams bounds the streams per client connection; 0
	// means 1,000.
	MaxConcurrentStreams uint32
	// KeepaliveMinTime is the shortest client ping interval tolerated;
	// clients that ping more often are disconnected. 0 means 10s.
	KeepaliveMinTime time.Duration
	// KeepaliveTime is how long a connection may be idle before the server
	// pings it; 0 means 1 minute. KeepaliveTimeout is how long it waits for
	// the answer; 0 means 20s.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// MaxConnectionIdle closes connections without streams after this
	// long; 0 means 15 minutes.
	MaxConnectionIdle time.Duration
	// SendTimeout bounds how long one reply chunk may wait for the client
	// to accept it (see HandlerOptions.SendTimeout); 0 means
	// [DefaultSendTimeout].
	SendTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Reflection registers gRPC server reflection, for grpcurl and
	// similar tools. It is off by default: reflection shows every
	// service and message on the server to anyone who can connect, which
	// production servers rarely want.
	Reflection bool
	// ExtraOptions are appended to the grpc.ServerOptions the Server
	// builds (stats handlers, more interceptors).
	ExtraOptions []grpc.ServerOption
}

// Server is a ready-to-run gRPC server for the dialogue service: auth and
// panic-recovery interceptors, message size limits, keepalive enforcement,
// bounded sends, the standard health service and, if
// ServerOptions.Reflection is set, server reflection. Create it with
// [NewServer], run it with Serve, stop it with Shutdown or Close.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	drain  chan struct{} // closed when shutdown begins

	mu      sync.Mutex
	shut    bool // Shutdown or Close has begun
	stopped bool // Close has been called
}

// NewServer builds a Server for svc.
func NewServer(svc *Service, opts ServerOptions) (*Server, error) {
	if svc == nil {
		return nil, errors.New("dialogue: NewServer needs a Service")
	}
	if opts.Credentials == nil && !opts.Insecure {
		return nil, errors.New("dialogue: ServerOptions.Credentials is required unless Insecure is set")
	}
	if opts.MaxConcurrentStreams == 0 {
		opts.MaxConcurrentStreams = 1000
	}
	if opts.KeepaliveMinTime <= 0 {
		opts.KeepaliveMinTime = 10 * time.Second
	}
	if opts.KeepaliveTime <= 0 {
		opts.KeepaliveTime = time.Minute
	}
	if opts.KeepaliveTimeout <= 0 {
		opts.KeepaliveTimeout = 20 * time.Second
	}
	if opts.MaxConnectionIdle <= 0 {
		opts.MaxConnectionIdle = 15 * time.Minute
	}
	ho := HandlerOptions{Authenticator: opts.Authenticator, Logger: opts.Logger, SendTimeout: opts.SendTimeout}
	if err := ho.validate(true); err != nil {
		var oe *OptionsError
		if errors.As(err, &oe) {
			oe.Field = "ServerOptions." + strings.TrimPrefix(oe.Field, "HandlerOptions.")
		}
		return nil, err
	}
	unary, stream := interceptors(ho)
	so := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary),
		grpc.ChainStreamInterceptor(stream),
		grpc.MaxRecvMsgSize(svc.MaxRecvMsgSize()),
		grpc.MaxConcurrentStreams(opts.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: opts.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: opts.KeepaliveTime, Timeout: opts.KeepaliveTimeout, MaxConnectionIdle: opts.MaxConnectionIdle,
		}),
	}
	if opts.Credentials != nil {
		so = append(so, grpc.Creds(opts.Credentials))
	}
	so = append(so, opts.ExtraOptions...)
	gs := grpc.NewServer(so...)
	drain := make(chan struct{})
	dialoguev1.RegisterDialogueServiceServer(gs, &grpcHandler{s: svc, drain: drain, sendTimeout: ho.SendTimeout})
	hs := health.NewServer()
	hs.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	if opts.Reflection {
		reflection.Register(gs)
	}
	return &Server{grpc: gs, health: hs, drain: drain}, nil
}

// GRPC returns the underlying *grpc.Server, to register more services on
// before Serve.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Serve accepts connections on lis until Shutdown or Close; it returns nil
// after a shutdown, like grpc.Server.Serve.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	shut := s.shut
	s.mu.Unlock()
	if shut {
		_ = lis.Close()
		return ErrClosed
	}
	return s.grpc.Serve(lis)
}

// Shutdown stops the server gracefully: health turns NOT_SERVING, new RPCs
// are refused, and RPCs in progress may finish until ctx is done, when the
// rest are cancelled. A Converse stream finishes the reply in progress and
// then ends with Unavailable (an idle one ends at once), so that open
// conversations do not hold the shutdown to its deadline; the client
// reconnects elsewhere and carries on with its session ID. It returns
// ctx.Err() if it had to cancel any RPC, and ErrClosed on later calls.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.markShut() {
		return ErrClosed
	}
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
		s.mu.Lock()
		forced := s.stopped
		s.mu.Unlock()
		if forced {
			return fmt.Errorf("%w: Close cut the graceful shutdown short", ErrClosed)
		}
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-stopped
		return fmt.Errorf("dialogue: shutdown deadline passed; remaining streams cancelled: %w", ctx.Err())
	}
}

// Close stops the server now, cancelling RPCs in progress; called while
// a Shutdown is waiting, it cuts that short (Shutdown then returns
// ErrClosed), like http.Server.Close. Later calls return ErrClosed.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return ErrClosed
	}
	s.stopped = true
	s.mu.Unlock()
	s.markShut()
	s.health.Shutdown()
	s.grpc.Stop()
	return nil
}

func (s *Server) markShut() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return false
	}
	s.shut = true
	close(s.drain)
	return true
}
