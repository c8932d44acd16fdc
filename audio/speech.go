package audio

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// SpeechRequest is text to speak.
type SpeechRequest struct {
	Text string `json:"text"`
	// Voice names a synthesizer voice ("" means its default).
	Voice string `json:"voice,omitempty"`
}

// Clip is synthesized or recorded audio. ID is its content address
// ([ClipID]); stores set it. Data is shared, never copied: treat it as
// read-only once stored.
type Clip struct {
	ID          string        `json:"id"`
	ContentType string        `json:"content_type"`
	Data        []byte        `json:"-"`
	Duration    time.Duration `json:"duration"`
}

// Synthesizer turns text into a clip (a WAV file, with its duration).
// Implementations: package audio/espeak (local, espeak-ng) and
// audio/openaitts (OpenAI-compatible /v1/audio/speech servers). They must
// be safe for concurrent use and honour ctx.
type Synthesizer interface {
	Synthesize(ctx context.Context, req SpeechRequest) (Clip, error)
}

// ErrClipNotFound: a clip ID the store does not hold (never stored, or
// evicted).
var ErrClipNotFound = errors.New("audio: clip not found")

// ErrLineRefused: the director's voice limits did not let a Speaker's
// line play (rejected, queued or cooled down); its clip is stored but not
// scheduled.
var ErrLineRefused = errors.New("audio: voice line refused")

// ErrClipTooLarge: a clip larger than the store's MaxBytes.
var ErrClipTooLarge = errors.New("audio: clip too large")

// ClipID returns the content address of clip bytes: the first 128 bits of
// their SHA-256, hex, plus ".wav" for WAV content. Equal audio gets equal
// IDs, so storing it twice costs nothing and caches never go stale.
func ClipID(contentType string, data []byte) string {
	sum := sha256.Sum256(data)
	id := hex.EncodeToString(sum[:16])
	if contentType == "audio/wav" {
		id += ".wav"
	}
	return id
}

// ClipStore keeps clips by content address. Implementations: the
// in-memory [MemoryClipStore]; see audio/cliphttp to serve them.
type ClipStore interface {
	// Put stores the clip and returns it with ID set.
	Put(ctx context.Context, c Clip) (Clip, error)
	// Get returns a stored clip, or ErrClipNotFound.
	Get(ctx context.Context, id string) (Clip, error)
}

// MemoryClipStore is a ClipStore in memory, bounded in bytes: when a Put
// would exceed MaxBytes it evicts the least recently used clips. The zero
// value is not usable; create one with [NewMemoryClipStore]. It is safe
// for concurrent use.
type MemoryClipStore struct {
	max int64

	mu    sync.Mutex
	bytes int64
	lru   *list.List // of Clip, front = most recent
	byID  map[string]*list.Element
	stats ClipStoreStats
}

// ClipStoreStats counts a MemoryClipStore's contents and work.
type ClipStoreStats struct {
	Clips, Bytes          int64
	Puts, Hits, Misses    uint64
	Evictions, Duplicates uint64
}

// NewMemoryClipStore returns a store holding at most maxBytes of clip
// data; 0 means 64 MiB.
func NewMemoryClipStore(maxBytes int64) (*MemoryClipStore, error) {
	if maxBytes < 0 {
		return nil, invalid("clip store MaxBytes", maxBytes)
	}
	if maxBytes == 0 {
		maxBytes = 64 << 20
	}
	return &MemoryClipStore{max: maxBytes, lru: list.New(), byID: map[string]*list.Element{}}, nil
}

// Put stores c under its content address. A clip over MaxBytes gives
// ErrClipTooLarge.
func (s *MemoryClipStore) Put(_ context.Context, c Clip) (Clip, error) {
	if int64(len(c.Data)) > s.max {
		return Clip{}, fmt.Errorf("%w: %d bytes, limit %d", ErrClipTooLarge, len(c.Data), s.max)
	}
	c.ID = ClipID(c.ContentType, c.Data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Puts++
	if e, ok := s.byID[c.ID]; ok {
		s.lru.MoveToFront(e)
		s.stats.Duplicates++
		return e.Value.(Clip), nil
	}
	for s.bytes+int64(len(c.Data)) > s.max {
		e := s.lru.Back()
		old := s.lru.Remove(e).(Clip)
		delete(s.byID, old.ID)
		s.bytes -= int64(len(old.Data))
		s.stats.Evictions++
	}
	s.byID[c.ID] = s.lru.PushFront(c)
	s.bytes += int64(len(c.Data))
	return c, nil
}

// Get returns a clip by ID; its Data must not be modified.
func (s *MemoryClipStore) Get(_ context.Context, id string) (Clip, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		s.stats.Misses++
		return Clip{}, fmt.Errorf("%w: %q", ErrClipNotFound, id)
	}
	s.stats.Hits++
	s.lru.MoveToFront(e)
	return e.Value.(Clip), nil
}

// Stats returns the store's counts.
func (s *MemoryClipStore) Stats() ClipStoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Clips, st.Bytes = int64(len(s.byID)), s.bytes
	return st
}

// SplitSentences returns the complete sentences at the start of text and
// the rest. A sentence ends at '.', '!', '?' or '…' (with any closing
// quotes or brackets) followed by white space; the rest is what has not
// ended yet. Sentences are trimmed; empty ones are dropped.
func SplitSentences(text string) (sentences []string, rest string) {
	start := 0
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		i += n
		if r != '.' && r != '!' && r != '?' && r != '…' {
			continue
		}
		j := i
		for j < len(text) {
			c, m := utf8.DecodeRuneInString(text[j:])
			if !strings.ContainsRune(`.!?…"'”’)]`, c) {
				break
			}
			j += m
		}
		if j == len(text) {
			break // the sentence may go on ("3." of "3.5")
		}
		if c, _ := utf8.DecodeRuneInString(text[j:]); !unicode.IsSpace(c) {
			continue
		}
		if s := strings.TrimSpace(text[start:j]); s != "" {
			sentences = append(sentences, s)
		}
		start, i = j, j
	}
	return sentences, text[start:]
}

// ClipCue says which clip plays when, for how long, on which emitter: the
// output of a [Speaker] for each sentence.
type ClipCue struct {
	Line     string        `json:"line"`
	Clip     string        `json:"clip"`
	Emitter  string        `json:"emitter"`
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration"`
	Text     string        `json:"text"`
}

// SpeakerOptions configures a [Speaker].
type SpeakerOptions struct {
	Synthesizer Synthesizer
	Store       ClipStore
	// Director, if set, plays the clips as one voice line: the first
	// clip starts it, later ones are appended ([Director.AppendClip]),
	// so ducking lasts exactly as long as the speech.
	Director *Director
	// Line is the voice line; its ID ("" means "line:<session>:<npc>"),
	// NPC (the emitter), priority and never-steal flag are used.
	Line VoiceLine
	// Voice is the synthesizer voice.
	Voice string
	// MaxPending bounds the text buffered while waiting for a sentence's
	// end, in bytes; 0 means 4096. Beyond it, the buffer is spoken as a
	// sentence.
	MaxPending int
	// Now is the clock when there is no Director; nil means time.Now.
	Now func() time.Time
}

// Speaker speaks one NPC reply sentence by sentence as its text streams
// in: each complete sentence is synthesized, stored as a clip and
// scheduled right after the previous one, so the first sentence plays
// before the reply has ended. It is not safe for concurrent use (a reply
// is one stream).
type Speaker struct {
	opts    SpeakerOptions
	buf     strings.Builder
	end     time.Time // when the last scheduled clip ends
	started bool
	cues    []ClipCue
}

// NewSpeaker validates opts.
func NewSpeaker(opts SpeakerOptions) (*Speaker, error) {
	if opts.Synthesizer == nil || opts.Store == nil {
		return nil, invalid("SpeakerOptions", "nil Synthesizer or Store")
	}
	if opts.MaxPending < 0 {
		return nil, invalid("MaxPending", opts.MaxPending)
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = 4096
	}
	if opts.Line.ID == "" {
		opts.Line.ID = opts.Line.id()
	}
	if opts.Now == nil {
		opts.Now = time.Now
		if opts.Director != nil {
			opts.Now = opts.Director.now
		}
	}
	return &Speaker{opts: opts}, nil
}

// Write adds streamed reply text and speaks every sentence it completes.
func (s *Speaker) Write(ctx context.Context, text string) ([]ClipCue, error) {
	s.buf.WriteString(text)
	sentences, rest := SplitSentences(s.buf.String())
	if len(sentences) == 0 && len(rest) > s.opts.MaxPending {
		sentences, rest = []string{rest}, ""
	}
	s.buf.Reset()
	s.buf.WriteString(rest)
	var out []ClipCue
	for _, t := range sentences {
		c, err := s.Say(ctx, t)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Flush speaks what is left when the reply ends.
func (s *Speaker) Flush(ctx context.Context) ([]ClipCue, error) {
	rest := strings.TrimSpace(s.buf.String())
	s.buf.Reset()
	if rest == "" {
		return nil, nil
	}
	c, err := s.Say(ctx, rest)
	if err != nil {
		return nil, err
	}
	return []ClipCue{c}, nil
}

// Say speaks one sentence (dialogue marks sentence ends; call Say for
// each): synthesize, store, schedule after the previous clip.
func (s *Speaker) Say(ctx context.Context, sentence string) (ClipCue, error) {
	clip, err := s.opts.Synthesizer.Synthesize(ctx, SpeechRequest{Text: sentence, Voice: s.opts.Voice})
	if err != nil {
		return ClipCue{}, err
	}
	clip, err = s.opts.Store.Put(ctx, clip)
	if err != nil {
		return ClipCue{}, err
	}
	at := s.opts.Now()
	if s.end.After(at) {
		at = s.end
	}
	if d := s.opts.Director; d != nil {
		if !s.started {
			l := s.opts.Line
			l.Clip, l.Duration = clip.ID, clip.Duration
			var out Outcome
			if out, at, err = d.startLine(ctx, l); err != nil {
				return ClipCue{}, err
			}
			if out != Played {
				return ClipCue{}, fmt.Errorf("%w: voice line %q was %v", ErrLineRefused, l.ID, out)
			}
		} else if at, err = d.AppendClip(ctx, s.opts.Line.ID, clip.ID, clip.Duration); err != nil {
			return ClipCue{}, err
		}
	}
	s.started = true
	s.end = at.Add(clip.Duration)
	c := ClipCue{Line: s.opts.Line.ID, Clip: clip.ID, Emitter: s.opts.Line.NPC, At: at, Duration: clip.Duration, Text: sentence}
	s.cues = append(s.cues, c)
	return c, nil
}

// Cues returns every clip scheduled so far, in order.
func (s *Speaker) Cues() []ClipCue { return append([]ClipCue(nil), s.cues...) }
