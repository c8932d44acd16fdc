package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hangBound only bounds a hang; no test relies on how fast anything is.
const hangBound = 30 * time.Second

const testToken = "player-7-test-token"

// gatedModel streams "The tide " at once and the rest of its line only
// after release is closed, so a test can see the first words arrive while
// the reply is still being generated. It records the prompts it is sent.
type gatedModel struct {
	release chan struct{}

	mu      sync.Mutex
	prompts [][]router.Message
}

func (m *gatedModel) Generate(ctx context.Context, req router.Request) (*router.Response, error) {
	return nil, errors.New("gatedModel: streaming only")
}

func (m *gatedModel) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	m.mu.Lock()
	m.prompts = append(m.prompts, req.Messages)
	m.mu.Unlock()
	return &gatedStream{ctx: ctx, release: m.release}, nil
}

func (m *gatedModel) lastPrompt() []router.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.prompts[len(m.prompts)-1]
}

type gatedStream struct {
	ctx     context.Context
	release chan struct{}
	n       int
}

func (s *gatedStream) Recv() (router.Delta, error) {
	s.n++
	switch s.n {
	case 1:
		return router.Delta{Text: "The tide "}, nil
	case 2:
		select {
		case <-s.release:
		case <-s.ctx.Done():
			return router.Delta{}, s.ctx.Err()
		}
		return router.Delta{Text: "turns at dusk."}, nil
	case 3:
		return router.Delta{FinishReason: router.FinishStop, Usage: &router.Usage{CompletionTokens: 5, Reported: true}}, nil
	}
	return router.Delta{}, io.EOF
}

func (s *gatedStream) Close() error { return nil }

// startServer serves the dialogue service over gRPC on a loopback port,
// with one NPC ("mara") on tier 2 backed by model.
func startServer(t *testing.T, model router.Model) string {
	t.Helper()
	r, err := router.New(router.Options{
		Tiers: []router.Tier{{Name: router.Tier2, ModelName: "test/gated",
			Replicas: []router.Replica{{Name: "gated-0", Model: model}}, MaxConcurrent: 4}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	personas, err := dialogue.NewPersonas(dialogue.Persona{ID: "mara", Name: "Mara",
		SystemPrompt: "A dockside fence.", Importance: router.Elite, FallbackLines: []string{"Not now."}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := dialogue.New(dialogue.Options{Completer: dialogue.RouterCompleter(r), Personas: personas})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
		testToken: {Kind: identity.KindPlayer, ID: "player-7"},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dialogue.NewServer(svc, dialogue.ServerOptions{Authenticator: auth, Insecure: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	return lis.Addr().String()
}

// output is an io.Writer a test can wait on.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.changed)
	o.changed = make(chan struct{})
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output contains s and returns it.
func (o *output) waitFor(t *testing.T, s string) string {
	t.Helper()
	return o.waitForCount(t, s, 1)
}

// waitForCount waits until the output contains s n times and returns it.
func (o *output) waitForCount(t *testing.T, s string, n int) string {
	t.Helper()
	deadline := time.After(hangBound)
	for {
		o.mu.Lock()
		got, changed := o.buf.String(), o.changed
		o.mu.Unlock()
		if strings.Count(got, s) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("output never contained %q %d times; got:\n%s", s, n, got)
		}
	}
}

type client struct {
	stdin       *io.PipeWriter
	out, errOut *output
	done        chan error
}

// startClient runs the client with args, its stdin a pipe the test writes.
func startClient(t *testing.T, args ...string) *client {
	t.Helper()
	pr, pw := io.Pipe()
	c := &client{stdin: pw, out: newOutput(), errOut: newOutput(), done: make(chan error, 1)}
	go func() {
		c.done <- run(t.Context(), args, pr, c.out, c.errOut)
		_ = pr.Close()
	}()
	return c
}

func (c *client) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatalf("writing %q to the client: %v", line, err)
	}
}

// wait closes stdin and returns run's error.
func (c *client) wait(t *testing.T) error {
	t.Helper()
	_ = c.stdin.Close()
	select {
	case err := <-c.done:
		return err
	case <-time.After(hangBound):
		t.Fatal("the client did not return after its input ended")
		return nil
	}
}

// TestStreamsReplyAndReceipt drives the client through a pipe against a
// real gRPC server on loopback: the first words are printed while the
// model is still generating, the receipt follows the reply, and the next
// line continues the same conversation.
func TestStreamsReplyAndReceipt(t *testing.T) {
	model := &gatedModel{release: make(chan struct{})}
	addr := startServer(t, model)
	c := startClient(t, "-addr", addr, "-token", testToken, "-npc", "mara")

	c.say(t, "When does the boat leave?")
	got := c.out.waitFor(t, "mara: The tide ")
	if strings.Contains(got, "receipt") {
		t.Fatalf("receipt printed before the reply finished:\n%s", got)
	}
	close(model.release) // the model finishes its line
	got = c.out.waitFor(t, "receipt:")
	if want := "mara: The tide turns at dusk.\n  receipt: tier tier2, replica gated-0, model test/gated; stop; 5 tokens"; !strings.Contains(got, want) {
		t.Errorf("output lacks %q; got:\n%s", want, got)
	}

	// The next line continues the conversation: the model sees the first
	// exchange in its prompt.
	c.say(t, "And the price?")
	c.out.waitForCount(t, "receipt:", 2)
	var sawFirst bool
	for _, m := range model.lastPrompt() {
		sawFirst = sawFirst || strings.Contains(m.Content, "The tide turns at dusk.")
	}
	if !sawFirst {
		t.Errorf("second prompt does not carry the first reply: %+v", model.lastPrompt())
	}
	if err := c.wait(t); err != nil {
		t.Errorf("run: %v", err)
	}
	if e := c.errOut.String(); e != "" {
		t.Errorf("stderr: %s", e)
	}
}

// TestRefusedTurnsContinue: an unknown NPC, an over-long line and an
// unknown command are reported on stderr and the client reads on.
func TestRefusedTurnsContinue(t *testing.T) {
	model := &gatedModel{release: make(chan struct{})}
	close(model.release)
	addr := startServer(t, model)
	c := startClient(t, "-addr", addr, "-token", testToken)

	c.out.waitFor(t, "Who do you want to talk to?")
	c.say(t, "nobody")
	c.say(t, "hello?")
	c.errOut.waitFor(t, "nobody did not answer: InvalidArgument")
	c.say(t, strings.Repeat("a", maxLineBytes+100))
	c.errOut.waitFor(t, errLineTooLong.Error())
	c.say(t, "/dance")
	c.errOut.waitFor(t, `unknown command "/dance"`)
	c.say(t, "/npc mara")
	c.say(t, "Hello.")
	c.out.waitFor(t, "receipt: tier tier2")
	if err := c.wait(t); err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestBadToken: a token the server does not accept ends the client with an
// error that says so.
func TestBadToken(t *testing.T) {
	addr := startServer(t, &gatedModel{release: make(chan struct{})})
	c := startClient(t, "-addr", addr, "-token", "wrong", "-npc", "mara")
	c.say(t, "Hello.")
	var err error
	select {
	case err = <-c.done:
	case <-time.After(hangBound):
		t.Fatal("the client did not end on a refused token")
	}
	if err == nil || !strings.Contains(err.Error(), "refused the token") {
		t.Errorf("run: %v, want the token refused", err)
	}
	_ = c.stdin.Close()
}

// TestNoToken: outside -demo a token is required.
func TestNoToken(t *testing.T) {
	t.Setenv("BB_PLAYER_TOKEN", "")
	err := run(t.Context(), []string{"-addr", "127.0.0.1:1"}, strings.NewReader(""), io.Discard, io.Discard)
	if !errors.Is(err, errNoToken) {
		t.Errorf("run: %v, want errNoToken", err)
	}
}

// TestDemo talks to the in-process demo server, as a script would.
func TestDemo(t *testing.T) {
	in := strings.NewReader("mara\nWhen does the boat leave?\n/npc elara\nYour Majesty?\n/quit\nnot read\n")
	out, errOut := newOutput(), newOutput()
	if err := run(t.Context(), []string{"-demo"}, in, out, errOut); err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, errOut)
	}
	got := out.String()
	for _, want := range []string{
		"NPCs: guard, mara, elara",
		"mara: The tide turns at dusk. Be at the pier, and come alone.\n  receipt: tier tier2",
		"elara: Not here. The walls have ears",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q; got:\n%s", want, got)
		}
	}
	if e := errOut.String(); e != "" {
		t.Errorf("stderr: %s", e)
	}
}

// TestReadLines: lines without their endings, a last line without one, and
// an over-long line skipped with an error.
func TestReadLines(t *testing.T) {
	in := "one\r\ntwo\n" + strings.Repeat("x", 3*maxLineBytes) + "\nthree"
	lines := make(chan lineOrErr)
	done := make(chan struct{})
	defer close(done)
	go readLines(strings.NewReader(in), lines, done)
	var got []string
	for l := range lines {
		if l.err != nil {
			got = append(got, "error: "+l.err.Error())
			if errors.Is(l.err, io.EOF) {
				break
			}
			continue
		}
		got = append(got, l.line)
	}
	want := []string{"one", "two", "error: " + errLineTooLong.Error(), "three", "error: EOF"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// forgetfulServer answers StreamSay with "Hello." and a new session ID, and
// forgets every session it issued: a request naming one fails with
// NotFound, as the dialogue service does for an expired session.
type forgetfulServer struct {
	dialoguev1.UnimplementedDialogueServiceServer

	mu       sync.Mutex
	sessions []string // the session ID of each request, in order
}

func (s *forgetfulServer) StreamSay(req *dialoguev1.StreamSayRequest, st grpc.ServerStreamingServer[dialoguev1.StreamSayResponse]) error {
	s.mu.Lock()
	s.sessions = append(s.sessions, req.GetUtterance().GetSessionId())
	n := len(s.sessions)
	s.mu.Unlock()
	if req.GetUtterance().GetSessionId() != "" {
		return status.Error(codes.NotFound, "dialogue: session not found")
	}
	if err := st.Send(&dialoguev1.StreamSayResponse{Chunk: &dialoguev1.Chunk{Text: "Hello."}}); err != nil {
		return err
	}
	return st.Send(&dialoguev1.StreamSayResponse{Chunk: &dialoguev1.Chunk{Final: true, Completion: &dialoguev1.Completion{
		FinishReason: dialoguev1.FinishReason_FINISH_REASON_STOP, SessionId: fmt.Sprintf("s-%d", n),
		Receipt: &dialoguev1.RouteReceipt{Tier: "tier1"},
	}}})
}

// TestForgottenSession: when the server no longer holds the conversation's
// session, the client says so and starts a new one with the same line.
func TestForgottenSession(t *testing.T) {
	fake := &forgetfulServer{}
	srv := grpc.NewServer()
	dialoguev1.RegisterDialogueServiceServer(srv, fake)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		<-served
	}()

	c := startClient(t, "-addr", lis.Addr().String(), "-token", testToken, "-npc", "mara")
	c.say(t, "Hi.")
	c.out.waitFor(t, "receipt:")
	c.say(t, "Remember me?")
	c.out.waitForCount(t, "receipt:", 2)
	if err := c.wait(t); err != nil {
		t.Errorf("run: %v", err)
	}
	if got, want := c.errOut.String(), "mara has forgotten the conversation; starting a new one\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if diff := cmp.Diff([]string{"", "s-1", ""}, fake.sessions); diff != "" {
		t.Errorf("sessions sent (-want +got):\n%s", diff)
	}
}

func TestReceiptLine(t *testing.T) {
	tests := []struct {
		name string
		comp *dialoguev1.Completion
		want string
	}{
		{"empty", &dialoguev1.Completion{}, "  receipt: tier -, replica -, model -; unspecified; 0 tokens, first words after 0s"},
		{"fallback line", &dialoguev1.Completion{
			FinishReason: dialoguev1.FinishReason_FINISH_REASON_FALLBACK, Fallback: true,
		}, "  receipt: tier -, replica -, model -; fallback (the NPC's fallback line: no model answered); 0 tokens, first words after 0s"},
		{"fell back a tier", &dialoguev1.Completion{
			FinishReason: dialoguev1.FinishReason_FINISH_REASON_STOP,
			Usage:        &dialoguev1.Usage{CompletionTokens: 12},
			Receipt: &dialoguev1.RouteReceipt{Tier: "tier2", Replica: "llama-0", Model: "llama", Attempts: 2,
				Queued: durationpb.New(3 * time.Millisecond), Reasons: []string{"importance", "fallback"}},
		}, "  receipt: tier tier2, replica llama-0, model llama; stop; 12 tokens, first words after 0s; 2 attempts; queued 3ms; because importance, fallback"},
	}
	for _, tt := range tests {
		if got := receiptLine(tt.comp, 0); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// TestHelpHidesToken: -help lists the flags without printing the token
// taken from the environment.
func TestHelpHidesToken(t *testing.T) {
	t.Setenv("BB_PLAYER_TOKEN", "secret-token-from-env")
	var errOut strings.Builder
	err := run(t.Context(), []string{"-help"}, strings.NewReader(""), io.Discard, &errOut)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run -help: %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(errOut.String(), "-token") {
		t.Errorf("help does not list -token:\n%s", errOut.String())
	}
	if strings.Contains(errOut.String(), "secret-token-from-env") {
		t.Errorf("help prints the token:\n%s", errOut.String())
	}
}

// TestTokenFromEnv: BB_PLAYER_TOKEN stands in for -token.
func TestTokenFromEnv(t *testing.T) {
	t.Setenv("BB_PLAYER_TOKEN", testToken)
	model := &gatedModel{release: make(chan struct{})}
	close(model.release)
	c := startClient(t, "-addr", startServer(t, model), "-npc", "mara")
	c.say(t, "Hello.")
	c.out.waitFor(t, "receipt:")
	if err := c.wait(t); err != nil {
		t.Errorf("run: %v", err)
	}
}
