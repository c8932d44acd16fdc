package history

import (
	"container/heap"
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Errors a [Store] returns. Match them with errors.Is.
var (
	// ErrNotFound: the store holds no conversation under that ID.
	ErrNotFound = errors.New("history: conversation not found")
	// ErrNotOwner: the conversation belongs to another player or NPC.
	ErrNotOwner = errors.New("history: conversation belongs to another player or NPC")
	// ErrInvalidConversation: Append was given a conversation without an
	// ID, a player or an NPC.
	ErrInvalidConversation = errors.New("history: a conversation needs an ID, a player and an NPC")
	// ErrTooLarge: a turn or summary does not fit the store's bound on
	// one conversation even alone.
	ErrTooLarge = errors.New("history: conversation too large")
	// ErrInvalidOptions: [NewMemoryStore] was given an invalid
	// [MemoryStoreOptions] field; the error is an [*OptionsError] naming it.
	ErrInvalidOptions = errors.New("history: invalid options")
)

// OptionsError names the [MemoryStoreOptions] field [NewMemoryStore]
// refused and why. It matches [ErrInvalidOptions] with errors.Is.
type OptionsError struct {
	Field  string
	Reason string
}

func (e *OptionsError) Error() string {
	return "history: invalid MemoryStoreOptions." + e.Field + ": " + e.Reason
}

// Is reports whether target is [ErrInvalidOptions].
func (e *OptionsError) Is(target error) bool { return target == ErrInvalidOptions }

// Turn is one exchange of a conversation: what the player said and what the
// NPC answered.
type Turn struct {
	Player string `json:"p"`
	NPC    string `json:"n"`
}

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
// player and one NPC. Implementations bound what they keep, so that no
// player can exhaust them: the turns and bytes of each conversation (the
// oldest turns go first), the conversations of each player (that player's
// least recently active one goes first), and idle time. Only Append is
// told the player, so a store that files conversations by player must find
// the player of a session ID itself (dialogue/redisstore keeps an owner
// key). Implementations must be safe for concurrent use.
//
// dialoguetest.TestStore checks an implementation against this contract.
type Store interface {
	// Load returns the conversation, or an error matching [ErrNotFound].
	Load(ctx context.Context, id string) (Conversation, error)
	// Append adds a turn to conversation c.ID, creating it owned by
	// c.Player and c.NPC if it does not exist (c.Turns and c.Summary are
	// ignored). It returns an error matching [ErrNotOwner] if the
	// conversation exists with another owner, and one matching
	// [ErrTooLarge] if the turn cannot fit the store's bound on one
	// conversation even alone. It keeps only the newest turns up to the
	// store's bounds and restarts the idle timer. Starting a conversation
	// may evict the player's own least recently active one.
	Append(ctx context.Context, c Conversation, t Turn) error
	// SetSummary replaces the summary of an existing conversation, or
	// returns an error matching [ErrNotFound]. The summary counts against
	// the conversation's byte bound: the oldest turns make room for it, and
	// one too large even alone is refused with an error matching
	// [ErrTooLarge].
	SetSummary(ctx context.Context, id, summary string) error
	// Delete forgets a conversation; deleting a missing one is not an
	// error.
	Delete(ctx context.Context, id string) error
}

// MemoryStoreOptions configures a [MemoryStore]. The zero value means the
// defaults; a negative value is refused by [NewMemoryStore] with an
// [*OptionsError].
type MemoryStoreOptions struct {
	// TTL is how long an idle conversation is kept; 0 means [DefaultTTL].
	TTL time.Duration
	// MaxTurns bounds the turns kept per conversation; 0 means
	// [DefaultMaxTurns].
	MaxTurns int
	// MaxConversationBytes bounds the text one conversation keeps: its
	// session, player and NPC IDs, its summary and its turns. Past it the
	// oldest turns are dropped; a turn or summary that cannot fit even
	// alone is refused with an error matching [ErrTooLarge]. 0 means
	// [DefaultMaxConversationBytes]. It is lowered, if need be, so that one
	// conversation fits in MaxBytes.
	MaxConversationBytes int
	// MaxSessionsPerPlayer bounds the conversations one player holds; a
	// player starting one more loses their own least recently active
	// conversation. 0 means [DefaultMaxSessionsPerPlayer].
	MaxSessionsPerPlayer int
	// MaxBytes bounds the memory held by all conversations together: the
	// text counted by MaxConversationBytes plus a fixed 256 bytes per
	// conversation and 32 bytes per turn for the structures that hold it.
	// Past it, conversations are evicted fairly: from the player holding
	// the most bytes, that player's least recently active conversation
	// first (among players holding as much, the most recently active one
	// goes first). A conversation being appended to is never evicted by its
	// own Append. 0 means [DefaultMaxBytes].
	MaxBytes int64
	// MaxConversations bounds the number of conversations held; past it,
	// one is evicted the same way as past MaxBytes. 0 means 100,000.
	MaxConversations int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Default store bounds, shared by the stores this module ships.
const (
	DefaultTTL                  = 30 * time.Minute
	DefaultMaxTurns             = 32
	DefaultMaxConversationBytes = 64 << 10
	DefaultMaxSessionsPerPlayer = 16
	// DefaultMaxBytes is the memory budget of a [MemoryStore]: 256 MiB.
	DefaultMaxBytes = 256 << 20
)

// What MaxBytes counts beyond the text: the map entry, list elements,
// entry struct and string headers of a conversation, and the two string
// headers of a turn.
const (
	convOverhead = 256
	turnOverhead = 32
)

// validate refuses negative bounds, then fills in the defaults.
func (o *MemoryStoreOptions) validate() error {
	for _, f := range []struct {
		name     string
		negative bool
	}{
		{"TTL", o.TTL < 0},
		{"MaxTurns", o.MaxTurns < 0},
		{"MaxConversationBytes", o.MaxConversationBytes < 0},
		{"MaxSessionsPerPlayer", o.MaxSessionsPerPlayer < 0},
		{"MaxBytes", o.MaxBytes < 0},
		{"MaxConversations", o.MaxConversations < 0},
	} {
		if f.negative {
			return &OptionsError{Field: f.name, Reason: "must not be negative (0 means the default)"}
		}
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxTurns == 0 {
		o.MaxTurns = DefaultMaxTurns
	}
	if o.MaxConversationBytes == 0 {
		o.MaxConversationBytes = DefaultMaxConversationBytes
	}
	if o.MaxSessionsPerPlayer == 0 {
		o.MaxSessionsPerPlayer = DefaultMaxSessionsPerPlayer
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxConversations == 0 {
		o.MaxConversations = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// One full conversation must fit in the budget, so that an Append
	// never has to evict the conversation it appends to.
	if fit := o.MaxBytes - convOverhead - int64(o.MaxTurns)*turnOverhead; int64(o.MaxConversationBytes) > fit {
		o.MaxConversationBytes = int(max(fit, 0))
	}
	return nil
}

// MemoryStoreStats is a snapshot of a [MemoryStore].
type MemoryStoreStats struct {
	// Conversations and Players held, expired ones included until swept.
	Conversations, Players int
	// Bytes held, as counted against MemoryStoreOptions.MaxBytes.
	Bytes int64
	// Expired counts conversations dropped after their idle TTL.
	Expired uint64
	// EvictedPlayerCap counts conversations dropped because their player
	// started more than MaxSessionsPerPlayer.
	EvictedPlayerCap uint64
	// EvictedBudget counts conversations dropped to stay within MaxBytes
	// or MaxConversations.
	EvictedBudget uint64
}

// MemoryStore is an in-process [Store], bounded in bytes
// (MemoryStoreOptions.MaxBytes), per conversation, per player and in time.
//
// Conversations are kept in order of their last Append, which is also the
// order in which they expire, so expired ones are removed from the front
// on every Append (and on access) at O(1) amortised cost. Each player's
// conversations are kept in the same order, and players in a heap by the
// bytes they hold, so that the player holding the most loses a
// conversation first when the store is full: one player, or a few, opening
// sessions without end cannot evict another player's history. An evicted
// conversation is gone, as an expired one is. Appends cost O(log players).
//
// The zero value is not ready: use [NewMemoryStore]. It starts no
// goroutines and is safe for concurrent use.
type MemoryStore struct {
	opts MemoryStoreOptions

	mu      sync.Mutex
	m       map[string]*memEntry
	lru     list.List // of *memEntry, oldest Append first
	players map[string]*memPlayer
	heap    playerHeap
	bytes   int64
	seq     uint64 // orders player activity

	expired, evictedCap, evictedBudget uint64
}

type memEntry struct {
	c       Conversation
	expires time.Time
	size    int64 // counted against MaxBytes
	player  *memPlayer
	global  *list.Element // in MemoryStore.lru
	own     *list.Element // in memPlayer.sessions
}

// memPlayer is one player's share of the store.
type memPlayer struct {
	id       string
	bytes    int64
	seq      uint64    // when the player last appended
	sessions list.List // of *memEntry, oldest Append first
	index    int       // in MemoryStore.heap
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore. It returns an
// [*OptionsError] matching [ErrInvalidOptions] if a bound in opts is
// negative.
func NewMemoryStore(opts MemoryStoreOptions) (*MemoryStore, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &MemoryStore{opts: opts, m: make(map[string]*memEntry), players: make(map[string]*memPlayer)}, nil
}

// textSize is what MaxConversationBytes counts.
func textSize(c *Conversation) int {
	n := len(c.ID) + len(c.Player) + len(c.NPC) + len(c.Summary)
	for _, t := range c.Turns {
		n += len(t.Player) + len(t.NPC)
	}
	return n
}

// get returns the live entry for id; it must be called with mu held.
func (s *MemoryStore) get(id string, now time.Time) *memEntry {
	e, ok := s.m[id]
	if !ok {
		return nil
	}
	if !now.Before(e.expires) {
		s.remove(e)
		s.expired++
		return nil
	}
	return e
}

// remove forgets e, and its player when that was their last conversation.
func (s *MemoryStore) remove(e *memEntry) {
	delete(s.m, e.c.ID)
	s.lru.Remove(e.global)
	p := e.player
	p.sessions.Remove(e.own)
	s.resize(e, 0)
	if p.sessions.Len() == 0 {
		heap.Remove(&s.heap, p.index)
		delete(s.players, p.id)
	}
}

// resize sets e's counted size and updates its player's and the store's.
func (s *MemoryStore) resize(e *memEntry, size int64) {
	d := size - e.size
	e.size = size
	e.player.bytes += d
	s.bytes += d
	if e.player.index >= 0 {
		heap.Fix(&s.heap, e.player.index)
	}
}

// victim returns the conversation to evict next: the least recently active
// one of the player holding the most bytes, never keep.
func (s *MemoryStore) victim(keep *memEntry) *memEntry {
	if len(s.heap) == 0 {
		return nil
	}
	p := s.heap[0]
	if e := p.sessions.Front().Value.(*memEntry); e != keep {
		return e
	}
	// keep is the heaviest player's only conversation; the next heaviest
	// player is a child of the root.
	var next *memPlayer
	for _, i := range []int{1, 2} {
		if i < len(s.heap) && (next == nil || s.heap.Less(i, next.index)) {
			next = s.heap[i]
		}
	}
	if next == nil {
		return nil
	}
	return next.sessions.Front().Value.(*memEntry)
}

// Load implements [Store].
func (s *MemoryStore) Load(ctx context.Context, id string) (Conversation, error) {
	if err := ctx.Err(); err != nil {
		return Conversation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(id, s.opts.Now())
	if e == nil {
		return Conversation{}, ErrNotFound
	}
	c := e.c
	c.Turns = slices.Clone(e.c.Turns)
	return c, nil
}

// Append implements [Store]. It returns an error matching [ErrTooLarge]
// if the turn, with the conversation's IDs and summary, exceeds
// MaxConversationBytes.
func (s *MemoryStore) Append(ctx context.Context, c Conversation, t Turn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for el := s.lru.Front(); el != nil && !now.Before(el.Value.(*memEntry).expires); el = s.lru.Front() {
		s.remove(el.Value.(*memEntry))
		s.expired++
	}
	e := s.get(c.ID, now)
	if e != nil && (e.c.Player != c.Player || e.c.NPC != c.NPC) {
		return ErrNotOwner
	}
	need := len(c.ID) + len(c.Player) + len(c.NPC) + len(t.Player) + len(t.NPC)
	if e != nil {
		need += len(e.c.Summary)
	}
	if need > s.opts.MaxConversationBytes {
		return fmt.Errorf("%w: a turn of %d bytes does not fit the store's %d bytes per conversation",
			ErrTooLarge, len(t.Player)+len(t.NPC), s.opts.MaxConversationBytes)
	}
	if e == nil {
		e = s.create(c)
	}
	e.c.Turns = append(e.c.Turns, t)
	if n := len(e.c.Turns) - s.opts.MaxTurns; n > 0 {
		e.c.Turns = slices.Delete(e.c.Turns, 0, n)
	}
	s.fit(e)
	e.expires = now.Add(s.opts.TTL)
	s.lru.MoveToBack(e.global)
	e.player.sessions.MoveToBack(e.own)
	s.seq++
	e.player.seq = s.seq
	heap.Fix(&s.heap, e.player.index)
	s.evict(e)
	return nil
}

// create adds an empty conversation owned by c.Player and c.NPC, first
// making room for it under the per-player cap and MaxConversations.
func (s *MemoryStore) create(c Conversation) *memEntry {
	p := s.players[c.Player]
	for p != nil && p.sessions.Len() >= s.opts.MaxSessionsPerPlayer {
		s.remove(p.sessions.Front().Value.(*memEntry))
		s.evictedCap++
		p = s.players[c.Player] // gone with its last conversation
	}
	for len(s.m) >= s.opts.MaxConversations {
		s.remove(s.victim(nil))
		s.evictedBudget++
	}
	if p = s.players[c.Player]; p == nil {
		p = &memPlayer{id: c.Player}
		heap.Push(&s.heap, p)
		s.players[c.Player] = p
	}
	e := &memEntry{c: Conversation{ID: c.ID, Player: c.Player, NPC: c.NPC}, player: p}
	e.global = s.lru.PushBack(e)
	e.own = p.sessions.PushBack(e)
	s.m[c.ID] = e
	return e
}

// fit drops e's oldest turns until its text fits MaxConversationBytes and
// recounts its size.
func (s *MemoryStore) fit(e *memEntry) {
	text := textSize(&e.c)
	drop := 0
	for ; text > s.opts.MaxConversationBytes && drop < len(e.c.Turns); drop++ {
		text -= len(e.c.Turns[drop].Player) + len(e.c.Turns[drop].NPC)
	}
	e.c.Turns = slices.Delete(e.c.Turns, 0, drop)
	s.resize(e, int64(convOverhead+text+len(e.c.Turns)*turnOverhead))
}

// evict drops conversations, never keep, until the store is within
// MaxBytes.
func (s *MemoryStore) evict(keep *memEntry) {
	for s.bytes > s.opts.MaxBytes {
		v := s.victim(keep)
		if v == nil {
			return
		}
		s.remove(v)
		s.evictedBudget++
	}
}

// SetSummary implements [Store]. It drops the oldest turns if need be to
// keep the conversation within MaxConversationBytes, and returns an error
// matching [ErrTooLarge] if the summary cannot fit even alone.
func (s *MemoryStore) SetSummary(ctx context.Context, id, summary string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(id, s.opts.Now())
	if e == nil {
		return ErrNotFound
	}
	if n := len(e.c.ID) + len(e.c.Player) + len(e.c.NPC) + len(summary); n > s.opts.MaxConversationBytes {
		return fmt.Errorf("%w: a summary of %d bytes does not fit the store's %d bytes per conversation",
			ErrTooLarge, len(summary), s.opts.MaxConversationBytes)
	}
	e.c.Summary = summary
	s.fit(e)
	s.evict(e)
	return nil
}

// Delete implements [Store].
func (s *MemoryStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[id]; ok {
		s.remove(e)
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

// Stats returns a snapshot of the store's size and evictions.
func (s *MemoryStore) Stats() MemoryStoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return MemoryStoreStats{
		Conversations:    len(s.m),
		Players:          len(s.players),
		Bytes:            s.bytes,
		Expired:          s.expired,
		EvictedPlayerCap: s.evictedCap,
		EvictedBudget:    s.evictedBudget,
	}
}

// playerHeap is a max-heap of players by bytes held; among equals, the
// most recently active first.
type playerHeap []*memPlayer

func (h playerHeap) Len() int { return len(h) }
func (h playerHeap) Less(i, j int) bool {
	if h[i].bytes != h[j].bytes {
		return h[i].bytes > h[j].bytes
	}
	return h[i].seq > h[j].seq
}
func (h playerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *playerHeap) Push(x any) {
	p := x.(*memPlayer)
	p.index = len(*h)
	*h = append(*h, p)
}
func (h *playerHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	p.index = -1
	*h = old[:len(old)-1]
	return p
}
