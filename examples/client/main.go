// Command client is a terminal client for the Body Broker dialogue service:
// pick an NPC and talk. Each reply streams in as the model generates it,
// followed by a receipt line saying which tier, replica and model answered,
// and why.
//
// Against a running server (examples/server, or your own that registers
// the dialogue service), with a player token the server was given:
//
//	BB_PLAYER_TOKENS=player-7-secret-token=player-7 go run ./examples/server &
//	BB_PLAYER_TOKEN=player-7-secret-token go run ./examples/client -npc mara
//
// examples/server's NPCs are guard, mara and elara, and its gRPC address is
// the client's default, 127.0.0.1:50051.
//
// Without a server, -demo starts a dialogue service in this process, on a
// stand-in model server (router/openai/openaitest) and scripted lines, and
// talks to it over gRPC on loopback:
//
//	go run ./examples/client -demo
//
// The client reads stdin line by line, so it is as scriptable as it is
// interactive:
//
//	printf 'mara\nWhen does the boat leave?\n' | go run ./examples/client -demo
//
// A line is something to say to the current NPC, except:
//
//	/npc ID   talk to another NPC (each NPC keeps its own conversation)
//	/quit     leave (so does end of input, or Ctrl-C)
//
// Until an NPC is chosen (with -npc or /npc), the first line names one.
//
// Flags and environment:
//
//	-addr            server address; default $BB_DIALOGUE_ADDR or 127.0.0.1:50051
//	-token           bearer token; default $BB_PLAYER_TOKEN (a flag's value is
//	                 visible to other users of the machine, the environment's is not)
//	-tls             use TLS with the system's roots (a deployed server);
//	                 default plaintext, for loopback and private networks
//	-npc             the NPC to talk to first
//	-responsibility  what the line is for (greeting, quest_dialogue, ...); default
//	                 empty: the NPC's importance decides the tier
//	-demo            start an in-process server instead of connecting to -addr
//
// A line longer than 4 KiB is refused and skipped. A refused turn (rate
// limited, too long, an unknown NPC) is reported on stderr and the client
// reads the next line; a wrong token ends it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
)

// maxLineBytes bounds one line of input; longer lines are refused with
// errLineTooLong and skipped.
const maxLineBytes = 4 << 10

var (
	// errLineTooLong reports an input line over maxLineBytes.
	errLineTooLong = errors.New("client: line longer than 4 KiB")
	// errNoToken reports a missing bearer token outside -demo.
	errNoToken = errors.New("client: no token: pass -token or set BB_PLAYER_TOKEN")
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil && ctx.Err() == nil:
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	addr, token, npc, responsibility string
	tls, demo                        bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", envOr("BB_DIALOGUE_ADDR", "127.0.0.1:50051"), "dialogue server `address` (host:port)")
	// The environment's token is not the flag's default, which -help
	// would print.
	fs.StringVar(&c.token, "token", "", "bearer `token` (default $BB_PLAYER_TOKEN)")
	fs.BoolVar(&c.tls, "tls", false, "use TLS with the system's root certificates")
	fs.StringVar(&c.npc, "npc", "", "the NPC `id` to talk to first")
	fs.StringVar(&c.responsibility, "responsibility", "", "what the lines are for (greeting, quest_dialogue, ...); empty: the NPC decides")
	fs.BoolVar(&c.demo, "demo", false, "start an in-process dialogue server on a stand-in model instead of connecting to -addr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("client: unexpected arguments %q", fs.Args())
	}
	if c.token == "" {
		c.token = os.Getenv("BB_PLAYER_TOKEN")
	}
	if !c.demo && c.token == "" {
		return c, errNoToken
	}
	return c, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run is the client: it parses args, connects (or starts the demo server),
// and talks until in ends, /quit, or ctx is cancelled. Replies go to out;
// refused turns and notices to errOut.
func run(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) error {
	cfg, err := parseFlags(args, errOut)
	if err != nil {
		return err
	}
	if cfg.demo {
		d, err := startDemo()
		if err != nil {
			return err
		}
		defer d.Close()
		cfg.addr, cfg.token, cfg.tls = d.Addr, d.Token, false
		fmt.Fprintf(out, "demo: a dialogue server on %s, on a stand-in model; NPCs: %s\n",
			d.Addr, strings.Join(d.NPCs, ", "))
	}

	creds := insecure.NewCredentials()
	if cfg.tls {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(cfg.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()

	c := &chat{
		client:         dialoguev1.NewDialogueServiceClient(conn),
		md:             metadata.Pairs("authorization", "Bearer "+cfg.token),
		responsibility: cfg.responsibility,
		npc:            cfg.npc,
		sessions:       map[string]string{},
		out:            out,
		errOut:         errOut,
	}
	if c.npc == "" {
		fmt.Fprintln(out, "Who do you want to talk to? (an NPC id)")
	} else {
		fmt.Fprintf(out, "Talking to %s. /npc ID to talk to someone else, /quit to leave.\n", c.npc)
	}

	lines := make(chan lineOrErr)
	done := make(chan struct{})
	defer close(done)
	// The reader ends at the end of in, or when run has returned and it
	// has a line to hand over. A read blocked on a terminal outlives run
	// until the next line or the process's exit.
	go readLines(in, lines, done)
	for {
		var l lineOrErr
		select {
		case <-ctx.Done():
			return ctx.Err()
		case l = <-lines:
		}
		if errors.Is(l.err, io.EOF) {
			return nil
		}
		if errors.Is(l.err, errLineTooLong) {
			fmt.Fprintln(errOut, l.err)
			continue
		}
		if l.err != nil {
			return l.err
		}
		quit, err := c.handle(ctx, l.line)
		if quit || err != nil {
			return err
		}
	}
}

type lineOrErr struct {
	line string
	err  error
}

// readLines sends each line of in (without its line ending) to lines, an
// error for a line over maxLineBytes (whose rest it skips), and finally
// the error that ended in (io.EOF at its end).
func readLines(in io.Reader, lines chan<- lineOrErr, done <-chan struct{}) {
	br := bufio.NewReaderSize(in, maxLineBytes)
	send := func(l lineOrErr) bool {
		select {
		case lines <- l:
			return true
		case <-done:
			return false
		}
	}
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of the line
				_, err = br.ReadSlice('\n')
			}
			if !send(lineOrErr{err: errLineTooLong}) {
				return
			}
			if err != nil {
				send(lineOrErr{err: err})
				return
			}
			continue
		}
		if len(b) > 0 {
			line := string(bytes.TrimRight(b, "\r\n"))
			if !send(lineOrErr{line: line}) {
				return
			}
		}
		if err != nil {
			send(lineOrErr{err: err})
			return
		}
	}
}

// chat is one player's conversation state: the current NPC and a session
// per NPC, so each NPC remembers what was said to it.
type chat struct {
	client         dialoguev1.DialogueServiceClient
	md             metadata.MD
	responsibility string
	npc            string
	sessions       map[string]string // NPC → session ID issued by the server
	out, errOut    io.Writer
}

// handle acts on one input line; it reports whether to quit, and an error
// that should end the client.
func (c *chat) handle(ctx context.Context, line string) (quit bool, err error) {
	line = strings.TrimSpace(line)
	switch {
	case line == "":
		return false, nil
	case line == "/quit":
		return true, nil
	case line == "/npc" || strings.HasPrefix(line, "/npc "):
		npc := strings.TrimSpace(strings.TrimPrefix(line, "/npc"))
		if npc == "" {
			fmt.Fprintln(c.errOut, "usage: /npc ID")
			return false, nil
		}
		c.npc = npc
		fmt.Fprintf(c.out, "Talking to %s.\n", npc)
		return false, nil
	case strings.HasPrefix(line, "/"):
		fmt.Fprintf(c.errOut, "unknown command %q: /npc ID or /quit\n", line)
		return false, nil
	case c.npc == "":
		c.npc = line
		fmt.Fprintf(c.out, "Talking to %s. /npc ID to talk to someone else, /quit to leave.\n", c.npc)
		return false, nil
	}
	err = c.say(ctx, line)
	if status.Code(err) == codes.NotFound && c.sessions[c.npc] != "" {
		// The server no longer holds the session (expired, evicted, or
		// another server's memory): start a new one.
		fmt.Fprintf(c.errOut, "%s has forgotten the conversation; starting a new one\n", c.npc)
		delete(c.sessions, c.npc)
		err = c.say(ctx, line)
	}
	switch code := status.Code(err); {
	case err == nil:
		return false, nil
	case ctx.Err() != nil:
		return true, ctx.Err()
	case code == codes.Unauthenticated:
		return true, fmt.Errorf("the server refused the token: %s", status.Convert(err).Message())
	default:
		fmt.Fprintf(c.errOut, "%s did not answer: %s: %s\n", c.npc, code, status.Convert(err).Message())
		return false, nil
	}
}

// say sends one line to the current NPC with StreamSay and prints the
// reply as it streams in, then the receipt.
func (c *chat) say(ctx context.Context, text string) error {
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ctx, c.md))
	defer cancel() // ends the stream on every return
	start := time.Now()
	st, err := c.client.StreamSay(ctx, &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{
		NpcId: c.npc, SessionId: c.sessions[c.npc], Text: text, Responsibility: c.responsibility,
	}})
	if err != nil {
		return err
	}
	var first time.Duration
	started := false
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			if started {
				fmt.Fprintln(c.out) // the reply ended without its final chunk
			}
			return nil
		}
		if err != nil {
			if started {
				fmt.Fprintln(c.out)
			}
			return err
		}
		ch := m.GetChunk()
		if !ch.GetFinal() {
			if !started {
				first = time.Since(start)
				fmt.Fprintf(c.out, "%s: ", c.npc)
				started = true
			}
			fmt.Fprint(c.out, ch.GetText())
			continue
		}
		if started {
			fmt.Fprintln(c.out)
			started = false
		}
		comp := ch.GetCompletion()
		if id := comp.GetSessionId(); id != "" {
			c.sessions[c.npc] = id
		}
		fmt.Fprintln(c.out, receiptLine(comp, first))
	}
}

// receiptLine renders what the server says about a reply: how it ended,
// which tier, replica and model produced it, and why.
func receiptLine(comp *dialoguev1.Completion, first time.Duration) string {
	rc := comp.GetReceipt()
	var b strings.Builder
	fmt.Fprintf(&b, "  receipt: tier %s, replica %s, model %s", orDash(rc.GetTier()), orDash(rc.GetReplica()), orDash(rc.GetModel()))
	fmt.Fprintf(&b, "; %s", strings.ToLower(strings.TrimPrefix(comp.GetFinishReason().String(), "FINISH_REASON_")))
	if comp.GetFallback() {
		b.WriteString(" (the NPC's fallback line: no model answered)")
	}
	fmt.Fprintf(&b, "; %d tokens, first words after %v", comp.GetUsage().GetCompletionTokens(), first.Round(time.Millisecond))
	if n := rc.GetAttempts(); n > 1 {
		fmt.Fprintf(&b, "; %d attempts", n)
	}
	if q := rc.GetQueued().AsDuration(); q > 0 {
		fmt.Fprintf(&b, "; queued %v", q.Round(time.Millisecond))
	}
	if r := rc.GetReasons(); len(r) > 0 {
		fmt.Fprintf(&b, "; because %s", strings.Join(r, ", "))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
