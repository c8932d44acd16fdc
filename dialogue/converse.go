package dialogue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
)

// errNoAction is a ConverseRequest with neither say nor interrupt.
var errNoAction = &FieldError{Field: "action", Reason: "a ConverseRequest needs say or interrupt"}

// converseStream is the server side of a Converse stream.
type converseStream = grpc.BidiStreamingServer[dialoguev1.ConverseRequest, dialoguev1.ConverseResponse]

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
func (h *grpcHandler) Converse(stream converseStream) error {
	c := &conversation{h: h, stream: stream, ctx: stream.Context()}
	return c.run()
}

// conversation is one Converse stream, driven by run on the handler's
// goroutine. It owns at most one reply goroutine at a time (a [reply]):
// stop cancels it and waits for it, and run stops it before returning.
type conversation struct {
	h      *grpcHandler
	stream converseStream
	ctx    context.Context
	// out sends replies; closed after the last reply has ended.
	out *outbox[dialoguev1.ConverseResponse]

	// The reply in progress: done is nil when there is none.
	cancel context.CancelCauseFunc
	done   chan turnResult

	turnNo  uint32
	npc     string // of the last answered turn, inherited by the next
	session string // likewise
	closing bool   // the server is draining: end after the reply in progress
}

// turnResult ends a turn; session and npc are set when it was answered.
type turnResult struct {
	err          error
	session, npc string
}

// run serves the stream until it ends, the client stops talking, or the
// server drains.
func (c *conversation) run() error {
	// Replies are sent through out, closed after the last reply has
	// ended (the deferred stop below runs first).
	c.out = newOutbox(c.h.s, c.h.sendTimeout, c.stream.Send)
	defer c.out.close()
	// The reader is the one goroutine that calls stream.Recv. It delivers
	// every result, the final error included, until run returns (quit):
	// it must never drop the error that says the stream has ended, or the
	// loop below would wait for a message that cannot come. When run
	// returns first, the reader is left in Recv only until grpc ends the
	// stream, which it does as soon as Converse returns.
	recv := make(chan recvd)
	quit := make(chan struct{})
	defer close(quit)
	go c.h.readRequests(c.stream, recv, quit)
	defer func() { _ = c.stop(context.Canceled) }()

	in, drain := (<-chan recvd)(recv), c.h.drain
	for {
		select {
		case <-c.ctx.Done():
			// The stream has ended (client cancelled, connection lost,
			// server stopped); the deferred stop ends the reply.
			return toStatus(c.ctx.Err())
		case r := <-c.done:
			c.ended(r)
			if r.err != nil {
				return toStatus(r.err)
			}
			if c.closing {
				return toStatus(fmt.Errorf("%w: the server is shutting down", ErrClosed))
			}
		case <-drain:
			// Finish the reply in progress, take no more turns.
			drain, in, c.closing = nil, nil, true
			if c.done == nil {
				return toStatus(fmt.Errorf("%w: the server is shutting down", ErrClosed))
			}
		case m := <-in:
			if end, err := c.handle(m); end {
				return err
			}
		}
	}
}

// handle acts on one received message, reporting whether the stream ends
// and with what.
func (c *conversation) handle(m recvd) (end bool, _ error) {
	if m.err == io.EOF {
		// The client is done talking; let the NPC finish.
		if c.done != nil {
			r := <-c.done
			c.done, c.cancel = nil, nil
			return true, toStatus(r.err)
		}
		return true, nil
	}
	if m.err != nil {
		return true, toStatus(m.err)
	}
	switch a := m.m.GetAction().(type) {
	case *dialoguev1.ConverseRequest_Interrupt:
		if err := c.stop(errInterrupted); err != nil {
			return true, toStatus(err)
		}
	case *dialoguev1.ConverseRequest_Say:
		if err := c.stop(errInterrupted); err != nil {
			return true, toStatus(err)
		}
		c.say(a.Say)
	default:
		return true, toStatus(errNoAction)
	}
	return false, nil
}

// ended records the result of a reply that has finished.
func (c *conversation) ended(r turnResult) {
	c.done, c.cancel = nil, nil
	if r.session != "" {
		c.session, c.npc = r.session, r.npc
	}
}

// stop interrupts the reply in progress, if any, and waits for it.
func (c *conversation) stop(cause error) error {
	if c.done == nil {
		return nil
	}
	c.cancel(cause)
	r := <-c.done
	c.ended(r)
	if r.err != nil && !(cause == errInterrupted && errors.Is(r.err, context.Canceled)) {
		return r.err
	}
	return nil
}

// say starts a reply to u, which inherits the NPC and session of the last
// answered turn when it names none. No reply may be in progress.
func (c *conversation) say(u *dialoguev1.Utterance) {
	if u == nil {
		u = &dialoguev1.Utterance{} // refused by validation, as a turn
	}
	if u.GetNpcId() == "" {
		u.NpcId = c.npc
	}
	if u.GetSessionId() == "" && u.GetNpcId() == c.npc {
		u.SessionId = c.session
	}
	c.turnNo++
	r := &reply{s: c.h.s, out: c.out, u: u, n: c.turnNo, owned: c.session}
	r.ctx, c.cancel = context.WithCancelCause(c.ctx)
	r.cancel = c.cancel
	c.done = make(chan turnResult, 1)
	go r.run(c.done)
}

// reply is one turn of a Converse stream, run on a goroutine of its own so
// that the conversation goes on reading (and the player can interrupt).
// Its owner, the [conversation], cancels ctx to stop it and waits on the
// done channel, to which run sends exactly once.
type reply struct {
	s      *Service
	out    *outbox[dialoguev1.ConverseResponse]
	ctx    context.Context
	cancel context.CancelCauseFunc
	u      *dialoguev1.Utterance
	n      uint32 // the turn number
	owned  string // the session this stream had answered before the turn
}

// run answers the turn and sends its result to done.
func (r *reply) run(done chan<- turnResult) {
	defer r.cancel(context.Canceled)
	defer func() {
		// This goroutine is outside the interceptor's recovery: recover
		// here, or a panic kills the process.
		if v := recover(); v != nil {
			r.s.log.Error("dialogue: panic in Converse", "panic", v, "stack", string(debug.Stack()))
			done <- turnResult{errPanic, "", ""}
		}
	}()
	var (
		sess string
		sent bool
	)
	err := r.s.StreamSay(r.ctx, r.u, func(c *dialoguev1.Chunk) error {
		sent = true
		if c.GetFinal() {
			sess = c.GetCompletion().GetSessionId()
		}
		return r.out.send(&dialoguev1.ConverseResponse{Turn: r.n, Chunk: c})
	})
	if err != nil && !sent {
		err = r.unanswered(err)
	}
	done <- turnResult{err, sess, r.u.GetNpcId()}
}

// unanswered ends a turn that failed before its reply began: with a
// TurnError if the service refused it, as an interrupted turn if the
// player interrupted it; otherwise err ends the stream.
func (r *reply) unanswered(err error) error {
	refused := turnError(err)
	switch {
	case refused != nil && (r.ctx.Err() == nil || codes.Code(refused.GetCode()) != codes.Unavailable):
		// The service refused the turn (another player's session, say):
		// that is the answer, even if the player interrupted meanwhile.
		// Only Unavailable may be the interruption's doing.
		return r.out.send(&dialoguev1.ConverseResponse{Turn: r.n, Error: refused})
	case context.Cause(r.ctx) == errInterrupted:
		// Interrupted before the reply began (in moderation, say):
		// whatever that step returned, the turn ends like any other
		// interrupted one. It names its session only if this stream
		// already had it answered: the ID the client sent may be another
		// player's, not yet checked.
		c := &dialoguev1.Completion{FinishReason: dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED}
		if r.u.GetSessionId() == r.owned {
			c.SessionId = r.owned
		}
		return r.out.send(&dialoguev1.ConverseResponse{Turn: r.n, Chunk: &dialoguev1.Chunk{
			SentenceEnd: true, Final: true, Completion: c,
		}})
	}
	return err
}

// recvd is one result of a Converse stream's Recv.
type recvd struct {
	m   *dialoguev1.ConverseRequest
	err error
}

// readRequests receives from stream until Recv fails or a message is
// over the size limit, handing every result to recv, until quit is
// closed.
func (h *grpcHandler) readRequests(stream converseStream, recv chan<- recvd, quit <-chan struct{}) {
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
