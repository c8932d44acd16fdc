package dialogue

import (
	"container/list"
	"context"
	"slices"
	"sync"
	"time"
)

// Conversation is one session between a player and an NPC.
type Conversation struct {
	// ID is the session ID.
	ID string
	// Player and NPC own the conversation: only that player (or a trusted
	// service speaking for them) may continue it, and only with that NPC.
	Player string
	NPC    string
	// Summary is a trusted summary of turns no longer kept, set with
	// [Store.SetSummary] by the studio's own code (never from player text
	// directly, since it is placed in the system part of the prompt).
	Summary string
	// Turns holds the most recent turns, oldest first.
	Turns []Turn
}

// Store keeps conversation memory, keyed by session ID and owned by one
// player and one NPC. Implementations bound the turns kept per conversation
// and expire idle conversations. They must be safe for concurrent use.
//
// dialoguetest.TestStore checks an implementation against this contract.
type Store interface {
	// Load returns the conversation, or an error matching [ErrNotFound].
	Load(ctx context.Context, id string) (Conversation, error)
	// Append adds a turn to conversation c.ID, creating it owned by
	// c.Player and c.NPC if it does not exist (c.Turns and c.Summary are
	// ignored). It returns an error matching [ErrNotOwner] if the
	// conversation exists with another owner. It keeps only the newest
	// turns up to the store's bound and restarts the idle timer.
	Append(ctx context.Context, c Conversation, t Turn) error
	// SetSummary replaces the summary of an existing conversation, or
	// returns an error matching [ErrNotFound].
	SetSummary(ctx context.Context, id, summary string) error
	// Delete forgets a conversation; deleting a missing one is not an
	// error.
	Delete(ctx context.Context, id string) error
}

// MemoryStoreOptions configures a [MemoryStore]. The zero value means the
// defaults.
type MemoryStoreOptions struct {
	// TTL is how long an idle conversation is kept; 0 means 30 minutes.
	TTL time.Duration
	// MaxTurns bounds the turns kept per conversation; 0 means 32.
	MaxTurns int
	// MaxConversations bounds the conversations held; past it, the least
	// recently active one is dropped (memory is an optimisation: that
	// conversation goes on without history). 0 means 100,000.
	MaxConversations int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Default store bounds.
const (
	DefaultTTL      = 30 * time.Minute
	DefaultMaxTurns = 32
)

func (o *MemoryStoreOptions) defaults() {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxTurns <= 0 {
		o.MaxTurns = DefaultMaxTurns
	}
	if o.MaxConversations <= 0 {
		o.MaxConversations = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// MemoryStore is an in-process [Store]. Conversations are kept in order
// of their last Append, which is also the order in which they expire, so
// expired ones are removed from the front on every Append (and on access)
// at O(1) amortised cost, and past MaxConversations the least recently
// active one is dropped. It starts no goroutines and is safe for
// concurrent use.
type MemoryStore struct {
	opts MemoryStoreOptions

	mu  sync.Mutex
	m   map[string]*list.Element // of *memEntry
	lru list.List                // oldest Append first
}

type memEntry struct {
	c       Conversation
	expires time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	opts.defaults()
	return &MemoryStore{opts: opts, m: make(map[string]*list.Element)}
}

// get returns the live entry for id; it must be called with mu held.
func (s *MemoryStore) get(id string, now time.Time) (*list.Element, *memEntry) {
	el, ok := s.m[id]
	if !ok {
		return nil, nil
	}
	e := el.Value.(*memEntry)
	if !now.Before(e.expires) {
		s.remove(el)
		return nil, nil
	}
	return el, e
}

func (s *MemoryStore) remove(el *list.Element) {
	delete(s.m, el.Value.(*memEntry).c.ID)
	s.lru.Remove(el)
}

// Load implements [Store].
func (s *MemoryStore) Load(ctx context.Context, id string) (Conversation, error) {
	if err := ctx.Err(); err != nil {
		return Conversation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e := s.get(id, s.opts.Now())
	if e == nil {
		return Conversation{}, ErrNotFound
	}
	c := e.c
	c.Turns = slices.Clone(e.c.Turns)
	return c, nil
}

// Append implements [Store].
func (s *MemoryStore) Append(ctx context.Context, c Conversation, t Turn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for el := s.lru.Front(); el != nil && !now.Before(el.Value.(*memEntry).expires); el = s.lru.Front() {
		s.remove(el)
	}
	el, e := s.get(c.ID, now)
	if e == nil {
		for len(s.m) >= s.opts.MaxConversations {
			s.remove(s.lru.Front())
		}
		e = &memEntry{c: Conversation{ID: c.ID, Player: c.Player, NPC: c.NPC}}
		el = s.lru.PushBack(e)
		s.m[c.ID] = el
	} else if e.c.Player != c.Player || e.c.NPC != c.NPC {
		return ErrNotOwner
	}
	e.c.Turns = append(e.c.Turns, t)
	if n := len(e.c.Turns) - s.opts.MaxTurns; n > 0 {
		e.c.Turns = slices.Delete(e.c.Turns, 0, n)
	}
	e.expires = now.Add(s.opts.TTL)
	s.lru.MoveToBack(el)
	return nil
}

// SetSummary implements [Store].
func (s *MemoryStore) SetSummary(ctx context.Context, id, summary string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e := s.get(id, s.opts.Now())
	if e == nil {
		return ErrNotFound
	}
	e.c.Summary = summary
	return nil
}

// Delete implements [Store].
func (s *MemoryStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.m[id]; ok {
		s.remove(el)
	}
	return nil
}

// Len returns the number of conversations held, expired ones included until
// they are swept.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
