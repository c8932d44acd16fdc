// Package scripted is a deterministic [router.Model] that answers with
// canned lines chosen by NPC and responsibility. Use it in demos and tests,
// and as the last tier of a fallback chain so that the player always gets a
// line.
//
// # Choosing a line
//
// The lines for Request.NPC are used when [Options.NPCLines] has them,
// otherwise those for Request.Responsibility, otherwise [Options.Default].
// Among several lines, one is chosen by a hash of the NPC and the last
// message, so the same request always gets the same line. The line is
// streamed word by word (a word keeps its following space), and the last
// delta carries [router.FinishScripted] or, when Request.MaxTokens cut it,
// [router.FinishLength]. Usage counts words.
//
// # Concurrency
//
// A Model is safe for concurrent use; streams honour their context.
package scripted

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bodybroker/sdk/internal/wordsplit"
	"github.com/bodybroker/sdk/router"
)

// Options configures a Model. The zero value uses [DefaultLines] and no
// delays.
type Options struct {
	// Lines are canned lines by responsibility; nil means DefaultLines().
	Lines map[router.Responsibility][]string
	// NPCLines are canned lines by Request.NPC, checked first.
	NPCLines map[string][]string
	// Default lines are used when nothing else matches; empty means
	// DefaultLines()[router.ResponsibilityUnknown].
	Default []string
	// FirstTokenDelay and TokenDelay pace the stream (zero: no delay).
	FirstTokenDelay time.Duration
	TokenDelay      time.Duration
	// Name is reported as Response.Model when the request names no model;
	// default "scripted".
	Name string
}

// DefaultLines returns the built-in lines: a few per responsibility of the
// default policy, and a generic line under router.ResponsibilityUnknown.
func DefaultLines() map[router.Responsibility][]string {
	return map[router.Responsibility][]string{
		router.Greeting:              {"Well met, traveller.", "Greetings. What brings you here?"},
		router.Farewell:              {"Safe travels.", "Until next time."},
		router.GenericDialogue:       {"Can't talk now, there's work to do.", "Keep your voice down around here."},
		router.SimpleResponse:        {"Aye.", "I wouldn't know about that."},
		router.EliteDialogue:         {"You have the look of someone who has seen battle."},
		router.QuestDialogue:         {"The old mine to the north. Start there, and be careful."},
		router.ComplexQuestion:       {"That is a long story, and not one for an open road."},
		router.StoryProgression:      {"Things are changing. I can feel it in the air."},
		router.MajorNPC:              {"So, you've returned. I wondered if you would."},
		router.Personalized:          {"I remember you. You kept your word last time."},
		router.CharacterDevelopment:  {"I used to believe in the old ways. Now I am not so sure."},
		router.StoryCritical:         {"Listen closely, for I will only say this once."},
		router.ResponsibilityUnknown: {"Hm. Give me a moment to think on that."},
	}
}

// Model is a deterministic scripted model.
type Model struct {
	o Options
}

var _ router.Model = (*Model)(nil)

// New returns a Model. It fails if a line list is empty.
func New(o Options) (*Model, error) {
	if o.Lines == nil {
		o.Lines = DefaultLines()
	}
	if len(o.Default) == 0 {
		o.Default = DefaultLines()[router.ResponsibilityUnknown]
	}
	if o.Name == "" {
		o.Name = "scripted"
	}
	if o.FirstTokenDelay < 0 || o.TokenDelay < 0 {
		return nil, fmt.Errorf("scripted: negative delay")
	}
	check := func(what string, lines []string) error {
		if len(lines) == 0 {
			return fmt.Errorf("scripted: no lines for %s", what)
		}
		for _, l := range lines {
			if strings.TrimSpace(l) == "" {
				return fmt.Errorf("scripted: empty line for %s", what)
			}
		}
		return nil
	}
	lines := make(map[router.Responsibility][]string, len(o.Lines))
	for r, l := range o.Lines {
		if err := check(fmt.Sprintf("responsibility %q", r), l); err != nil {
			return nil, err
		}
		lines[r] = append([]string(nil), l...)
	}
	npc := make(map[string][]string, len(o.NPCLines))
	for n, l := range o.NPCLines {
		if err := check(fmt.Sprintf("NPC %q", n), l); err != nil {
			return nil, err
		}
		npc[n] = append([]string(nil), l...)
	}
	if err := check("default", o.Default); err != nil {
		return nil, err
	}
	o.Lines, o.NPCLines, o.Default = lines, npc, append([]string(nil), o.Default...)
	return &Model{o: o}, nil
}

// Line returns the line the Model answers req with.
func (m *Model) Line(req router.Request) string {
	lines := m.o.NPCLines[req.NPC]
	if len(lines) == 0 && req.Responsibility != router.ResponsibilityUnknown {
		lines = m.o.Lines[req.Responsibility]
	}
	if len(lines) == 0 {
		lines = m.o.Default
	}
	if len(lines) == 1 {
		return lines[0]
	}
	h := uint64(14695981039346656037)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	add(req.NPC)
	if n := len(req.Messages); n > 0 {
		add(req.Messages[n-1].Content)
	}
	return lines[h%uint64(len(lines))]
}

func promptWords(req router.Request) int {
	n := 0
	for _, m := range req.Messages {
		n += len(strings.Fields(m.Content))
	}
	return n
}

// Generate returns the whole line.
func (m *Model) Generate(ctx context.Context, req router.Request) (*router.Response, error) {
	s, err := m.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	return router.Collect(s, m.name(req))
}

func (m *Model) name(req router.Request) string {
	switch {
	case req.Adapter != "":
		return req.Adapter
	case req.Model != "":
		return req.Model
	}
	return m.o.Name
}

// Stream streams the line word by word.
func (m *Model) Stream(ctx context.Context, req router.Request) (router.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := wordsplit.Split(m.Line(req))
	finish := router.FinishScripted
	if req.MaxTokens > 0 && len(w) > req.MaxTokens {
		w, finish = w[:req.MaxTokens], router.FinishLength
	}
	return &stream{ctx: ctx, m: m, words: w, finish: finish, prompt: promptWords(req)}, nil
}

type stream struct {
	ctx    context.Context
	m      *Model
	words  []string
	i      int
	finish router.FinishReason
	prompt int
	closed bool
}

func (s *stream) Recv() (router.Delta, error) {
	if s.closed {
		return router.Delta{}, fmt.Errorf("scripted: stream closed")
	}
	if s.i >= len(s.words) {
		return router.Delta{}, io.EOF
	}
	delay := s.m.o.TokenDelay
	if s.i == 0 {
		delay = s.m.o.FirstTokenDelay
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return router.Delta{}, s.ctx.Err()
		}
	} else if err := s.ctx.Err(); err != nil {
		return router.Delta{}, err
	}
	d := router.Delta{Text: s.words[s.i]}
	s.i++
	if s.i == len(s.words) {
		d.FinishReason = s.finish
		d.Usage = &router.Usage{PromptTokens: s.prompt, CompletionTokens: len(s.words), Reported: true}
	}
	return d, nil
}

func (s *stream) Close() error {
	s.closed = true
	return nil
}
