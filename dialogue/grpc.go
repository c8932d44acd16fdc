package dialogue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
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
