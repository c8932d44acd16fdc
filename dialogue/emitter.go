package dialogue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
)

// errSend marks a failure to deliver a chunk to the client.
var errSend = errors.New("dialogue: sending to the client failed")

// errModeration marks a failure of the output moderation hook.
var errModeration = errors.New("dialogue: output moderation failed")

// emitter turns deltas into chunks: sentence segmentation, optional output
// moderation, indices, TTFT.
type emitter struct {
	send      func(*dialoguev1.Chunk) error
	s         *Service
	t         *turn
	seg       segmenter
	scratch   []piece
	modBuf    strings.Builder
	moderated bool
	init      bool
	index     uint32
	text      strings.Builder
	first     time.Time
	route     CompletionStream // the stream serving the reply; nil for a fallback line
}

func (e *emitter) sent() bool {
	return e.index > 0 || e.text.Len() > 0 || e.seg.held != "" || e.modBuf.Len() > 0
}

// reset drops text that was held back and never sent.
func (e *emitter) reset() {
	e.seg = segmenter{}
	e.modBuf.Reset()
}

func (e *emitter) write(ctx context.Context, delta string) error {
	if !e.init {
		e.init = true
		e.moderated = e.s.opts.Moderator != nil
	}
	e.scratch = e.seg.push(delta, e.scratch[:0])
	return e.deliver(ctx, e.scratch)
}

func (e *emitter) flush(ctx context.Context) error {
	e.scratch = e.seg.flush(e.scratch[:0])
	if err := e.deliver(ctx, e.scratch); err != nil {
		return err
	}
	if e.modBuf.Len() > 0 {
		s := e.modBuf.String()
		e.modBuf.Reset()
		return e.moderate(ctx, s, true)
	}
	return nil
}

func (e *emitter) deliver(ctx context.Context, ps []piece) error {
	for _, p := range ps {
		if !e.moderated {
			if err := e.chunk(ctx, p.text, p.sentenceEnd); err != nil {
				return err
			}
			continue
		}
		e.modBuf.WriteString(p.text)
		if p.sentenceEnd {
			s := e.modBuf.String()
			e.modBuf.Reset()
			if err := e.moderate(ctx, s, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *emitter) moderate(ctx context.Context, s string, end bool) error {
	out, err := e.s.opts.Moderator.Output(ctx, Moderation{Player: e.t.player, NPC: e.t.persona.ID, Session: e.t.conv.ID, Text: s})
	if err != nil {
		return fmt.Errorf("%w: %w", errModeration, err)
	}
	if out == "" {
		return nil
	}
	return e.chunk(ctx, out, end)
}

func (e *emitter) chunk(ctx context.Context, text string, end bool) error {
	if text == "" {
		return nil
	}
	if e.first.IsZero() {
		e.first = e.s.opts.Now()
		e.started(ctx)
	}
	e.text.WriteString(text)
	ch := &dialoguev1.Chunk{Text: text, Index: e.index, SentenceEnd: end}
	e.index++
	if err := e.send(ch); err != nil {
		return fmt.Errorf("%w: %w", errSend, err)
	}
	return nil
}

// started announces the reply's start, just before its first chunk.
func (e *emitter) started(ctx context.Context) {
	if e.s.opts.OnStarted == nil && e.s.opts.Events == nil {
		return
	}
	ev := Started{Version: 1, SessionID: e.t.conv.ID, NPCID: e.t.persona.ID, PlayerID: e.t.player,
		Region: e.t.region, Fallback: e.route == nil, At: e.first}
	if e.route != nil {
		ev.Tier = e.route.Receipt().Tier
	}
	actx, cancel := detached(ctx)
	defer cancel()
	e.s.announce(actx, ev)
}

func (e *emitter) final(c *dialoguev1.Completion) error {
	ch := &dialoguev1.Chunk{Index: e.index, SentenceEnd: true, Final: true, Completion: c}
	e.index++
	if err := e.send(ch); err != nil {
		return fmt.Errorf("%w: %w", errSend, err)
	}
	return nil
}
