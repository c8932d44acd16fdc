package worldtime

import (
	"context"
	"slices"
	"sync"
)

// Store holds each world's timeline, so that several server processes
// share one clock. Implementations are safe for concurrent use by many
// goroutines (and, for shared backends, processes). Shipped: [MemoryStore]
// and worldtime/redisstore; worldtime/worldtimetest checks any Store.
type Store interface {
	// Load returns the world's timeline, or ErrNotFound.
	Load(ctx context.Context, world string) (Timeline, error)
	// Swap stores tl as the world's timeline if the stored version is
	// still prev (0: nothing stored yet), and returns tl with the version
	// the store issued (prev+1). Otherwise it stores nothing and returns
	// an error matching ErrConflict. tl.Version is ignored.
	Swap(ctx context.Context, world string, prev int64, tl Timeline) (Timeline, error)
}

// Watcher is implemented by stores that announce changes (worldtime/redisstore
// does, with Redis pub/sub). A clock whose store is a Watcher reloads the
// timeline as soon as another server changes it, instead of at its next
// Options.Refresh poll (which still runs, to cover lost notifications).
type Watcher interface {
	// Watch calls changed (from any goroutine) after each change to the
	// world's timeline, until ctx ends; it then returns ctx's error. It
	// returns early with an error if watching fails.
	Watch(ctx context.Context, world string, changed func()) error
}

// MemoryStore is an in-process Store. Its zero value is empty and ready;
// it is safe for concurrent use. Clocks in one process that share a
// MemoryStore share their worlds' timelines.
type MemoryStore struct {
	mu     sync.Mutex
	worlds map[string]Timeline
}

var _ Store = (*MemoryStore)(nil)

// Load implements Store.
func (m *MemoryStore) Load(ctx context.Context, world string) (Timeline, error) {
	if err := ctx.Err(); err != nil {
		return Timeline{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tl, ok := m.worlds[world]
	if !ok {
		return Timeline{}, ErrNotFound
	}
	tl.Segments = slices.Clone(tl.Segments)
	return tl, nil
}

// Swap implements Store.
func (m *MemoryStore) Swap(ctx context.Context, world string, prev int64, tl Timeline) (Timeline, error) {
	if err := ctx.Err(); err != nil {
		return Timeline{}, err
	}
	if err := tl.Validate(); err != nil {
		return Timeline{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.worlds[world]; cur.Version != prev {
		return Timeline{}, ErrConflict
	}
	if m.worlds == nil {
		m.worlds = make(map[string]Timeline)
	}
	tl.World, tl.Version = world, prev+1
	tl.Segments = slices.Clone(tl.Segments)
	m.worlds[world] = tl
	tl.Segments = slices.Clone(tl.Segments)
	return tl, nil
}
